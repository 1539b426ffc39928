"""Proxies by name: the registry's lookups, ``default``, ensembles, scoring batches and reference samples.

What :mod:`nas.proxies` exports. :func:`score` builds the net, draws a batch
when the proxy needs data and none is given, and places an ensemble's
members against a reference sample of the space. ``default`` stands for the
configuration written to ``nas/proxies/default.json`` (read once per
process). Imports torch only when a model is scored, and never the service.
"""

from __future__ import annotations

import hashlib
import json
import random
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas.errors import ProxyError
from nas.proxies.base import PROXIES, Candidate, Proxy
from nas.proxies.ensemble import Reference, is_ensemble, mode_of, parse_members
from searchspace.architecture import Architecture

if TYPE_CHECKING:
    import torch

    from nas.datasets import DataSpec

__all__ = [
    "DEFAULT_BATCH",
    "DEFAULT_FILE",
    "canonical",
    "default_batch",
    "default_proxy",
    "describe",
    "for_classes",
    "get_proxy",
    "list_proxies",
    "reference_archs",
    "reference_for",
    "resolve",
    "score",
    "score_members",
]

DEFAULT_FILE = Path(__file__).with_name("default.json")
DEFAULT_BATCH = 64


def _registry() -> Any:
    import nas.proxies.zero_cost  # noqa: F401 - registers the built-in proxies

    return PROXIES


def get_proxy(name: str) -> Proxy:
    """A registered (single) proxy by name; the built-in ones are registered on first use."""
    return _registry().get(name)


def list_proxies() -> list[str]:
    """Registered proxy names, plus ``default``."""
    return [*_registry().names(), "default"]


