"""Benchmark the latency tables: prediction accuracy next to measurement noise, prediction speed, table stats.

For every profile and space: ``validate`` (N random nets, predicted, each
measured twice in independent interleaved passes; the prediction's error is
only meaningful next to the second measurement's), prediction speed
(``predict_many`` over many sampled nets on one core, cold first call and
warm), and the table's build stats (entries, calibration model, CV MAPE).
Prints tables and writes benchmarks/results/latency.json with scatter plots
in benchmarks/results/latency/. Takes about an hour in full.

    .venv/bin/python benchmarks/latency.py [--profiles P ...] [--spaces S ...] [--samples 100] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import searchspace as ss  # noqa: E402
from benchmarks._common import RESULTS, host_info, write_results  # noqa: E402
from latency_tables.api import load_predictor  # noqa: E402
from latency_tables.errors import LatencyTableError  # noqa: E402
from latency_tables.predictor import LatencyPredictor  # noqa: E402
from latency_tables.profiler import measurement_lock  # noqa: E402
from latency_tables.signatures import space_layers  # noqa: E402
from latency_tables.table import LatencyTable, find_table  # noqa: E402
from latency_tables.validate import validate  # noqa: E402
from service.cli.progress import ProgressBar  # noqa: E402
from service.cli.tables import render_table  # noqa: E402

DEFAULT_PROFILES = ["ort-cpu-fp32-t1", "ort-cpu-int8-t1"]


def coverage(table: LatencyTable) -> dict[str, float]:
    """Share of each built-in space's layers (at its default resolution) the table has."""
    out = {}
    for name in ss.list_spaces():
        keys = space_layers(ss.load_space(name)).keys()
        out[name] = sum(1 for k in keys if k in table.entries) / len(keys) if keys else 0.0
    return out


def table_stats(path: Path, table: LatencyTable) -> dict[str, Any]:
    cal = table.calibration
    return {
        "name": table.name,
        "path": str(path),
        "host": table.host.slug,
        "cpu": table.host.cpu,
        "entries": len(table.entries),
        "networks": len(table.networks),
        "call_overhead_ms": table.call_overhead_ms,
        "calibration": cal.model,
        "calibration_fitted_on": cal.fitted_on,
        "calibration_cv_mape": cal.cv_mape,
        "calibration_note": cal.note,
        "updated": table.updated,
    }


@contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU (where the OS allows) so the speed is a single core's."""
    if not hasattr(os, "sched_getaffinity"):
        yield "unpinned"
        return
    before = os.sched_getaffinity(0)
    cpu = min(before)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"cpu {cpu}"
    finally:
        os.sched_setaffinity(0, before)


def speed_nets(space: ss.SearchSpace, n: int) -> list[ss.Architecture]:
    """``n`` random nets at the space's default resolution (the one the table covers), as a search samples them."""
    rng = random.Random(f"hwnas-bench-speed:{space.name}")
    res = space.resolution
    out = []
    for _ in range(n):
        arch = space.sample(rng)
        out.append(arch if arch.resolution == res else arch.model_copy(update={"resolution": res}))
    return out


def bench_speed(table: LatencyTable, space: ss.SearchSpace, n: int) -> dict[str, Any]:
    """Nets per second of predict_many on one core: the cold first call on a fresh predictor, then warm calls.

    The predictor estimates layers the table lacks (never measures), so the
    timing is of prediction alone; ``estimated_share`` says how many nets used
    an estimate.
    """
    archs = speed_nets(space, n)
    with measurement_lock(quiet=True), one_core() as pinned:
        start = time.perf_counter()
        predictor = LatencyPredictor(table, None, missing="estimate")
        load = time.perf_counter() - start
        start = time.perf_counter()
        predictor.predict_many(archs)
        cold = time.perf_counter() - start
        warm = min(_timed(lambda: predictor.predict_many(archs)) for _ in range(3))
        singles = archs[:2000]
        single = _timed(lambda: [predictor.predict_many([a]) for a in singles]) / len(singles)
    estimated = float(predictor.estimated_mask(archs[:5000]).mean())
    return {
        "space": space.name,
        "nets": n,
        "pinned": pinned,
        "predictor_init_s": round(load, 3),
        "cold_first_call_s": round(cold, 3),
        "cold_archs_per_second": round(n / cold, 1),
        "warm_archs_per_second": round(n / warm, 1),
        "single_call_us": round(single * 1e6, 2),
        "estimated_share": round(estimated, 4),
    }


