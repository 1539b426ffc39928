"""How long a search waits for its int8 table on first use, quantizing in worker processes or not.

An int8 first-use build spends most of its time in onnxruntime's quantizer
(Python), not in timing. Since quantizing ahead in worker processes
(``latency_tables.runtimes.ort_parallel``), every layer and calibration net a
build is about to time is quantized on every core first. This times the same
first-use build (``ensure_host_table``, into an empty table directory) with
``HWNAS_QUANTIZE_WORKERS=1`` (in the building process, as before) and with the
default, alternating the two, and checks the two tables agree (median ratio of
the layers both measured; they differ only by timing noise).

Run it on a quiet machine: anything else running slows both and blurs the
difference (the load average at the start is recorded).

    .venv/bin/python benchmarks/int8_build.py [--spaces mobiledet-cifar mobilenetv2-cifar] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_results  # noqa: E402

PROFILE = "ort-cpu-int8-t1"

CHILD = """
import json, sys, time
from latency_tables.first_use import ensure_host_table
start = time.perf_counter()
built = ensure_host_table(sys.argv[1], sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - start, "layers": built.layers_measured,
                  "nets": built.nets_measured, "path": str(built.path)}))
"""


def build(space: str, workers: str | None, lut_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "HWNAS_LUT_DIR": str(lut_dir), "OMP_NUM_THREADS": "1"}
    env.pop("HWNAS_QUANTIZE_WORKERS", None)
    if workers is not None:
        env["HWNAS_QUANTIZE_WORKERS"] = workers
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, PROFILE, space], env=env, cwd=root, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"first use of {space} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def agreement(a: str, b: str) -> float:
    """Median ratio a/b of the layer entries both tables hold."""
    import numpy as np

    from latency_tables.table import LatencyTable

    ta, tb = LatencyTable.load(a), LatencyTable.load(b)
    both = [k for k in ta.entries if k in tb.entries and tb.entries[k].median_ms > 0]
    return float(np.median([ta.entries[k].median_ms / tb.entries[k].median_ms for k in both]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spaces", nargs="+", default=["mobiledet-cifar", "mobilenetv2-cifar"])
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--name", default="int8-build")
    args = p.parse_args()
    from latency_tables.runtimes.ort_parallel import quantize_workers

    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None
    rows = []
    for space in args.spaces:
        for r in range(args.repeats):
            order = [("1", "in the building process"), (None, f"{quantize_workers()} workers")]
            for workers, label in order if r % 2 == 0 else order[::-1]:
                with tempfile.TemporaryDirectory(prefix="hwnas-int8-build-") as tmp:
                    got = build(space, workers, Path(tmp))
                    keep = Path(tempfile.gettempdir()) / f"hwnas-int8-build-{space}-{label.split()[0]}.json.gz"
                    Path(got["path"]).replace(keep)
                got |= {"space": space, "repeat": r, "quantizing": label, "path": str(keep)}
                rows.append(got)
                print(f"{space:20s} {label:25s} {got['seconds']:6.1f} s ({got['layers']} layers, {got['nets']} nets)")
    summary = []
    for space in args.spaces:
        serial = [x for x in rows if x["space"] == space and x["quantizing"].startswith("in the")]
        parallel = [x for x in rows if x["space"] == space and not x["quantizing"].startswith("in the")]
        s = sum(x["seconds"] for x in serial) / len(serial)
        q = sum(x["seconds"] for x in parallel) / len(parallel)
        summary.append(
            {
                "space": space,
                "serial_seconds": s,
                "parallel_seconds": q,
                "saved_seconds": s - q,
                "median_layer_ratio_parallel_over_serial": agreement(parallel[-1]["path"], serial[-1]["path"]),
            }
        )
    print(f"\n{'space':20s} {'serial s':>9s} {'workers s':>9s} {'saved':>7s} {'layer ratio':>11s}")
    for x in summary:
        print(
            f"{x['space']:20s} {x['serial_seconds']:9.1f} {x['parallel_seconds']:9.1f} {x['saved_seconds']:7.1f}"
            f" {x['median_layer_ratio_parallel_over_serial']:11.3f}"
        )
    path = write_results(
        args.name,
        {
            "profile": PROFILE,
            "load_average_at_start": load,
            "workers": quantize_workers(),
            "runs": rows,
            "summary": summary,
        },
    )
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
