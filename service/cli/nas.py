"""``hwnas datasets``, ``hwnas proxies``, ``hwnas score``, ``hwnas train``: accuracy proxies on the command line."""

from __future__ import annotations

import argparse
import time
from typing import Any

from searchspace import resolve_architecture
from service.cli import AddCommand, CliError, print_json
from service.cli.tables import render_table


def cmd_datasets(args: argparse.Namespace) -> None:
    from nas.datasets import DATASETS, dataset_names
    from nas.errors import DatasetError

    rows, data = [], []
    for name in dataset_names():
        src = DATASETS.get(name)
        status = "needs a path" if src.path == "required" else "available"
        if name == "fashion-mnist":
            try:
                from nas.datasets import fashion_mnist

                fashion_mnist.load()
            except DatasetError:
                status = "not installed (apt-get install dataset-fashion-mnist)"
        data.append({"name": name, "description": src.description, "path": src.path, "options": list(src.options),
                     "status": status})
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
        print(render_table(["proxy", "score", "seconds"],
                           [[r["proxy"], f"{r['score']:.6g}", f"{r['seconds']:.3f}"] for r in results], {1, 2}))


def cmd_train(args: argparse.Namespace) -> None:
    from nas.datasets import resolve_data_spec
    from nas.training import TrainSettings, train

    arch = resolve_architecture(args.arch)
    budgets = {k: getattr(args, k) for k in ("steps", "epochs", "seconds") if getattr(args, k) is not None}
    if len(budgets) != 1:
        raise CliError("train: give exactly one budget: --steps, --epochs or --seconds")
    from pydantic import ValidationError

    try:
        settings = TrainSettings(**budgets, batch_size=args.batch_size, lr=args.lr, evals=args.evals,
                                 threads=args.threads, device=args.device)
    except ValidationError as exc:
        from searchspace.validation import describe_validation_error

        raise CliError(f"train: {describe_validation_error(exc)}") from None
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
        print(f"val accuracy {result.val_accuracy:.4f} after {result.steps} steps ({result.epochs:.2f} epochs) "
              f"in {result.seconds:.1f} s, {result.images_per_second:.0f} images/s")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add("datasets", cmd_datasets, "list the datasets proxies and training can use")
    p.add_argument("--json", action="store_true")

    p = add("proxies", cmd_proxies, "list the accuracy proxies and what 'default' stands for")
    p.add_argument("--json", action="store_true")

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
