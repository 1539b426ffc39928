"""Download formats of an architecture: what ``GET /api/v1/architectures/{arch_id}/download`` serves.

One call, :func:`render`, turns an :class:`~searchspace.architecture.Architecture`
into the bytes of one format (JSON, ONNX fp32, ONNX int8, a standalone PyTorch
file, or a markdown model card) plus the media type and file name the HTTP
response needs. The searchspace exporters do the real work (and verify their
output); :mod:`service.export_int8` adds the int8 quantization calibrated on
real images, :mod:`service.model_card` the model card, and this module a small
file cache so a second download of a heavy format is instant.

torch, onnx and onnxruntime are imported inside the functions: the API process
imports this module, and it must stay light until somebody downloads a net.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from searchspace.architecture import Architecture
from searchspace.errors import ExportError as _SearchspaceExportError
from service.export_common import ExportError, weights_seed
from service.export_common import default_dataset as _default_dataset
from service.export_int8 import (
    CALIBRATION_IMAGES,
    CALIBRATION_SEED,
    META_CALIBRATION,
    META_PRECISION,
    calibration_images,
    calibration_summary,
    quantize_int8,
)
from service.model_card import CardContext, model_card

if TYPE_CHECKING:
    from nas.datasets import DataSpec

__all__ = [
    "CALIBRATION_IMAGES",
    "CALIBRATION_SEED",
    "FORMATS",
    "META_CALIBRATION",
    "META_PRECISION",
    "CardContext",
    "Download",
    "ExportError",
    "cache_name",
    "calibration_images",
    "calibration_summary",
    "model_card",
    "quantize_int8",
    "render",
    "weights_seed",
]

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("json", "onnx", "onnx-int8", "pytorch", "card")

_MEDIA_TYPES = {
    "json": "application/json",
    "onnx": "application/octet-stream",
    "onnx-int8": "application/octet-stream",
    "pytorch": "text/x-python; charset=utf-8",
    "card": "text/markdown; charset=utf-8",
}
_SUFFIXES = {"json": ".json", "onnx": ".onnx", "onnx-int8": "-int8.onnx", "pytorch": ".py", "card": "-card.md"}


@dataclass(frozen=True)
class Download:
    """One rendered download: the bytes, and what the HTTP response needs to serve them."""

    content: bytes
    media_type: str
    filename: str


def render(
    arch: Architecture,
    fmt: str,
    *,
    cache_dir: Path | None = None,
    dataset: DataSpec | None = None,
    card: CardContext | None = None,
) -> Download:
    """``arch`` in download format ``fmt`` (one of :data:`FORMATS`).

    ``cache_dir``: rendered bytes are kept there as ``<arch_id>.<fmt>`` (int8:
    ``<arch_id>.onnx-int8-<dataset hash>``) and served from there next time;
    the card is never cached, its context changes. ``dataset``: what the int8
    graph is calibrated on (default: fashion-mnist). ``card``: the job context
    the model card reports. Raises :class:`ExportError`.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format: {fmt!r} is not a download format; expected one of {', '.join(FORMATS)}")
    if fmt == "card":
        content = model_card(arch, card, dataset).encode("utf-8")
    else:
        content = _cached_bytes(arch, fmt, cache_dir, dataset)
    return Download(content=content, media_type=_MEDIA_TYPES[fmt], filename=f"{arch.arch_id}{_SUFFIXES[fmt]}")


# ---------------------------------------------------------------------- cache
def _dataset_key(dataset: DataSpec) -> str:
    """Short hash of the dataset spec and the calibration settings: a new dataset means a new int8 file."""
    text = f"{dataset.model_dump_json()}|n={CALIBRATION_IMAGES}|seed={CALIBRATION_SEED}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def cache_name(arch: Architecture, fmt: str, dataset: DataSpec | None = None) -> str:
    """File name of ``fmt``'s cache entry (int8 entries also depend on the calibration dataset)."""
    if fmt == "onnx-int8":
        return f"{arch.arch_id}.onnx-int8-{_dataset_key(dataset or _default_dataset())}"
    return f"{arch.arch_id}.{fmt}"


def _cached_bytes(arch: Architecture, fmt: str, cache_dir: Path | None, dataset: DataSpec | None) -> bytes:
    """The cache entry if there is one, else render and store it (a cache that cannot be written is only logged)."""
    path = Path(cache_dir) / cache_name(arch, fmt, dataset) if cache_dir is not None else None
    if path is not None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read export cache %s (%s); rendering again", path, exc)
    content = _render_bytes(arch, fmt, cache_dir, dataset)
    if path is not None:
        _store(path, content)
    return content


def _store(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` atomically (temp file + os.replace): readers never see half a file."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        log.warning("cannot write export cache %s: %s", path, exc)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------- formats
def _render_bytes(arch: Architecture, fmt: str, cache_dir: Path | None, dataset: DataSpec | None) -> bytes:
    from searchspace import export

    if fmt == "json":
        return _via_file(arch, export.export_json, "json")
    if fmt == "onnx":
        import torch

        # export_onnx builds the net with torch's global RNG: seed it from the arch_id (in a forked RNG state)
        # so a download is reproducible and the int8 file, made from a separate export, has the same weights
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(weights_seed(arch))
            return _via_file(arch, export.export_onnx, "onnx")
    if fmt == "pytorch":
        return _via_file(arch, export.export_pytorch, "py")
    if fmt == "onnx-int8":
        # the fp32 graph goes through the cache too: an int8 download after an fp32 one skips the export
        fp32 = _cached_bytes(arch, "onnx", cache_dir, None)
        return quantize_int8(arch, fp32, dataset or _default_dataset())
    raise AssertionError(f"no renderer for {fmt}")  # FORMATS and this function disagree


def _via_file(arch: Architecture, exporter: Callable[..., Path], suffix: str) -> bytes:
    """Run a searchspace exporter (they write verified files atomically) into a scratch dir; its bytes."""
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        try:
            path = exporter(arch, Path(tmp) / f"{arch.arch_id}.{suffix}")
        except _SearchspaceExportError as exc:
            raise ExportError(str(exc)) from exc
        return Path(path).read_bytes()
