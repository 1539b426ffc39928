"""Latency on the user's own machine: the host check, the first-use table, and how wrong the shipped table is here.

What a new user meets on this machine, measured per device profile:

1. **Speed signature.** The reference layers timed ``--signature-repeats``
   times: their spread is the check's own noise (what the tolerances must
   sit above), and their ratio to the shipped table says whether the shipped
   table describes this host.
2. **First use.** From an empty table folder, :func:`ensure_host_table` for
   each space, as a search would do before its first prediction: seconds,
   layers and calibration nets measured.
3. **Validation with that fresh table.** ``--samples`` random nets of each
   space (none of them calibration nets) predicted, their missing layers
   measured on demand as a search meets them, then each net measured twice
   (independent interleaved passes). Reported next to the noise floor (the
   second measurement scored against the first), with the median
   predicted/measured ratio overall and for nets with and without
   squeeze-excite / h-swish (is a bias modelling or drift?).
   *Re-anchored*: the fresh table's predictions scaled by the host's speed
   just before the nets were measured against its speed at the build (its
   reference layers timed again): does a table re-anchored at the moment of
   use follow the machine's drift between build and use?
   *Re-anchored on nets*: the same, with the host's speed taken from a few of
   the table's own calibration nets (whole nets, spread over its latency
   range) timed again, against their figures at the build.
4. **The shipped table on the same measured nets** (``--against shipped``):
   what a user who trusted it would have seen.
5. **Noise across time.** Once every space of a profile is done, each space's
   validation nets are measured again (``--gap`` seconds at least after their
   first measurement; -1 skips it). A table is always used later than it was
   measured: this floor (the later measurement scored against the first) is
   what no table built earlier can beat, and the fresh table is scored
   against the later measurement too.

Prints tables, writes benchmarks/results/latency-host.json. Measures: run it
on a quiet machine (nothing else busy), one thread.

    .venv/bin/python benchmarks/latency_host.py [--profiles ...] [--spaces ...] [--samples 50] [--rounds 2] [--gap 300]
    .venv/bin/python benchmarks/latency_host.py --spaces fbnet mobiledet mobilenetv3 --name latency-host-224
    .venv/bin/python benchmarks/latency_host.py --fresh ...   # the shipped tables hidden from the search path
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import searchspace as ss  # noqa: E402
from benchmarks._common import write_results  # noqa: E402
from service.cli.progress import ProgressBar  # noqa: E402
from service.cli.tables import render_table  # noqa: E402

PROFILES = ["ort-cpu-fp32-t1", "ort-cpu-int8-t1"]
SPACES = ["mobilenetv2-cifar", "fbnet-cifar", "mobiledet-cifar", "mobilenetv3-cifar", "mobilenetv2"]


def shipped_path(profile: str) -> Path:
    from latency_tables.table import PACKAGE_DATA, LatencyTable

    for path in sorted(PACKAGE_DATA.glob("*.json.gz")):
        if LatencyTable.load(path).profile.id == profile:
            return path
    raise SystemExit(f"no shipped table for {profile}")


def signature_noise(profile: str, repeats: int) -> dict[str, Any]:
    """The reference layers timed ``repeats`` times: per-layer spread, and the spread of the geometric mean."""
    from latency_tables.host import REFERENCE_LAYERS, judge_signature, measure_signature
    from latency_tables.profiles import DeviceProfile
    from latency_tables.table import LatencyTable

    prof = DeviceProfile.parse(profile)
    runs = [measure_signature(prof) for _ in range(repeats)]
    first = runs[0]
    ratios = [judge_signature(first, r)[0] for r in runs[1:]]
    per_layer = {k: float(np.std([r[k] for r in runs]) / np.mean([r[k] for r in runs])) for k in REFERENCE_LAYERS}
    worst_layer = [max(abs(r[k] / first[k] - 1) for k in REFERENCE_LAYERS) for r in runs[1:]]
    shipped = LatencyTable.load(shipped_path(profile))
    mean_here = {k: float(np.median([r[k] for r in runs])) for k in REFERENCE_LAYERS}
    ship_mean, ship_ratios, ship_reasons = judge_signature(
        {k: shipped.entries[k].median_ms for k in REFERENCE_LAYERS if k in shipped.entries}, mean_here
    )
    return {
        "repeats": repeats,
        "geo_mean_ratio_vs_first": {"min": min(ratios), "max": max(ratios)},
        "max_layer_deviation_vs_first": max(worst_layer),
        "per_layer_cv": per_layer,
        "here_ms": mean_here,
        "shipped_ratio": ship_mean,
        "shipped_layer_ratios": ship_ratios,
        "shipped_verdict_reasons": ship_reasons,
    }


def uses_se_or_hswish(code: str) -> bool:
    return "_se" in code or "hswish" in code


def bias(pred: np.ndarray, meas: np.ndarray, codes: list[str]) -> dict[str, float | None]:
    ratio = pred / meas
    mask = np.asarray([uses_se_or_hswish(c) for c in codes])
    return {
        "median_ratio": float(np.median(ratio)),
        "median_ratio_se_hswish": float(np.median(ratio[mask])) if mask.any() else None,
        "median_ratio_plain": float(np.median(ratio[~mask])) if (~mask).any() else None,
    }


def drift(profile: str, table: Any) -> float:
    """The host's speed now against when ``table`` was measured: its reference layers timed again (a second or
    two), geometric mean of now / then. Scaling the table's predictions by it is what a table re-anchored at
    the moment of use would predict: does that follow the machine's drift between a build and its use?"""
    from latency_tables.host import REFERENCE_LAYERS, judge_signature, measure_signature
    from latency_tables.profiles import DeviceProfile

    then = {k: table.entries[k].median_ms for k in REFERENCE_LAYERS if k in table.entries}
    return judge_signature(then, measure_signature(DeviceProfile.parse(profile), list(then)))[0]


