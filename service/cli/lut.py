"""``hwnas lut ...`` and ``hwnas latency``: latency tables from the command line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from latency_tables.errors import LatencyTableError
from latency_tables.kit import calibration_archs
from searchspace import load_space, resolve_architecture
from service.cli import AddCommand, print_json
from service.cli.progress import ProgressBar
from service.cli.tables import human, render_table

if TYPE_CHECKING:
    from latency_tables.host import HostCheck
    from latency_tables.profiles import DeviceProfile, HostInfo
    from searchspace.spec import SearchSpace


def _build_first_use(args: argparse.Namespace, profile: Any) -> None:
    """``lut build --first-use``: what a search does on a new host, ahead of it (one table per profile, the
    layers and calibration nets each space needs; the rest of a large space is measured as a search meets it)."""
    from latency_tables.errors import LatencyTableError
    from latency_tables.first_use import FIRST_USE_NETS, ensure_host_table
    from service.cli.progress import ProgressBar

    if not args.space or args.arch or args.table:
        raise LatencyTableError(
            "lut build --first-use: name the spaces with --space (it builds this host's own table in the user "
            "folder; --arch and --table belong to a full build)"
        )
    for space in args.space:
        built = ensure_host_table(
            profile,
            load_space(space),  # its calibration keyed by the space's name, as a search looks it up
            resolution=args.resolution,
            calibrate=args.calibrate or FIRST_USE_NETS,
            seed=args.seed,
            progress=ProgressBar(f"{space} first use"),
        )
        print(built.summary())


def cmd_lut_build(args: argparse.Namespace) -> None:
    from latency_tables.api import layers_to_cover, table_to_extend
    from latency_tables.errors import LatencyTableError
    from latency_tables.predictor import LatencyPredictor
    from latency_tables.profiler import build_table, measure_networks
    from latency_tables.profiles import DeviceProfile

    profile = DeviceProfile.parse(args.profile)
    if args.first_use:
        _build_first_use(args, profile)
        return
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
    if args.against == "shipped":
        validate_against_shipped(args, profile, space)
        return
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


def validate_against_shipped(args: argparse.Namespace, profile: DeviceProfile, space: SearchSpace) -> None:
    """``lut validate --against shipped``: the shipped table's predictions against nets measured here, next to
    this host's own table's predictions of the same nets (measured once for both)."""
    import warnings

    import numpy as np

    from latency_tables.api import load_predictor
    from latency_tables.host import build_command
    from latency_tables.profiles import HostInfo
    from latency_tables.validate import host_table, shipped_table, validate_tables

    shipped_path, _ = shipped_table(profile)
    own_path = Path(args.table) if args.table else None
    if own_path is None:
        found = host_table(profile, exclude=shipped_path)
        own_path = found[0] if found else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # whose host each table is, is said below (or is the error)
        shipped = load_predictor(profile, shipped_path, missing="estimate", space=space.name)
        own = load_predictor(profile, own_path, space=space.name) if own_path else None
    if own is not None and not own.same_host:
        raise LatencyTableError(
            f"lut validate --against shipped: --table {own_path} is not this host's table "
            f"({own.host_check.summary()}); name a table measured here, or leave --table out"
        )
    here = HostInfo.current()
    host = shipped.table.host
    rounds = f"{args.rounds} interleaved round{'s' if args.rounds != 1 else ''}"
    print(f"{profile.id} / {space.name}: {args.samples} nets, each measured twice here ({rounds} per pass)")
    print(
        f"shipped table {shipped.table.name} ({shipped_path}): measured on {_host_line(host)}"
        f"{f' on {host.date}' if host.date else ''}; this host: {_host_line(here)}"
    )
    print(f"host check: {shipped.host_check.summary()}")
    if own is None:
        print(f"this host has no table of {profile.id}; build it: {build_command(profile.id, space.name)}")
    else:
        print(f"this host's table: {own.table.name} ({own_path}, calibration {own.calibration.model})")
    results = validate_tables(
        [shipped] + ([own] if own else []),
        space,
        args.samples,
        seed=args.seed,
        rounds=args.rounds,
        progress=ProgressBar("validate"),
        foreign_ok=True,
    )
    result, own_result = results[0], (results[1] if own else None)
    headers = ["", "shipped table", "shipped raw sum"] + (["this host's table"] if own_result else [])
    own_rows = own_result.metric_rows() if own_result else None
    rows = [  # [statistic, shipped, shipped raw, (this host's,) noise]: the nets and their noise are the same
        [*row[:3], *([own_rows[i][1]] if own_rows else []), row[3]] for i, row in enumerate(result.metric_rows())
    ]
    print(render_table([*headers, "noise (meas. 2 vs 1)"], rows, set(range(1, len(headers) + 1))))
    ratio = float(np.median([r.measured1_ms / r.predicted_ms for r in result.rows if r.predicted_ms > 0]))
    estimated = sum(r.estimated for r in result.rows)
    print(
        f"this host runs these nets at {ratio:.2f}x the shipped table's prediction (median of measured / predicted)"
        + (
            f"; {estimated} of {result.samples} nets have layers the shipped table lacks (estimated)"
            if estimated
            else ""
        )
    )
    if own_result and own_result.layers_measured:
        print(f"{own_result.layers_measured} layers measured on demand into this host's table")
    print(f"measuring took {result.measure_s:.0f} s")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"validate-{profile.id}-{space.name}-shipped"
    json_path = out / f"{stem}.json"
    report = result.as_dict() | {
        "against": "shipped",
        "shipped_path": str(shipped_path),
        "host_check": shipped.host_check.as_dict(),
        "measured_over_predicted_median": ratio,
        "measured_on": {"cpu": here.cpu, "cores": here.cores, "date": here.date},
        "host_table": own_result.as_dict() | {"path": str(own_path)} if own_result else None,
    }
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    png_path = result.save_plot(out / f"{stem}.png")
    print(
        f"wrote {json_path} and {png_path} (the service's validation reports are left as they were: "
        "`hwnas lut validate` without --against writes those)"
    )


def cmd_lut_list(args: argparse.Namespace) -> None:
    from latency_tables.api import table_summary
    from latency_tables.host import check_table
    from latency_tables.profiles import HostInfo
    from latency_tables.table import list_tables

    here = HostInfo.current()
    # the host verdict from the fingerprint or this boot's cached check: a listing never times anything
    rows = [
        table_summary(p, t) | {"host_check": _check_brief(check_table(t, measure=False, host=here))}
        for p, t in list_tables()
    ]
    if args.json:
        print_json(rows)
        return
    if not rows:
        print("no latency tables; build one with: hwnas lut build --profile ort-cpu-fp32-t1 --space SPACE")
        return
    print(
        render_table(
            ["table", "entries", "nets", "calibration", "CV MAPE", "host", "path"],
            [
                [
                    r["name"],
                    r["entries"],
                    r["networks"],
                    r["calibration"],
                    f"{100 * r['cv_mape']:.1f}%" if r["cv_mape"] is not None else "-",
                    r["host_check"]["verdict"],
                    r["path"],
                ]
                for r in rows
            ],
            {1, 2, 4},
        )
    )
    if any(r["host_check"]["verdict"] != "same" for r in rows):
        print("host: whether a table describes this host; `hwnas lut check` says why and measures what is unknown")


def _check_brief(check: HostCheck) -> dict[str, Any]:
    """A host check as listings report it: verdict, reasons, speed ratio."""
    return {
        "verdict": check.verdict,
        "reasons": list(check.reasons),
        "speed_ratio": check.speed_ratio,
        "net_ratio": check.net_ratio,
    }


def cmd_lut_check(args: argparse.Namespace) -> None:
    """Whether each table describes this host: fingerprint, then (unless --no-measure) the speed signature."""
    from latency_tables.host import build_command, check_table
    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.table import list_tables
    from service.latency import next_step

    wanted = [DeviceProfile.parse(p).id for p in args.profile or []]
    here = HostInfo.current()
    tables = [(p, t) for p, t in list_tables() if not wanted or t.profile.id in wanted]
    rows: list[dict[str, Any]] = []
    for path, table in tables:
        check = check_table(table, measure=not args.no_measure, host=here)
        rows.append(
            {"table": table.name, "profile": table.profile.id, "path": str(path)}
            | {k: v for k, v in check.as_dict().items() if k != "table"}
            | {"next_step": next_step(table, check)}
        )
    for pid in wanted:
        if not any(t.profile.id == pid for _, t in tables):
            rows.append(
                {
                    "table": None,
                    "profile": pid,
                    "path": None,
                    "verdict": None,
                    "reasons": ["no table of this profile on the search path"],
                    "next_step": f"build this host's table: {build_command(pid)}",
                }
            )
    if args.json:
        print_json(rows)
        return
    if not rows:
        print("no latency tables; build one with: hwnas lut build --profile ort-cpu-fp32-t1 --space SPACE")
        return
    print(f"this host: {_host_line(here)}")
    checked = [r for r in rows if r["table"]]
    if checked:
        print(
            render_table(
                ["table", "verdict", "layers: time here/table", "nets: time here/table", "path"],
                [
                    [
                        r["table"],
                        r["verdict"],
                        f"{r['speed_ratio']:.2f}x" if r["speed_ratio"] else "-",
                        f"{r['net_ratio']:.2f}x" if r.get("net_ratio") else "-",
                        r["path"],
                    ]
                    for r in checked
                ],
                {2, 3},
            )
        )
    for r in rows:
        if r["verdict"] != "same":
            print(f"{r['table'] or r['profile']}: {'; '.join(r['reasons'])}")
            if r["next_step"]:
                print(f"  {r['next_step']}")


def _host_line(host: HostInfo) -> str:
    """A host in one line: label, cores, machine, and the CPU fingerprint where known."""
    ids = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("vendor", host.vendor),
            ("family", host.family),
            ("model", host.model_number),
            ("stepping", host.stepping),
            ("microcode", host.microcode),
        )
        if value
    )
    return f"{host.cpu}, {host.cores} cores, {host.machine}" + (f" ({ids})" if ids else "")


def cmd_lut_show(args: argparse.Namespace) -> None:
    from latency_tables.api import describe_table, open_table
    from latency_tables.host import check_table, reference_figures
    from service.latency import next_step

    path, table = open_table(args.table)
    check = check_table(table, measure=False)  # this boot's cached verdict, else the fingerprint's: times nothing
    host = table.host
    fingerprint = {
        name: getattr(host, name)
        for name in ("vendor", "family", "model_number", "stepping", "microcode", "flags", "caches")
        if getattr(host, name)
    }
    signature = reference_figures(table)
    info = describe_table(path, table) | {
        "fingerprint": fingerprint,
        "speed_signature": signature,
        "host_check": check.as_dict(),
        "next_step": next_step(table, check),
    }
    kinds: dict[str, int] = info["entries_by_kind"]
    if args.json:
        print_json(info)
        return
    print(f"{table.name}  ({path})")
    print(f"  {table.note}")
    print(
        f"  host: {_host_line(host)}; versions "
        + ", ".join(f"{k} {v}" for k, v in host.versions.items())
        + f"; measured {host.date}"
    )
    if host.caches:
        print("  caches: " + ", ".join(f"{k} {v}" for k, v in host.caches.items()))
    if host.flags:
        print(f"  instruction sets: {' '.join(host.flags)}")
    if not fingerprint:
        print(
            "  no CPU fingerprint (the table predates them): only label, cores, machine and runtime versions are "
            "compared, and the speed signature"
        )
    if signature:
        print(f"  speed signature ({len(signature)} reference layers):")
        for key, ms in signature.items():
            here = check.layer_ratios.get(key)
            print(f"    {ms:8.4f} ms" + (f"  (here {here:.2f}x)" if here else "") + f"  {key}")
    else:
        print("  speed signature: none (the table holds no reference layer)")
    print(f"  host check: {check.summary()}")
    if info["next_step"]:
        print(f"    {info['next_step']}")
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
    import warnings

    from latency_tables.api import load_predictor
    from latency_tables.host import build_command

    arch = resolve_architecture(args.arch)
    with warnings.catch_warnings():
        if not args.json:  # said once, after the table, where it is read
            warnings.filterwarnings("ignore", message=r"table \S+ was measured on another host")
        predictor = load_predictor(
            args.profile, args.table, missing="estimate" if args.estimate else "auto", space=args.space
        )
    pred = predictor.predict(arch)
    if args.json:
        print_json(
            {
                "arch_id": arch.arch_id,
                **pred.as_dict(),
                "host_check": predictor.host_check.as_dict(),
                "host_warning": predictor.host_warning,
            }
        )
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
    if pred.foreign:
        print(
            f"warning: {predictor.host_check.summary()}; these are that host's latencies, not this one's; "
            f"build this host's table: {build_command(pred.profile, args.space)}"
        )


def add_commands(sub: Any, add: AddCommand) -> None:
    lut = sub.add_parser(
        "lut",
        help="latency lookup tables: build, validate, list, check, show, export-kit, import",
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
    p.add_argument(
        "--first-use",
        action="store_true",
        help="build this host's table as a search would on first use: the layers a large space's calibration "
        "nets need (the rest as searches meet them) and 20 calibration nets (--calibrate N for another count); "
        "about a minute per -cifar space, where --space alone measures every layer",
    )
    p.set_defaults(func=cmd_lut_build)

    p = lsub.add_parser("validate", help="predicted vs measured latency of random nets, next to the measurement noise")
    p.add_argument("--profile", required=True, help="device profile id, e.g. ort-cpu-fp32-t1")
    p.add_argument("--space", required=True, help="sample the nets from this space (at its default resolution)")
    p.add_argument("--samples", type=int, required=True, metavar="N", help="how many random nets to validate on")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds per measurement pass (default 3)")
    p.add_argument("--table", help="table file (default: this host's table for the profile)")
    p.add_argument("--output-dir", default=".", help="where validate-<profile>-<space>.json/.png go (default .)")
    p.add_argument(
        "--against",
        choices=["shipped"],
        help="validate the table hwnas ships for the profile against nets measured here (how far it is from "
        "this host), next to this host's own table (--table, else the one on the search path) on the same nets",
    )
    p.set_defaults(func=cmd_lut_validate)

    p = lsub.add_parser("list", help="tables on the search path, and whether each describes this host")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lut_list)

    p = lsub.add_parser(
        "check", help="whether each table describes this host (CPU fingerprint, then a measured speed signature)"
    )
    p.add_argument("--profile", action="append", help="check only this profile's tables (repeatable)")
    p.add_argument(
        "--no-measure",
        action="store_true",
        help="time nothing: the fingerprint, or a speed signature already measured on this boot",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lut_check)

    p = lsub.add_parser("show", help="one table: host, fingerprint, speed signature, host check, entries, calibration")
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
