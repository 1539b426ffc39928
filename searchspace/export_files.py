"""Writing export files: atomically (a file on disk is always a complete one), and the JSON exporter."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from searchspace.architecture import Architecture
from searchspace.errors import ExportError

__all__ = ["atomic_write", "export_json"]


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], what: str) -> Path:
    """Run ``write(tmp_file)`` in a scratch directory next to ``path``, then rename into place.

    A scratch directory (not just a scratch file) also catches sidecar files an
    exporter might create; it is always removed, so a failure leaves nothing.
    """
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        problem = "is not a directory" if parent.exists() else "does not exist"
        raise ExportError(f"cannot write {what} to {target}: directory {parent} {problem}")
    if target.is_dir():
        raise ExportError(f"cannot write {what} to {target}: it is a directory")
    try:
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise ExportError(f"cannot write {what} to {target}: {exc.strerror} ({parent})") from None
    try:
        tmp = scratch / target.name
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {what} to {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def export_json(arch: Architecture, path: str | os.PathLike[str]) -> Path:
    """Write the architecture as indented JSON (the format ``Architecture.load`` reads)."""
    text = arch.to_json(indent=2) + "\n"
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), "architecture JSON")
