"""How well do the proxies rank real accuracy? A trained ground truth, every proxy against it, and their speed.

1. Ground truth: a seeded sample of architectures from a small built-in
   space is trained on Fashion-MNIST for a fixed short budget (nas.training,
   one thread per worker process, ``--workers`` processes) and tested on the
   test split. Results are cached in
   ``benchmarks/results/proxies-ground-truth.json`` (committed, so the
   correlations can be re-checked without retraining); only nets missing
   from it are trained. A few nets are trained again with another seed, which
   measures how reproducible the ground truth itself is.
2. Every registered proxy scores every net (one fixed batch of 64 training
   images, one thread; the time per evaluation is recorded), and so do the
   ensembles listed in ``ENSEMBLES``, the way a search uses them (each member
   standardised against a reference sample of the space).
3. Spearman and Kendall correlation with test accuracy, top-10 hit rate,
   seconds per evaluation. The default proxy is chosen by Spearman; since
   choosing on the same nets flatters the winner, the choice is also
   cross-validated (chosen on half the nets, scored on the other half).

Writes benchmarks/results/proxies.json. ``--write-default`` also records the
winner in nas/proxies/default.json, which is what ``default`` means.

    .venv/bin/python benchmarks/proxies.py [--space mobilenetv2-cifar] [--n 60] [--steps 150] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_results  # noqa: E402
from latency_tables.stats import kendall_tau_b, spearman  # noqa: E402

GROUND_TRUTH = RESULTS / "proxies-ground-truth.json"
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "nas" / "proxies" / "default.json"
# candidate ensembles, declared before looking at results: the literature's vote, and pairs / triples of
# proxies from different families (gradient saliency, activation patterns, expressivity, size)
ENSEMBLES = [
    "ensemble:synflow+jacob_cov+snip",
    "ensemble:synflow+naswot",
    "ensemble:naswot+zen",
    "ensemble:zico+naswot",
    "ensemble:synflow+naswot+zico",
    "ensemble:naswot+zen+zico",
    "ensemble:synflow+zen+naswot",
    "ensemble:params+naswot",
    "ensemble:macs+naswot+synflow",
]


def settings_key(args: argparse.Namespace) -> dict[str, Any]:
    return {"space": args.space, "dataset": "fashion-mnist", "steps": args.steps, "batch_size": 64, "lr": args.lr,
            "warmup": args.warmup, "clip_grad_norm": args.clip, "val_fraction": 0.1,
            "test_samples": args.test_samples}


# ------------------------------------------------------------------ ground truth
def train_and_test(code: str, seed: int, key: dict[str, Any]) -> dict[str, Any]:
    """Worker: train one net on one thread, then its accuracy on the test split."""
    import torch

    from nas.datasets import DataSpec
    from nas.training import TrainSettings, evaluate, train_model
    from searchspace.architecture import Architecture

    torch.set_num_threads(1)
    arch = Architecture.decode(code)
    view = DataSpec(name="fashion-mnist", val_fraction=key["val_fraction"]).view(arch.resolution, arch.in_channels)
    settings = TrainSettings(steps=key["steps"], batch_size=key["batch_size"], lr=key["lr"], evals=2,
                             warmup=key["warmup"], clip_grad_norm=key["clip_grad_norm"], val_samples=1000, threads=1)
    model, result = train_model(arch, view, settings, seed=seed)
    start = time.perf_counter()
    test = evaluate(model, view, "test", key["test_samples"])
    return {"arch": code, "arch_id": arch.arch_id, "seed": seed, "test_accuracy": test,
            "test_seconds": time.perf_counter() - start, **result.as_dict()}


def _worker(job: tuple[str, int, dict[str, Any]]) -> dict[str, Any]:
    return train_and_test(*job)


def sample_archs(space_name: str, n: int, seed: int) -> list[Any]:
    import searchspace as ss

    space = ss.load_space(space_name)
    rng = random.Random(f"hwnas-proxies:{space_name}:{seed}")
    seen: dict[str, Any] = {}
    while len(seen) < n:
        a = space.sample(rng)
        seen.setdefault(a.arch_id, a)
    return list(seen.values())


def load_ground_truth(key: dict[str, Any], path: Path = GROUND_TRUTH) -> dict[str, Any]:
    if path.exists():
        data = json.loads(path.read_text())
        if data.get("settings") == key:
            return data
        print(f"{path.name}: settings differ from this run's; starting a new ground truth")
    return {"settings": key, "runs": []}


def save_ground_truth(data: dict[str, Any], path: Path = GROUND_TRUTH) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def run_jobs(data: dict[str, Any], jobs: list[tuple[str, int, dict[str, Any]]], workers: int,
             save: Any) -> dict[str, Any]:
    """Train the jobs not yet in ``data["runs"]``, saving after each one (so an interrupted run resumes)."""
    done = {(r["arch"], r["seed"]) for r in data["runs"]}
    todo = [j for j in jobs if (j[0], j[1]) not in done]
    if not todo:
        return data
    print(f"training {len(todo)} nets ({len(jobs) - len(todo)} cached) on {workers} worker(s), "
          f"{jobs[0][2]['steps']} steps")
    start = time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, maxtasksperchild=4) as pool:
        for i, run in enumerate(pool.imap_unordered(_worker, todo), 1):
            data["runs"].append(run)
            save(data)
            elapsed = time.perf_counter() - start
            print(f"  [{i}/{len(todo)}] test {run['test_accuracy']:.4f} val {run['val_accuracy']:.4f} "
                  f"{run['seconds']:.0f}s train  ({elapsed / i * (len(todo) - i) / 60:.0f} min left)", flush=True)
    return data


def ensure_ground_truth(archs: list[Any], repeats: int, key: dict[str, Any], workers: int) -> dict[str, Any]:
    jobs = [(a.encode(), 0, key) for a in archs] + [(a.encode(), 1, key) for a in archs[:repeats]]
    return run_jobs(load_ground_truth(key), jobs, workers, save_ground_truth)


def seed_pairs(runs: dict[tuple[str, int], dict[str, Any]], codes: list[str]) -> list[tuple[float, float]]:
    """(seed 0, seed 1) test accuracy of each of ``codes`` trained with both seeds."""
    return [(runs[(c, 0)]["test_accuracy"], runs[(c, 1)]["test_accuracy"]) for c in codes
            if (c, 0) in runs and (c, 1) in runs]


def seed_noise(runs: dict[tuple[str, int], dict[str, Any]], codes: list[str]) -> dict[str, Any]:
    """How reproducible is a single training run? Nets trained with seeds 0 and 1, compared."""
    rep = seed_pairs(runs, codes)
    first = [r["curve"][0]["train_loss"] for r in runs.values() if r.get("curve")]
    return {
        "nets": len(rep),
        "mean_abs_diff": float(np.mean([abs(u - v) for u, v in rep])) if rep else None,
        "max_abs_diff": float(np.max([abs(u - v) for u, v in rep])) if rep else None,
        "spearman_between_seeds": spearman([u for u, _ in rep], [v for _, v in rep]) if len(rep) > 2 else None,
        # a first-half training loss above ln(10) (chance) means the run blew up before it learned
        "runs_above_chance_loss_early": sum(1 for v in first if v > math.log(10)),
        "runs": len(runs),
    }


def reliability(pairs: list[tuple[float, float]], truth: list[float]) -> dict[str, Any]:
    """How much of the spread between nets is the nets' and how much the training run's (test-retest).

    A single run's accuracy is the net's own plus noise; two seeds of the same
    net differ by noise alone, so the noise variance is half the mean squared
    difference between seeds. Reliability is the share of the ground truth's
    variance that is not noise, and its square root the highest rank
    correlation any proxy can be expected to reach against this ground truth
    (Spearman's correction for attenuation).
    """
    diffs = [u - v for u, v in pairs]
    if len(diffs) < 2 or len(truth) < 3:
        return {}
    noise_var = float(np.mean(np.square(diffs)) / 2)
    total_var = float(np.var(truth, ddof=1))
    share = max(0.0, 1.0 - noise_var / total_var) if total_var > 0 else 0.0
    return {"noise_sd": math.sqrt(noise_var), "between_net_sd": math.sqrt(total_var), "reliability": share,
            "correlation_ceiling": math.sqrt(share)}


def pilot(archs: list[Any], key: dict[str, Any], workers: int) -> dict[str, Any]:
    """Train ``archs`` with two seeds under ``key``: is this protocol reproducible enough to be a ground truth?"""
    path = RESULTS / "proxies-pilot.json"
    book = json.loads(path.read_text()) if path.exists() else {"pilots": []}
    entry = next((e for e in book["pilots"] if e["settings"] == key), None)
    if entry is None:
        entry = {"settings": key, "runs": []}
        book["pilots"].append(entry)

    def save(_: dict[str, Any]) -> None:
        RESULTS.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(book, indent=1) + "\n")
        os.replace(tmp, path)

    jobs = [(a.encode(), s, key) for a in archs for s in (0, 1)]
    run_jobs(entry, jobs, workers, save)
    codes = [a.encode() for a in archs]
    runs = {(r["arch"], r["seed"]): r for r in entry["runs"] if r["arch"] in codes}
    entry["noise"] = seed_noise(runs, codes)
    entry["test_accuracy_range"] = [min(r["test_accuracy"] for r in runs.values()),
                                    max(r["test_accuracy"] for r in runs.values())]
    save(entry)
    print(f"{len(archs)} nets x 2 seeds, {json.dumps(key)}:")
    print(f"  {json.dumps(entry['noise'])}; test accuracy {entry['test_accuracy_range']}")
    return entry


# ------------------------------------------------------------------ proxies
def score_singles(archs: list[Any], names: list[str], batch: tuple[Any, Any], label: str
                  ) -> tuple[dict[str, list[float]], dict[str, float], dict[str, int]]:
    """Every proxy on every net, one thread; a proxy that cannot score a net is counted and ranks it last."""
    import torch

    from nas import proxies
    from nas.errors import ProxyError

    torch.set_num_threads(1)
    scores: dict[str, list[float]] = {}
    seconds: dict[str, float] = {}
    failures: dict[str, int] = {}
    for name in names:
        vals, times, failed = [], [], 0
        for a in archs:
            t = time.perf_counter()
            try:
                v = proxies.score(name, a, batch, seed=0)
            except ProxyError as exc:
                print(f"  {name} failed on {a.arch_id}: {exc}")
                v, failed = -math.inf, failed + 1
            times.append(time.perf_counter() - t)
            vals.append(v)
        scores[name], seconds[name], failures[name] = vals, float(np.median(times)), failed
        print(f"  {label}: {name:10s} {seconds[name]:.3f} s/net (median)", flush=True)
    return scores, seconds, failures


def score_ensembles(singles: dict[str, list[float]], reference: dict[str, list[float]], seconds: dict[str, float],
                    names: list[str], source: str) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Ensembles as a search computes them: members standardised against the reference sample, averaged."""
    from nas.proxies.ensemble import Reference, parse_members

    scores, secs = {}, {}
    for name in names:
        members = parse_members(name)
        ref = Reference.fit({m: reference[m] for m in members}, source)
        n = len(next(iter(singles.values())))
        scores[name] = [ref.combine({m: singles[m][i] for m in members}) for i in range(n)]
        secs[name] = sum(seconds[m] for m in members)
    return scores, secs


def speed_table(names: list[str], spaces: list[str], repeats: int = 3) -> dict[str, dict[str, Any]]:
    """Seconds per evaluation of each proxy on the median-MACs net of each small space (batch 64, one thread)."""
    import torch

    import searchspace as ss
    from nas import proxies
    from searchspace.cost import count_cost

    torch.set_num_threads(1)
    out: dict[str, dict[str, Any]] = {}
    for space_name in spaces:
        space = ss.load_space(space_name)
        sample = [space.sample(random.Random(f"hwnas-proxy-speed:{space_name}:{i}")) for i in range(51)]
        arch = sorted(sample, key=lambda a: count_cost(a).macs)[25]
        x, y, classes = proxies.default_batch(arch, seed=0)
        arch = proxies.for_classes(arch, classes)
        row: dict[str, Any] = {"arch": arch.encode(), "macs": count_cost(arch).macs, "seconds": {}}
        for name in names:
            times = []
            for _ in range(repeats):
                t = time.perf_counter()
                proxies.score(name, arch, (x, y), seed=0)
                times.append(time.perf_counter() - t)
            row["seconds"][name] = float(np.median(times))
        out[space_name] = row
        print(f"  speed on the median net of {space_name} ({row['macs'] / 1e6:.1f}M MACs) done", flush=True)
    return out


def top_hit(pred: list[float], truth: list[float], k: int = 10) -> float:
    top_true = set(np.argsort(truth)[-k:])
    top_pred = set(np.argsort(pred)[-k:])
    return len(top_true & top_pred) / k


def metrics(pred: list[float], truth: list[float]) -> dict[str, float]:
    return {"spearman": spearman(pred, truth), "kendall": kendall_tau_b(pred, truth), "top10_hit": top_hit(pred, truth)}


def cross_validated_choice(scores: dict[str, list[float]], truth: list[float], candidates: list[str],
                           splits: int = 200, seed: int = 0) -> dict[str, Any]:
    """Choose the best candidate on a random half, score it on the other half; repeated."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    held_out, chosen = [], []
    t = np.asarray(truth)
    for _ in range(splits):
        perm = rng.permutation(n)
        a, b = perm[: n // 2], perm[n // 2:]
        best = max(candidates, key=lambda c: spearman(np.asarray(scores[c])[a], t[a]))
        chosen.append(best)
        held_out.append(spearman(np.asarray(scores[best])[b], t[b]))
    counts = {c: chosen.count(c) for c in set(chosen)}
    return {"splits": splits, "held_out_spearman_mean": float(np.mean(held_out)),
            "held_out_spearman_p10": float(np.percentile(held_out, 10)),
            "chosen_counts": dict(sorted(counts.items(), key=lambda kv: -kv[1]))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="mobilenetv2-cifar")
    p.add_argument("--n", type=int, default=60, help="architectures in the ground truth")
    p.add_argument("--repeats", type=int, default=8, help="of them trained again with another seed (noise)")
    p.add_argument("--steps", type=int, default=150, help="SGD steps of batch 64 per net")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate (SGD, Nesterov momentum 0.9)")
    p.add_argument("--warmup", type=float, default=0.2, help="fraction of the steps spent warming up")
    p.add_argument("--clip", type=float, default=5.0, help="clip the gradient norm to this")
    p.add_argument("--pilot", type=int, default=0, metavar="N",
                   help="only train the first N nets with two seeds each and report how reproducible that is "
                        "(benchmarks/results/proxies-pilot.json): how the ground truth's protocol was chosen")
    p.add_argument("--test-samples", type=int, default=10000, help="of the 10,000 test images")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reference-size", type=int, default=32, help="reference sample ensembles standardise against")
    p.add_argument("--write-default", action="store_true", help="record the winner in nas/proxies/default.json")
    args = p.parse_args(argv)

    from nas import proxies
    from searchspace.cost import count_cost

    key = settings_key(args)
    archs = sample_archs(args.space, args.n, args.seed)
    if args.pilot:
        pilot(archs[: args.pilot], key, args.workers)
        return 0
    data = ensure_ground_truth(archs, args.repeats, key, args.workers)
    runs = {(r["arch"], r["seed"]): r for r in data["runs"]}
    truth = [runs[(a.encode(), 0)]["test_accuracy"] for a in archs]
    repeated = [a.encode() for a in archs[: args.repeats]]
    noise = seed_noise(runs, repeated)
    noise.update(reliability(seed_pairs(runs, repeated), truth))
    train_seconds = [runs[(a.encode(), 0)]["seconds"] for a in archs]

    names = [n for n in proxies.list_proxies() if n != "default"]
    x, y, classes = proxies.default_batch(archs[0], seed=0)
    scored = [proxies.for_classes(a, classes) for a in archs]
    refs = proxies.reference_archs(args.space, archs[0].resolution, classes, seed=0, size=args.reference_size)
    print(f"scoring {len(archs)} nets (and a reference sample of {len(refs)}) with {len(names)} proxies, one thread")
    scores, seconds, failures = score_singles(scored, names, (x, y), "ground truth")
    ref_scores, _, _ = score_singles(refs, names, (x, y), "reference")
    ens, ens_seconds = score_ensembles(scores, ref_scores, seconds, ENSEMBLES, f"{len(refs)} random {args.space} nets")
    scores.update(ens)
    seconds.update(ens_seconds)
    for name in ENSEMBLES:
        failures[name] = sum(1 for v in ens[name] if not math.isfinite(v))
    table = {n: {**metrics(scores[n], truth), "seconds_per_eval": seconds[n], "failures": failures[n]}
             for n in names + ENSEMBLES}
    winner = max(table, key=lambda n: table[n]["spearman"])
    cv = cross_validated_choice(scores, truth, names + ENSEMBLES)

    speed = speed_table(names, ["mobilenetv2-cifar", "mobilenetv3-cifar", "mobiledet-cifar", "fbnet-cifar"])
    members = proxies.resolve(winner)
    for row in speed.values():
        row["seconds"][winner] = sum(row["seconds"][m] for m in members)

    costs = [count_cost(a) for a in archs]
    median_macs = float(np.median([c.macs for c in costs]))
    print()
    print(f"ground truth: {len(archs)} nets of {args.space}, {args.steps} steps x 64 on Fashion-MNIST, "
          f"test accuracy {min(truth):.3f}..{max(truth):.3f} (median {np.median(truth):.3f}); "
          f"retrained with another seed: {noise}")
    if "reliability" in noise:
        print(f"run-to-run noise sd {noise['noise_sd']:.4f} vs spread between nets sd {noise['between_net_sd']:.4f}: "
              f"reliability {noise['reliability']:.2f}, so no proxy can be expected to rank this ground truth "
              f"above Spearman ~{noise['correlation_ceiling']:.2f}")
    print(f"{'proxy':38s} {'spearman':>8s} {'kendall':>8s} {'top10':>6s} {'s/eval':>7s}")
    for n in sorted(table, key=lambda n: -table[n]["spearman"]):
        r = table[n]
        mark = " <- default" if n == winner else ""
        print(f"{n:38s} {r['spearman']:8.3f} {r['kendall']:8.3f} {r['top10_hit']:6.1f} {r['seconds_per_eval']:7.3f}"
              f"{mark}")
    print(f"choice cross-validated over {cv['splits']} half splits: "
          f"held-out Spearman {cv['held_out_spearman_mean']:.3f} (p10 {cv['held_out_spearman_p10']:.3f}); "
          f"chosen {cv['chosen_counts']}")

    payload = {
        "default": winner,
        "n_architectures": len(archs),
        "space": args.space,
        "ground_truth": {**key, "file": GROUND_TRUTH.name, "test_accuracy_range": [min(truth), max(truth)],
                         "median_train_seconds": float(np.median(train_seconds)), "reproducibility": noise},
        "median_macs": median_macs,
        "beats_params_and_macs": bool(table[winner]["spearman"] > max(table["params"]["spearman"],
                                                                       table["macs"]["spearman"])),
        "cross_validated_choice": cv,
        "speed_median_nets": speed,
        "proxies": table,
    }
    print("\nseconds per evaluation on each small space's median-MACs net (batch 64, one thread):")
    print(f"{'proxy':38s} " + " ".join(f"{s[:17]:>17s}" for s in speed))
    for n in [*names, winner]:
        print(f"{n:38s} " + " ".join(f"{speed[s]['seconds'][n]:17.3f}" for s in speed))
    path = write_results("proxies", payload)
    print(f"wrote {path}")
    if args.write_default:
        DEFAULT_FILE.write_text(json.dumps({
            "proxy": winner,
            "source": f"benchmarks/proxies.py: best Spearman ({table[winner]['spearman']:.3f}) with test accuracy of "
                      f"{len(archs)} {args.space} nets trained {args.steps} steps on Fashion-MNIST "
                      f"(held-out Spearman of the choice {cv['held_out_spearman_mean']:.3f})",
        }, indent=2) + "\n")
        print(f"default proxy -> {winner} ({DEFAULT_FILE})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