def drift_nets(profile: str, table: Any, space: str, count: int = 6, rounds: int = 2) -> dict[str, Any]:
    """The host's speed now against when ``table`` was measured, from whole nets: ``count`` of the table's
    calibration nets of ``space`` (evenly spread over their latencies) timed again. ``speed``: geometric mean
    of now / then; ``intercept_ms`` and ``scale``: now ~ intercept + scale * then, by least squares (a drift
    in a net's fixed cost as well as in its speed). Whole nets drift apart from isolated layers on these VMs;
    does re-timing a few whole nets follow them?"""
    from latency_tables.host import judge_nets, measure_nets
    from latency_tables.profiles import DeviceProfile

    nets = sorted((n for n in table.networks if n.space == space), key=lambda n: n.median_ms)
    picks = [nets[i] for i in sorted({round(i) for i in np.linspace(0, len(nets) - 1, min(count, len(nets)))})]
    if len(picks) < 2:
        raise SystemExit(f"the fresh table holds {len(picks)} calibration nets of {space}: nothing to re-time")
    # timed as the host check times its probe nets (under the measurement lock), judged by its geometric mean
    now = np.asarray(measure_nets(DeviceProfile.parse(profile), [n.arch for n in picks], rounds))
    then = np.asarray([n.median_ms for n in picks])
    scale, intercept = np.polyfit(then, now, 1)
    return {
        "speed": judge_nets(then.tolist(), now.tolist())[0],
        "intercept_ms": float(intercept),
        "scale": float(scale),
        "then_ms": then.tolist(),
        "now_ms": now.tolist(),
    }


def scored_on_nets(pred: np.ndarray, measured: np.ndarray, nets: dict[str, Any]) -> dict[str, Any]:
    """The table's predictions re-anchored on re-timed nets, scaled and affine, scored against ``measured``."""
    from latency_tables.validation_result import compare

    return {
        "speed_now_vs_build": nets["speed"],
        **compare(pred * nets["speed"], measured),
        "affine": compare(nets["intercept_ms"] + nets["scale"] * pred, measured),
        "nets": nets,
    }


