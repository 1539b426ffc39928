"""How good is a table? Predicted vs measured latency of random nets, next to the measurement's own noise.

On a shared machine one end-to-end measurement of a sub-millisecond net is
itself good to only about +-10%, so a prediction error means nothing without
the noise measured the same way. Every net is therefore measured twice, in
two independent interleaved passes, and measurement 2 vs measurement 1 is
reported with the same statistics as prediction vs measurement 1: a
prediction cannot be expected to agree with a measurement better than a
second measurement does.

Validation nets come from a seed stream of their own
(``hwnas-validate:<space>:<seed>``, calibration uses ``hwnas-calibrate:...``)
and nets the table was calibrated on are skipped, so the numbers are
out-of-sample.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from latency_tables.errors import LatencyTableError
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import ProgressCallback, check_available, interleaved_timings, measurement_lock
from latency_tables.profiles import DeviceProfile
from latency_tables.stats import kendall_tau_b, spearman
from searchspace.architecture import Architecture
from searchspace.spec import SearchSpace

#: relative tolerances reported as "% within"
TOLERANCES = (0.05, 0.10)


# ------------------------------------------------------------------ metrics
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


# ----------------------------------------------------------------- sampling
def validation_rng(space_name: str, seed: int) -> random.Random:
    """The validation seed stream (calibration's is ``hwnas-calibrate:...``: the two never share nets by seed)."""
    return random.Random(f"hwnas-validate:{space_name}:{seed}")


def sample_archs(space: SearchSpace, n: int, seed: int = 0, exclude: set[str] | None = None) -> list[Architecture]:
    """``n`` distinct random nets of ``space`` at its default resolution, none of them in ``exclude`` (codes)."""
    rng = validation_rng(space.name, seed)
    exclude = exclude or set()
    seen: set[str] = set()
    out: list[Architecture] = []
    attempts = 0
    while len(out) < n:
        attempts += 1
        if attempts > 1000 * n + 1000:
            raise LatencyTableError(
                f"space {space.name}: found only {len(out)} distinct nets at resolution {space.resolution} that the "
                f"table was not calibrated on; ask for fewer than {n} samples"
            )
        arch = space.sample(rng)
        if arch.resolution != space.resolution:
            continue
        code = arch.encode()
        if code in seen or code in exclude:
            continue
        seen.add(code)
        out.append(arch)
    return out


# -------------------------------------------------------------- measurement
def measure_interleaved(
    archs: Sequence[Architecture],
    profile: DeviceProfile,
    rounds: int = 3,
    progress: ProgressCallback | None = None,
    label: str = "",
    done: int = 0,
    total: int | None = None,
) -> np.ndarray:
    """Median latency (ms) of every net: least-disturbed of ``rounds`` interleaved rounds (caller holds the lock)."""
    timings = interleaved_timings(archs, profile, rounds, progress, label, done, total)
    return np.asarray([t.median_ms for t in timings])


def measure_twice(
    archs: Sequence[Architecture],
    profile: DeviceProfile,
    rounds: int = 3,
    progress: ProgressCallback | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Two independent interleaved passes over ``archs`` (each in its own seeded order), under one lock hold."""
    check_available(profile)
    total = 2 * rounds * len(archs)
    passes = []
    with measurement_lock():
        for k in range(2):
            order = list(range(len(archs)))
            random.Random(f"hwnas-validate-order:{seed}:{k}").shuffle(order)
            got = measure_interleaved(
                [archs[i] for i in order],
                profile,
                rounds,
                progress,
                f"pass {k + 1}/2 ",
                done=k * rounds * len(archs),
                total=total,
            )
            result = np.empty(len(archs))
            result[order] = got
            passes.append(result)
    if progress:
        progress(total, total, "")
    return passes[0], passes[1]


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


# --------------------------------------------------------------- validation
def validate(
    predictor: LatencyPredictor,
    space: SearchSpace,
    samples: int,
    seed: int = 0,
    rounds: int = 3,
    progress: ProgressCallback | None = None,
) -> ValidationResult:
    """Predict ``samples`` random nets of ``space`` and measure each twice on this host.

    Layers the table lacks are measured on demand by the predictor. The nets
    are measured here, so only a table of this host's kind can be validated
    here: another host's table is refused rather than compared with this one.
    """
    if samples < 1:
        raise LatencyTableError(f"validate: samples must be at least 1, got {samples}")
    if rounds < 1:
        raise LatencyTableError(f"validate: rounds must be at least 1, got {rounds}")
    table = predictor.table
    predictor.space = space.name  # its own calibration where the table has one
    if not predictor.same_host:
        raise LatencyTableError(f"validate: {predictor.host_warning}; validate it on that host")
    check_available(table.profile)
    archs = sample_archs(space, samples, seed, exclude={n.arch for n in table.networks})

    entries_before = len(table.entries)
    start = time.perf_counter()
    predicted = predictor.predict_many(archs)  # measures missing layers, so it is the cold call
    first_predict_s = time.perf_counter() - start
    raw, _, _ = predictor.features(archs)
    estimated = predictor.estimated_mask(archs)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 0.2:
        predictor.predict_many(archs)
        calls += 1
    predict_us = (time.perf_counter() - start) / (calls * len(archs)) * 1e6

    start = time.perf_counter()
    m1, m2 = measure_twice(archs, table.profile, rounds, progress, seed)
    measure_s = time.perf_counter() - start
    rows = [
        NetRow(
            arch_id=a.arch_id,
            arch=a.encode(),
            predicted_ms=float(p),
            raw_ms=float(r),
            measured1_ms=float(x),
            measured2_ms=float(y),
            estimated=bool(e),
        )
        for a, p, r, x, y, e in zip(archs, predicted, raw, m1, m2, estimated, strict=True)
    ]
    return ValidationResult(
        profile=table.profile.id,
        table=table.name,
        space=space.name,
        resolution=space.resolution,
        seed=seed,
        rounds=rounds,
        calibration=predictor.calibration.model,
        rows=rows,
        predict_us_per_net=predict_us,
        first_predict_s=first_predict_s,
        layers_measured=len(table.entries) - entries_before,
        measure_s=measure_s,
    )


# ------------------------------------------------------------ reports kept beside the tables
REPORT_FORMAT = "hwnas.validation-report"
REPORT_VERSION = 1


def report_path(table_name: str, space: str, folder: Path | None = None) -> Path:
    """``<folder>/<table name>.validation/<space>.json``: a table's validation on one space, next to the table."""
    from latency_tables.table import user_table_dir

    return (folder or user_table_dir()) / f"{table_name}.validation" / f"{space}.json"


def save_report(result: dict[str, Any], folder: Path | None = None) -> Path:
    """Keep a validation (``ValidationResult.as_dict()``, plus ``measured_on``) where the service finds it.

    Nets keep their id and timings, not their string form, so a report stays small.
    """
    import json
    import os

    data = {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        **{k: v for k, v in result.items() if k not in ("nets", "plot")},
        "nets": [{k: v for k, v in net.items() if k != "arch"} for net in result.get("nets", [])],
    }
    path = report_path(str(result["table"]), str(result["space"]), folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)
    return path


def load_reports(table_name: str) -> list[dict[str, Any]]:
    """Every space's newest validation report of a table: the user's own (run on this host) before shipped ones."""
    import json

    from latency_tables.table import table_dirs

    found: dict[str, dict[str, Any]] = {}
    for folder in table_dirs():
        for path in sorted((folder / f"{table_name}.validation").glob("*.json")):
            data = json.loads(path.read_text())
            if data.get("format") != REPORT_FORMAT or data.get("version") != REPORT_VERSION:
                raise LatencyTableError(
                    f"{path}: not a validation report of version {REPORT_VERSION}; run "
                    f"`hwnas lut validate` again to rewrite it"
                )
            found.setdefault(str(data["space"]), data | {"path": str(path)})
    return [found[s] for s in sorted(found)]
