"""How good and how cheap is the search? Efficiency per strategy, controller overhead, Ray parallel speed-up.

1. Efficiency: on a 32x32 space with objectives (proxy up, fp32 table
   latency down), every strategy runs ``--trials`` evaluations for each of
   ``--seeds`` seeds (serially, so runs are reproducible). Hypervolume after
   50 / 100 / 200 evaluations is computed with one reference point for all
   runs (objectives min-max normalised over every feasible net any run found,
   reference 1.1 in each), mean and spread over seeds. Goal: the default
   strategy reaches random search's mean 200-evaluation hypervolume within
   70 evaluations. Proxy scores are cached across runs (same database), so
   a net found by two strategies is scored once.
2. Overhead: controller time per trial (ask, tell, bookkeeping; cheap
   metrics only) over a 1,000-trial search, per strategy.
3. Parallel speed-up: the same proxy-bound search with Ray and 1 vs 2 workers.

Prints tables and writes benchmarks/results/search.json.

    .venv/bin/python benchmarks/search.py [--space mobilenetv2-cifar] [--proxy default] [--seeds 5] [--trials 200]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, host_info, write_results  # noqa: E402

DEFAULT_STRATEGY = "tpe"
STRATEGIES = ["nsga2", "tpe", "evolution", "nsga3", "random"]


def run_search(config: dict[str, Any], storage: str, executor: Any = None) -> Any:
    from nas.config import SearchConfig
    from nas.search import Search

    return Search(SearchConfig.parse(config), storage, executor=executor).run()


def efficiency(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from nas.pareto import hypervolume, non_dominated, to_minimize
    from nas.proxies import canonical

    storage = f"sqlite:///{workdir / 'efficiency.db'}"
    objectives = [
        {"metric": f"proxy:{args.proxy}", "direction": "maximize"},
        {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
    ]
    directions = [o["direction"] for o in objectives]
    runs: dict[str, list[list[list[float]]]] = {}
    for strategy in args.strategies:
        runs[strategy] = []
        for seed in range(args.seeds):
            start = time.perf_counter()
            options: dict[str, Any] = {"weights": [1.0, 1.0]} if strategy == "evolution" else {}
            result = run_search(
                {
                    "name": f"eff-{strategy}-{seed}",
                    "space": args.space,
                    "objectives": objectives,
                    "strategy": {"name": strategy, "options": options},
                    "budget": {"trials": args.trials},
                    "workers": 1,
                    "seed": seed,
                },
                storage,
            )
            points = [t.objectives if t.feasible else None for t in result.trials]
            runs[strategy].append(points)  # type: ignore[arg-type]
            print(
                f"  {strategy:10s} seed {seed}: {len(result.trials)} trials in {time.perf_counter() - start:.0f} s",
                flush=True,
            )
    every = np.array([p for rs in runs.values() for r in rs for p in r if p is not None])
    mins = to_minimize(every, directions)
    lo, hi = mins.min(axis=0), mins.max(axis=0)

    def hv_at(points: list[list[float] | None], n: int) -> float:
        pts = [p for p in points[:n] if p is not None]
        if not pts:
            return 0.0
        norm = (to_minimize(pts, directions) - lo) / np.where(hi > lo, hi - lo, 1.0)
        return hypervolume(norm[non_dominated(norm)], [1.1, 1.1])

    checkpoints = [c for c in (50, 100, 200) if c <= args.trials] or [args.trials]
    table: dict[str, Any] = {}
    for strategy, rs in runs.items():
        table[strategy] = {
            str(c): {"mean": float(np.mean([hv_at(r, c) for r in rs])), "std": float(np.std([hv_at(r, c) for r in rs]))}
            for c in checkpoints
        }
    target = table["random"][str(checkpoints[-1])]["mean"] if "random" in table else None
    reach: dict[str, Any] = {}
    if target is not None:
        for strategy, rs in runs.items():
            firsts = []
            for r in rs:
                n = next((k for k in range(1, len(r) + 1) if hv_at(r, k) >= target), None)
                firsts.append(n)
            got = [f for f in firsts if f is not None]
            reach[strategy] = {"per_seed": firsts, "mean": float(np.mean(got)) if got else None, "reached": len(got)}
    print(f"\nhypervolume (normalised objectives, reference 1.1), mean +- std over {args.seeds} seeds")
    print(
        f"{'strategy':10s} "
        + " ".join(f"{'@' + str(c):>16s}" for c in checkpoints)
        + f" {'evals to random@' + str(checkpoints[-1]):>22s}"
    )
    for strategy in table:
        cells = " ".join(
            f"{table[strategy][str(c)]['mean']:9.4f}+-{table[strategy][str(c)]['std']:.3f}" for c in checkpoints
        )
        r = reach.get(strategy, {})
        print(f"{strategy:10s} {cells} {str(r.get('mean')):>22s}")
    return {
        "space": args.space,
        "proxy": args.proxy,
        "proxy_stands_for": canonical(args.proxy),
        "trials": args.trials,
        "seeds": args.seeds,
        "hypervolume": table,
        "evaluations_to_random_final": reach,
        "default_strategy": DEFAULT_STRATEGY,
        "goal_met": bool(
            reach.get(DEFAULT_STRATEGY, {}).get("mean") is not None
            and reach[DEFAULT_STRATEGY]["reached"] == args.seeds
            and max(reach[DEFAULT_STRATEGY]["per_seed"]) <= 70
        ),
    }


def overhead(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out = {}
    for strategy in ("nsga2", "tpe", "random"):
        result = run_search(
            {
                "name": f"ovh-{strategy}",
                "space": args.space,
                "objectives": [
                    {"metric": "params", "direction": "minimize"},
                    {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
                ],
                "constraints": [{"metric": "macs", "max": 50_000_000}],
                "strategy": {"name": strategy},
                "budget": {"trials": args.overhead_trials},
                "workers": 1,
                "seed": 0,
            },
            f"sqlite:///{workdir / f'overhead-{strategy}.db'}",
        )
        ms = 1000 * (result.controller_seconds_per_trial or 0.0)
        out[strategy] = {"trials": len(result.trials), "ms_per_trial": ms}
        print(
            f"  controller overhead {strategy:7s}: {out[strategy]['ms_per_trial']:.1f} ms/trial over "
            f"{len(result.trials)} trials",
            flush=True,
        )
    return out


def parallel(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    from nas.executors import RayExecutor

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    times = {}
    for workers in (1, 2):
        executor = RayExecutor(workers)
        try:
            start = time.perf_counter()
            run_search(
                {
                    "name": f"par-{workers}",
                    "space": args.space,
                    "objectives": [
                        {"metric": "proxy:naswot", "direction": "maximize"},
                        {"metric": "params", "direction": "minimize"},
                    ],
                    "strategy": {"name": "random"},
                    "budget": {"trials": args.parallel_trials},
                    "workers": workers,
                    "seed": 0,
                },
                f"sqlite:///{workdir / f'parallel-{workers}.db'}",
                executor=executor,
            )
            times[workers] = time.perf_counter() - start
        finally:
            executor.close()
        print(
            f"  {workers} Ray worker(s): {times[workers]:.1f} s for {args.parallel_trials} proxy-bound trials",
            flush=True,
        )
    return {"trials": args.parallel_trials, "seconds": times, "speedup": times[1] / times[2]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="mobilenetv2-cifar")
    p.add_argument("--proxy", default="default")
    p.add_argument("--strategies", nargs="+", default=STRATEGIES)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--overhead-trials", type=int, default=1000)
    p.add_argument("--parallel-trials", type=int, default=120)
    p.add_argument("--skip", nargs="*", default=[], choices=["efficiency", "overhead", "parallel"])
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="hwnas-bench-") as tmp:
        workdir = Path(tmp)
        payload: dict[str, Any] = {}
        if "overhead" not in args.skip:
            payload["overhead"] = overhead(args, workdir)
        if "parallel" not in args.skip:
            payload["parallel"] = parallel(args, workdir)
        if "efficiency" not in args.skip:
            payload["efficiency"] = efficiency(args, workdir)
    # each part's host and date: a part skipped keeps its last figures and where they were measured
    measured = {part: host_info() for part in payload}
    previous = RESULTS / "search.json"
    if args.skip and previous.exists():
        old = json.loads(previous.read_text())
        for part in args.skip:
            if isinstance(old.get(part), dict):
                payload[part] = old[part]
                measured[part] = old.get("measured", {}).get(part, old.get("host"))
            else:
                print(f"--skip {part}: {previous} has no figures for it; they are left out")
    payload["measured"] = measured
    path = write_results("search", payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
