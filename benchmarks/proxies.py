"""Which proxy ranks trained accuracy best, on a ground truth whose own reliability is measured first.

Three steps, each resumable (every finished training run is appended to a
JSON-lines file under benchmarks/results/ as it finishes, so a run killed
at the end of a session goes on where it stopped):

``pilot``  How should the ground truth be trained? The same nets (6 per
           space, spread over their MACs) are trained with two seeds under
           each candidate protocol and tested on the validation split;
           reported: test-retest reliability, the Spearman ceiling it
           implies, and CPU hours, so reliability per CPU hour picks the
           protocol. -> results/proxies-pilot/<protocol>.jsonl, proxies-pilot.json
``truth``  The chosen protocol on ``--per-space`` nets of each space (groups
           of 3 of similar MACs across the space's range), ``--seeds`` seeds
           each (4: two seeds reached reliability 0.70 on the 60 nets, and a
           mean of four ~0.82 by Spearman-Brown; each net's further seeds are
           trained together, in the truth's order, so a truth stopped midway
           holds nets of 2 and of 4 seeds, which the report weighs as such),
           tested on the full test split. -> results/proxies-truth.jsonl
``validity`` Does the truth's order hold under longer training? Its first
           6 groups of similar-cost nets (both ends and the middle of both
           spaces' cost range, 18 nets) trained 4x as long (~4 epochs),
           one seed: ~1 epoch may reward the nets that learn fast (the big
           ones) over the ones that end best, which would favour MACs and
           params for a reason a user never sees. -> results/proxies-validity.jsonl, proxies-validity.json
``report`` Every proxy, rank combination and the few-shot predictor scored
           against the nets trained so far: Spearman / Kendall with bootstrap
           90% intervals, top-10% hit rate, Spearman within bins of equal
           MACs, regret under latency budgets, seconds per evaluation; the
           default chosen with a margin. -> results/proxies.json

Torch runs one thread per process; ``--workers`` processes train at once.

    .venv/bin/python benchmarks/proxies.py pilot [--workers 2]
    .venv/bin/python benchmarks/proxies.py truth [--protocol long] [--per-space 30] [--seeds 4] [--workers 2]
    .venv/bin/python benchmarks/proxies.py status        # the truth's reliability so far; trains nothing
    .venv/bin/python benchmarks/proxies.py pilot --protocols long --nets extremes   # the cost range's ends
    .venv/bin/python benchmarks/proxies.py validity [--workers 2]   # resumable, about 4 CPU hours a seed
    .venv/bin/python benchmarks/proxies.py validity --seed 1        # the longer runs' own seed noise
    .venv/bin/python benchmarks/proxies.py validity --groups 4 5    # some groups of 3 only (cheap ones first)
    .venv/bin/python benchmarks/proxies.py report [--write-default]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, write_results  # noqa: E402
from nas.datasets import DataSpec  # noqa: E402
from nas.proxies import evidence  # noqa: E402
from nas.proxies.check import (  # noqa: E402
    PREDICTOR_PROXIES,
    Protocol,
    RunStore,
    ScoreCache,
    budget_axis,
    paired,
    sample_nets,
    seed_matrix,
    train_runs,
)

SPACES = ("mobilenetv2-cifar", "mobiledet-cifar")
# nets up to 60M MACs: a run of the longest protocol stays near 5 CPU minutes; the range still spans 8x in MACs
MAX_MACS = 60e6
# candidate protocols, cheapest first: "short" is the one the old ground truth used (reliability 0.35)
PROTOCOLS = {
    "short": Protocol(steps=150, batch_size=64, lr=0.05, warmup=0.2, split="val"),
    "mid": Protocol(steps=200, batch_size=128, lr=0.1, warmup=0.1, split="val"),
    # mid's cost spent on 5 epochs of a fixed 6,000-image subset: nearer convergence (mid ends at train loss ~0.7)
    "subset": Protocol(steps=235, batch_size=128, lr=0.2, warmup=0.05, split="val", train_images=6000),
    "long": Protocol(steps=400, batch_size=128, lr=0.1, warmup=0.1, split="val"),
    # long, scoring the weights' exponential moving average (its warm-up, (1+t)/(10+t), keeps it at most 0.978
    # over 400 steps: mostly the last ~50 steps), the last weights' accuracy kept too, so the same runs say
    # whether averaging makes seeds agree better
    "long-ema": Protocol(steps=400, batch_size=128, lr=0.1, warmup=0.1, split="val", ema_decay=0.99),
}
# the pilot's choice: the only protocol that reached the reliability goal on its 12 nets (0.80, mean of two seeds)
TRUTH_PROTOCOL = "long"
# 60 nets; under "long" a run took about 60 s + 11 s per million MACs here, about 12 CPU hours for two seeds
TRUTH_PER_SPACE = 30
# two seeds gave reliability 0.70 on the 60 nets (one run's 0.54): four give 4r / (1 + 3r) = 0.82, the goal's 0.8
TRUTH_SEEDS = 4
PILOT_DIR = RESULTS / "proxies-pilot"
TRUTH_FILE = RESULTS / "proxies-truth.jsonl"
# the truth's protocol run 4x as long (1600 steps of 128: about 3.8 epochs of the 54,000 training images), one seed
VALIDITY_PROTOCOL = Protocol(steps=1600, batch_size=128, lr=0.1, warmup=0.05, split="both", seeds=(0,))
VALIDITY_FILE = RESULTS / "proxies-validity.jsonl"
#: the truth's first groups of 3 nets of similar MACs (its order: both ends of each space's range, then the middle)
VALIDITY_GROUPS = 6
SCORES_FILE = RESULTS / "proxies-scores.jsonl"
DATA = DataSpec(name="fashion-mnist", val_fraction=0.1)
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "nas" / "proxies" / "default.json"


def progress(label: str) -> Any:
    start = time.perf_counter()

    def show(i: int, total: int, run: dict[str, Any]) -> None:
        elapsed = time.perf_counter() - start
        print(
            f"  {label} [{i}/{total}] {run['arch_id']} seed {run['seed']}: {run['split']} accuracy "
            f"{run['accuracy']:.4f}, {run['cpu_seconds']:.0f} CPU s ({elapsed / i * (total - i) / 60:.0f} min left)",
            flush=True,
        )

    return show


def pilot_nets() -> list[Any]:
    return [a for space in SPACES for a in sample_nets(space, 6, seed=1, group=1, max_macs=MAX_MACS)]


def extremes_nets() -> list[Any]:
    """The two cheapest and the two dearest of 30 mobilenetv2-cifar nets under MAX_MACS, interleaved: is there
    spread beyond seed noise at the ends of the cost range, where the middle showed none?"""
    from searchspace.cost import count_cost

    nets = sorted(
        sample_nets("mobilenetv2-cifar", 30, seed=5, group=1, max_macs=MAX_MACS), key=lambda a: count_cost(a).macs
    )
    return [nets[0], nets[-1], nets[1], nets[-2]]


NET_SAMPLES = {"spread": ("", pilot_nets), "extremes": ("-extremes", extremes_nets)}


def store_seeds(store: RunStore) -> list[int]:
    """Every seed with a run in ``store``, in order."""
    return sorted({int(r["seed"]) for r in store.runs()})


def seed_table(store: RunStore, archs: list[Any], key: str = "accuracy") -> tuple[list[Any], list[list[float]]]:
    """The nets of ``archs`` with at least two seeds in ``store``, and their accuracies (a column per seed run
    so far, NaN where a net lacks one)."""
    return seed_matrix(store, archs, store_seeds(store), key=key)


def summarise(store: RunStore, archs: list[Any], key: str = "accuracy") -> dict[str, Any]:
    kept, table = seed_table(store, archs, key=key)
    cpu = sum(r["cpu_seconds"] for r in store.runs())
    out: dict[str, Any] = {"runs": len(store), "nets_with_two_seeds_or_more": len(kept), "cpu_hours": cpu / 3600}
    if len(kept) >= 3:
        out |= evidence.reliability(table)
        out["reliability_per_cpu_hour"] = out["reliability"] / out["cpu_hours"] if cpu else None
        values = [v for row in table for v in row if v == v]
        out["accuracy_range"] = [min(values), max(values)]
    return out


def cmd_pilot(args: argparse.Namespace) -> int:
    suffix, sample = NET_SAMPLES[args.nets]
    archs = sample()
    names = args.protocols or list(PROTOCOLS)
    for name in names:
        protocol = PROTOCOLS[name]
        store = RunStore(PILOT_DIR / f"{name}{suffix}.jsonl", protocol, DATA, label=f"pilot {name} ({args.nets})")
        print(
            f"pilot {name}: {protocol.steps} steps x {protocol.batch_size}, lr {protocol.lr} "
            f"({protocol.images():,} images per run), {len(archs)} nets x {len(protocol.seeds)} seeds",
            flush=True,
        )
        train_runs(archs, protocol, DATA, store, workers=args.workers, progress=progress(name))
    # every protocol with runs on these nets, not only the ones run now (the file keeps the whole comparison)
    summary: dict[str, Any] = {}
    for name, protocol in PROTOCOLS.items():
        path = PILOT_DIR / f"{name}{suffix}.jsonl"
        if not path.exists():
            continue
        store = RunStore(path, protocol, DATA)
        summary[name] = {"protocol": protocol.model_dump(mode="json"), **summarise(store, archs)}
        if protocol.ema_decay is not None:  # the same runs' last weights
            summary[f"{name} (last weights)"] = {
                "protocol": protocol.model_dump(mode="json"),
                **summarise(store, archs, key=f"raw_{protocol.split}_accuracy"),
            }
    rows = []
    nan = float("nan")
    for name, s in summary.items():
        p = s["protocol"]
        rows.append(
            f"{name:26s} {p['steps'] * p['batch_size']:>7,} images "
            f"(of {p.get('train_images') or 'all':>5}) "
            f"reliability {s.get('reliability_single_run', nan):.2f} one run, {s.get('reliability', nan):.2f} "
            f"mean of 2 (ceiling {s.get('ceiling', nan):.2f}); noise sd "
            f"{100 * s.get('noise_sd', nan):.2f} pts vs nets {100 * s.get('between_net_sd', nan):.2f}; "
            f"{s['cpu_hours']:.2f} CPU h"
        )
    print("\n".join(rows))
    out = write_results(
        f"proxies-pilot{suffix}",
        {"spaces": SPACES, "max_macs": MAX_MACS, "nets": [a.encode() for a in archs], "protocols": summary},
    )
    print(f"wrote {out}")
    return 0


def spread_order(n: int) -> list[int]:
    """0..n-1 farthest first: both ends, then each next index as far as possible from those taken (ties to the
    lower), so every prefix spans the whole range: 10 -> 0, 9, 4, 2, 6, 1, 3, 5, 7, 8."""
    if n <= 0:
        return []
    order = [0] + ([n - 1] if n > 1 else [])
    while len(order) < n:
        order.append(max((i for i in range(n) if i not in order), key=lambda i: (min(abs(i - j) for j in order), -i)))
    return order


def truth_nets(per_space: int) -> list[Any]:
    """``per_space`` nets of each space in groups of 3 of similar MACs (cost levels from the cheapest to
    MAX_MACS), ordered so that any prefix covers both spaces and the whole range of cost: levels farthest
    first (:func:`spread_order`), spaces alternating. The range matters: nets of the middle levels alone
    differ by less than seed noise (the first 9 nets, in an older shuffled order: reliability 0.38), nets over
    the whole range by more (the pilot's 12: 0.80). The order decides only which runs come next; runs already
    stored count wherever their net falls."""
    per: list[list[list[Any]]] = []
    for space in SPACES:
        nets = sample_nets(space, per_space, seed=0, group=3, max_macs=MAX_MACS)
        groups = [nets[i : i + 3] for i in range(0, len(nets), 3)]
        per.append([groups[i] for i in spread_order(len(groups))])
    return [a for i in range(max(map(len, per))) for groups in per if i < len(groups) for a in groups[i]]


def truth_protocol(name: str, seeds: int = TRUTH_SEEDS) -> Protocol:
    """The truth's protocol: val for choices, test to report; ``seeds`` seeds (0, 1, ...) per net."""
    return PROTOCOLS[name].model_copy(update={"split": "both", "seeds": tuple(range(seeds))})


def cmd_truth(args: argparse.Namespace) -> int:
    protocol = truth_protocol(args.protocol, args.seeds)
    archs = truth_nets(args.per_space)
    store = RunStore(TRUTH_FILE, protocol, DATA, label=f"ground truth, protocol {args.protocol}")
    print(
        f"ground truth: {len(archs)} nets x {len(protocol.seeds)} seeds, protocol {args.protocol} "
        f"({len(store)} runs already done)",
        flush=True,
    )
    train_runs(archs, protocol, DATA, store, workers=args.workers, progress=progress("truth"))
    s = summarise(store, archs)
    print(json.dumps(s, indent=1))
    return 0


def cmd_validity(args: argparse.Namespace) -> int:
    """Train the truth's first :data:`VALIDITY_GROUPS` groups 4x as long, and compare: does the longer training
    order the nets as the truth does, across cost and within groups of equal cost, and does the advantage of
    size shrink (the slope of accuracy over log10 MACs)?"""
    import numpy as np

    from latency_tables.stats import spearman
    from searchspace.cost import count_cost

    archs = truth_nets(args.per_space)[: 3 * VALIDITY_GROUPS]
    stores = {seed: validity_store(seed) for seed in (0, 1) if seed == args.seed or validity_file(seed).exists()}
    store = stores[args.seed]
    print(
        f"validity: {len(archs)} of the truth's nets, 1600 steps x 128, seed {args.seed} ({len(store)} runs done)",
        flush=True,
    )
    if not args.report_only:
        protocol = store_protocol(args.seed)
        groups = range(VALIDITY_GROUPS) if args.groups is None else args.groups
        todo = [a for i, a in enumerate(archs) if i // 3 in groups]
        train_runs(todo, protocol, DATA, store, workers=args.workers, progress=progress("validity"))
    truth_store = RunStore(TRUTH_FILE, truth_protocol(TRUTH_PROTOCOL), DATA)
    # the yardstick below is the truth's first two seeds, one against the other; "truth" is the mean of them all
    kept, first, second = paired(truth_store, archs, key="test_accuracy")
    means = dict(zip(*truth_means(truth_store, kept, "test_accuracy"), strict=True))
    rows = []
    for group, a in enumerate(archs):
        longer_runs = [r for r in (st.get(a.encode(), seed) for seed, st in stores.items()) if r is not None]
        if a in kept and stores[0].get(a.encode(), 0) is not None:
            i = kept.index(a)
            rows.append(
                {
                    "arch": a.encode(),
                    "space": space_of(a),
                    "group": group // 3,
                    "macs": float(count_cost(a).macs),
                    "params": float(count_cost(a).params),
                    "truth": means[a],
                    "truth_seeds": [first[i], second[i]],
                    # the mean of the longer seeds run so far (seed 0 first; seed 1 where --seed 1 ran)
                    "longer": float(np.mean([r["test_accuracy"] for r in longer_runs])),
                    "longer_seeds": {str(r["seed"]): r["test_accuracy"] for r in longer_runs},
                    "longer_cpu_seconds": sum(r["cpu_seconds"] for r in longer_runs),
                }
            )
    out: dict[str, Any] = {"protocol": VALIDITY_PROTOCOL.model_dump(mode="json"), "nets": rows}
    if len(rows) >= 4:
        truth = np.array([r["truth"] for r in rows])
        longer = np.array([r["longer"] for r in rows])
        seed0, seed1 = np.array([r["truth_seeds"] for r in rows]).T
        # the yardstick: how well one ~1-epoch run orders these nets like another seed of itself. A longer run
        # measuring the same thing would order them about as well against either truth seed; much worse, and
        # the longer training orders the nets differently (or is itself that noisy: its own second seed says)
        yardstick = {
            "spearman_truth_seed0_vs_seed1": float(spearman(seed0, seed1)),
            "spearman_truth_seed_vs_longer": float((spearman(seed0, longer) + spearman(seed1, longer)) / 2),
        }
        both = [r for r in rows if len(r["longer_seeds"]) == 2]
        if len(both) >= 4:
            l0, l1 = np.array([[r["longer_seeds"]["0"], r["longer_seeds"]["1"]] for r in both]).T
            yardstick["longer_nets_with_two_seeds"] = len(both)
            yardstick["spearman_longer_seed0_vs_seed1"] = float(spearman(l0, l1))
            yardstick["longer_test_retest"] = evidence.test_retest(list(l0), list(l1))
            # within groups of equal cost, what a latency-bound choice depends on: do the longer run's two seeds
            # order a pair alike (and the truth's two seeds, on the same pairs)?
            both_pairs = equal_cost_pairs(both)
            yardstick["within_group_pairs_two_seeds"] = len(both_pairs)
            yardstick["within_group_longer_seeds_agree"] = ordered_alike(
                both_pairs, [r["longer_seeds"]["0"] for r in both], [r["longer_seeds"]["1"] for r in both]
            )
            yardstick["within_group_truth_seeds_agree"] = ordered_alike(
                both_pairs, [r["truth_seeds"][0] for r in both], [r["truth_seeds"][1] for r in both]
            )
        out["yardstick"] = yardstick
        logm = np.log10([r["macs"] for r in rows])
        # within groups of similar cost: share of pairs the two trainings order alike
        group_pairs = equal_cost_pairs(rows)
        pairs, agree = len(group_pairs), ordered_alike(group_pairs, truth, longer)
        out |= {
            "spearman_truth_vs_longer": float(spearman(truth, longer)),
            "within_group_pairs": pairs,
            "within_group_agreement": agree / pairs if pairs else None,
            # accuracy points per 10x MACs: does the size advantage shrink with longer training?
            "slope_per_decade_truth": float(100 * np.polyfit(logm, truth, 1)[0]),
            "slope_per_decade_longer": float(100 * np.polyfit(logm, longer, 1)[0]),
            "gain_points": [float(100 * v) for v in (longer - truth)],
            "spearman_with": {
                k: {
                    "truth": float(spearman([r[k] for r in rows], truth)),
                    "longer": float(spearman([r[k] for r in rows], longer)),
                }
                for k in ("macs", "params")
            },
            "cpu_hours": sum(r["cpu_seconds"] for st in stores.values() for r in st.runs()) / 3600,
            "scorers": validity_scorers(rows, truth_store, args.per_space, args.scores),
        }
        print(
            f"{len(rows)} nets: Spearman truth vs 4x longer {out['spearman_truth_vs_longer']:.2f}; within groups of "
            f"equal cost {agree} of {pairs} pairs ordered alike; accuracy per 10x MACs "
            f"{out['slope_per_decade_truth']:.2f} pts (truth) vs {out['slope_per_decade_longer']:.2f} (longer); "
            f"Spearman of macs {out['spearman_with']['macs']['truth']:.2f} (truth) vs "
            f"{out['spearman_with']['macs']['longer']:.2f} (longer), "
            f"params {out['spearman_with']['params']['truth']:.2f} vs {out['spearman_with']['params']['longer']:.2f}; "
            f"{out['cpu_hours']:.2f} CPU h"
        )
        print(
            "yardstick: Spearman truth seed 0 vs seed 1 {:.2f}; a truth seed vs longer {:.2f}{}".format(
                yardstick["spearman_truth_seed0_vs_seed1"],
                yardstick["spearman_truth_seed_vs_longer"],
                f"; longer seed 0 vs seed 1 {yardstick['spearman_longer_seed0_vs_seed1']:.2f} "
                f"({yardstick['longer_nets_with_two_seeds']} nets; reliability of the longer run's mean of 2: "
                f"{yardstick['longer_test_retest']['reliability']:.2f}, noise sd "
                f"{100 * yardstick['longer_test_retest']['noise_sd']:.2f} pts vs nets "
                f"{100 * yardstick['longer_test_retest']['between_net_sd']:.2f}; pairs of equal cost ordered alike "
                f"by the two seeds: longer {yardstick['within_group_longer_seeds_agree']} of "
                f"{yardstick['within_group_pairs_two_seeds']}, truth {yardstick['within_group_truth_seeds_agree']} "
                f"of {yardstick['within_group_pairs_two_seeds']})"
                if "spearman_longer_seed0_vs_seed1" in yardstick
                else "",
            )
        )
        print(f"{'scorer':44s} {'vs truth':>8s} {'vs longer':>9s}")
        for name, r in sorted(out["scorers"].items(), key=lambda kv: -np.nan_to_num(kv[1]["longer"], nan=-9)):
            print(f"{name:44s} {r['truth']:8.2f} {r['longer']:9.2f}")
    print(f"wrote {write_results('proxies-validity', evidence.strict_json(out))}")
    return 0


def equal_cost_pairs(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Index pairs of the rows that share a group of equal cost."""
    return [(i, j) for i, j in itertools.combinations(range(len(rows)), 2) if rows[i]["group"] == rows[j]["group"]]


def ordered_alike(pairs: list[tuple[int, int]], first: Any, second: Any) -> int:
    """How many of ``pairs`` the two measurements order the same way."""
    return sum(bool((first[i] - first[j]) * (second[i] - second[j]) > 0) for i, j in pairs)


def validity_file(seed: int) -> Path:
    return VALIDITY_FILE if seed == 0 else VALIDITY_FILE.with_name(f"proxies-validity-seed{seed}.jsonl")


def store_protocol(seed: int) -> Protocol:
    return VALIDITY_PROTOCOL.model_copy(update={"seeds": (seed,)})


def validity_store(seed: int) -> RunStore:
    """The longer runs of one seed, a file each (seed 0's file predates the second seed)."""
    label = "validity: the truth's nets trained 4x as long" + (f", seed {seed}" if seed else "")
    return RunStore(validity_file(seed), store_protocol(seed), DATA, label=label)


def validity_scorers(
    rows: list[dict[str, Any]], truth_store: RunStore, per_space: int, scores_file: Path
) -> dict[str, dict[str, float]]:
    """Every scorer of the report (the predictor fitted leave-one-out on the whole truth, as there) on the
    validity nets: Spearman with the truth's mean and with the longer run. Scores come from the report's cache."""
    from latency_tables.stats import spearman
    from nas.proxies.check import all_scores

    archs, truth_val = truth_means(truth_store, truth_nets(per_space), "val_accuracy")
    spaces = [space_of(a) for a in archs]
    scores, _ = all_scores(archs, spaces, truth_val, DATA, cache=ScoreCache(scores_file, DATA))
    where = {a.encode(): i for i, a in enumerate(archs)}
    idx = [where[r["arch"]] for r in rows]
    out = {}
    for name, values in scores.items():
        mine = [values[i] for i in idx]
        out[name] = {k: float(spearman(mine, [r[k] for r in rows])) for k in ("truth", "longer")}
    return out


def truth_means(store: RunStore, archs: list[Any], key: str) -> tuple[list[Any], list[float]]:
    """The nets with at least two seeds and their accuracy over all their seeds (:func:`evidence.net_means`)."""
    kept, table = seed_table(store, archs, key=key)
    return kept, evidence.net_means(table) if kept else []


LATENCY_PROFILE = "ort-cpu-fp32-t1"
#: the issue's speed goal for the default: CPU seconds per evaluation of a 32x32 net on one core
SPEED_GOAL_32 = 0.1


def space_of(arch: Any) -> str:
    import searchspace as ss

    return next(s for s in SPACES if ss.load_space(s).contains(arch))


def cmd_status(args: argparse.Namespace) -> int:
    """How far the ground truth got and how reliable it is so far (test and validation accuracy), without
    training anything: what `truth` prints at its end, for a truth still under way or paused."""
    store = RunStore(TRUTH_FILE, truth_protocol(args.protocol), DATA)
    archs = truth_nets(args.per_space)
    out: dict[str, Any] = {
        "protocol": args.protocol,
        "nets_planned": len(archs),
        "seeds_planned": args.seeds,
        "test": summarise(store, archs, key="test_accuracy"),
        "validation": summarise(store, archs, key="val_accuracy"),
    }
    for split in ("test", "validation"):
        r = out[split]
        if r.get("reliability") is not None:
            seeds = ", ".join(f"{n} with {k}" for k, n in r["seeds_per_net"].items())
            print(
                f"{split:10s} {r['nets_with_two_seeds_or_more']} of {len(archs)} nets with two seeds or more "
                f"({seeds}): "
                f"reliability {r['reliability_single_run']:.2f} one run, {r['reliability']:.2f} mean of their "
                f"seeds; noise sd {100 * r['noise_sd']:.2f} pts vs nets {100 * r['between_net_sd']:.2f}"
            )
    print(f"{out['test']['runs']} runs, {out['test']['cpu_hours']:.2f} CPU h")
    print(f"wrote {write_results('proxies-truth-status', out)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import math

    import numpy as np

    from nas.proxies.check import (
        BASELINES,
        all_scores,
        choice_stability,
        judge,
        predictor_label,
        simplicity_order,
    )
    from searchspace.cost import count_cost

    if args.write_default and args.name != "proxies":
        print("--write-default records its evidence in benchmarks/results/proxies.json: leave --name out")
        return 1
    protocol = truth_protocol(args.protocol)
    store = RunStore(TRUTH_FILE, protocol, DATA)
    archs, test_runs = seed_table(store, truth_nets(args.per_space), key="test_accuracy")
    val_archs, val_runs = seed_table(store, archs, key="val_accuracy")
    if val_archs != archs:  # every run measures both splits; a file edited by hand might not
        print(f"{TRUTH_FILE}: some runs lack a validation or test accuracy; the report needs both")
        return 1
    if len(archs) < 12:
        print(f"only {len(archs)} nets have two seeds in {TRUTH_FILE}; run `truth` first")
        return 1
    truth_test, truth_val = evidence.net_means(test_runs), evidence.net_means(val_runs)
    macs = [float(count_cost(a).macs) for a in archs]
    spaces = [space_of(a) for a in archs]
    # the shipped tables, not this host's: the committed evidence must not depend on the VM a report ran on
    latency, latency_source = budget_axis(archs, spaces, LATENCY_PROFILE, this_host=False)
    latency_source += " (shipped table)" if latency_source != "macs" else ""
    print(
        f"scoring {len(archs)} nets (and {args.reference_size} reference nets per space) with every proxy, "
        "one thread ...",
        flush=True,
    )
    cache = ScoreCache(args.scores, DATA)
    scores, seconds = all_scores(archs, spaces, truth_val, DATA, reference_size=args.reference_size, cache=cache)
    predictor_name = predictor_label()

    # the choice: on the validation accuracy of a random half of the nets; reported on the other half's test
    rng = np.random.default_rng(args.seed)
    perm = rng.permutation(len(archs))
    choose_idx, held_idx = np.sort(perm[: len(archs) // 2]), np.sort(perm[len(archs) // 2 :])

    def subset(idx: np.ndarray, truth: list[float]) -> dict[str, dict[str, Any]]:
        return judge(
            {n: [v[i] for i in idx] for n, v in scores.items()},
            [truth[i] for i in idx],
            [macs[i] for i in idx],
            [latency[i] for i in idx],
            samples=args.bootstrap,
        )

    on_choice = subset(choose_idx, truth_val)
    order = simplicity_order(scores, seconds)  # the counts (macs, params) are baselines, not candidates
    # the default is what every search computes for every candidate: only scorers within the speed goal at 32x32
    # compete (seconds measured on the truth's own nets, one core); the choice without that limit is recorded
    fast = [n for n in order if seconds[n] <= SPEED_GOAL_32]
    unlimited = evidence.choose(on_choice, order, key="balanced", interval="balanced_interval")
    if fast:
        choice = evidence.choose(on_choice, fast, key="balanced", interval="balanced_interval")
    else:  # a slow host: no proxy within the speed goal; the choice is made without it, and the goal is missed
        print(f"no proxy within {SPEED_GOAL_32} s per 32x32 net on this host: choosing without the speed limit")
        choice = unlimited
    held = subset(held_idx, truth_test)
    # the same rule on other random halves: how much the choice owes to the half it was made on
    stability = choice_stability(scores, truth_val, macs, fast or order, samples=100, seed=args.seed + 1)
    table = judge(scores, truth_test, macs, latency, samples=args.bootstrap)
    reliability = {"test": evidence.reliability(test_runs), "val": evidence.reliability(val_runs)}
    # the ceiling of the equal-cost figures: how well the truth itself orders nets within the bins they use
    mac_bins = evidence.control_bins(macs)
    within = evidence.reliability_within(test_runs, mac_bins) if mac_bins is not None else None
    seeds_per_net = reliability["test"]["seeds_per_net"]  # {seeds: nets}
    winner = choice["choice"]
    print()
    rel = reliability["test"]
    print(
        f"ground truth: {len(archs)} nets ({', '.join(f'{spaces.count(s)} {s}' for s in SPACES)}), "
        f"{min(map(int, seeds_per_net))}-{max(map(int, seeds_per_net))} seeds each "
        f"(mean {sum(int(k) * n for k, n in seeds_per_net.items()) / len(archs):.1f}), "
        f"test accuracy {min(truth_test):.4f}..{max(truth_test):.4f}; reliability {rel['reliability']:.2f} "
        f"(one run {rel['reliability_single_run']:.2f}), ceiling {rel['ceiling']:.2f}; noise sd "
        f"{100 * rel['noise_sd']:.2f} pts vs nets {100 * rel['between_net_sd']:.2f}"
    )
    if within is not None:
        w = within["pooled"]
        print(
            f"at equal MACs (within MAC quintiles): reliability {w['reliability']:.2f}, ceiling {w['ceiling']:.2f} "
            f"(nets {100 * w['between_net_sd']:.2f} pts apart within a bin; per bin "
            + ", ".join(f"{b['reliability']:.2f}" for b in within["bins"])
            + ")"
        )
    header = (
        f"{'scorer':44s} {'spearman [90%]':>22s} {'kendall':>7s} {'cost-ctl [90%]':>22s} {'lat-ctl':>7s} "
        f"{'top10':>5s} {'regret':>7s} {'s/net':>6s}"
    )
    print(header)
    for n in sorted(table, key=lambda n: -(table[n]["balanced"] if not math.isnan(table[n]["balanced"]) else -9)):
        r = table[n]
        lo, hi = r["spearman_interval"]
        clo, chi = r["cost_controlled_interval"]
        mark = " <- default" if n == winner else ""
        print(
            f"{n:44s} {r['spearman']:6.3f} [{lo:6.3f},{hi:6.3f}] {r['kendall']:7.3f} "
            f"{r['cost_controlled_spearman']:6.3f} [{clo:6.3f},{chi:6.3f}] {r['latency_controlled_spearman']:7.3f} "
            f"{r['top10_hit']:5.2f} "
            f"{100 * r['regret']['mean']:4.2f}pts {seconds[n]:6.3f}{mark}"
        )
    print(f"a pick at random within each budget gives up {100 * table[winner]['regret']['random']:.2f} pts")
    # the default's regret against the baselines' and a random pick's: paired, on the same resamples of nets
    budgets = evidence.budgets_for(latency)
    # each net's truth is a mean of its seeds: a run's noise over the square root of how many it has
    truth_sd = [rel["noise_sd"] / math.sqrt(sum(v == v for v in row)) for row in test_runs]
    regret_vs = {
        other: evidence.regret_difference(
            scores[winner],
            None if other == "random pick" else scores[other],
            truth_test,
            latency,
            budgets,
            truth_sd=truth_sd,
            samples=args.bootstrap,
        )
        for other in (*BASELINES, "random pick")
    }
    for other, d in regret_vs.items():
        lo, hi = d["interval"]
        nlo, nhi = d["nets_resampled_interval"]
        print(
            f"regret of {winner} minus {other}: {100 * d['difference']:+.2f} pts "
            f"[90% over the truth's noise: {100 * lo:+.2f}, {100 * hi:+.2f}; over resampled nets: "
            f"{100 * nlo:+.2f}, {100 * nhi:+.2f}, median {100 * d['nets_resampled_median']:+.2f}]"
        )
    print(
        f"default: {winner} (chosen on {len(choose_idx)} nets' validation accuracy by balanced Spearman, "
        f"margin = interval half-width, among all but the baselines {', '.join(BASELINES)}); on the other "
        f"{len(held_idx)} nets' test accuracy: "
        + "; ".join(
            f"{n} Spearman {held[n]['spearman']:.3f}, cost-controlled {held[n]['cost_controlled_spearman']:.3f}"
            for n in (winner, *BASELINES)
        )
    )
    print(
        f"the same rule on {sum(stability.values())} other random halves chooses: "
        + ", ".join(f"{n} {k}" for n, k in sorted(stability.items(), key=lambda kv: -kv[1]) if k)
    )
    speed = default_speed(winner, predictor_name)
    print(f"seconds per evaluation of the default on one core: {speed}")
    if unlimited["choice"] != winner:
        print(
            f"without the speed limit ({SPEED_GOAL_32} s per 32x32 net) the choice would be {unlimited['choice']} "
            f"({seconds[unlimited['choice']]:.3f} s per net)"
        )
    finite_cc = [r["cost_controlled_spearman"] for r in table.values() if not math.isnan(r["cost_controlled_spearman"])]
    goals = {
        "spearman_at_least_0.8": bool(table[winner]["spearman"] >= 0.8),
        "held_out_spearman_at_least_0.8": bool(held[winner]["spearman"] >= 0.8),
        "above_macs_and_params": bool(
            table[winner]["spearman"] > max(table["params"]["spearman"], table["macs"]["spearman"])
        ),
        "best_cost_controlled": bool(finite_cc and table[winner]["cost_controlled_spearman"] >= max(finite_cc) - 1e-12),
        "at_most_0.1_s_at_32": bool(speed["mobilenetv2-cifar@32"] <= SPEED_GOAL_32),
        "at_most_1_s_at_224": bool(speed["mobilenetv2@224"] <= 1.0),
        "reliability_at_least_0.8": bool(rel["reliability"] >= 0.8),
        # what a search driven by the default gives a user, against sampling nets blindly
        "regret_below_random_pick": bool(table[winner]["regret"]["mean"] < table[winner]["regret"]["random"]),
        # the same on the nets the choice never saw (the all-nets figures include the half it was made on)
        "held_out_regret_below_random_pick": bool(held[winner]["regret"]["mean"] < held[winner]["regret"]["random"]),
    }
    print("goals: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in goals.items()))
    cpu_hours = sum(r["cpu_seconds"] for r in store.runs()) / 3600
    payload = {
        "default": winner,
        "n_architectures": len(archs),
        "spaces": {s: spaces.count(s) for s in SPACES},
        "ground_truth": {
            "file": TRUTH_FILE.name,
            "protocol": args.protocol,
            **protocol.model_dump(mode="json"),
            "dataset": DATA.model_dump(mode="json"),
            "cpu_hours": cpu_hours,
            "seeds_per_net": seeds_per_net,
            "test_accuracy_range": [min(truth_test), max(truth_test)],
        },
        "reliability": reliability,
        "ceiling": rel["ceiling"],
        "reliability_at_equal_macs": within,
        "cost_controlled_ceiling": within["pooled"]["ceiling"] if within is not None else None,
        "latency": latency_source,
        "choice": {
            **choice,
            "nets_chosen_on": len(choose_idx),
            "candidates": fast,
            "without_speed_limit": unlimited,
            "other_halves": stability,
            "regret_minus": regret_vs,
            "held_out": held_out_figures(held[winner]),
            "baselines_held_out": {n: held_out_figures(held[n]) for n in BASELINES},
        },
        "beats_params_and_macs": bool(
            table[winner]["spearman"] > max(table["params"]["spearman"], table["macs"]["spearman"])
        ),
        "default_seconds": speed,
        "goals": goals,
        "proxies": {
            n: {**r, "cost_controlled_spearman": r["cost_controlled_spearman"], "seconds_per_eval": seconds[n]}
            for n, r in table.items()
        },
        "scores": {n: [None if math.isnan(v) else v for v in vals] for n, vals in scores.items()},
        "nets": [a.encode() for a in archs],
    }
    out = write_results(args.name, payload)
    print(f"wrote {out}")
    if args.write_default:
        if winner.startswith("predictor:"):
            print("the predictor won; default.json keeps a proxy (a predictor is fitted per user, hwnas proxies fit)")
        else:
            source = (
                "benchmarks/proxies.py report: chosen by balanced Spearman (mean of Spearman and Spearman within "
                f"MAC quintiles) on the validation accuracy of {len(choose_idx)} of {len(archs)} nets of "
                f"{', '.join(SPACES)}, with a margin, among the proxies within the speed goal (the counts "
                f"{' and '.join(BASELINES)} are baselines, never the default); on the other {len(held_idx)} nets' "
                f"test accuracy: Spearman {held[winner]['spearman']:.3f}, cost-controlled "
                f"{held[winner]['cost_controlled_spearman']:.3f}"
            )
            DEFAULT_FILE.write_text(
                json.dumps(
                    evidence.strict_json(
                        {
                            "proxy": winner,
                            "source": source,
                            "evidence": "benchmarks/results/proxies.json",
                            "nets": len(archs),
                            "reliability": rel["reliability"],
                            "ceiling": rel["ceiling"],
                            "cost_controlled_ceiling": payload["cost_controlled_ceiling"],
                            "held_out": payload["choice"]["held_out"],
                            "baselines_held_out": payload["choice"]["baselines_held_out"],
                            "all_nets": {
                                k: table[winner][k]
                                for k in (
                                    "spearman",
                                    "spearman_interval",
                                    "cost_controlled_spearman",
                                    "latency_controlled_spearman",
                                    "regret",
                                )
                            },
                            "regret_minus": regret_vs,
                            "baselines_all_nets": {
                                n: {
                                    k: table[n][k]
                                    for k in ("spearman", "cost_controlled_spearman", "latency_controlled_spearman")
                                }
                                | {"regret": table[n]["regret"]["mean"]}
                                for n in BASELINES
                            },
                            "passed_over": choice["passed_over"],
                            "chosen_on_other_halves": stability,
                            "seconds_per_eval": speed,
                            "goals": goals,
                        }
                    ),
                    indent=2,
                    allow_nan=False,
                )
                + "\n"
            )
            print(f"default proxy -> {winner} ({DEFAULT_FILE})")
    return 0


HELD_OUT_KEYS = ("spearman", "spearman_interval", "cost_controlled_spearman", "cost_controlled_interval", "balanced")


def held_out_figures(result: dict[str, Any]) -> dict[str, Any]:
    """What default.json keeps of a scorer's evidence on the held-out half."""
    return {k: result[k] for k in HELD_OUT_KEYS} | {"regret": result["regret"]["mean"]}


def default_speed(name: str, predictor_name: str, repeats: int = 5) -> dict[str, float]:
    """Median CPU seconds of one evaluation on one core: the median-MACs net of mobilenetv2-cifar (32x32) and of
    mobilenetv2 (224x224), a fresh reference-free scorer each time (ensembles: the members' sum)."""
    import random

    import numpy as np
    import torch

    import searchspace as ss
    from nas import proxies
    from nas.proxies.ensemble import is_ensemble, parse_members
    from searchspace.cost import count_cost

    torch.set_num_threads(1)
    members = PREDICTOR_PROXIES if name == predictor_name else (parse_members(name) if is_ensemble(name) else (name,))
    out = {}
    for space in ("mobilenetv2-cifar", "mobilenetv2"):
        sample = [ss.load_space(space).sample(random.Random(f"hwnas-proxy-speed:{space}:{i}")) for i in range(21)]
        arch = sorted(sample, key=lambda a: count_cost(a).macs)[10]
        arch = arch.model_copy(update={"resolution": 224 if space == "mobilenetv2" else 32})
        x, y, classes = proxies.default_batch(arch, DATA)
        arch = proxies.for_classes(arch, classes)
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for m in members:
                proxies.score(m, arch, (x, y))
            times.append(time.process_time() - start)
        out[f"{space}@{arch.resolution}"] = float(np.median(times))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("pilot", help="train the pilot nets under each candidate protocol")
    a.add_argument("--protocols", nargs="*", choices=list(PROTOCOLS))
    a.add_argument("--nets", choices=list(NET_SAMPLES), default="spread", help="which nets (default: 6 per space)")
    a.add_argument("--workers", type=int, default=2)
    a = sub.add_parser("truth", help="train the ground truth under the chosen protocol")
    a.add_argument("--protocol", choices=list(PROTOCOLS), default=TRUTH_PROTOCOL)
    a.add_argument("--per-space", type=int, default=TRUTH_PER_SPACE)
    a.add_argument(
        "--seeds", type=int, default=TRUTH_SEEDS, choices=range(2, 11), help="seeds per net (0, 1, ...); default 4"
    )
    a.add_argument("--workers", type=int, default=2)
    a = sub.add_parser("status", help="the ground truth's progress and reliability so far (trains nothing)")
    a.add_argument("--protocol", choices=list(PROTOCOLS), default=TRUTH_PROTOCOL)
    a.add_argument("--per-space", type=int, default=TRUTH_PER_SPACE)
    a.add_argument(
        "--seeds", type=int, default=TRUTH_SEEDS, choices=range(2, 11), help="seeds per net the truth plans (default 4)"
    )
    a = sub.add_parser("validity", help="the truth's first nets trained 4x as long: does its order hold?")
    a.add_argument("--per-space", type=int, default=TRUTH_PER_SPACE)
    a.add_argument("--workers", type=int, default=2)
    a.add_argument("--report-only", action="store_true", help="compare the runs done so far; train nothing")
    a.add_argument(
        "--seed",
        type=int,
        choices=(0, 1),
        default=0,
        help="1: train the same nets with a second seed (proxies-validity-seed1.jsonl): the longer run's own noise",
    )
    a.add_argument(
        "--groups",
        type=int,
        nargs="+",
        choices=range(VALIDITY_GROUPS),
        help="train only these groups of 3 (0-based, in the truth's order), e.g. cheap ones first; default: all",
    )
    a.add_argument("--scores", type=Path, default=SCORES_FILE, help="the report's score cache")
    a = sub.add_parser("report", help="score every proxy against the nets trained so far and choose the default")
    a.add_argument("--protocol", choices=list(PROTOCOLS), default=TRUTH_PROTOCOL)
    a.add_argument("--per-space", type=int, default=TRUTH_PER_SPACE)
    a.add_argument("--reference-size", type=int, default=32)
    a.add_argument("--bootstrap", type=int, default=1000)
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--write-default", action="store_true", help="record the choice in nas/proxies/default.json")
    a.add_argument(
        "--scores",
        type=Path,
        default=SCORES_FILE,
        help="every net's proxy scores and CPU seconds, appended as they are computed and reused by the next report "
        "(delete it to score and time everything again, say on a quieter machine)",
    )
    a.add_argument(
        "--name",
        default="proxies",
        help="results file (benchmarks/results/NAME.json); e.g. proxies-preliminary for a truth still under way",
    )
    args = p.parse_args(argv)
    commands = {"pilot": cmd_pilot, "truth": cmd_truth, "status": cmd_status, "validity": cmd_validity}
    return (commands | {"report": cmd_report})[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
