"""Timing loop shared by the profiler and the standalone device agent.

Only the standard library and numpy: the agent runs on devices that have
onnxruntime and numpy and nothing else of hwnas' dependencies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def time_calls(
    run: Callable[[], object],
    *,
    warmup: int = 3,
    min_runs: int = 10,
    max_runs: int = 2000,
    min_seconds: float = 0.03,
    max_seconds: float = 3.0,
    rel_precision: float = 0.01,
) -> Timing:
    """Time ``run()`` until its median is stable.

    After ``warmup`` untimed calls, calls are timed one by one until at least
    ``min_runs`` calls and ``min_seconds`` have passed and the standard error
    of the median (from the median absolute deviation) is below
    ``rel_precision`` of the median, or until ``max_runs`` / ``max_seconds``.
    """
    for _ in range(warmup):
        run()
    times: list[float] = []
    start = time.perf_counter()
    check_at = min_runs
    while True:
        t0 = time.perf_counter_ns()
        run()
        times.append((time.perf_counter_ns() - t0) / 1e6)
        n = len(times)
        elapsed = time.perf_counter() - start
        if n >= max_runs or elapsed >= max_seconds:
            break
        if n >= check_at and elapsed >= min_seconds:
            arr = np.asarray(times)
            med = float(np.median(arr))
            sigma = 1.4826 * float(np.median(np.abs(arr - med)))
            if med > 0 and 1.2533 * sigma / np.sqrt(n) <= rel_precision * med:
                break
            check_at = n + max(1, n // 4)
    arr = np.asarray(times)
    return Timing(
        median_ms=float(np.median(arr)),
        p10_ms=float(np.percentile(arr, 10)),
        p90_ms=float(np.percentile(arr, 90)),
        runs=len(times),
    )
