"""``hwnas spaces``, ``space show/sample``, ``known``, ``describe``, ``export``: the search-space catalogue."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from searchspace import (
    Architecture,
    count_cost,
    known_architectures,
    list_spaces,
    load_space,
    resolve_architecture,
)
from searchspace.blocks import get_block_type
from searchspace.spec import LayerChoices
from service.cli import AddCommand, CliError, print_json
from service.cli.tables import human, render_table
from service.layer_table import layer_rows


def cmd_spaces(args: argparse.Namespace) -> None:
    rows = []
    data = []
    for name in list_spaces():
        space = load_space(name)
        n = space.cardinality()
        data.append(
            {
                "name": name,
                "cardinality": n,
                "resolution": space.resolution,
                "classes": space.classes,
                "description": space.description,
            }
        )
        rows.append([name, f"{n:.2e}", space.resolution, space.classes, len(space.stages), space.description[:60]])
    if args.json:
        print_json(data)
    else:
        print(render_table(["space", "architectures", "res", "classes", "stages", "description"], rows, {1, 2, 3, 4}))


def _fmt_choices(values: Sequence[object] | None) -> str:
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) if values else "-"


def _fmt_alternative(choices: LayerChoices) -> str:
    """'ibn(t=3/6 k=3/5/7 act=relu6) tucker(...)': only the fields each type's ops vary over."""
    order = list(LayerChoices.model_fields)
    parts = []
    for name in choices.type:
        fields = [
            f"{field}={_fmt_choices(getattr(choices, field))}"
            for field in sorted(get_block_type(name).choice_fields, key=order.index)
            if getattr(choices, field) not in ((1,), (0.0,))
        ]
        parts.append(f"{name}({' '.join(fields)})" if fields else name)
    return " ".join(parts)


def cmd_space_show(args: argparse.Namespace) -> None:
    space = load_space(args.name)
    if args.json:
        print_json({**space.to_dict(), "cardinality": space.cardinality()})
        return
    print(f"{space.name}: {space.description}")
    print(
        f"resolutions {_fmt_choices(space.resolutions)} (default {space.resolution}), "
        f"width multipliers {_fmt_choices(space.width_multipliers)}, {space.classes} classes, "
        f"channels divisible by {space.channel_divisor}"
    )
    print(
        f"stem: conv {space.stem.k}x{space.stem.k} s{space.stem.stride} -> {_fmt_choices(space.stem.channels)} "
        f"({_fmt_choices(space.stem.act)})"
    )
    rows = []
    for i, stage in enumerate(space.stages):
        alts = space.choices_for(i, 0)
        ops = " | ".join(_fmt_alternative(c) for c in alts)
        rows.append(
            [
                i,
                _fmt_choices(stage.channels),
                _fmt_choices(stage.stride),
                _fmt_choices(stage.depth),
                "yes" if stage.first_residual else "no",
                ops,
            ]
        )
    print(render_table(["stage", "channels", "stride", "depth", "1st shortcut", "layer choices"], rows))
    h = space.head
    print(
        f"head: conv {_fmt_choices(h.conv)} ({_fmt_choices(h.act)}), hidden {_fmt_choices(h.hidden)}, "
        f"dropout {h.dropout}"
    )
    print(f"architectures: {space.cardinality():,}")


def cmd_space_sample(args: argparse.Namespace) -> None:
    import random

    if args.n < 1:
        raise CliError(f"space sample: -n must be >= 1, got {args.n}")
    space = load_space(args.name)
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]
    if args.json:
        print_json([{"arch_id": a.arch_id, "arch": a.encode()} for a in archs])
    else:
        for a in archs:
            print(a.encode())


def cmd_known(args: argparse.Namespace) -> None:
    spaces = [load_space(n) for n in list_spaces()]
    rows, data = [], []
    for name, arch in known_architectures().items():
        cost = count_cost(arch)
        inside = [s.name for s in spaces if s.contains(arch)]
        data.append({"name": name, "arch_id": arch.arch_id, **cost.as_dict(), "spaces": inside})
        rows.append([name, f"{cost.params:,}", human(cost.macs), arch.arch_id, ", ".join(inside) or "-"])
    if args.json:
        print_json(data)
    else:
        print(render_table(["name", "params", "MACs", "arch_id", "in spaces"], rows, {1, 2}))