def run_profile(profile: str, spaces: list[str], samples: int, rounds: int, seed: int) -> list[dict[str, Any]]:
    from latency_tables.api import load_predictor
    from latency_tables.first_use import ensure_host_table
    from latency_tables.validate import validate
    from latency_tables.validation_result import compare

    out = []
    shipped = shipped_path(profile)
    for name in spaces:
        space = ss.load_space(name)
        start = time.perf_counter()
        built = ensure_host_table(profile, name, progress=ProgressBar(f"{profile} {name} first use"))
        build_s = time.perf_counter() - start
        print(f"  {built.summary()}", flush=True)
        predictor = load_predictor(profile, table=built.path, space=name)
        speed = drift(profile, built.table)  # timed next to the validation: the machine's speed as it measures
        speed_nets = drift_nets(profile, built.table, name)
        result = validate(predictor, space, samples, seed=seed, rounds=rounds, progress=ProgressBar(f"validate {name}"))
        measured_at = time.monotonic()
        codes = [r.arch for r in result.rows]
        archs = [ss.Architecture.decode(c) for c in codes]
        pred = np.asarray([r.predicted_ms for r in result.rows])
        m1 = np.asarray([r.measured1_ms for r in result.rows])
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ship = load_predictor(profile, table=shipped, missing="estimate", space=name, check="cached")
        ship_pred = ship.predict_many(archs)
        out.append(
            {
                "profile": profile,
                "space": name,
                "first_use": {
                    "seconds": build_s,
                    "layers_measured": built.layers_measured,
                    "nets_measured": built.nets_measured,
                    "calibration": built.table.calibration_for(name).model,
                    "calibration_cv_mape": built.table.calibration_for(name).cv_mape,
                    "replaced": built.replaced,
                    "table": str(built.path),
                    "built": built.built,
                },
                "validation": {k: v for k, v in result.as_dict().items() if k != "nets"},
                "bias": bias(pred, m1, codes),
                # the table's predictions scaled by the host's speed now against at its build (reference layers)
                "reanchored": {"speed_now_vs_build": speed, **compare(pred * speed, m1)},
                "reanchored_nets": scored_on_nets(pred, m1, speed_nets),
                "shipped": {**compare(ship_pred, m1), **bias(ship_pred, m1, codes)},
                "measured_at": measured_at,
                "nets": [
                    {"arch": c, "predicted_ms": float(p), "shipped_ms": float(s), "m1": float(a), "m2": float(b)}
                    for c, p, s, a, b in zip(
                        codes, pred, ship_pred, m1, [r.measured2_ms for r in result.rows], strict=True
                    )
                ],
            }
        )
    return out


def measure_later(profile: str, spaces: list[dict[str, Any]], rounds: int, gap: float) -> None:
    """Each space's validation nets measured again, at least ``gap`` seconds after their first measurement: the
    noise across time (later vs first measurement) and the fresh table against the later measurement."""
    from latency_tables.profiler import measurement_lock
    from latency_tables.profiles import DeviceProfile
    from latency_tables.table import LatencyTable
    from latency_tables.validate import measure_interleaved
    from latency_tables.validation_result import compare

    for r in spaces:
        wait = r["measured_at"] + gap - time.monotonic()
        if wait > 0:
            print(f"  waiting {wait:.0f} s before measuring {r['space']} again", flush=True)
            time.sleep(wait)
        archs = [ss.Architecture.decode(n["arch"]) for n in r["nets"]]
        elapsed = time.monotonic() - r["measured_at"]
        table = LatencyTable.load(Path(r["first_use"]["table"]))
        speed = drift(profile, table)
        speed_nets = drift_nets(profile, table, r["space"])
        with measurement_lock():  # one pass, as many rounds as each of the first two
            later = measure_interleaved(archs, DeviceProfile.parse(profile), rounds, ProgressBar(f"{r['space']} again"))
        m1 = np.asarray([n["m1"] for n in r["nets"]])
        pred = np.asarray([n["predicted_ms"] for n in r["nets"]])
        r["later"] = {
            "seconds_after": elapsed,
            "noise": compare(later, m1),
            "predicted": compare(pred, later),
            "median_ratio_later_first": float(np.median(later / m1)),
            "reanchored": {"speed_now_vs_build": speed, **compare(pred * speed, later)},
            "reanchored_nets": scored_on_nets(pred, later, speed_nets),
        }
        for n, x in zip(r["nets"], later, strict=True):
            n["later"] = float(x)


def reanchored(now: dict[str, Any] | None, later: dict[str, Any] | None, key: str = "reanchored") -> str:
    """The table scaled by the host's speed at the measurement: within +-10% (that speed), then the same later;
    re-anchored on nets, the affine re-anchoring's within +-10% after a slash."""

    def one(r: dict[str, Any]) -> str:
        text = f"{pct(r['within_10_pct'])} ({r['speed_now_vs_build']:.2f}x)"
        return text + (f" / {pct(r['affine']['within_10_pct'])}" if "affine" in r else "")

    if now is None:  # a result written before this re-anchoring was measured
        return "-"
    return one(now) + (f", {one(later[key])}" if later is not None and key in later else "")


