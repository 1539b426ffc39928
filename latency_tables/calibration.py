"""From a raw sum of isolated layer latencies to a calibrated net latency.

Isolated layers miss what a whole net shares or adds: one call's fixed cost,
and per-layer effects (caches, int8 quantize/dequantize at every isolated
boundary that vanish inside a net). Three models are fitted on the whole
nets a table measured end to end, and the one with the lowest 5-fold
cross-validated MAPE wins:

- ``raw``: the sum itself;
- ``affine``: intercept + scale * sum;
- ``weights``: affine plus a term in sum * ln(the net's parameters, in
  millions). An isolated layer is timed with its weights hot in the
  caches; inside a net every layer's weights come from farther away, so a
  net with more weights runs slower than its layers' sum, by a factor that
  grows with the log of its weights (on mobiledet-cifar, 1 to 56 MB of
  weights: m / sum correlates 0.81 with log parameters, and this model took
  the share of nets predicted within +-10% from 85-89% to 92-97%;
  benchmarks/latency_calibration.py);
- ``per-kind``: intercept + per-layer cost * layers + a scale per layer kind
  (:func:`kinds`: stem, each block type's calibration kind, head) times that
  kind's sum, with ridge shrinkage of every scale toward 1.

A fitted calibration stores its scales by kind name, so registering a block
type (a new kind) leaves every stored calibration valid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from latency_tables.table import Calibration
from searchspace.architecture import Architecture
from searchspace.blocks import block_types

if TYPE_CHECKING:
    from latency_tables.predictor import LatencyPredictor


def kinds() -> tuple[str, ...]:
    """Layer kinds in column order: "stem", the registered block types' kinds in registration order, "head".

    For the built-in types: stem, ibn, fused, tucker, dsconv, conv, skip, head.
    """
    return ("stem", *dict.fromkeys(t.calibration_kind for t in block_types()), "head")


def kind_index() -> dict[str, int]:
    """Kind name -> its column in per-kind sums."""
    return {k: i for i, k in enumerate(kinds())}


def weights_feature(raw: np.ndarray, params: np.ndarray) -> np.ndarray:
    """The ``weights`` model's third column: raw sum times ln(parameters in millions)."""
    return raw * np.log(np.maximum(np.asarray(params, dtype=float), 1.0) / 1e6)


def apply(
    cal: Calibration,
    raw: np.ndarray,
    layers: np.ndarray,
    kind_sums: np.ndarray,
    columns: Sequence[str] | None = None,
    params: np.ndarray | None = None,
) -> np.ndarray:
    """Calibrated latency for arrays of nets: raw sums (n,), layer counts (n,), per-kind sums (n, kinds),
    parameter counts (n,; the ``weights`` model needs them).

    ``columns`` names kind_sums' columns (default :func:`kinds`).
    """
    if cal.model == "raw":
        return raw.astype(float)
    if cal.model == "affine":
        return cal.intercept_ms + cal.scale * raw
    if cal.model == "weights":
        if params is None:
            raise ValueError("the weights calibration needs each net's parameter count")
        return cal.intercept_ms + cal.scale * raw + cal.weights_scale * weights_feature(raw, params)
    scales = np.array([cal.kind_scales.get(k, 1.0) for k in (columns or kinds())])
    # kind_sums exclude the once-per-net call cost that raw includes; the intercept absorbs it
    return cal.intercept_ms + cal.per_layer_ms * layers + kind_sums @ scales


def _design(
    model: str, raw: np.ndarray, layers: np.ndarray, kind_sums: np.ndarray, params: np.ndarray | None
) -> np.ndarray:
    ones = np.ones_like(raw)
    if model == "affine":
        return np.column_stack([ones, raw])
    if model == "weights":
        assert params is not None
        return np.column_stack([ones, raw, weights_feature(raw, params)])
    return np.column_stack([ones, layers, kind_sums])


