"""One entry point for 'an architecture as the user wrote it' (CLI, API, configs)."""

from __future__ import annotations

from pathlib import Path

from searchspace.architecture import Architecture
from searchspace.errors import ArchitectureError
from searchspace.known import KNOWN, known_architecture


def resolve_architecture(ref: str) -> Architecture:
    """A known net's name, a path to a JSON file, or the string form."""
    ref = ref.strip()
    if ref in KNOWN:
        return known_architecture(ref)
    if "|" in ref:
        return Architecture.decode(ref)
    if ref.startswith("{"):
        return Architecture.from_json(ref)
    path = Path(ref)
    if path.is_file():
        return Architecture.load(path)
    if path.suffix.lower() == ".json" or "/" in ref:
        raise ArchitectureError(f"architecture file {ref} does not exist")
    raise ArchitectureError(
        f"{ref!r} is not a known net ({', '.join(KNOWN)}), an existing JSON file, "
        "or an architecture string like 'r224_i3|conv_k3_s2_c32_relu6|...|head_n1000'"
    )
