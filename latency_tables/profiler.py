"""Measuring layers and whole nets on this host, one measurement at a time.

Two measurements running at once on one machine distort each other, so every
measurement holds a host-wide lock (``$HWNAS_MEASURE_LOCK``, default
``/tmp/hwnas-measure.lock``); a second profiler waits for the first.
Building a table saves finished entries every few seconds and on
interruption, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from latency_tables.errors import RuntimeUnavailableError
from latency_tables.profiles import DeviceProfile
from latency_tables.runtimes import get_runtime
from latency_tables.signatures import Layer
from latency_tables.table import Entry, LatencyTable, NetMeasurement
from latency_tables.timing import Timing, time_calls
from searchspace.architecture import Architecture

Progress = Callable[[int, int, str], None]


def lock_path() -> Path:
    return Path(os.environ.get("HWNAS_MEASURE_LOCK", "/tmp/hwnas-measure.lock"))


@contextmanager
def measurement_lock(quiet: bool = False) -> Iterator[None]:
    """Hold the host-wide measurement lock (waiting, with a message, if another process has it)."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not quiet:
                print(f"hwnas: another measurement is running on this host ({path}); waiting for it", file=sys.stderr)
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(str(os.getpid()))
            fh.flush()
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_available(profile: DeviceProfile) -> None:
    reason = get_runtime(profile.runtime).unavailable(profile)
    if reason:
        raise RuntimeUnavailableError(f"cannot measure {profile.id} on this host: {reason}")


def measure_layer(layer: Layer, profile: DeviceProfile) -> Entry:
    """One layer in isolation (the caller holds the lock). Identity layers cost nothing."""
    if layer.is_identity:
        return Entry(median_ms=0.0, p10_ms=0.0, p90_ms=0.0, runs=0)
    run = get_runtime(profile.runtime).prepare_layer(layer, profile)
    return Entry(**time_calls(run).as_dict())


def measure_network(arch: Architecture, profile: DeviceProfile, min_seconds: float = 0.3) -> Timing:
    """A whole net end to end (the caller holds the lock)."""
    run = get_runtime(profile.runtime).prepare_network(arch, profile)
    return time_calls(run, warmup=5, min_runs=20, min_seconds=min_seconds, max_seconds=10.0)


def build_table(
    table: LatencyTable,
    layers: Iterable[Layer],
    path: str | Path | None = None,
    progress: Progress | None = None,
    passes: int = 2,
    save_every_s: float = 10.0,
) -> int:
    """Measure every layer the table lacks, in ``passes`` passes; save as it goes.

    Pass k re-measures every wanted layer measured fewer than k times and
    keeps the less disturbed result (:meth:`Entry.combine`). Returns how many
    layers were measured at least once here.
    """
    check_available(table.profile)
    wanted = list({layer.key: layer for layer in layers}.values())
    fresh = sum(1 for layer in wanted if layer.key not in table.entries)
    work = [(k, layer) for k in range(1, passes + 1) for layer in wanted
            if (e := table.entries.get(layer.key)) is None or e.passes < k]
    last_save = time.monotonic()
    with measurement_lock():
        overhead = get_runtime(table.profile.runtime).prepare_overhead(table.profile)
        if overhead is not None and (work or not table.call_overhead_ms):
            table.call_overhead_ms = time_calls(overhead, warmup=50, min_runs=200, min_seconds=0.2).median_ms
        try:
            for i, (k, layer) in enumerate(work):
                old = table.entries.get(layer.key)
                if old is not None and old.passes >= k:
                    continue
                if progress:
                    progress(i, len(work), f"pass {k}/{passes} {layer.key}")
                new = measure_layer(layer, table.profile)
                table.entries[layer.key] = new if old is None else old.combine(new)
                if path is not None and time.monotonic() - last_save > save_every_s:
                    table.save(path)
                    last_save = time.monotonic()
        finally:
            if path is not None and work:
                table.save(path)
    if progress:
        progress(len(work), len(work), "")
    return fresh


def measure_networks(
    table: LatencyTable,
    archs: Iterable[tuple[str, Architecture]],
    path: str | Path | None = None,
    progress: Progress | None = None,
    rounds: int = 3,
) -> int:
    """Measure whole nets end to end for calibration, in ``rounds`` interleaved rounds.

    ``archs`` are (space name, arch) pairs; nets already measured ``rounds``
    times are skipped. Returns how many nets were new.
    """
    check_available(table.profile)
    index = {n.arch: i for i, n in enumerate(table.networks)}
    todo = {a.encode(): (space, a) for space, a in archs}
    new = sum(1 for code in todo if code not in index)
    work = [(r, code) for r in range(1, rounds + 1) for code in todo
            if code not in index or table.networks[index[code]].rounds < r]
    with measurement_lock():
        try:
            for i, (r, code) in enumerate(work):
                space, arch = todo[code]
                if progress:
                    progress(i, len(work), f"round {r}/{rounds} {arch.arch_id}")
                t = measure_network(arch, table.profile)
                got = NetMeasurement(arch=code, space=space, **t.as_dict())
                if code not in index:
                    index[code] = len(table.networks)
                    table.networks.append(got)
                    continue
                old = table.networks[index[code]]
                best = old if old.median_ms <= got.median_ms else got
                table.networks[index[code]] = best.model_copy(update={"rounds": old.rounds + 1})
        finally:
            if path is not None and work:
                table.save(path)
    if progress:
        progress(len(work), len(work), "")
    return new
