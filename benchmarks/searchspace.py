"""Benchmark the search-space layer.

Measures, on this host: architectures sampled per second and count_cost per
second for every built-in space, string/JSON round trips per second, exact
cardinality time, and build_model + export_onnx (with onnxruntime
verification) time per known net. Prints a table and writes
benchmarks/results/searchspace.json.

    .venv/bin/python benchmarks/searchspace.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import searchspace as ss  # noqa: E402
from benchmarks._common import rate, write_results  # noqa: E402
from service.cli.tables import render_table  # noqa: E402


def bench_spaces(seconds: float) -> list[dict[str, object]]:
    rows = []
    for name in ss.list_spaces():
        space = ss.load_space(name)
        start = time.perf_counter()
        card = space.cardinality()
        card_s = time.perf_counter() - start
        rng = random.Random(0)
        space.sample(rng)  # warm the option cache once, as a search would
        sample_rate, _ = rate(lambda _i, s=space, r=rng: s.sample(r), seconds)
        archs = [space.sample(rng) for _ in range(200)]
        cost_rate, _ = rate(lambda i, a=archs: ss.count_cost(a[i % len(a)]), seconds)
        codes = [a.encode() for a in archs]
        decode_rate, _ = rate(lambda i, c=codes: ss.Architecture.decode(c[i % len(c)]), seconds)
        contains_rate, _ = rate(lambda i, s=space, a=archs: s.contains(a[i % len(a)]), seconds)
        rows.append(
            {
                "space": name,
                "cardinality": str(card),
                "cardinality_seconds": round(card_s, 4),
                "samples_per_second": round(sample_rate, 1),
                "count_cost_per_second": round(cost_rate, 1),
                "decode_per_second": round(decode_rate, 1),
                "contains_per_second": round(contains_rate, 1),
            }
        )
    return rows


def bench_known(resolution: int | None) -> list[dict[str, object]]:
    import torch

    from searchspace.export import export_onnx

    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, arch in ss.known_architectures().items():
            if resolution:
                arch = arch.model_copy(update={"resolution": resolution})
            start = time.perf_counter()
            ss.build_model(arch)
            build_s = time.perf_counter() - start
            start = time.perf_counter()
            export_onnx(arch, Path(tmp) / f"{name}.onnx", verify=False)
            export_s = time.perf_counter() - start
            start = time.perf_counter()
            export_onnx(arch, Path(tmp) / f"{name}-checked.onnx", verify=True)
            verified_s = time.perf_counter() - start
            size = (Path(tmp) / f"{name}.onnx").stat().st_size
            rows.append(
                {
                    "net": name,
                    "resolution": arch.resolution,
                    "build_seconds": round(build_s, 3),
                    "export_onnx_seconds": round(export_s, 3),
                    "export_and_verify_seconds": round(verified_s, 3),
                    "onnx_mib": round(size / 2**20, 2),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter timing windows (for a smoke run)")
    args = parser.parse_args()
    seconds = 0.2 if args.quick else 1.0
    spaces = bench_spaces(seconds)
    print(
        render_table(
            ["space", "architectures", "card. s", "sample/s", "count_cost/s", "decode/s", "contains/s"],
            [
                [
                    r["space"],
                    f"{int(str(r['cardinality'])):.2e}",
                    r["cardinality_seconds"],
                    r["samples_per_second"],
                    r["count_cost_per_second"],
                    r["decode_per_second"],
                    r["contains_per_second"],
                ]
                for r in spaces
            ],
            {1, 2, 3, 4, 5, 6},
        )
    )
    print()
    known = bench_known(64 if args.quick else None)
    print(
        render_table(
            ["net", "res", "build s", "export s", "export+verify s", "ONNX MiB"],
            [
                [
                    r["net"],
                    r["resolution"],
                    r["build_seconds"],
                    r["export_onnx_seconds"],
                    r["export_and_verify_seconds"],
                    r["onnx_mib"],
                ]
                for r in known
            ],
            {1, 2, 3, 4, 5},
        )
    )
    if args.quick:
        print("\n--quick: results not written")
        return
    path = write_results("searchspace", {"spaces": spaces, "known_nets": known, "torch_threads": 1})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
