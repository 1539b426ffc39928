"""Download formats of an architecture: what ``GET /api/v1/architectures/{arch_id}/download`` serves.

One call, :func:`render`, turns an :class:`~searchspace.architecture.Architecture`
into the bytes of one format (JSON, ONNX fp32, ONNX int8, a standalone PyTorch
file, or a markdown model card) plus the media type and file name the HTTP
response needs. The searchspace exporters do the real work (and verify their
output); this module adds the int8 quantization calibrated on real images, the
model card, and a small file cache so a second download of a heavy format is
instant.

torch, onnx and onnxruntime are imported inside the functions: the API process
imports this module, and it must stay light until somebody downloads a net.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture
from searchspace.blocks import get_block_type
from searchspace.cost import count_cost
from searchspace.errors import ExportError as _SearchspaceExportError
from service.units import human

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from nas.datasets import DataSpec

__all__ = [
    "CALIBRATION_IMAGES",
    "FORMATS",
    "CardContext",
    "Download",
    "ExportError",
    "cache_name",
    "model_card",
    "render",
]

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("json", "onnx", "onnx-int8", "pytorch", "card")

#: Images of the job's dataset the int8 graph is calibrated on (part of the cache key).
CALIBRATION_IMAGES = 32
#: Seed that picks the calibration images (part of the cache key).
CALIBRATION_SEED = 0

_MEDIA_TYPES = {
    "json": "application/json",
    "onnx": "application/octet-stream",
    "onnx-int8": "application/octet-stream",
    "pytorch": "text/x-python; charset=utf-8",
    "card": "text/markdown; charset=utf-8",
}
_SUFFIXES = {"json": ".json", "onnx": ".onnx", "onnx-int8": "-int8.onnx", "pytorch": ".py", "card": "-card.md"}

META_CALIBRATION = "hwnas.calibration"
META_PRECISION = "hwnas.precision"


class ExportError(_SearchspaceExportError):
    """A download cannot be made: bad format (the message names ``format``), bad dataset, or a failed export.

    A subclass of searchspace's ExportError (so a ValueError), so one ``except`` catches both layers.
    """


@dataclass(frozen=True)
class CardContext:
    """What the model card says besides the net itself; every field is optional and omitted when empty."""

    job_id: str | None = None
    job_name: str | None = None
    space: str | None = None
    objectives: list[dict[str, str]] = field(default_factory=list)  # [{"metric": ..., "direction": ...}]
    proxy: str | None = None  # e.g. "proxy:default -> macs"
    dataset: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)  # the trial's metrics
    # [{"profile": id, "latency_ms": float, "table": str, "host": str, "measured": bool}]
    latencies: list[dict[str, Any]] = field(default_factory=list)


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
def _default_dataset() -> DataSpec:
    from nas.datasets import DataSpec

    return DataSpec()


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


def weights_seed(arch: Architecture) -> int:
    """The torch seed the ONNX downloads' reference-init weights are drawn with (from the arch_id)."""
    return int(arch.arch_id[:8], 16)


def _via_file(arch: Architecture, exporter: Callable[..., Path], suffix: str) -> bytes:
    """Run a searchspace exporter (they write verified files atomically) into a scratch dir; its bytes."""
    with tempfile.TemporaryDirectory(prefix="hwnas-export-") as tmp:
        try:
            path = exporter(arch, Path(tmp) / f"{arch.arch_id}.{suffix}")
        except _SearchspaceExportError as exc:
            raise ExportError(str(exc)) from exc
        return Path(path).read_bytes()


