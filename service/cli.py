"""The ``hwnas`` command line.

Bad input never shows a traceback: every error the user can cause becomes one
line on stderr (``hwnas: error: ...``) and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from latency_tables.errors import LatencyTableError
from nas.errors import NasError
from searchspace import (
    Architecture,
    SearchSpaceError,
    count_cost,
    known_architectures,
    list_spaces,
    load_space,
    resolve_architecture,
)
from searchspace.blocks import get_block_type
from searchspace.spec import LayerChoices
from service.tables import human, render_table

EXIT_USAGE = 2


class CliError(Exception):
    """A user error with a message fit for one line."""


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


# ---------------------------------------------------------------- commands
def cmd_spaces(args: argparse.Namespace) -> None:
    rows = []
    data = []
    for name in list_spaces():
        space = load_space(name)
        n = space.cardinality()
        data.append({"name": name, "cardinality": n, "resolution": space.resolution,
                     "classes": space.classes, "description": space.description})
        rows.append([name, f"{n:.2e}", space.resolution, space.classes, len(space.stages), space.description[:60]])
    if args.json:
        _print_json(data)
    else:
        print(render_table(["space", "architectures", "res", "classes", "stages", "description"], rows, {1, 2, 3, 4}))


def _fmt_choices(values: Sequence[object] | None) -> str:
    return "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values) if values else "-"


def _fmt_alternative(choices: LayerChoices) -> str:
    """'ibn(t=3/6 k=3/5/7 act=relu6) tucker(...)': only the fields each type uses."""
    shown = {"t": "mid", "k": "k", "se": "se", "act": "act", "groups": "groups", "tucker_in": "mid",
             "tucker_out": "mid2"}
    parts = []
    for name in choices.type:
        uses = get_block_type(name).uses
        fields = [
            f"{field}={_fmt_choices(getattr(choices, field))}"
            for field, needs in shown.items()
            if needs in uses
            and (field != "t" or name != "tucker")
            and (not field.startswith("tucker") or name == "tucker")
            and getattr(choices, field) not in ((1,), (0.0,))
        ]
        parts.append(f"{name}({' '.join(fields)})" if fields else name)
    return " ".join(parts)


def cmd_space_show(args: argparse.Namespace) -> None:
    space = load_space(args.name)
    if args.json:
        _print_json({**space.to_dict(), "cardinality": space.cardinality()})
        return
    print(f"{space.name}: {space.description}")
    print(f"resolutions {_fmt_choices(space.resolutions)} (default {space.resolution}), "
          f"width multipliers {_fmt_choices(space.width_multipliers)}, {space.classes} classes, "
          f"channels divisible by {space.channel_divisor}")
    print(f"stem: conv {space.stem.k}x{space.stem.k} s{space.stem.stride} -> {_fmt_choices(space.stem.channels)} "
          f"({_fmt_choices(space.stem.act)})")
    rows = []
    for i, stage in enumerate(space.stages):
        alts = space.choices_for(i, 0)
        ops = " | ".join(_fmt_alternative(c) for c in alts)
        rows.append([i, _fmt_choices(stage.channels), _fmt_choices(stage.stride), _fmt_choices(stage.depth),
                     "yes" if stage.first_residual else "no", ops])
    print(render_table(["stage", "channels", "stride", "depth", "1st shortcut", "layer choices"], rows))
    h = space.head
    print(f"head: conv {_fmt_choices(h.conv)} ({_fmt_choices(h.act)}), hidden {_fmt_choices(h.hidden)}, "
          f"dropout {h.dropout}")
    print(f"architectures: {space.cardinality():,}")


def cmd_space_sample(args: argparse.Namespace) -> None:
    import random

    if args.n < 1:
        raise CliError(f"space sample: -n must be >= 1, got {args.n}")
    space = load_space(args.name)
    rng = random.Random(args.seed)
    archs = [space.sample(rng) for _ in range(args.n)]
    if args.json:
        _print_json([{"arch_id": a.arch_id, "arch": a.encode()} for a in archs])
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
        _print_json(data)
    else:
        print(render_table(["name", "params", "MACs", "arch_id", "in spaces"], rows, {1, 2}))


def _describe_rows(arch: Architecture) -> tuple[list[list[object]], list[dict[str, Any]]]:
    cost = count_cost(arch)
    rows: list[list[object]] = []
    data: list[dict[str, Any]] = []
    for lc in cost.layers:
        b = lc.block
        if b is None:
            h = arch.head
            desc = "pool" + (f", conv1x1 {h.conv}" if h.conv else "") + (f", fc {h.hidden}" if h.hidden else "")
            rows.append([lc.name, "head", desc, "", "", "", "", "", f"{lc.input_size}->1",
                         f"{lc.params:,}", f"{lc.macs:,}", f"{lc.activations:,}"])
            data.append({"name": lc.name, "type": "head", "params": lc.params, "macs": lc.macs,
                         "activations": lc.activations, "input_size": lc.input_size})
            continue
        t = f"{b.t:.3g}" if b.type in ("ibn", "fused") else ""
        rows.append([lc.name, b.type, f"{b.cin}->{b.cout}", b.stride, b.k if b.type != "skip" else "", t,
                     f"{b.se_ratio:g}" if b.se else "", b.act or "", f"{lc.input_size}->{lc.output_size}",
                     f"{lc.params:,}", f"{lc.macs:,}", f"{lc.activations:,}"])
        data.append({"name": lc.name, **b.model_dump(), "input_size": lc.input_size, "output_size": lc.output_size,
                     "params": lc.params, "macs": lc.macs, "activations": lc.activations})
    return rows, data


def cmd_describe(args: argparse.Namespace) -> None:
    arch = resolve_architecture(args.arch)
    cost = count_cost(arch)
    rows, layers = _describe_rows(arch)
    if args.json:
        _print_json({"arch_id": arch.arch_id, "string": arch.encode(), **cost.as_dict(),
                     "architecture": arch.to_dict(), "layers": layers})
        return
    print(f"arch_id {arch.arch_id}  input {arch.in_channels}x{arch.resolution}x{arch.resolution}  "
          f"{len(arch.blocks)} blocks")
    print(render_table(["layer", "type", "channels", "s", "k", "t", "se", "act", "size", "params", "MACs",
                        "activations"], rows, {3, 4, 9, 10, 11}))
    print(f"total: {cost.params:,} params, {cost.macs:,} MACs ({human(cost.macs)}), "
          f"peak activations {cost.activations:,} ({cost.activation_bytes / 2**20:.2f} MiB fp32)")
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


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.app import create_app

    print(f"hwnas: serving on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


# ------------------------------------------------------------------ parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hwnas", description="Hardware-aware neural architecture search.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=func)
        return p

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

    from service import cli_lut

    cli_lut.add_commands(sub, add)

    from service import cli_nas, cli_search

    cli_nas.add_commands(sub, add)
    cli_search.add_commands(sub, add)

    p = add("serve", cmd_serve, "run the service and its dashboard")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    return parser


_format_warning = warnings.formatwarning


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      line: str | None = None) -> str:
    """hwnas' own warnings (a table from another host, ...) as one line for a person, not a source location."""
    if category is UserWarning:
        return f"hwnas: warning: {message}\n"
    return _format_warning(message, category, filename, lineno, line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # how warnings read; where they go stays Python's (or pytest's)
    formatted, warnings.formatwarning = warnings.formatwarning, _one_line_warning
    try:
        args.func(args)
    except (SearchSpaceError, LatencyTableError, NasError, CliError) as exc:
        message = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"hwnas: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("hwnas: interrupted (a search continues with --resume)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hwnas known | head`
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"hwnas: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    finally:
        warnings.formatwarning = formatted
    return 0


if __name__ == "__main__":
    sys.exit(main())
