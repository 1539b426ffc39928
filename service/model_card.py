"""The ``card`` download: a markdown model card of an architecture (shape, cost, latency, provenance, usage, limits).

Never cached (its context changes) and never fails on missing context: a section without data is left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from searchspace.architecture import Architecture
from searchspace.cost import count_cost
from service.export_common import weights_seed
from service.export_int8 import META_CALIBRATION, calibration_summary
from service.layer_table import layer_rows
from service.units import human

if TYPE_CHECKING:
    from nas.datasets import DataSpec

__all__ = ["CardContext", "model_card"]


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
    """One row per layer (stem, blocks, head), the columns of ``hwnas describe`` (SE: its hidden width)."""
    return [row for _, row in layer_rows(arch, se="hidden", full_head=True)]


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