@lru_cache(maxsize=1)
def _default_record() -> dict[str, Any]:
    try:
        record = json.loads(DEFAULT_FILE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProxyError(
            f"proxy 'default': {DEFAULT_FILE} is missing (benchmarks/proxies.py --write-default writes it)"
        ) from None
    if not isinstance(record, dict) or not isinstance(record.get("proxy"), str):
        raise ProxyError(f"proxy 'default': {DEFAULT_FILE} must hold an object with a 'proxy' name")
    return record


def default_proxy() -> str:
    """The proxy (or ensemble) ``default`` stands for, and why is in ``nas/proxies/default.json``."""
    return str(_default_record()["proxy"])


def canonical(name: str) -> str:
    """``name`` with ``default`` replaced by what it stands for."""
    return default_proxy() if name == "default" else name


def resolve(name: str) -> tuple[str, ...]:
    """The registered proxies ``name`` needs: one, or an ensemble's members. Raises ProxyError if unknown."""
    if name == "default":
        name = default_proxy()
    reg = _registry()
    if is_ensemble(name):
        members = parse_members(name)
        for m in members:
            reg.get(m)
        return members
    reg.get(name)
    return (name,)


def describe(name: str) -> dict[str, Any]:
    if name == "default":
        return {
            "name": "default",
            "stands_for": default_proxy(),
            "definition": describe(default_proxy()),
            "why": _default_record(),
        }
    members = resolve(name)
    if len(members) == 1:
        return dict(_registry().get(name).describe())
    how = (
        "sum of the log normal-CDF of members' scores standardised against a reference sample of the space "
        "(AZ-NAS style rank combination)"
        if mode_of(name) == "rank"
        else "mean of members' scores standardised against a reference sample of the space"
    )
    return {"name": name, "members": [_registry().get(m).describe() for m in members], "combine": how}


@lru_cache(maxsize=16)
def _data_view(spec_json: str, resolution: int, channels: int) -> Any:
    from nas.datasets import DataSpec

    return DataSpec.model_validate_json(spec_json).view(resolution, channels)


def default_batch(
    arch: Architecture, data: DataSpec | None = None, size: int = DEFAULT_BATCH, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(inputs, labels, classes): ``size`` training images of ``data`` (default Fashion-MNIST) as ``arch`` sees them."""
    from nas.datasets import DataSpec

    spec = data or DataSpec()
    view = _data_view(spec.model_dump_json(), arch.resolution, arch.in_channels)
    x, y = view.sample(size, seed=seed)
    return x, y, view.num_classes


def for_classes(arch: Architecture, classes: int) -> Architecture:
    """``arch`` with its classifier sized to ``classes`` (the task decides the classifier, not the space)."""
    if arch.head.classes == classes:
        return arch
    return arch.model_copy(update={"head": arch.head.model_copy(update={"classes": classes})})


def _fingerprint(x: torch.Tensor | None, y: torch.Tensor | None) -> str:
    if x is None or y is None:
        return "none"
    h = hashlib.sha256()
    for t in (x, y):
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def score_members(members: tuple[str, ...], cand: Candidate) -> dict[str, float]:
    reg = _registry()
    return {m: reg.get(m).score(cand) for m in members}


_REFERENCES: dict[tuple[Any, ...], Reference] = {}


def _reference_space(arch: Architecture) -> Any:
    from searchspace.spec import list_spaces, load_space

    for name in list_spaces():
        space = load_space(name)
        if space.contains(arch):
            return space
    raise ProxyError("ensemble: the net lies in no built-in space; pass reference=<space> to place its scores")


def reference_archs(
    space: Any, resolution: int, classes: int | None, seed: int = 0, size: int = 32
) -> list[Architecture]:
    """The reference sample an ensemble standardises against: ``size`` seeded random nets of ``space``."""
    from searchspace.spec import load_space

    space = load_space(space) if isinstance(space, str) else space
    rng = random.Random(seed)
    archs = []
    for _ in range(size):
        a = space.sample(rng).model_copy(update={"resolution": resolution})
        archs.append(for_classes(a, classes) if classes is not None else a)
    return archs


def reference_for(
    members: tuple[str, ...], space: Any, resolution: int, cand: Candidate, size: int = 32, mode: str = "mean"
) -> Reference:
    """Members' scores over :func:`reference_archs` (cached per space, batch and seed)."""
    from searchspace.spec import load_space

    space = load_space(space) if isinstance(space, str) else space
    key = (
        space.name,
        repr(space.to_dict()),
        resolution,
        members,
        cand.seed,
        _fingerprint(cand.inputs, cand.targets),
        size,
        mode,
    )
    ref = _REFERENCES.get(key)
    if ref is None:
        scores: dict[str, list[float]] = {m: [] for m in members}
        for a in reference_archs(space, resolution, cand.arch.head.classes, cand.seed, size):
            for m, v in score_members(members, Candidate(a, cand.inputs, cand.targets, cand.seed, cand.device)).items():
                scores[m].append(v)
        ref = Reference.fit(
            scores, f"{size} random nets of {space.name} at {resolution}", "rank" if mode == "rank" else "mean"
        )
        _REFERENCES[key] = ref
    return ref


def score(
    name: str,
    arch: Architecture,
    batch: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
    *,
    data: DataSpec | None = None,
    reference: Any = None,
    device: str = "cpu",
) -> float:
    """The proxy ``name``'s score of ``arch`` (higher = better); the model is built here, seeded by ``seed``.

    A proxy that needs data and gets no ``batch`` draws 64 training images of
    ``data`` (Fashion-MNIST by default) at the net's resolution; the
    classifier is then sized to the data's classes. An ensemble places each
    member's score against ``reference`` (a space, default: the built-in
    space that holds ``arch``).
    """
    members = resolve(name)
    reg = _registry()
    needs_data = any(reg.get(m).needs_data for m in members)
    x = y = None
    if batch is not None:
        x, y = batch
        if x.dim() != 4 or x.shape[1:] != (arch.in_channels, arch.resolution, arch.resolution):
            raise ProxyError(
                f"batch: inputs must be N x {arch.in_channels} x {arch.resolution} x {arch.resolution} for this net, "
                f"got {tuple(x.shape)}"
            )
        if y.shape != (x.shape[0],):
            raise ProxyError(f"batch: labels must be one per input ({x.shape[0]}), got shape {tuple(y.shape)}")
        if int(y.max()) >= arch.head.classes:
            arch = for_classes(arch, int(y.max()) + 1)
    elif needs_data:
        x, y, classes = default_batch(arch, data, seed=seed)
        arch = for_classes(arch, classes)
    cand = Candidate(arch, x, y, seed, device)
    if len(members) == 1:
        return reg.get(members[0]).score(cand)
    space = reference if reference is not None else _reference_space(arch)
    ref = reference_for(members, space, arch.resolution, cand, mode=mode_of(canonical(name)))
    return ref.combine(score_members(members, cand))
