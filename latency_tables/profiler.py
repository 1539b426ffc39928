"""Measuring layers and whole nets on this host, one measurement at a time.

Two measurements running at once on one machine distort each other, so every
measurement holds a host-wide lock (:func:`latency_tables.portable.measurement_lock`,
``$HWNAS_MEASURE_LOCK``, default ``/tmp/hwnas-measure.lock``); a second
profiler, or a device agent on the same machine, waits for the first.
Building a table saves finished entries every few seconds and on
interruption, so an interrupted build resumes where it stopped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from latency_tables.errors import RuntimeUnavailableError
from latency_tables.portable import measurement_lock
from latency_tables.profiles import DeviceProfile
from latency_tables.runtimes import get_runtime
from latency_tables.signatures import Layer
from latency_tables.table import Entry, LatencyTable, NetMeasurement
from latency_tables.timing import Timing, time_calls
from searchspace.architecture import Architecture

#: layers prepared ahead at a time (:meth:`Runtime.ahead`) in a table build
AHEAD_CHUNK = 256

#: ``progress(done, total, what)``, called as measuring goes
ProgressCallback = Callable[[int, int, str], None]


def check_available(profile: DeviceProfile) -> None:
    reason = get_runtime(profile.runtime).unavailable(profile)
    if reason:
        raise RuntimeUnavailableError(f"cannot measure {profile.id} on this host: {reason}")


def build_table(
    table: LatencyTable,
    layers: Iterable[Layer],
    path: str | Path | None = None,
    progress: ProgressCallback | None = None,
    passes: int = 2,
    save_every_s: float = 10.0,
    min_gap_s: float = 5.0,
    max_pending: int = 2000,
) -> int:
    """Measure every layer the table lacks (or has measured fewer than ``passes`` times); save as it goes.

    A layer's passes are at least ``min_gap_s`` apart: its prepared session
    waits in a queue while other layers are measured, then is timed again and
    the less disturbed result kept (:meth:`Entry.combine`). So each layer is
    prepared (and, for int8, quantized) once, yet its passes fall in different
    interference regimes. Returns how many layers were new to the table.
    """
    check_available(table.profile)
    runtime = get_runtime(table.profile.runtime)
    wanted = list({layer.key: layer for layer in layers}.values())
    todo = [lyr for lyr in wanted if (e := table.entries.get(lyr.key)) is None or e.passes < passes]
    fresh = sum(1 for layer in todo if layer.key not in table.entries)
    total = sum(passes - (table.entries[lyr.key].passes if lyr.key in table.entries else 0) for lyr in todo)
    done = 0
    last_save = time.monotonic()
    pending: deque[tuple[float, Layer, Callable[[], object] | None]] = deque()

    def measure(layer: Layer, run: Callable[[], object] | None) -> None:
        nonlocal done, last_save
        if progress:
            progress(done, total, layer.key)
        free = Entry(median_ms=0.0, p10_ms=0.0, p90_ms=0.0, runs=0)
        new = free if run is None else Entry(**time_calls(run).as_dict())
        old = table.entries.get(layer.key)
        table.entries[layer.key] = new if old is None else old.combine(new)
        done += 1
        if table.entries[layer.key].passes < passes:
            pending.append((time.monotonic(), layer, run))
        if path is not None and time.monotonic() - last_save > save_every_s:
            table.save(path)
            last_save = time.monotonic()

    with measurement_lock():
        overhead = runtime.prepare_overhead(table.profile)
        if overhead is not None and (todo or not table.call_overhead_ms):
            table.call_overhead_ms = time_calls(overhead, warmup=50, min_runs=200, min_seconds=0.2).median_ms
        try:
            for start in range(0, len(todo), AHEAD_CHUNK):
                # the layers' slow preparation (int8: quantizing) done ahead, in parallel, while nothing is
                # timed; a chunk at a time bounds the memory it holds
                chunk = todo[start : start + AHEAD_CHUNK]
                ready = runtime.ahead(table.profile, layers=chunk)
                for layer in chunk:
                    while pending and (time.monotonic() - pending[0][0] >= min_gap_s or len(pending) >= max_pending):
                        _, waiting, run = pending.popleft()
                        measure(waiting, run)
                    measure(layer, None if layer.is_identity else ready.layer(layer))
            while pending:
                _, waiting, run = pending.popleft()
                measure(waiting, run)
        finally:
            if path is not None and done:
                table.save(path)
    if progress:
        progress(total, total, "")
    return fresh


def interleaved_timings(
    archs: Sequence[Architecture],
    profile: DeviceProfile,
    rounds: int | Sequence[int] = 3,
    progress: ProgressCallback | None = None,
    label: str = "",
    done: int = 0,
    total: int | None = None,
) -> list[Timing]:
    """Each net's least-disturbed timing over interleaved rounds (the caller holds the lock).

    Round r times every net that needs r rounds before any net's round r+1,
    so a regime of interference (seconds long) disturbs at most one round of
    a net. Each net is prepared (for int8: quantized) once, in its first round.
    ``rounds`` may give a count per net; ``done``/``total`` place the work in
    a longer job for ``progress``.
    """
    needed = [rounds] * len(archs) if isinstance(rounds, int) else list(rounds)
    total = total if total is not None else done + sum(needed)
    runtime = get_runtime(profile.runtime)
    runners: dict[int, Callable[[], object]] = {}
    ready = runtime.ahead(profile, archs=[a for a, k in zip(archs, needed, strict=True) if k > 0])
    best: list[Timing | None] = [None] * len(archs)
    for r in range(max(needed, default=0)):
        for i, arch in enumerate(archs):
            if needed[i] <= r:
                continue
            if progress:
                progress(done, total, f"{label}round {r + 1} {arch.arch_id}")
            if i not in runners:
                runners[i] = ready.network(arch)
            t = time_calls(runners[i], warmup=5, min_runs=20, min_seconds=0.3, max_seconds=10.0)
            # mypy: best[i] is not None on the right of `or`; mypy does not narrow list items
            if best[i] is None or t.median_ms < best[i].median_ms:  # type: ignore[union-attr]
                best[i] = t
            done += 1
    return [t for t in best if t is not None]


def measure_networks(
    table: LatencyTable,
    archs: Iterable[tuple[str, Architecture]],
    path: str | Path | None = None,
    progress: ProgressCallback | None = None,
    rounds: int = 3,
) -> int:
    """Measure whole nets end to end for calibration, in ``rounds`` interleaved rounds.

    ``archs`` are (space name, arch) pairs; a net already measured in fewer
    rounds gets the rest, keeping its least-disturbed round. Returns how many
    nets were new to the table.
    """
    check_available(table.profile)
    index = {n.arch: i for i, n in enumerate(table.networks)}
    todo = {a.encode(): (space, a) for space, a in archs}
    work = [(code, rounds - (table.networks[index[code]].rounds if code in index else 0)) for code in todo]
    work = [(code, k) for code, k in work if k > 0]
    new = sum(1 for code, _ in work if code not in index)
    if not work:
        return 0
    with measurement_lock():
        timings = interleaved_timings([todo[c][1] for c, _ in work], table.profile, [k for _, k in work], progress)
        for (code, extra), t in zip(work, timings, strict=True):
            got = NetMeasurement(arch=code, space=todo[code][0], rounds=extra, **t.as_dict())
            if code not in index:
                index[code] = len(table.networks)
                table.networks.append(got)
                continue
            old = table.networks[index[code]]
            best = old if old.median_ms <= got.median_ms else got
            table.networks[index[code]] = best.model_copy(update={"rounds": old.rounds + extra})
        if path is not None:
            table.save(path)
    if progress:
        total = sum(k for _, k in work)
        progress(total, total, "")
    return new