def pct(v: float | None) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}%"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", nargs="+", default=PROFILES)
    p.add_argument("--spaces", nargs="+", default=SPACES)
    p.add_argument("--samples", type=int, default=50)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--signature-repeats", type=int, default=10)
    p.add_argument(
        "--gap", type=float, default=300, help="seconds at least before measuring the validation nets again (-1: not)"
    )
    p.add_argument("--name", default="latency-host", help="results file name (benchmarks/results/NAME.json)")
    p.add_argument(
        "--fresh",
        action="store_true",
        help="hide the shipped tables from the search path too (first use builds this host's table either way, "
        "since it no longer adopts a shipped one that passes the check; kept so older runs can be repeated)",
    )
    args = p.parse_args()
    if args.fresh:
        from latency_tables import table as table_module

        table_module.table_dirs = lambda: [table_module.user_table_dir()]  # type: ignore[assignment]
    # written after each profile, so a run stopped midway (the 224x224 int8 spaces take an hour on a slow VM) keeps
    # what it measured; "complete" says whether every profile is in
    results: dict[str, Any] = {"settings": vars(args), "complete": False, "signature": {}, "spaces": []}
    for profile in args.profiles:
        with tempfile.TemporaryDirectory(prefix="hwnas-first-use-") as folder:
            os.environ["HWNAS_LUT_DIR"] = folder  # an empty table folder: a new user's first use
            os.environ["HWNAS_MEASURE_LOCK"] = str(Path(folder) / "measure.lock")
            print(f"{profile}: speed signature x{args.signature_repeats}", flush=True)
            results["signature"][profile] = signature_noise(profile, args.signature_repeats)
            done = run_profile(profile, args.spaces, args.samples, args.rounds, args.seed)
            if args.gap >= 0:
                measure_later(profile, done, args.rounds, args.gap)
            results["spaces"] += done
            write_results(args.name, results)

    print()
    print(
        render_table(
            ["profile", "signature noise (geo mean)", "worst layer", "shipped table / here"],
            [
                [
                    pid,
                    f"{s['geo_mean_ratio_vs_first']['min']:.3f}-{s['geo_mean_ratio_vs_first']['max']:.3f}",
                    f"{100 * s['max_layer_deviation_vs_first']:.1f}%",
                    f"here {s['shipped_ratio']:.2f}x the shipped figures",
                ]
                for pid, s in results["signature"].items()
            ],
            set(),
        )
    )
    rows = []
    for r in results["spaces"]:
        m, n, s, f = (
            r["validation"]["metrics"]["predicted"],
            r["validation"]["metrics"]["noise"],
            r["shipped"],
            r["first_use"],
        )
        later = r.get("later")
        rows.append(
            [
                r["profile"],
                r["space"],
                f"{f['seconds']:.0f} s ({f['layers_measured']} layers, {f['nets_measured']} nets)",
                f"{pct(m['within_10_pct'])} ({pct(n['within_10_pct'])})",
                f"{m['spearman']:.3f} ({n['spearman']:.3f})",
                f"{m['mape_pct']:.1f}%",
                f"{r['bias']['median_ratio']:.3f}",
                "-"
                if later is None
                else f"{pct(later['predicted']['within_10_pct'])} ({pct(later['noise']['within_10_pct'])}), "
                f"{later['median_ratio_later_first']:.2f}, {later['seconds_after'] / 60:.0f} min",
                reanchored(r.get("reanchored"), later),
                reanchored(r.get("reanchored_nets"), later, "reanchored_nets"),
                f"{pct(s['within_10_pct'])}, {s['mape_pct']:.0f}%, {s['median_ratio']:.2f}",
            ]
        )
    print(
        render_table(
            [
                "profile",
                "space",
                "first use",
                "+-10% (noise)",
                "Spearman (noise)",
                "MAPE",
                "pred/meas",
                "later: +-10% (noise), later/first, after",
                "re-anchored: +-10% (speed), later",
                "on nets: +-10% (speed) / affine, later",
                "shipped: +-10%, MAPE, pred/meas",
            ],
            rows,
            set(),
        )
    )
    results["complete"] = True
    out = write_results(args.name, results)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
