"""``hwnas datasets``, ``hwnas proxies``, ``hwnas score``, ``hwnas train``: accuracy proxies on the command line."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from searchspace import resolve_architecture
from searchspace.validation import validate_model
from service.cli import AddCommand, CliError, print_json
from service.cli.tables import render_table


def cmd_datasets(args: argparse.Namespace) -> None:
    from nas.datasets import dataset_names, get_dataset
    from nas.errors import DatasetError

    rows, data = [], []
    for name in dataset_names():
        src = get_dataset(name)
        status = "needs a path" if src.path == "required" else "available"
        if name == "fashion-mnist":
            try:
                from nas.datasets import fashion_mnist

                fashion_mnist.load()
            except DatasetError:
                status = "not installed (apt-get install dataset-fashion-mnist)"
        data.append(
            {
                "name": name,
                "description": src.description,
                "path": src.path,
                "options": list(src.options),
                "status": status,
            }
        )
        rows.append([name, status, src.description])
    if args.json:
        print_json(data)
    else:
        print(render_table(["dataset", "status", "description"], rows))


def cmd_proxies(args: argparse.Namespace) -> None:
    from nas import proxies

    names = [n for n in proxies.list_proxies() if n != "default"]
    info = [proxies.describe(n) for n in names]
    default = proxies.describe("default")
    if args.json:
        print_json({"default": default, "proxies": info})
        return
    rows = [[d["name"], "yes" if d["needs_data"] else "no", d["bn"], d["paper"]] for d in info]
    print(render_table(["proxy", "data", "BN", "paper"], rows))
    print(f"\ndefault = {default['stands_for']}\n  ({default['why'].get('source', '')})")


def _check_dir(args: argparse.Namespace) -> Any:
    from pathlib import Path

    return Path(args.out or f"hwnas-check-{args.space}-{Path(args.dataset).stem}")


def cmd_proxies_check(args: argparse.Namespace) -> None:
    """Train sampled nets of the user's space on the user's data (``--seeds`` seeds each) and judge every proxy."""
    import json
    import math

    import searchspace as ss
    from nas.datasets import resolve_data_spec
    from nas.proxies import evidence
    from nas.proxies.check import (
        BASELINES,
        Protocol,
        RunStore,
        ScoreCache,
        all_scores,
        budget_axis,
        judge,
        sample_nets,
        seed_matrix,
        simplicity_order,
        train_runs,
    )
    from searchspace.cost import count_cost
    from service.cli.progress import ProgressBar

    if not 2 <= args.seeds <= 10:
        raise CliError(f"proxies check: --seeds must be 2 to 10 (got {args.seeds}): a reliability needs two")
    space = ss.load_space(args.space)
    data = resolve_data_spec(args.dataset, 0)
    protocol = validate_model(
        Protocol,
        {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "warmup": args.warmup,
            "split": "val",
            "seeds": tuple(range(args.seeds)),
        },
        CliError,
        "proxies check: invalid training protocol",
    )
    if args.nets < 8:
        raise CliError(f"proxies check: --nets must be at least 8 (got {args.nets}); 24 or more tell proxies apart")
    budgets = args.budget
    if budgets is not None and (not budgets or any(not (b > 0 and math.isfinite(b)) for b in budgets)):
        raise CliError(f"proxies check: --budget takes latencies in ms above 0, got {budgets}")
    out = _check_dir(args)
    archs = sample_nets(space, args.nets, seed=args.seed, max_macs=args.max_macs)
    if budgets is not None and budget_axis(archs[:1], [args.space], args.profile)[1] == "macs":
        raise CliError(
            f"proxies check: --budget is in ms of {args.profile}, which has no latency table for {args.space} here "
            "(leave --budget out: the budgets are then deciles of the nets' MACs)"
        )
    store = RunStore(out / "runs.jsonl", protocol, data, label=f"hwnas proxies check {args.space}")
    total = len(archs) * len(protocol.seeds)
    print(
        f"{len(archs)} nets of {args.space} x {len(protocol.seeds)} seeds on {args.dataset}: {protocol.steps} steps "
        f"x {protocol.batch_size} each; {len(store)} of {total} runs already in {out / 'runs.jsonl'}",
        file=sys.stderr,
    )
    bar = ProgressBar("training")
    train_runs(
        archs,
        protocol,
        data,
        store,
        workers=args.workers,
        progress=lambda i, n, run: bar(i, n, f"{run['arch_id']} seed {run['seed']}: {run['accuracy']:.4f}"),
    )
    kept, runs = seed_matrix(store, archs, protocol.seeds)
    truth = evidence.net_means(runs)
    macs = [float(count_cost(a).macs) for a in kept]
    latency, budget_in = budget_axis(kept, [args.space] * len(kept), args.profile)
    if budgets is not None and budget_in == "macs":  # checked before training; a table gone since then
        raise CliError(f"proxies check: --budget is in ms of {args.profile}, which no longer answers for {args.space}")
    scores, seconds = all_scores(
        kept,
        [args.space] * len(kept),
        truth,
        data,
        reference_size=args.reference_size,
        progress=ProgressBar("scoring"),
        cache=ScoreCache(out / "scores.jsonl", data),  # a check killed while scoring resumes there too
    )
    table = judge(scores, truth, macs, latency, samples=args.bootstrap, budgets=budgets)
    choice = evidence.choose(table, simplicity_order(scores, seconds), key="balanced", interval="balanced_interval")
    mac_bins = evidence.control_bins(macs)
    report = {
        "space": space.name,
        "dataset": data.name,
        "protocol": protocol.model_dump(mode="json"),
        "nets": [a.encode() for a in kept],
        "accuracy": {f"seed{s}": [row[j] for row in runs] for j, s in enumerate(protocol.seeds)},
        "reliability": evidence.reliability(runs),
        # the ceiling of the equal-MAC figures: how well the truth itself orders nets of equal cost
        "reliability_at_equal_macs": evidence.reliability_within(runs, mac_bins) if mac_bins is not None else None,
        "budgets_in": budget_in,
        "budgets": budgets if budgets is not None else evidence.budgets_for(latency),
        "recommended": choice["choice"],
        "choice": choice,
        "scorers": {n: {**r, "seconds_per_eval": seconds[n]} for n, r in table.items()},
        "scores": {n: [None if math.isnan(v) else v for v in vals] for n, vals in scores.items()},
        "cpu_hours": sum(r["cpu_seconds"] for r in store.runs()) / 3600,
    }
    (out / "report.json").write_text(json.dumps(evidence.strict_json(report), indent=1, allow_nan=False) + "\n")
    if args.json:
        print_json(evidence.strict_json({k: v for k, v in report.items() if k != "scores"}))
        return
    rel = report["reliability"]
    print(
        f"ground truth: {len(kept)} nets, validation accuracy {min(truth):.4f}..{max(truth):.4f}; reliability "
        f"{rel['reliability']:.2f} (ceiling {rel['ceiling']:.2f}): seed noise sd {100 * rel['noise_sd']:.2f} "
        f"pts vs {100 * rel['between_net_sd']:.2f} between nets"
    )
    if (within := report["reliability_at_equal_macs"]) is not None:
        print(
            f"  at equal MACs: reliability {within['pooled']['reliability']:.2f} (ceiling "
            f"{within['pooled']['ceiling']:.2f}), the most any 'equal MACs' figure below can reach"
        )
    if not rel["reliability"] >= 0.8:
        need = evidence.seeds_for(rel["reliability_single_run"])
        more = (
            f"run the check again with --seeds {need} (a mean of {need} seeds reaches about 0.8; only the new "
            "seeds train)"
            if need is not None and protocol.seeds and need <= 10
            else "train longer (--steps)"
        )
        print(f"  below 0.8: the ranking below is uncertain; {more}, or sample more different nets")
    rows = sorted(table.items(), key=lambda kv: -(kv[1]["balanced"] if not math.isnan(kv[1]["balanced"]) else -9))
    print(
        render_table(
            ["scorer", "spearman", "90% interval", "equal MACs", "equal latency", "regret pts", "s/net"],
            [
                [
                    n,
                    f"{r['spearman']:.3f}",
                    f"{r['spearman_interval'][0]:.2f}..{r['spearman_interval'][1]:.2f}",
                    f"{r['cost_controlled_spearman']:.3f}",
                    f"{r['latency_controlled_spearman']:.3f}",
                    f"{100 * r['regret']['mean']:.2f}",
                    f"{seconds[n]:.3f}",
                ]
                for n, r in rows
            ],
            {1, 2, 3, 4, 5, 6},
        )
    )
    print(
        f"a pick at random within each budget gives up {100 * table[choice['choice']]['regret']['random']:.2f} pts; "
        f"{' and '.join(BASELINES)} are baselines, judged but never recommended"
    )
    print(
        f"\nrecommended for {args.space} on {args.dataset}: {choice['choice']} "
        f"(report: {out / 'report.json'}; `hwnas proxies fit --from {out} --name NAME` fits a predictor)"
    )


def cmd_proxies_fit(args: argparse.Namespace) -> None:
    """Fit the few-shot predictor on the nets a check trained, and save it where searches find it."""
    import json
    import math
    from pathlib import Path

    from latency_tables.stats import spearman
    from nas.errors import ProxyError
    from nas.proxies import evidence, predictor
    from nas.proxies.check import PREDICTOR_PROXIES
    from searchspace.architecture import Architecture

    path = Path(args.source) / "report.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CliError(
            f"proxies fit: --from {args.source}: no readable report.json ({exc}); run `hwnas proxies check` first"
        ) from None
    proxies_used = tuple(args.proxy or PREDICTOR_PROXIES)
    try:
        predictor.check_proxies(proxies_used)
    except ProxyError as exc:
        raise CliError(f"proxies fit: --proxy: {exc}") from None
    if not isinstance(report, dict) or not {"scores", "nets", "accuracy", "space", "dataset"} <= set(report):
        raise CliError(f"proxies fit: --from {args.source}: {path} is not a report of `hwnas proxies check`")
    missing = [p for p in proxies_used if p not in report["scores"]]
    if missing:
        raise CliError(f"proxies fit: --proxy {', '.join(missing)}: not scored in {path}")
    archs = [Architecture.decode(c) for c in report["nets"]]
    try:
        columns = [[math.nan if v is None else float(v) for v in col] for col in report["accuracy"].values()]
        truth = evidence.net_means([list(row) for row in zip(*columns, strict=True)])
    except (TypeError, ValueError, AttributeError) as exc:
        raise CliError(f"proxies fit: --from {args.source}: {path} has unreadable accuracies ({exc})") from None
    keep = [i for i in range(len(archs)) if all(report["scores"][p][i] is not None for p in proxies_used)]
    archs, truth = [archs[i] for i in keep], [truth[i] for i in keep]
    scores = {p: [report["scores"][p][i] for i in keep] for p in proxies_used}
    if len(archs) < 8:
        raise CliError(
            f"proxies fit: {path} has {len(archs)} nets with two seeds or more and every proxy's score; "
            "a predictor needs at least 8 (check more nets, or drop the --proxy that failed on some)"
        )
    oof = predictor.cross_validated(archs, scores, truth, proxies_used)
    model = predictor.fit(
        args.name,
        archs,
        scores,
        truth,
        proxies_used,
        trained_on={
            "space": report["space"],
            "dataset": report["dataset"],
            "protocol": report["protocol"],
            "cross_validated_spearman": spearman(oof, truth),
        },
    )
    saved = predictor.save(model, Path(args.dir) if args.dir else predictor.user_dir())
    print(
        f"predictor:{args.name} on {len(archs)} nets ({', '.join(proxies_used)} + the net's shape): "
        f"leave-one-out Spearman {spearman(oof, truth):.3f}; saved to {saved}"
    )


def cmd_score(args: argparse.Namespace) -> None:
    import torch

    from nas import proxies
    from nas.datasets import resolve_data_spec

    torch.set_num_threads(args.threads)
    arch = resolve_architecture(args.arch)
    names = args.proxy or ["default"]
    for n in names:
        proxies.resolve(n)
    data = resolve_data_spec(args.dataset, args.seed)
    x, y, classes = proxies.default_batch(arch, data, size=args.batch, seed=args.seed)
    arch = proxies.for_classes(arch, classes)
    results = []
    for n in names:
        t = time.perf_counter()
        value = proxies.score(n, arch, (x, y), seed=args.seed, reference=args.reference)
        results.append({"proxy": n, "score": value, "seconds": time.perf_counter() - t})
    if args.json:
        print_json({"arch_id": arch.arch_id, "batch": args.batch, "dataset": args.dataset, "scores": results})
    else:
        print(
            render_table(
                ["proxy", "score", "seconds"],
                [[r["proxy"], f"{r['score']:.6g}", f"{r['seconds']:.3f}"] for r in results],
                {1, 2},
            )
        )


def cmd_train(args: argparse.Namespace) -> None:
    from nas.datasets import resolve_data_spec
    from nas.training import TrainSettings, train

    arch = resolve_architecture(args.arch)
    budgets = {k: getattr(args, k) for k in ("steps", "epochs", "seconds") if getattr(args, k) is not None}
    if len(budgets) != 1:
        raise CliError("train: give exactly one budget: --steps, --epochs or --seconds")
    settings = validate_model(
        TrainSettings,
        {
            **budgets,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "evals": args.evals,
            "threads": args.threads,
            "device": args.device,
        },
        CliError,
        "train: invalid training settings",
    )
    view = resolve_data_spec(args.dataset, args.seed).view(arch.resolution, arch.in_channels)

    def report(step: int, acc: float) -> bool:
        if not args.json:
            print(f"  step {step:6d}  val accuracy {acc:.4f}", flush=True)
        return False

    if not args.json:
        print(f"training {arch.arch_id} on {args.dataset} ({len(view)} train / {view.size('val')} val images)")
    result = train(arch, view, settings, seed=args.seed, report=report)
    if args.json:
        print_json({"arch_id": arch.arch_id, "dataset": args.dataset, **result.as_dict()})
    else:
        print(
            f"val accuracy {result.val_accuracy:.4f} after {result.steps} steps ({result.epochs:.2f} epochs) "
            f"in {result.seconds:.1f} s, {result.images_per_second:.0f} images/s"
        )


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add("datasets", cmd_datasets, "list the datasets proxies and training can use")
    p.add_argument("--json", action="store_true")

    p = add(
        "proxies",
        cmd_proxies,
        "list the accuracy proxies and what 'default' stands for; check them on "
        "your space and data; fit a few-shot predictor",
    )
    p.add_argument("--json", action="store_true")
    psub = p.add_subparsers(dest="proxies_command", metavar="SUBCOMMAND")
    c = psub.add_parser(
        "check",
        help="train sampled nets of a space (two seeds or more) and judge every proxy on them",
        description="Train --nets sampled nets of --space on --dataset with --seeds seeds each "
        "(resumable: runs are appended to OUT/runs.jsonl), score every proxy, combination and "
        "the few-shot predictor, and report reliability, Spearman, Spearman at equal MACs, "
        "regret under latency budgets and the recommended proxy (OUT/report.json).",
    )
    c.set_defaults(func=cmd_proxies_check)
    c.add_argument("--space", required=True, help="a built-in space name or a spec file")
    c.add_argument("--dataset", default="fashion-mnist", help="a dataset name, a .npz file or an image folder")
    c.add_argument("--nets", type=int, default=24)
    # defaults: the protocol of hwnas's own ground truth (benchmarks/proxies.py "long": about an epoch of
    # Fashion-MNIST), the one its pilot found reproducible between seeds; shorter runs were mostly seed noise
    c.add_argument("--steps", type=int, default=400, help="SGD steps per run (warm-up, then cosine to 0)")
    c.add_argument("--batch-size", type=int, default=128)
    c.add_argument("--lr", type=float, default=0.1)
    c.add_argument("--warmup", type=float, default=0.1, help="share of the steps spent warming the learning rate up")
    c.add_argument(
        "--seeds",
        type=int,
        default=2,
        help="training seeds per net, 2 to 10 (their agreement is the reliability; a mean of more is steadier: "
        "k r / (1 + (k - 1) r) for one run's reliability r); raising it later trains only the new seeds",
    )
    c.add_argument("--max-macs", type=float, help="sample nets up to this many MACs (bounds the training cost)")
    c.add_argument("--workers", type=int, default=1, help="training processes (one torch thread each)")
    c.add_argument("--profile", default="ort-cpu-fp32-t1", help="latency profile for the regret budgets")
    c.add_argument(
        "--budget",
        type=float,
        nargs="+",
        metavar="MS",
        help="latency budgets (ms of --profile) for the regret: within each, what the proxy's favourite loses "
        "to the best net (default: the deciles of the sampled nets' latency)",
    )
    c.add_argument("--reference-size", type=int, default=32)
    c.add_argument("--bootstrap", type=int, default=1000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", help="directory for runs.jsonl and report.json")
    c.add_argument("--json", action="store_true")
    f = psub.add_parser("fit", help="fit a few-shot accuracy predictor on a check's nets (predictor:<name>)")
    f.set_defaults(func=cmd_proxies_fit)
    f.add_argument("--from", dest="source", required=True, help="the directory `hwnas proxies check` wrote")
    f.add_argument("--name", required=True, help="the predictor's name: a search then uses predictor:<name>")
    f.add_argument(
        "--proxy",
        action="append",
        help="proxies the predictor reads (repeatable; default: naswot, zico, synflow, meco_opt)",
    )
    f.add_argument(
        "--dir",
        help="where to save it (default: $HWNAS_PREDICTORS's first folder, else ~/.local/share/hwnas/predictors)",
    )

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("arch", help="a known net name, a JSON file, or an architecture string")
        p.add_argument("--dataset", default="fashion-mnist", help="a dataset name, a .npz file or an image folder")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--json", action="store_true")

    p = add("score", cmd_score, "score an architecture with zero-cost proxies")
    data_args(p)
    p.add_argument("--proxy", action="append", help="proxy or ensemble:a+b (repeatable; default: default)")
    p.add_argument("--batch", type=int, default=64, help="images in the scoring batch")
    p.add_argument("--reference", help="space ensembles standardise against (default: the built-in space holding ARCH)")

    p = add("train", cmd_train, "train an architecture briefly and report validation accuracy")
    data_args(p)
    p.add_argument("--steps", type=int)
    p.add_argument("--epochs", type=float)
    p.add_argument("--seconds", type=float)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--evals", type=int, default=4)
    p.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu")