def _fit_one(
    model: str,
    raw: np.ndarray,
    layers: np.ndarray,
    kind_sums: np.ndarray,
    y: np.ndarray,
    columns: Sequence[str],
    params: np.ndarray | None = None,
    ridge: float = 1e-3,
) -> Calibration:
    if model == "raw":
        return Calibration(model="raw")
    x = _design(model, raw, layers, kind_sums, params)
    prior = np.zeros(x.shape[1])
    if model == "weights":
        prior[1] = 1.0  # the scale toward 1, the intercept and the weights term toward 0
    else:
        prior[1 if model == "affine" else 2 :] = 1.0  # scales toward 1, offsets toward 0
    # relative error matters, so weight each net by 1 / y
    w = 1.0 / np.maximum(y, 1e-9)
    xw, yw = x * w[:, None], y * w
    scale = np.maximum(np.abs(xw).mean(axis=0), 1e-12)
    lam = ridge * len(y)
    beta = np.linalg.solve(xw.T @ xw + lam * np.diag(scale**2), xw.T @ yw + lam * scale**2 * prior)
    if model == "affine":
        return Calibration(model="affine", intercept_ms=float(beta[0]), scale=float(beta[1]))
    if model == "weights":
        return Calibration(
            model="weights", intercept_ms=float(beta[0]), scale=float(beta[1]), weights_scale=float(beta[2])
        )
    return Calibration(
        model="per-kind",
        intercept_ms=float(beta[0]),
        per_layer_ms=float(beta[1]),
        kind_scales={
            k: float(v) for i, (k, v) in enumerate(zip(columns, beta[2:], strict=True)) if np.any(kind_sums[:, i])
        },
    )


def _mape(
    cal: Calibration,
    raw: np.ndarray,
    layers: np.ndarray,
    kind_sums: np.ndarray,
    y: np.ndarray,
    columns: Sequence[str],
    params: np.ndarray | None,
) -> float:
    return float(np.mean(np.abs(apply(cal, raw, layers, kind_sums, columns, params) - y) / y))


def fit(
    raw: np.ndarray,
    layers: np.ndarray,
    kind_sums: np.ndarray,
    y: np.ndarray,
    folds: int = 5,
    seed: int = 0,
    columns: Sequence[str] | None = None,
    params: np.ndarray | None = None,
) -> Calibration:
    """Choose and fit the calibration model with the lowest cross-validated MAPE.

    ``columns`` names kind_sums' columns (default :func:`kinds`); ``params``
    (each net's parameter count) lets the ``weights`` model compete.
    """
    columns = tuple(columns or kinds())
    if kind_sums.shape[1] != len(columns):
        raise ValueError(f"kind_sums has {kind_sums.shape[1]} columns, expected one per kind ({len(columns)})")
    n = len(y)
    if n < 2 * folds:
        cal = _fit_one("affine", raw, layers, kind_sums, y, columns) if n >= 3 else Calibration(model="raw")
        return cal.model_copy(update={"fitted_on": n, "note": f"only {n} nets measured: cross-validation skipped"})
    order = np.random.default_rng(seed).permutation(n)
    parts = np.array_split(order, folds)
    scores = {}
    models = ("raw", "affine", "weights", "per-kind") if params is not None else ("raw", "affine", "per-kind")
    for model in models:
        errs = []
        for k in range(folds):
            test = parts[k]
            train = np.concatenate([parts[j] for j in range(folds) if j != k])
            p_train = None if params is None else params[train]
            p_test = None if params is None else params[test]
            cal = _fit_one(model, raw[train], layers[train], kind_sums[train], y[train], columns, p_train)
            errs.append(_mape(cal, raw[test], layers[test], kind_sums[test], y[test], columns, p_test))
        scores[model] = float(np.mean(errs))
    best = min(scores, key=lambda m: scores[m])
    cal = _fit_one(best, raw, layers, kind_sums, y, columns, params)
    note = "cross-validated MAPE: " + ", ".join(f"{m} {100 * s:.2f}%" for m, s in scores.items())
    return cal.model_copy(update={"fitted_on": n, "cv_mape": scores[best], "note": note})


def fit_table(predictor: LatencyPredictor, min_space_nets: int = 10) -> None:
    """Fit the table's calibrations on its end-to-end measured nets: one over all, one per space.

    Spaces differ in what isolated measurement misses (FBNet's grouped
    convs and shuffles, 32x32 nets' fixed costs), so a space with at
    least ``min_space_nets`` measured nets gets its own (model chosen by
    cross-validation as for the global one).
    """
    table = predictor.table
    nets = table.networks
    archs = [Architecture.decode(n.arch) for n in nets]
    y = np.asarray([n.median_ms for n in nets])
    raw, layers, sums = predictor.features(archs)
    params = predictor.params(archs)
    columns = predictor.kinds
    table.calibration = fit(raw, layers, sums, y, columns=columns, params=params)
    spaces = np.asarray([n.space for n in nets])
    table.space_calibrations = {}
    for name in sorted(set(spaces) - {""}):
        mask = spaces == name
        if mask.sum() >= min_space_nets:
            table.space_calibrations[name] = fit(
                raw[mask], layers[mask], sums[mask], y[mask], columns=columns, params=params[mask]
            )
