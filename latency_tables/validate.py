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

The result and its statistics are :mod:`latency_tables.validation_result`; the
reports kept beside the tables, :mod:`latency_tables.validation_reports` (both
importable from here too).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

import numpy as np

from latency_tables.errors import LatencyTableError
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import ProgressCallback, check_available, interleaved_timings, measurement_lock
from latency_tables.profiles import DeviceProfile
from latency_tables.validation_reports import REPORT_FORMAT, REPORT_VERSION, load_reports, report_path, save_report
from latency_tables.validation_result import TOLERANCES, NetRow, ValidationResult, compare, mape, within
from searchspace.architecture import Architecture
from searchspace.spec import SearchSpace

__all__ = [
    "REPORT_FORMAT",
    "REPORT_VERSION",
    "TOLERANCES",
    "NetRow",
    "ValidationResult",
    "compare",
    "load_reports",
    "mape",
    "measure_interleaved",
    "measure_twice",
    "report_path",
    "sample_archs",
    "save_report",
    "validate",
    "validation_rng",
    "within",
]


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
