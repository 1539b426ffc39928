"""Quantizing many graphs at once, in worker processes on every core (the slow part of an int8 table build).

The workers are plain ``python -m latency_tables.runtimes.ort_parallel`` processes that read their graphs
from a temporary directory and write the quantized ones back: unlike ``multiprocessing``'s "spawn", they
never re-run the caller's main script (a user script without a ``__main__`` guard would run again in every
worker), and unlike "fork" they never copy a process holding Ray's or torch's threads.

``$HWNAS_QUANTIZE_WORKERS`` says how many (1: quantize in the calling process).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

#: a worker taking longer than this plus PER_MODEL_S per model is stopped; its models are quantized in the caller
BASE_TIMEOUT_S, PER_MODEL_S = 120.0, 30.0

log = logging.getLogger(__name__)
Job = tuple[bytes, tuple[int, ...]]


def quantize_workers() -> int:
    """``$HWNAS_QUANTIZE_WORKERS``, else the cores this process may use, at most 4 (each worker holds its own
    onnxruntime, ~200 MB)."""
    env = os.environ.get("HWNAS_QUANTIZE_WORKERS", "").strip()
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            log.warning("HWNAS_QUANTIZE_WORKERS=%r is not a whole number; quantizing in this process", env)
            return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(cores, 4)


def quantize_many(jobs: Sequence[Job], workers: int | None = None) -> list[bytes | None]:
    """:func:`~latency_tables.runtimes.ort_runtime.quantize_int8` of each (serialized fp32 graph, input
    shape), split over ``workers`` processes; None where a model failed or its worker did not finish (the
    caller quantizes that one itself and meets its error there). One model, or one worker: all None."""
    workers = quantize_workers() if workers is None else workers
    if workers < 2 or len(jobs) < 2:
        return [None] * len(jobs)
    workers = min(workers, len(jobs))
    with tempfile.TemporaryDirectory(prefix="hwnas-quantize-") as tmp:
        work = Path(tmp)
        for i, (data, _) in enumerate(jobs):
            (work / f"{i}.onnx").write_bytes(data)
        (work / "jobs.json").write_text(json.dumps([list(shape) for _, shape in jobs]))
        root = str(Path(__file__).resolve().parents[2])  # where the latency_tables package is importable from
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        env["OMP_NUM_THREADS"] = "1"
        procs = []
        try:
            for k in range(workers):
                procs.append(
                    subprocess.Popen(
                        [sys.executable, "-m", __name__, str(work), str(k), str(workers)],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.PIPE,
                    )
                )
            deadline = time.monotonic() + BASE_TIMEOUT_S + PER_MODEL_S * len(jobs) / workers
            for p in procs:
                try:
                    _, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                    log.warning("a quantizing worker took too long and was stopped; its models are done here")
                if p.returncode:
                    tail = err.decode(errors="replace").strip().splitlines()[-1:] if err else []
                    log.warning("a quantizing worker failed (exit %s): %s", p.returncode, " ".join(tail))
        except OSError as exc:  # cannot start a process here (a sandbox): quantize in this process
            log.warning("cannot start quantizing workers (%s); quantizing in this process", exc)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        return [(f.read_bytes() if (f := work / f"{i}.q.onnx").exists() else None) for i in range(len(jobs))]


def _worker(work: Path, k: int, n: int) -> None:
    """Quantize every ``n``-th model from the ``k``-th; a model that fails is left for the caller."""
    from latency_tables.runtimes.ort_runtime import quantize_serialized

    shapes = json.loads((work / "jobs.json").read_text())
    for i in range(k, len(shapes), n):
        try:
            data = quantize_serialized((work / f"{i}.onnx").read_bytes(), tuple(shapes[i]))
        except Exception:  # noqa: BLE001, S112 - the caller quantizes it again and reports its error
            continue
        tmp = work / f"{i}.q.tmp"
        tmp.write_bytes(data)
        tmp.rename(work / f"{i}.q.onnx")  # never a half-written model


if __name__ == "__main__":
    _worker(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