# ------------------------------------------------------------------------ int8
def calibration_images(arch: Architecture, dataset: DataSpec) -> tuple[np.ndarray, dict[str, Any]]:
    """The calibration batch (N, C, R, R float32, as the search fed the net) and a record of where it came from."""
    import numpy as np

    from nas.errors import DatasetError

    try:
        view = dataset.view(arch.resolution, arch.in_channels)
        x, _ = view.sample(CALIBRATION_IMAGES, seed=CALIBRATION_SEED, split="train")
    except DatasetError as exc:
        raise ExportError(f"dataset: cannot calibrate int8 on {dataset.name!r}: {exc}") from exc
    record = {
        "dataset": dataset.model_dump(mode="json"),
        "images": CALIBRATION_IMAGES,
        "split": "train",
        "seed": CALIBRATION_SEED,
        "input": [arch.in_channels, arch.resolution, arch.resolution],
        "fit": view.mode,
        "mean": [float(v) for v in view.mean],
        "std": [float(v) for v in view.std],
    }
    return np.ascontiguousarray(x.numpy(), dtype=np.float32), record


def quantize_int8(arch: Architecture, fp32: bytes, dataset: DataSpec) -> bytes:
    """Static QDQ int8 of the fp32 ONNX graph, calibrated on real images of ``dataset``.

    Made as :func:`latency_tables.runtimes.ort_runtime.quantize_int8` makes the
    graphs of the int8 latency profiles (``quant_pre_process``, then
    ``quantize_static``, QDQ, per-channel int8 weights, uint8 activations),
    so the measured int8 latency is this file's; only the calibration differs:
    real images instead of random ones, since the scales decide accuracy. The
    result must load in onnxruntime and run one calibration image.
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    x, record = calibration_images(arch, dataset)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter([{"input": x[i : i + 1]} for i in range(len(x))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="hwnas-int8-") as tmp:
        src, pre, out = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            quantize_static(
                str(pre),
                str(out),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
            )
            proto = onnx.load(str(out))
        except Exception as exc:  # onnxruntime's tooling raises whatever it raises
            raise ExportError(f"int8 quantization of architecture {arch.arch_id} failed: {exc}") from exc
    _drop_unused_opsets(proto)
    _set_metadata(proto, fp32, record)
    content = proto.SerializeToString()
    _check_runs(arch, content, x[:1])
    return content


def _drop_unused_opsets(proto: onnx.ModelProto) -> None:
    """The quantizer declares opsets no node uses; an older device runtime may reject them."""
    used = {node.domain for node in proto.graph.node} | {""}
    keep = [op for op in proto.opset_import if op.domain in used]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)


def _set_metadata(proto: onnx.ModelProto, fp32: bytes, calibration: dict[str, Any]) -> None:
    """Carry the fp32 file's hwnas metadata over (the quantizer drops it) and add how it was calibrated."""
    import onnx

    source = onnx.load_from_string(fp32)
    props = {p.key: p.value for p in source.metadata_props}
    props[META_PRECISION] = "int8"
    props[META_CALIBRATION] = json.dumps(calibration, sort_keys=True)
    onnx.helper.set_model_props(proto, props)


