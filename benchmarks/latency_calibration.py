"""Where does a first-use table's error come from: the layer sums, the calibration nets, or the time between?

A first-use table (issue 16) predicts a net as a calibrated sum of its
layers' isolated latencies; the calibration is fitted on 20 random nets
measured end to end while the table was built. Its misses on the MobileDets
spaces (88-96% of nets within +-10% where a second measurement gets 100%)
could come from:

- **the calibration nets**: 20 random draws can leave the cheapest nets,
  which fix the intercept, to one or two nets; ``spread`` picks one net per
  MACs stratum instead; 40 nets instead of 20;
- **drift**: the calibration was measured minutes before the nets it is
  judged on, on a machine whose speed moves by a few percent;
- **the layer sums themselves** (modelling): what isolated layers miss.

One table is built per space as a new user's first use builds it. Then the
candidate calibration pools and ``--samples`` validation nets are measured
end to end together, twice, in one interleaved session, and each
calibration is fitted on its pool's measurements and scored on the same
validation measurements, next to:

- ``first use``: the table's own calibration (fitted at build time, on
  first use's own nets: random before this script's first runs, spread
  after);
- ``raw``: the uncalibrated sum;
- ``oracle (CV)``: a calibration fitted on the validation nets themselves
  (5-fold cross-validated): the best any calibration of this form can do,
  so what is left under it is the layer sums' error;
- ``noise``: the second measurement against the first (same session);
- ``noise across sessions``: the validation nets measured again ``--gap``
  seconds later against the first session: the floor for any table built
  earlier, since its figures were measured then.

Prints a table per space; writes benchmarks/results/latency-calibration.json
(with every net's raw sum, kind sums and both measurements, for further
analysis). Measures: run it on a quiet machine, one thread.

    .venv/bin/python benchmarks/latency_calibration.py [--spaces mobiledet-cifar mobiledet] [--samples 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import searchspace as ss  # noqa: E402
from benchmarks._common import write_results  # noqa: E402
from service.cli.progress import ProgressBar  # noqa: E402
from service.cli.tables import render_table  # noqa: E402

SPACES = ["mobiledet-cifar", "mobiledet", "mobilenetv3-cifar"]


def pools(space: str, seed: int) -> dict[str, list[ss.Architecture]]:
    """The candidate calibration sets, by name ("random 20" is what first use measures)."""
    from latency_tables.kit import calibration_archs

    random40 = [a for _, a in calibration_archs([space], 40, seed, strategy="random")]
    spread20 = [a for _, a in calibration_archs([space], 20, seed, strategy="spread")]
    spread40 = [a for _, a in calibration_archs([space], 40, seed, strategy="spread")]
    return {
        "random 20": random40[:20],
        "spread 20": spread20,
        "random 40": random40,
        "spread 40": spread40,
        "random 20 + spread 20": random40[:20] + spread20,
    }


def cv_oracle(
    raw: np.ndarray,
    layers: np.ndarray,
    sums: np.ndarray,
    y: np.ndarray,
    columns: tuple[str, ...],
    params: np.ndarray | None,
    folds: int = 5,
) -> tuple[np.ndarray, str]:
    """Each validation net predicted by a calibration fitted on the other folds of the validation nets."""
    from latency_tables.calibration import apply, fit

    order = np.random.default_rng(0).permutation(len(y))
    out = np.empty(len(y))
    models = []
    for part in np.array_split(order, folds):
        train = np.setdiff1d(order, part)
        p_train = None if params is None else params[train]
        cal = fit(raw[train], layers[train], sums[train], y[train], columns=columns, params=p_train)
        models.append(cal.model)
        out[part] = apply(cal, raw[part], layers[part], sums[part], columns, None if params is None else params[part])
    return out, "/".join(sorted(set(models)))


def run_space(profile: str, name: str, samples: int, rounds: int, seed: int, gap: float) -> dict[str, Any]:
    from latency_tables.api import load_predictor
    from latency_tables.calibration import apply, fit
    from latency_tables.first_use import ensure_host_table
    from latency_tables.profiles import DeviceProfile
    from latency_tables.signatures import arch_keys
    from latency_tables.validate import measure_twice, sample_archs
    from latency_tables.validation_result import compare

    space = ss.load_space(name)
    start = time.perf_counter()
    built = ensure_host_table(profile, name, progress=ProgressBar(f"{name} first use"))
    build_s = time.perf_counter() - start
    print(f"  {built.summary()}", flush=True)
    first_use_cal = built.table.calibration_for(name)

    cal_pools = pools(name, seed)
    exclude = {a.encode() for p in cal_pools.values() for a in p}
    valid = sample_archs(space, samples, seed, exclude=exclude)
    # every distinct net once, in one measurement session
    union: dict[str, ss.Architecture] = {}
    for a in [*valid, *(a for p in cal_pools.values() for a in p)]:
        union.setdefault(a.encode(), a)
    codes = list(union)
    archs = list(union.values())

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = load_predictor(profile, table=built.path, space=name)
    from latency_tables import host as host_module

    drift: list[float] = []  # the scale each batch of layers measured on demand was put in the table's terms by
    plain = host_module.measure_in_table_terms

    def recording(*a: Any, **kw: Any) -> float:
        drift.append(plain(*a, **kw))
        return drift[-1]

    host_module.measure_in_table_terms = recording  # type: ignore[assignment]
    built_keys = set(built.table.entries)
    start = time.perf_counter()
    try:
        raw, layers, sums = predictor.features(archs)  # measures the layers first use left out, as a search would
    finally:
        host_module.measure_in_table_terms = plain  # type: ignore[assignment]
    layers_s = time.perf_counter() - start
    first_use_pred = predictor.predict_many(archs)
    columns = predictor.kinds
    start = time.perf_counter()
    m1, m2 = measure_twice(archs, DeviceProfile.parse(profile), rounds, ProgressBar(f"{name} measure"), seed=seed)
    measure_s = time.perf_counter() - start

    pos = {c: i for i, c in enumerate(codes)}
    v = np.asarray([pos[a.encode()] for a in valid])
    rows: dict[str, dict[str, Any]] = {}
    rows["noise (2nd measurement)"] = {**compare(m2[v], m1[v]), "model": "-"}
    rows["raw sum"] = {**compare(raw[v], m1[v]), "model": "raw"}
    rows["first use (20 nets, fitted at build)"] = {
        **compare(first_use_pred[v], m1[v]),
        "model": first_use_cal.model,
    }
    params = predictor.params(archs)
    for label, pool in cal_pools.items():
        idx = np.asarray([pos[a.encode()] for a in pool])
        # without params: the models before the weights model (raw, affine, per-kind), chosen by CV as ever
        for suffix, p in ((" without the weights model", None), ("", params)):
            if suffix and label not in ("random 20", "spread 20"):
                continue
            cal = fit(raw[idx], layers[idx], sums[idx], m1[idx], columns=columns, params=None if p is None else p[idx])
            pred = apply(cal, raw[v], layers[v], sums[v], columns, None if p is None else p[v])
            rows[f"{label}{suffix}, fitted now"] = {
                **compare(pred, m1[v]),
                "model": cal.model,
                "cv_mape": cal.cv_mape,
            }
    for suffix, p in ((" without the weights model", None), ("", params)):
        oracle, models = cv_oracle(raw[v], layers[v], sums[v], m1[v], columns, None if p is None else p[v])
        rows[f"oracle{suffix}: validation nets (5-fold CV)"] = {**compare(oracle, m1[v]), "model": models}
    later: np.ndarray | None = None
    if gap >= 0:
        # the same validation nets again, ``gap`` seconds later: how far a measurement moves between sessions,
        # which is what a table built earlier (any table: its layers and calibration were measured then) meets
        time.sleep(gap)
        vals = [archs[i] for i in v]
        later, _ = measure_twice(vals, DeviceProfile.parse(profile), rounds, ProgressBar(f"{name} later"), seed + 1)
        rows[f"noise across sessions ({gap:.0f} s later)"] = {**compare(later, m1[v]), "model": "-"}
        rows["first use, against the later session"] = {**compare(first_use_pred[v], later), "model": "-"}
    validation_set = set(v.tolist())
    later_by = {} if later is None else {int(i): float(x) for i, x in zip(v, later, strict=True)}
    return {
        "profile": profile,
        "space": name,
        "first_use_s": build_s,
        "first_use_calibration": first_use_cal.model_dump(),
        "layers_on_demand_s": layers_s,
        "on_demand_scales": drift,
        "measure_s": measure_s,
        "validation_nets": len(valid),
        "calibrations": rows,
        "columns": list(columns),
        "nets": [
            {
                "arch": c,
                "validation": i in validation_set,
                "raw_ms": float(raw[i]),
                "layers": int(layers[i]),
                "params": int(params[i]),
                "layers_from_first_use": all(k in built_keys for k in arch_keys(archs[i])),
                "kind_sums": [float(x) for x in sums[i]],
                "first_use_ms": float(first_use_pred[i]),
                "m1": float(m1[i]),
                "m2": float(m2[i]),
                "later": later_by.get(i),
            }
            for i, c in enumerate(codes)
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="ort-cpu-fp32-t1")
    p.add_argument("--spaces", nargs="+", default=SPACES)
    p.add_argument("--samples", type=int, default=100)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--gap", type=float, default=120, help="seconds before measuring the validation nets again (-1: not at all)"
    )
    p.add_argument("--name", default="latency-calibration", help="results file name (benchmarks/results/NAME.json)")
    args = p.parse_args()
    results: dict[str, Any] = {"settings": vars(args), "spaces": []}
    for name in args.spaces:
        with tempfile.TemporaryDirectory(prefix="hwnas-calibration-") as folder:
            os.environ["HWNAS_LUT_DIR"] = folder  # an empty table folder: a new user's first use
            os.environ["HWNAS_MEASURE_LOCK"] = str(Path(folder) / "measure.lock")
            r = run_space(args.profile, name, args.samples, args.rounds, args.seed, args.gap)
        results["spaces"].append(r)
        print()
        print(f"{args.profile} {name}: {r['validation_nets']} validation nets, first use {r['first_use_s']:.0f} s")
        print(
            render_table(
                ["calibration", "model", "+-5%", "+-10%", "MAPE", "Spearman"],
                [
                    [
                        label,
                        row["model"],
                        f"{row['within_5_pct']:.0f}%",
                        f"{row['within_10_pct']:.0f}%",
                        f"{row['mape_pct']:.1f}%",
                        f"{row['spearman']:.3f}",
                    ]
                    for label, row in r["calibrations"].items()
                ],
                set(),
            )
        )
        out = write_results(args.name, results)  # after every space: a long run keeps what it measured
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
