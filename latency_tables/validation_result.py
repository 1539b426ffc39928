"""A validation's result: predicted vs measured latency of the same nets, with the statistics reported for both.

Every comparison gets the same statistics (within +-5% and +-10%, MAPE,
Spearman, Kendall tau-b): the prediction against measurement 1, the raw sum
against it, and measurement 2 against it (the noise a prediction cannot beat).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables.stats import kendall_tau_b, spearman

#: relative tolerances reported as "% within"
TOLERANCES = (0.05, 0.10)


def within(pred: Sequence[float] | np.ndarray, ref: Sequence[float] | np.ndarray, tol: float) -> float:
    """Fraction of ``pred`` within ``tol`` (relative, e.g. 0.1) of ``ref``; nan for no values."""
    p, r = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    if len(p) == 0:
        return math.nan
    # a small epsilon so that exactly 10% off counts as within 10% despite rounding
    return float(np.mean(np.abs(p - r) <= tol * np.abs(r) * (1 + 1e-12)))


def mape(pred: Sequence[float] | np.ndarray, ref: Sequence[float] | np.ndarray) -> float:
    """Mean absolute percentage error of ``pred`` against ``ref``, as a fraction."""
    p, r = np.asarray(pred, dtype=float), np.asarray(ref, dtype=float)
    return float(np.mean(np.abs(p - r) / np.abs(r))) if len(p) else math.nan


def compare(pred: Sequence[float] | np.ndarray, ref: Sequence[float] | np.ndarray) -> dict[str, float | None]:
    """The statistics reported for every comparison (percentages in percent; None where undefined)."""
    out: dict[str, float] = {f"within_{round(100 * t)}_pct": 100 * within(pred, ref, t) for t in TOLERANCES}
    out["mape_pct"] = 100 * mape(pred, ref)
    out["spearman"] = spearman(pred, ref)
    out["kendall"] = kendall_tau_b(pred, ref)
    return {k: None if math.isnan(v) else v for k, v in out.items()}


# ------------------------------------------------------------------- result
@dataclass(frozen=True)
class NetRow:
    arch_id: str
    arch: str
    predicted_ms: float
    raw_ms: float
    measured1_ms: float
    measured2_ms: float
    estimated: bool = False


@dataclass
class ValidationResult:
    """Predictions and two independent measurements of the same nets, with their statistics."""

    profile: str
    table: str
    space: str
    resolution: int
    seed: int
    rounds: int
    calibration: str
    rows: list[NetRow]
    predict_us_per_net: float
    first_predict_s: float
    layers_measured: int
    measure_s: float
    metrics: dict[str, dict[str, float | None]] = field(init=False)

    def __post_init__(self) -> None:
        pred, raw, m1, m2 = (
            np.asarray([getattr(r, f) for r in self.rows])
            for f in ("predicted_ms", "raw_ms", "measured1_ms", "measured2_ms")
        )
        self.metrics = {"predicted": compare(pred, m1), "raw": compare(raw, m1), "noise": compare(m2, m1)}

    @property
    def samples(self) -> int:
        return len(self.rows)

    def as_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "table": self.table,
            "space": self.space,
            "resolution": self.resolution,
            "samples": self.samples,
            "seed": self.seed,
            "rounds": self.rounds,
            "calibration": self.calibration,
            "metrics": self.metrics,
            "predict_us_per_net": self.predict_us_per_net,
            "first_predict_s": self.first_predict_s,
            "layers_measured": self.layers_measured,
            "measure_s": self.measure_s,
            "nets": [
                {
                    "arch_id": r.arch_id,
                    "arch": r.arch,
                    "predicted_ms": r.predicted_ms,
                    "raw_ms": r.raw_ms,
                    "measured1_ms": r.measured1_ms,
                    "measured2_ms": r.measured2_ms,
                    "estimated": r.estimated,
                }
                for r in self.rows
            ],
        }

    def metric_rows(self) -> list[list[str]]:
        """[statistic, prediction, raw sum, noise] rows: the prediction's error next to the measurement's own."""

        def fmt(key: str, value: float | None) -> str:
            if value is None:
                return "-"
            return f"{value:.1f}%" if key.endswith("_pct") else f"{value:.3f}"

        names = {
            "within_5_pct": "within +-5%",
            "within_10_pct": "within +-10%",
            "mape_pct": "MAPE",
            "spearman": "Spearman",
            "kendall": "Kendall tau-b",
        }
        return [
            [label] + [fmt(key, self.metrics[c][key]) for c in ("predicted", "raw", "noise")]
            for key, label in names.items()
        ]

    def title(self) -> str:
        p, n = self.metrics["predicted"], self.metrics["noise"]

        def pct(v: float | None) -> str:
            return "-" if v is None else f"{v:.0f}%"

        rho = "-" if p["spearman"] is None else f"{p['spearman']:.3f}"
        return (
            f"{self.profile} / {self.space}: N={self.samples}, within ±10% {pct(p['within_10_pct'])} "
            f"(noise {pct(n['within_10_pct'])}), Spearman {rho}"
        )

    def save_plot(self, path: str | Path) -> Path:
        """Predicted vs measured (log-log) with y = x and a +-10% band; measurement 2 vs 1 shows the noise."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.ticker import FuncFormatter

        m1 = np.asarray([r.measured1_ms for r in self.rows])
        series: list[tuple[str, np.ndarray, dict[str, Any]]] = [
            ("raw sum", np.asarray([r.raw_ms for r in self.rows]), {"marker": "x", "color": "0.6", "s": 14}),
            (
                "measurement 2 (noise)",
                np.asarray([r.measured2_ms for r in self.rows]),
                {"marker": "^", "facecolors": "none", "edgecolors": "tab:orange", "s": 22},
            ),
            (
                "predicted",
                np.asarray([r.predicted_ms for r in self.rows]),
                {"marker": "o", "color": "tab:blue", "s": 16},
            ),
        ]
        values = np.concatenate([m1] + [v for _, v, _ in series])
        values = values[np.isfinite(values) & (values > 0)]
        lo, hi = (float(values.min()) / 1.3, float(values.max()) * 1.3) if len(values) else (0.1, 10.0)
        fig = Figure(figsize=(6.4, 6.0), dpi=110)
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.set_xscale("log")
        ax.set_yscale("log")
        line = np.geomspace(lo, hi, 64)
        ax.fill_between(line, line / 1.1, line * 1.1, color="0.88", label="±10%", zorder=0)
        ax.plot(line, line, color="black", linewidth=0.8, label="y = x", zorder=1)
        for label, y, style in series:
            ax.scatter(m1, y, label=label, zorder=2, **style)
        ticks = FuncFormatter(_tick_label)
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(ticks)
            axis.set_minor_formatter(ticks)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("measured latency, pass 1 (ms)")
        ax.set_ylabel("predicted / measured again (ms)")
        ax.set_title(self.title(), fontsize=9)
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="upper left", fontsize=8)
        fig.tight_layout()
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
        return out


def _tick_label(value: float, _pos: object = None) -> str:
    """Plain numbers on log axes, only at 1, 2 and 5 times a power of ten (not 10^0 or every minor tick)."""
    if value <= 0:
        return ""
    mantissa = round(value / 10 ** math.floor(math.log10(value) + 1e-9), 6)
    return f"{value:g}" if mantissa in (1.0, 2.0, 5.0) else ""