def _check_runs(arch: Architecture, content: bytes, x: np.ndarray) -> None:
    """Raise ExportError unless onnxruntime loads the int8 graph and returns finite logits of the right shape."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])
        (logits,) = session.run(["logits"], {"input": x})
    except Exception as exc:  # ort raises its own exception types
        raise ExportError(f"onnxruntime cannot run the int8 model of architecture {arch.arch_id}: {exc}") from exc
    want = (x.shape[0], arch.head.classes)
    if logits.shape != want or not np.all(np.isfinite(logits)):
        raise ExportError(
            f"the int8 model of architecture {arch.arch_id} returns logits of shape {logits.shape} "
            f"(expected {want}){'' if np.all(np.isfinite(logits)) else ' with NaN or inf'}"
        )


def calibration_summary(arch: Architecture, dataset: DataSpec | None) -> str:
    """One sentence on what the int8 file is calibrated on (no dataset is loaded to say it)."""
    spec = dataset or _default_dataset()
    where = f" at {spec.path}" if spec.path else ""
    options = ", ".join(f"{k}={v}" for k, v in sorted(spec.options.items()))
    return (
        f"{CALIBRATION_IMAGES} images of the train split of `{spec.name}`{where}"
        f"{f' ({options})' if options else ''}, drawn with seed {CALIBRATION_SEED}, "
        f"presented at {arch.in_channels}x{arch.resolution}x{arch.resolution} (fit {spec.fit}) "
        "and normalised with the training set's per-channel mean and std, as during the search"
    )


# ------------------------------------------------------------------------ card
def _cell(value: object) -> str:
    """A markdown table cell: pipes escaped, one line."""
    return str(value).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _inline(value: object) -> str:
    """Free text from the job (names, ids) on one markdown line."""
    return " ".join(str(value).split())


def _md_table(headers: list[str], rows: list[list[object]], right: set[int] | None = None) -> str:
    right = right or set()
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value: object) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def _block_rows(arch: Architecture) -> list[list[object]]:
    """One row per layer (stem, blocks, head), the columns of ``hwnas describe``."""
    rows: list[list[object]] = []
    for lc in count_cost(arch).layers:
        b = lc.block
        if b is None:
            h = arch.head
            desc = "pool" + (f", conv1x1 {h.conv}" if h.conv else "") + (f", fc {h.hidden}" if h.hidden else "")
            desc += f", fc {h.classes}"
            rows.append(
                [
                    lc.name,
                    "head",
                    desc,
                    "",
                    "",
                    "",
                    "",
                    h.act or "",
                    f"{lc.input_size}->1",
                    f"{lc.params:,}",
                    f"{lc.macs:,}",
                    f"{lc.activations:,}",
                ]
            )
            continue
        kind = get_block_type(b.type)
        t = f"{b.t:.3g}" if kind.expands else ""
        rows.append(
            [
                lc.name,
                b.type,
                f"{b.cin}->{b.cout}",
                b.stride,
                b.k if "k" in kind.uses else "",
                t,
                b.se or "",
                b.act or "",
                f"{lc.input_size}->{lc.output_size}",
                f"{lc.params:,}",
                f"{lc.macs:,}",
                f"{lc.activations:,}",
            ]
        )
    return rows


def _provenance(ctx: CardContext) -> list[str]:
    lines = []
    if ctx.job_id or ctx.job_name:
        name = _inline(ctx.job_name) if ctx.job_name else ""
        ident = f"`{_inline(ctx.job_id)}`" if ctx.job_id else ""
        lines.append(f"- Job: {name} ({ident})" if name and ident else f"- Job: {name or ident}")
    if ctx.space:
        lines.append(f"- Search space: `{_inline(ctx.space)}`")
    if ctx.objectives:
        objs = ", ".join(
            f"{_inline(o.get('direction', '?'))} `{_inline(o.get('metric', '?'))}`"
            for o in ctx.objectives
            if isinstance(o, dict) and o
        )
        if objs:
            lines.append(f"- Objectives: {objs}")
    if ctx.proxy:
        lines.append(f"- Accuracy proxy: `{_inline(ctx.proxy)}`")
    if ctx.dataset:
        lines.append(f"- Dataset: {_inline(ctx.dataset)}")
    if ctx.metrics:
        rows: list[list[object]] = [[k, _number(v)] for k, v in ctx.metrics.items()]
        lines += [*([""] if lines else []), "Metrics of the trial:", "", _md_table(["metric", "value"], rows, {1})]
    return ["## Where it comes from", "", *lines] if lines else []


def _latency_section(latencies: list[dict[str, Any]]) -> list[str]:
    rows: list[list[object]] = []
    for entry in latencies:
        if not isinstance(entry, dict):
            continue
        ms = entry.get("latency_ms")
        measured = entry.get("measured")
        source = "measured" if measured else ("predicted" if measured is not None else "")
        rows.append(
            [
                entry.get("profile", ""),
                f"{ms:.3f}" if isinstance(ms, int | float) else "n/a",
                source,
                entry.get("table") or "",
                entry.get("host") or "",
            ]
        )
    if not rows:
        return []
    return [
        "## Latency",
        "",
        "Per device profile, batch 1. *measured*: the whole net was timed on the host; *predicted*: the sum of "
        "its layers' entries in the latency table, with the table's calibration.",
        "",
        _md_table(["profile", "latency (ms)", "source", "table", "host"], rows, {1}),
    ]


def _usage(arch: Architecture, dataset: DataSpec | None) -> list[str]:
    i = arch.arch_id
    shape = f"(1, {arch.in_channels}, {arch.resolution}, {arch.resolution})"
    return [
        "## Downloads and how to load them",
        "",
        f'- `json` (`{i}.json`): the architecture itself; `Architecture.load("{i}.json")` in hwnas, '
        "or `hwnas describe` / `hwnas export` on it.",
        f"- `pytorch` (`{i}.py`): one self-contained file that needs only PyTorch; its module names (and "
        "`state_dict` keys) are hwnas', so trained weights load directly:",
        "",
        "  ```python",
        "  import importlib.util",
        f'  spec = importlib.util.spec_from_file_location("net", "{i}.py")',
        "  net = importlib.util.module_from_spec(spec); spec.loader.exec_module(net)",
        "  model = net.build_model().eval()",
        "  ```",
        "",
        f"- `onnx` (`{i}.onnx`): opset 17, BatchNorm folded, static input {shape} named `input`, output "
        "`logits`; checked against PyTorch in onnxruntime when exported:",
        "",
        "  ```python",
        "  import onnxruntime as ort",
        f'  session = ort.InferenceSession("{i}.onnx", providers=["CPUExecutionProvider"])',
        '  logits = session.run(["logits"], {"input": x})[0]  # x: float32 ' + shape,
        "  ```",
        "",
        f"- `onnx-int8` (`{i}-int8.onnx`): the same graph, static QDQ int8 (per-channel int8 weights, uint8 "
        "activations) made with onnxruntime's `quant_pre_process` + `quantize_static`, loaded like the fp32 file. "
        f"Calibrated on {calibration_summary(arch, dataset)}; the file's `{META_CALIBRATION}` metadata holds the "
        "dataset, the mean and the std, which inputs must be normalised with.",
    ]


def model_card(arch: Architecture, ctx: CardContext | None = None, dataset: DataSpec | None = None) -> str:
    """A markdown model card of ``arch``: shape, cost, latency, provenance, how to load it, limits.

    Missing context never fails the card: a section without data is left out.
    """
    ctx = ctx or CardContext()
    cost = count_cost(arch)
    lines = [
        f"# hwnas model card: {arch.arch_id}",
        "",
        f"A {len(arch.blocks)}-block convolutional net for {arch.in_channels}x{arch.resolution}x{arch.resolution} "
        f"inputs and {arch.head.classes} classes, found by hwnas.",
        "",
        f"- arch_id: `{arch.arch_id}`",
        f"- String form: `{arch.encode()}`",
        "",
        "## Blocks",
        "",
        _md_table(
            [
                "layer",
                "type",
                "channels",
                "stride",
                "k",
                "t",
                "SE hidden",
                "act",
                "size",
                "params",
                "MACs",
                "activations",
            ],
            _block_rows(arch),
            {3, 4, 5, 6, 9, 10, 11},
        ),
        "",
        "## Totals",
        "",
        f"- Parameters: {cost.params:,} ({human(cost.params)})",
        f"- MACs: {cost.macs:,} ({human(cost.macs)}) at batch 1",
        f"- Peak activations: {cost.activations:,} elements ({cost.activation_bytes / 2**20:.2f} MiB fp32)",
    ]
    for section in (_latency_section(ctx.latencies), _provenance(ctx)):
        if section:
            lines += ["", *section]
    lines += ["", *_usage(arch, dataset)]
    lines += [
        "",
        "## Limitations",
        "",
        "- The ONNX files carry the reference initialisation (drawn with `torch.manual_seed("
        f"{weights_seed(arch)})`), not trained weights: train the net before using it.",
        "- Accuracy proxy scores rank candidates cheaply; they are not trained accuracy. Train and evaluate on "
        "your data before choosing.",
        "- Latencies hold for the listed profile and host; predicted values come from per-layer tables and can "
        "be off for other hosts, runtimes or batch sizes.",
    ]
    return "\n".join(lines) + "\n"