def _timed(func: Any) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}%"


def num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def merge_previous(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """This run's results over the previous latency.json's: a run of some spaces keeps the others' results."""
    path = RESULTS / "latency.json"
    if not path.exists():
        return profiles
    previous = json.loads(path.read_text())
    old = {p["profile"]: p for p in previous.get("profiles", []) if "skipped" not in p}
    # rows written before rows said where they were measured: the previous file's host (its CPU is all that is
    # certain of it; date and commit were those of the last write)
    prev_host = previous.get("host", {})
    for p in old.values():
        for key in ("validation", "speed"):
            for row in p.get(key, []):
                row.setdefault("measured_on", {"cpu": prev_host.get("cpu"), "cores": prev_host.get("cores")})
    merged = []
    for p in profiles:
        prev = old.pop(p["profile"], None)
        if prev is not None and "skipped" not in p:
            for key in ("validation", "speed"):
                fresh = {v["space"] for v in p[key]}
                p[key] = [v for v in prev.get(key, []) if v["space"] not in fresh] + p[key]
        elif prev is not None:
            p = prev
        merged.append(p)
    return merged + list(old.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profiles",
        nargs="+",
        default=DEFAULT_PROFILES,
        help=f"device profiles (default: {' '.join(DEFAULT_PROFILES)})",
    )
    parser.add_argument("--spaces", nargs="+", help="spaces (default: every built-in space the table covers fully)")
    parser.add_argument("--samples", type=int, default=100, help="validation nets per space (default 100)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement pass (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed-nets", type=int, default=100_000, help="nets per predict_many speed run")
    parser.add_argument("--quick", action="store_true", help="10 samples, 1 round, one space; nothing written")
    parser.add_argument(
        "--ship-reports",
        action="store_true",
        help="only copy the validations in benchmarks/results/latency.json beside the shipped tables",
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="only the prediction-speed runs (validation results already written are kept)",
    )
    args = parser.parse_args()
    if args.ship_reports:
        import json

        ship_reports(json.loads((RESULTS / "latency.json").read_text())["profiles"])
        return
    if args.quick:
        args.samples, args.rounds, args.speed_nets = 10, 1, 10_000

    profiles: list[dict[str, Any]] = []
    here = {k: v for k, v in host_info().items() if k in ("cpu", "cores", "date", "commit")}
    for pid in args.profiles:
        try:
            path, table = find_table(pid)
        except LatencyTableError as exc:
            print(f"{pid}: skipped ({exc})")
            profiles.append({"profile": pid, "skipped": str(exc)})
            continue
        cover = coverage(table)
        spaces = args.spaces or [name for name, share in cover.items() if share >= 1.0]
        if not spaces:
            shares = ", ".join(f"{k} {100 * v:.0f}%" for k, v in cover.items())
            print(f"{pid}: skipped (table {table.name} covers no built-in space fully: {shares}; pass --spaces)")
            profiles.append({"profile": pid, "skipped": "no space covered", "coverage": cover})
            continue
        if args.quick:
            spaces = spaces[:1]
        entry: dict[str, Any] = {
            "profile": pid,
            "table": table_stats(path, table),
            "coverage": cover,
            "validation": [],
            "speed": [],
        }
        predictor = load_predictor(pid)
        if args.quick:
            predictor.path = None  # layers measured on demand stay in memory
        for name in spaces:
            space = ss.load_space(name)
            if not args.speed_only:
                result = validate(
                    predictor,
                    space,
                    args.samples,
                    seed=args.seed,
                    rounds=args.rounds,
                    progress=ProgressBar(f"{pid} {name}"),
                )
                data = result.as_dict() | {"measured_on": here}
                if not args.quick:
                    png = result.save_plot(RESULTS / "latency" / f"validate-{pid}-{name}.png")
                    data["plot"] = str(png.relative_to(RESULTS))
                entry["validation"].append(data)
            entry["speed"].append(bench_speed(predictor.table, space, args.speed_nets) | {"measured_on": here})
        # the table as it is after validation (layers measured on demand included)
        entry["table"] = table_stats(path, predictor.table) | {"entries_before": len(table.entries)}
        profiles.append(entry)

    done = [p for p in profiles if "skipped" not in p]
    print(
        render_table(
            ["table", "entries", "nets", "calibration", "CV MAPE", "call overhead us"],
            [
                [
                    p["table"]["name"],
                    p["table"]["entries"],
                    p["table"]["networks"],
                    p["table"]["calibration"],
                    pct(None if p["table"]["calibration_cv_mape"] is None else 100 * p["table"]["calibration_cv_mape"]),
                    f"{1000 * p['table']['call_overhead_ms']:.1f}",
                ]
                for p in done
            ],
            {1, 2, 4, 5},
        )
    )
    print()
    rows = []
    for p in done:
        for v in p["validation"]:
            m, r, n = v["metrics"]["predicted"], v["metrics"]["raw"], v["metrics"]["noise"]
            rows.append(
                [
                    p["profile"],
                    v["space"],
                    v["samples"],
                    pct(m["within_10_pct"]),
                    pct(n["within_10_pct"]),
                    pct(m["within_5_pct"]),
                    pct(n["within_5_pct"]),
                    pct(m["mape_pct"]),
                    pct(r["mape_pct"]),
                    pct(n["mape_pct"]),
                    num(m["spearman"]),
                    num(n["spearman"]),
                    num(m["kendall"]),
                ]
            )
    print(
        render_table(
            [
                "profile",
                "space",
                "N",
                "+-10% pred",
                "+-10% noise",
                "+-5% pred",
                "+-5% noise",
                "MAPE pred",
                "MAPE raw",
                "MAPE noise",
                "rho pred",
                "rho noise",
                "tau pred",
            ],
            rows,
            set(range(2, 13)),
        )
    )
    print("(noise = the same nets measured a second time, independently: what a perfect predictor would score)")
    print()
    print(
        render_table(
            [
                "profile",
                "space",
                "nets",
                "cold first call s",
                "cold archs/s",
                "warm archs/s",
                "single call us",
                "estimated",
            ],
            [
                [
                    p["profile"],
                    s["space"],
                    s["nets"],
                    s["cold_first_call_s"],
                    f"{s['cold_archs_per_second']:,.0f}",
                    f"{s['warm_archs_per_second']:,.0f}",
                    s["single_call_us"],
                    f"{100 * s['estimated_share']:.0f}%",
                ]
                for p in done
                for s in p["speed"]
            ],
            {2, 3, 4, 5, 6, 7},
        )
    )
    if args.quick:
        print("\n--quick: results not written")
        return
    settings = {"samples": args.samples, "rounds": args.rounds, "seed": args.seed, "speed_nets": args.speed_nets}
    merged = merge_previous(profiles)
    out = write_results("latency", {"settings": settings, "profiles": merged})
    print(f"\nwrote {out} and plots in {RESULTS / 'latency'}")
    ship_reports(merged)


def ship_reports(profiles: list[dict[str, Any]]) -> None:
    """The validations of the shipped tables, kept beside them (package data) for the service's devices page."""
    from latency_tables.table import PACKAGE_DATA, list_tables
    from latency_tables.validate import save_report

    shipped = {t.name for p, t in list_tables() if p.parent == PACKAGE_DATA}
    written = [save_report(v, PACKAGE_DATA) for p in profiles for v in p["validation"] if v["table"] in shipped]
    print(f"kept {len(written)} validation reports beside the shipped tables in {PACKAGE_DATA}")


if __name__ == "__main__":
    main()