def _describe_rows(arch: Architecture) -> tuple[list[list[object]], list[dict[str, Any]]]:
    rows: list[list[object]] = []
    data: list[dict[str, Any]] = []
    for lc, row in layer_rows(arch, se="ratio"):
        rows.append(row)
        b = lc.block
        if b is None:
            data.append(
                {
                    "name": lc.name,
                    "type": "head",
                    "params": lc.params,
                    "macs": lc.macs,
                    "activations": lc.activations,
                    "input_size": lc.input_size,
                }
            )
            continue
        data.append(
            {
                "name": lc.name,
                **b.model_dump(),
                "input_size": lc.input_size,
                "output_size": lc.output_size,
                "params": lc.params,
                "macs": lc.macs,
                "activations": lc.activations,
            }
        )
    return rows, data


def cmd_describe(args: argparse.Namespace) -> None:
    arch = resolve_architecture(args.arch)
    cost = count_cost(arch)
    rows, layers = _describe_rows(arch)
    if args.json:
        print_json(
            {
                "arch_id": arch.arch_id,
                "string": arch.encode(),
                **cost.as_dict(),
                "architecture": arch.to_dict(),
                "layers": layers,
            }
        )
        return
    print(
        f"arch_id {arch.arch_id}  input {arch.in_channels}x{arch.resolution}x{arch.resolution}  "
        f"{len(arch.blocks)} blocks"
    )
    print(
        render_table(
            ["layer", "type", "channels", "s", "k", "t", "se", "act", "size", "params", "MACs", "activations"],
            rows,
            {3, 4, 9, 10, 11},
        )
    )
    print(
        f"total: {cost.params:,} params, {cost.macs:,} MACs ({human(cost.macs)}), "
        f"peak activations {cost.activations:,} ({cost.activation_bytes / 2**20:.2f} MiB fp32)"
    )
    print(f"string: {arch.encode()}")


def cmd_export(args: argparse.Namespace) -> None:
    arch = resolve_architecture(args.arch)
    out = Path(args.output)
    if args.format == "json":
        from searchspace.export import export_json

        export_json(arch, out)
    elif args.format == "pytorch":
        from searchspace.export import export_pytorch

        export_pytorch(arch, out)
    else:
        from searchspace.export import export_onnx

        export_onnx(arch, out)
    print(f"wrote {out} ({args.format}, arch_id {arch.arch_id})")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add("spaces", cmd_spaces, "list the built-in search spaces with their sizes")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = sub.add_parser("space", help="inspect one search space", description="inspect one search space")
    space_sub = p.add_subparsers(dest="space_command", required=True, metavar="SUBCOMMAND")
    show = space_sub.add_parser("show", help="stages, choices and size of a space (name or YAML/JSON file)")
    show.add_argument("name")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_space_show)
    sample = space_sub.add_parser("sample", help="random architectures of a space, as strings (seeded)")
    sample.add_argument("name")
    sample.add_argument("-n", type=int, default=1, help="how many (default 1)")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--json", action="store_true")
    sample.set_defaults(func=cmd_space_sample)

    p = add("known", cmd_known, "list the known reference nets")
    p.add_argument("--json", action="store_true")

    p = add("describe", cmd_describe, "blocks, params, MACs and activation memory of an architecture")
    p.add_argument("arch", help="a known net name, a JSON file, or an architecture string")
    p.add_argument("--json", action="store_true")

    p = add("export", cmd_export, "write an architecture as ONNX, JSON or PyTorch code")
    p.add_argument("arch", help="a known net name, a JSON file, or an architecture string")
    p.add_argument("--format", choices=["onnx", "json", "pytorch"], required=True)
    p.add_argument("-o", "--output", required=True, help="output file")
