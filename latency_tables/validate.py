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

``hwnas lut validate --against shipped`` measures the same way how far the
table hwnas ships is from this host (:func:`validate_tables` with
``foreign_ok``), next to this host's own table on the same measured nets.

The result and its statistics are :mod:`latency_tables.validation_result`; the
reports kept beside the tables, :mod:`latency_tables.validation_reports` (both
importable from here too).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latency_tables.errors import LatencyTableError
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import ProgressCallback, check_available, interleaved_timings, measurement_lock
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.table import LatencyTable, table_files
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
    "host_table",
    "load_reports",
    "mape",
    "measure_interleaved",
    "measure_twice",
    "report_path",
    "sample_archs",
    "save_report",
    "shipped_table",
    "validate",
    "validate_tables",
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
    return validate_tables([predictor], space, samples, seed, rounds, progress)[0]


def validate_tables(
    predictors: Sequence[LatencyPredictor],
    space: SearchSpace,
    samples: int,
    seed: int = 0,
    rounds: int = 3,
    progress: ProgressCallback | None = None,
    *,
    foreign_ok: bool = False,
) -> list[ValidationResult]:
    """:func:`validate` for several tables of one profile at once: each predicts the same nets, which are
    measured twice on this host once for all of them (the measuring is what takes the time).

    The nets are sampled apart from every table's calibration nets. ``foreign_ok`` accepts tables of another
    host (``hwnas lut validate --against shipped``: how far the shipped table is from this host); their
    missing layers are never measured into them: a predictor made with ``missing="estimate"`` estimates
    them, any other raises :class:`MissingEntryError`.
    """
    if samples < 1:
        raise LatencyTableError(f"validate: samples must be at least 1, got {samples}")
    if rounds < 1:
        raise LatencyTableError(f"validate: rounds must be at least 1, got {rounds}")
    if not predictors:
        raise LatencyTableError("validate: no table to validate")
    profile = predictors[0].table.profile
    for predictor in predictors:
        if predictor.table.profile != profile:
            raise LatencyTableError(
                f"validate: tables of one profile are validated together, got {predictor.table.profile.id} "
                f"and {profile.id}"
            )
        predictor.space = space.name  # its own calibration where the table has one
        if not predictor.same_host and not foreign_ok:
            raise LatencyTableError(f"validate: {predictor.host_warning}; validate it on that host")
    check_available(profile)
    calibrated = {n.arch for p in predictors for n in p.table.networks}
    archs = sample_archs(space, samples, seed, exclude=calibrated)
    predicted = [_predict(p, archs) for p in predictors]

    start = time.perf_counter()
    m1, m2 = measure_twice(archs, profile, rounds, progress, seed)
    measure_s = time.perf_counter() - start
    return [
        ValidationResult(
            profile=profile.id,
            table=predictor.table.name,
            space=space.name,
            resolution=space.resolution,
            seed=seed,
            rounds=rounds,
            calibration=predictor.calibration.model,
            rows=[
                NetRow(
                    arch_id=a.arch_id,
                    arch=a.encode(),
                    predicted_ms=float(p),
                    raw_ms=float(r),
                    measured1_ms=float(x),
                    measured2_ms=float(y),
                    estimated=bool(e),
                )
                for a, p, r, x, y, e in zip(archs, pred.total, pred.raw, m1, m2, pred.estimated, strict=True)
            ],
            predict_us_per_net=pred.us_per_net,
            first_predict_s=pred.first_s,
            layers_measured=pred.layers_measured,
            measure_s=measure_s,
        )
        for predictor, pred in zip(predictors, predicted, strict=True)
    ]


@dataclass(frozen=True)
class _Predicted:
    total: np.ndarray
    raw: np.ndarray
    estimated: np.ndarray
    us_per_net: float
    first_s: float
    layers_measured: int


def _predict(predictor: LatencyPredictor, archs: Sequence[Architecture]) -> _Predicted:
    """One predictor's figures for ``archs``, with the time a prediction takes (cold and warm)."""
    entries_before = len(predictor.table.entries)
    start = time.perf_counter()
    total = predictor.predict_many(archs)  # measures missing layers (on this host's table), so it is the cold call
    first_s = time.perf_counter() - start
    raw, _, _ = predictor.features(archs)
    estimated = predictor.estimated_mask(archs)
    calls, start = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - start < 0.2:
        predictor.predict_many(archs)
        calls += 1
    us_per_net = (time.perf_counter() - start) / (calls * len(archs)) * 1e6
    return _Predicted(total, raw, estimated, us_per_net, first_s, len(predictor.table.entries) - entries_before)


# --------------------------------------------------- the shipped table vs this host
def shipped_table(profile: DeviceProfile | str) -> tuple[Path, LatencyTable]:
    """The table hwnas ships for ``profile`` (in the package), even where a user table of its name shadows it
    on the search path; of several, the one whose host fingerprint matches this host's, else the first."""
    from latency_tables import table as table_module

    pid = profile if isinstance(profile, str) else profile.id
    folder = table_module.PACKAGE_DATA
    shipped = [(p, LatencyTable.load(p)) for p in table_files(folder)]
    found = [(p, t) for p, t in shipped if t.profile.id == pid]
    if not found:
        raise LatencyTableError(
            f"profile: hwnas ships no {pid} table (shipped: {', '.join(t.name for _, t in shipped) or 'none'}); "
            "validate a table of this host without --against"
        )
    here = HostInfo.current()
    return next(((p, t) for p, t in found if not t.host.differences(here)), found[0])


def host_table(profile: DeviceProfile | str, exclude: Path | None = None) -> tuple[Path, LatencyTable] | None:
    """This host's own table of ``profile`` on the search path (other than ``exclude``): the same host
    fingerprint and not measurably another speed (:func:`latency_tables.host.check_table`, which may time
    the speed signature); None if there is none."""
    from latency_tables.host import check_table
    from latency_tables.table import list_tables

    pid = profile if isinstance(profile, str) else profile.id
    here = HostInfo.current()
    skip = exclude.resolve() if exclude else None
    for path, table in list_tables():
        if table.profile.id != pid or path.resolve() == skip or table.host.differences(here):
            continue
        if not check_table(table, host=here).foreign:
            return path, table
    return None
