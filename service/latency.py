"""Latency of one net on every device the server has a table for, with the per-layer breakdown.

Tables and predictors are loaded once per process (a shipped table holds
35k layers); a layer the table lacks is estimated and flagged, never
measured inside a request. Whether a table describes this host is its
cached host check (:func:`latency_tables.host.check_table` with
``measure=False``: the speed signature a CLI or a worker measured on this
boot, else the CPU fingerprint), read per request; nothing is timed here.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latency_tables.errors import LatencyTableError
from searchspace.architecture import Architecture
from service import schemas

if TYPE_CHECKING:
    from latency_tables.host import HostCheck
    from latency_tables.table import LatencyTable

_lock = threading.Lock()


def _folder_state() -> tuple[tuple[str, int], ...]:
    """Every table file on the search path with its modification time: a table a worker builds or extends
    while the server runs (first use on this host) is read again, not served stale until a restart."""
    from latency_tables.table import table_dirs, table_files

    state = []
    for folder in table_dirs():
        for path in table_files(folder):
            try:
                state.append((str(path), path.stat().st_mtime_ns))
            except OSError:  # removed between the listing and the stat
                continue
    return tuple(state)


def tables() -> list[tuple[Path, Any]]:
    return _tables(_folder_state())


@lru_cache(maxsize=1)
def _tables(state: tuple[tuple[str, int], ...]) -> list[tuple[Path, Any]]:
    from latency_tables.table import list_tables

    return list_tables()


@lru_cache(maxsize=32)
def _predictor_of(path: str, mtime_ns: int, space: str | None) -> Any:
    import warnings

    from latency_tables.api import load_predictor

    table = next((t for p, t in tables() if str(p) == path), None)
    if table is None:  # the file went away between two listings (set aside, replaced)
        raise LatencyTableError(f"latency table {path} is no longer on the search path")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a table from another host is reported per latency (foreign_host)
        return load_predictor(table.profile.id, path, missing="estimate", space=space, check="cached")


def host_check(table: LatencyTable) -> HostCheck:
    """Whether ``table`` describes this host, from what is known without timing anything (see the module)."""
    from latency_tables.host import check_table

    return check_table(table, measure=False)


def next_step(table: LatencyTable, check: HostCheck, space: str | None = None) -> str | None:
    """What to do about a table not known to be this host's: build this host's table, or (the fingerprint
    matched, only the speed signature is unknown) measure that; None for this host's table, or for one this
    host cannot run."""
    from latency_tables.host import build_command, reference_figures
    from latency_tables.runtimes import get_runtime

    if check.verdict == "same":
        return None
    if check.verdict == "unverified":
        try:
            if get_runtime(table.profile.runtime).unavailable(table.profile):
                return None
        except LatencyTableError:  # a runtime this hwnas does not have
            return None
        if reference_figures(table):
            return f"measure its speed signature: hwnas lut check --profile {table.profile.id}"
    return f"build this host's table: {build_command(table.profile.id, space)}"


def host_note(table: LatencyTable, check: HostCheck, space: str | None = None) -> str | None:
    """The host check in a sentence, with what to do (None for this host's table)."""
    if check.verdict == "same":
        return None
    step = next_step(table, check, space)
    return check.summary() + (f"; {step}" if step else "")


def latencies(arch: Architecture, space: str | None) -> tuple[list[schemas.LatencyPublic], dict[str, str]]:
    out, errors = [], {}
    state = _folder_state()  # one look at the table folders per request
    mtimes = dict(state)
    for path, table in _tables(state):
        try:
            with _lock:  # a predictor caches lookups in place
                prediction = _predictor_of(str(path), mtimes.get(str(path), 0), space).predict(arch)
        except LatencyTableError as exc:
            errors[table.profile.id] = str(exc)
            continue
        check = host_check(table)  # read per request: a check made after the predictor was loaded counts
        out.append(
            schemas.LatencyPublic(
                profile=table.profile.id,
                latency_ms=prediction.total_ms,
                raw_sum_ms=prediction.raw_sum_ms,
                measured=not prediction.estimated,
                table=table.name,
                host=table.host.slug,
                foreign_host=check.foreign,
                host_check=check.verdict,
                host_note=host_note(table, check, space),
                layers=[
                    schemas.LayerLatencyPublic(
                        name=lyr.name, key=lyr.key, latency_ms=lyr.latency_ms, macs=lyr.macs, measured=not lyr.estimated
                    )
                    for lyr in prediction.layers
                ],
            )
        )
    return out, errors


def _summary(report: dict[str, Any]) -> schemas.ValidationSummary:
    return schemas.ValidationSummary(
        space=report["space"],
        samples=report["samples"],
        resolution=report.get("resolution"),
        calibration=report.get("calibration"),
        predicted=report["metrics"]["predicted"],
        noise=report["metrics"]["noise"],
        measured_on=report.get("measured_on", {}),
    )


def table_public(path: Path, table: Any, **calibration_extra: Any) -> schemas.TablePublic:
    from latency_tables.table import PACKAGE_DATA
    from latency_tables.validate import load_reports

    shipped = path.resolve().is_relative_to(PACKAGE_DATA.resolve())
    check = host_check(table)
    return schemas.TablePublic(
        name=table.name,
        profile=table.profile.id,
        source="shipped" if shipped else "user",
        host=table.host.model_dump(),
        host_check=schemas.HostCheckPublic(
            verdict=check.verdict,
            reasons=list(check.reasons),
            speed_ratio=check.speed_ratio if check.speed_ratio and math.isfinite(check.speed_ratio) else None,
            net_ratio=check.net_ratio,
            note=host_note(table, check),
        ),
        layers=len(table.entries),
        calibration={
            **table.calibration.model_dump(),
            "networks": len(table.networks),
            "per_space": {
                k: {"model": c.model, "cv_mape": c.cv_mape, "fitted_on": c.fitted_on}
                for k, c in table.space_calibrations.items()
            },
            **calibration_extra,
        },
        validation=[_summary(r) for r in load_reports(table.name)],
    )


def validation_report(profile: str, space: str) -> schemas.ValidationReport | None:
    from latency_tables.validate import load_reports

    for _, table in tables():
        if table.profile.id == profile:
            for report in load_reports(table.name):
                if report["space"] == space:
                    return schemas.ValidationReport(
                        **_summary(report).model_dump(), table=table.name, nets=report["nets"]
                    )
    return None


def devices() -> list[schemas.DevicePublic]:
    from latency_tables.profiles import DeviceProfile
    from latency_tables.runtimes import get_runtime

    by_profile: dict[str, list[schemas.TablePublic]] = {}
    profiles: dict[str, DeviceProfile] = {}
    for path, table in tables():
        profiles[table.profile.id] = table.profile
        by_profile.setdefault(table.profile.id, []).append(table_public(path, table))
    out = []
    for pid, profile in sorted(profiles.items()):
        try:
            available = get_runtime(profile.runtime).unavailable(profile) is None
        except LatencyTableError:  # a runtime this server does not have
            available = False
        out.append(
            schemas.DevicePublic(
                id=pid,
                runtime=profile.runtime,
                provider=profile.provider,
                precision=profile.precision,
                threads=profile.threads,
                batch=profile.batch,
                available=available,
                tables=by_profile[pid],
            )
        )
    return out


def forget_tables() -> None:
    _tables.cache_clear()
    _predictor_of.cache_clear()
