"""``hwnas lut ...`` and ``hwnas latency``: latency tables from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from latency_tables.kit import calibration_archs
from searchspace import load_space, resolve_architecture
from service.cli import AddCommand, print_json
from service.cli.progress import ProgressBar
from service.cli.tables import human, render_table


def cmd_lut_build(args: argparse.Namespace) -> None:
    from latency_tables.api import layers_to_cover, table_to_extend
    from latency_tables.errors import LatencyTableError
    from latency_tables.predictor import LatencyPredictor
    from latency_tables.profiler import build_table, measure_networks
    from latency_tables.profiles import DeviceProfile

    profile = DeviceProfile.parse(args.profile)
    if not args.space and not args.arch:
        raise LatencyTableError("lut build: name what to cover with --space SPACE and/or --arch ARCH")
    layers = layers_to_cover(args.space or [], args.arch or [], args.resolution, reference=True)
    path, table = table_to_extend(profile, args.table)
    missing = sum(1 for k in layers if k not in table.entries)
    print(f"{profile.id}: {len(layers)} layers, {missing} not yet in {path}")
    build_table(table, layers.values(), path, progress=ProgressBar("layers"), passes=args.passes)
    if args.calibrate:
        nets = calibration_archs(args.space or [], args.calibrate, args.seed)
        if not nets:
            raise LatencyTableError("lut build --calibrate needs --space (calibration nets are sampled from spaces)")
        measure_networks(table, nets, path, progress=ProgressBar("networks"), rounds=args.rounds)
        predictor = LatencyPredictor(table, path)
        predictor.calibrate()
        table.save(path)
        for name, cal in [("all spaces", table.calibration), *table.space_calibrations.items()]:
            print(f"calibration ({name}): {cal.model} on {cal.fitted_on} nets ({cal.note})")
    print(f"table {table.name}: {len(table.entries)} entries, {len(table.networks)} nets -> {path}")


def cmd_lut_validate(args: argparse.Namespace) -> None:
    """Predicted vs measured latency of random nets, next to the measurement noise (both measured here)."""
    from latency_tables.api import load_predictor
    from latency_tables.errors import LatencyTableError
    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.validate import save_report, validate

    if args.samples < 1 or args.rounds < 1:
        raise LatencyTableError(
            f"lut validate: --samples and --rounds must be at least 1, got {args.samples} and {args.rounds}"
        )
    profile = DeviceProfile.parse(args.profile)
    space = load_space(args.space)
    predictor = load_predictor(profile, args.table, space=space.name)
    rounds = f"{args.rounds} interleaved round{'s' if args.rounds != 1 else ''}"
    print(
        f"{profile.id} / {space.name}: {args.samples} nets, each measured twice ({rounds} per pass), "
        f"table {predictor.table.name} (calibration {predictor.calibration.model})"
    )
    result = validate(
        predictor, space, args.samples, seed=args.seed, rounds=args.rounds, progress=ProgressBar("validate")
    )
    print(render_table(["", "prediction", "raw sum", "noise (meas. 2 vs 1)"], result.metric_rows(), {1, 2, 3}))
    print(
        f"prediction: {result.predict_us_per_net:.2f} us/net; {result.layers_measured} layers measured on demand; "
        f"measuring took {result.measure_s:.0f} s"
    )
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"validate-{profile.id}-{space.name}"
    json_path = out / f"{stem}.json"
    json_path.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    png_path = result.save_plot(out / f"{stem}.png")
    host = HostInfo.current()
    kept = save_report(result.as_dict() | {"measured_on": {"cpu": host.cpu, "cores": host.cores, "date": host.date}})
    print(f"wrote {json_path} and {png_path}; the service shows it from {kept}")


def cmd_lut_list(args: argparse.Namespace) -> None:
    from latency_tables.api import table_summary
    from latency_tables.table import list_tables

    rows = [table_summary(p, t) for p, t in list_tables()]
    if args.json:
        print_json(rows)
        return
    if not rows:
        print("no latency tables; build one with: hwnas lut build --profile ort-cpu-fp32-t1 --space SPACE")
        return
    print(
        render_table(
            ["table", "entries", "nets", "calibration", "CV MAPE", "path"],
            [
                [
                    r["name"],
                    r["entries"],
                    r["networks"],
                    r["calibration"],
                    f"{100 * r['cv_mape']:.1f}%" if r["cv_mape"] is not None else "-",
                    r["path"],
                ]
                for r in rows
            ],
            {1, 2, 4},
        )
    )


def cmd_lut_show(args: argparse.Namespace) -> None:
    from latency_tables.api import describe_table, open_table

    path, table = open_table(args.table)
    info = describe_table(path, table)
    kinds: dict[str, int] = info["entries_by_kind"]
    if args.json:
        print_json(info)
        return
    print(f"{table.name}  ({path})")
    print(f"  {table.note}")
    print(
        f"  host: {table.host.cpu}, {table.host.cores} cores, {table.host.machine}; versions "
        + ", ".join(f"{k} {v}" for k, v in table.host.versions.items())
        + f"; measured {table.host.date}"
    )
    print(f"  entries: {len(table.entries)} (" + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")")
    if info["median_p90_over_median"] is not None:
        print(
            f"  spread: median p90/median {info['median_p90_over_median']:.3f}; "
            f"call overhead {table.call_overhead_ms * 1000:.1f} us"
        )
    for name, cal in [("all spaces", table.calibration), *table.space_calibrations.items()]:
        print(f"  calibration ({name}): {cal.model} fitted on {cal.fitted_on} nets; {cal.note or 'not fitted'}")


def cmd_lut_export_kit(args: argparse.Namespace) -> None:
    """A kit for a device the service cannot reach: its graphs (int8 already quantized here) and the agent."""
    from latency_tables.kit import export_kit

    summary = export_kit(
        args.space or [],
        args.output,
        args.profile,
        calibrate=args.calibrate,
        seed=args.seed,
        resolution=args.resolution,
        progress=ProgressBar("kit"),
    )
    out = summary.path
    print(
        f"kit for {summary.profile}: {summary.layers} layers, {summary.networks} calibration nets, "
        f"{summary.bytes / 1e6:.1f} MB -> {out}"
    )
    print(
        f"on the device (Python 3 with numpy and onnxruntime): python3 {out.name} -o table.json.gz "
        "[--threads N]  (or: python3 -m latency_tables.agent ...)"
    )
    print("then here: hwnas lut import table.json.gz")


def cmd_lut_import(args: argparse.Namespace) -> None:
    """Take a table measured elsewhere (the device agent) into the user table folder, merged, recalibrated."""
    from latency_tables.api import import_table

    done = import_table(args.table_file, args.name)
    path, table = done.path, done.table
    if done.merged:
        print(f"merging into {path}: {done.added} new entries, {done.kept} already there (kept)")
    cal = table.calibration
    calibrated = (
        f"calibration not refitted: {done.calibration_skipped}"
        if done.calibration_skipped is not None
        else f"calibration: {cal.model} refitted on {cal.fitted_on} nets ({cal.note})"
    )
    print(
        f"imported {table.name} ({table.host.cpu}, {table.host.cores} cores): {len(table.entries)} entries "
        f"({done.added} new), {len(table.networks)} nets -> {path}"
    )
    print(calibrated)


def cmd_latency(args: argparse.Namespace) -> None:
    from latency_tables.api import load_predictor

    arch = resolve_architecture(args.arch)
    predictor = load_predictor(
        args.profile, args.table, missing="estimate" if args.estimate else "auto", space=args.space
    )
    pred = predictor.predict(arch)
    if args.json:
        print_json({"arch_id": arch.arch_id, **pred.as_dict(), "host_warning": predictor.host_warning})
        return
    rows = [
        [
            lyr.name,
            lyr.kind,
            f"{lyr.latency_ms:.4f}" + ("*" if lyr.estimated else ""),
            human(lyr.macs),
            f"{100 * lyr.latency_ms / pred.raw_sum_ms:.1f}%" if pred.raw_sum_ms else "-",
            lyr.key,
        ]
        for lyr in pred.layers
    ]
    print(render_table(["layer", "kind", "ms", "MACs", "share", "signature"], rows, {2, 3, 4}))
    print(
        f"predicted {pred.total_ms:.3f} ms on {pred.profile} (raw sum {pred.raw_sum_ms:.3f} ms, "
        f"calibration {predictor.calibration.model}{f' for {predictor.space}' if predictor.space else ''}, "
        f"table {pred.table})"
    )
    if pred.estimated:
        print("* estimated from the table's regression, not measured")


def add_commands(sub: Any, add: AddCommand) -> None:
    lut = sub.add_parser(
        "lut",
        help="latency lookup tables: build, validate, list, show, export-kit, import",
        description="latency lookup tables",
    )
    lsub = lut.add_subparsers(dest="lut_command", required=True, metavar="SUBCOMMAND")

    p = lsub.add_parser("build", help="measure the layers of spaces or nets on this host into a table")
    p.add_argument("--profile", required=True, help="device profile id, e.g. ort-cpu-fp32-t1")
    p.add_argument("--space", action="append", help="cover every layer of this space (repeatable)")
    p.add_argument("--arch", action="append", help="cover the layers of this net (repeatable)")
    p.add_argument("--resolution", type=int, help="input size (default: each space's default)")
    p.add_argument("--table", help="table file to extend or create (default: this host's table)")
    p.add_argument("--passes", type=int, default=2, help="measurements per layer at different times (default 2)")
    p.add_argument(
        "--calibrate",
        type=int,
        default=0,
        metavar="N",
        help="also measure N random whole nets per space and fit the calibration",
    )
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per calibration net (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_lut_build)

    p = lsub.add_parser("validate", help="predicted vs measured latency of random nets, next to the measurement noise")
    p.add_argument("--profile", required=True, help="device profile id, e.g. ort-cpu-fp32-t1")
    p.add_argument("--space", required=True, help="sample the nets from this space (at its default resolution)")
    p.add_argument("--samples", type=int, required=True, metavar="N", help="how many random nets to validate on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement pass (default 3)")
    p.add_argument("--table", help="table file (default: this host's table for the profile)")
    p.add_argument("--output-dir", default=".", help="where validate-<profile>-<space>.json/.png go (default .)")
    p.set_defaults(func=cmd_lut_validate)

    p = lsub.add_parser("list", help="tables on the search path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lut_list)

    p = lsub.add_parser("show", help="one table: host, entries, calibration")
    p.add_argument("table", help="a table file or a profile id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lut_show)

    p = lsub.add_parser("export-kit", help="a kit to measure a table on a device this host cannot reach")
    p.add_argument("--space", action="append", help="cover every layer of this space (repeatable)")
    p.add_argument(
        "--profile",
        default="ort-cpu-fp32-t1",
        help="profile the kit is for (precision and batch are fixed in it; default ort-cpu-fp32-t1)",
    )
    p.add_argument("--resolution", type=int, help="input size (default: each space's default)")
    p.add_argument(
        "--calibrate",
        type=int,
        default=10,
        metavar="N",
        help="whole random nets per space to measure for the calibration (default 10)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True, help="the kit zip to write")
    p.set_defaults(func=cmd_lut_export_kit)

    p = lsub.add_parser("import", help="add a table measured by the device agent to the user table folder")
    p.add_argument("table_file", help="the table the agent wrote, e.g. table.json.gz")
    p.add_argument("--name", help="file name in the table folder (default: <profile>@<host>.json.gz)")
    p.set_defaults(func=cmd_lut_import)

    p = add("latency", cmd_latency, "predicted latency of an architecture, with the per-layer breakdown")
    p.add_argument("arch", help="a known net name, a JSON file, or an architecture string")
    p.add_argument("--profile", required=True)
    p.add_argument("--table", help="table file (default: this host's table for the profile)")
    p.add_argument("--estimate", action="store_true", help="estimate layers the table lacks instead of failing")
    p.add_argument("--space", help="the space the net comes from (uses that space's calibration)")
    p.add_argument("--json", action="store_true")
