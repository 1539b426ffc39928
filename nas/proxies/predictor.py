"""A few-shot accuracy predictor: a ridge model over a net's shape, its cost and its proxy scores.

Trained on 20-50 nets of one space that were actually trained (``hwnas
proxies check`` saves them; ``hwnas proxies fit`` fits this), it answers
"how accurate would this net be under that training protocol" for any other
net of the space, at the cost of the proxies it uses. In a search it is the
metric ``predictor:<name>``: its proxies are computed by the workers (and
cached) like any proxy, the features and the prediction by the controller.

Features are space-agnostic summaries of the net (log MACs, params and
activations; depth; mean kernel, expansion, squeeze-excite; the share of each
block type and activation; log channels at the end; how many stride-2 steps),
plus each proxy's score. Ridge keeps the model a few dozen numbers stored as
JSON (nothing pickled), and its regularisation strength is chosen by
leave-one-out cross-validation on the training nets.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nas.errors import ProxyError
from searchspace.architecture import Architecture
from searchspace.blocks import block_type_names

PREFIX = "predictor:"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
BUILTIN_DIR = Path(__file__).with_name("predictors")
ACTS = ("relu", "relu6", "hswish", "swish")
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def shape_features(arch: Architecture) -> dict[str, float]:
    """Space-agnostic numbers describing a net (every one defined for every net)."""
    from searchspace.cost import count_cost

    cost = count_cost(arch)
    blocks = list(arch.blocks)
    n = max(1, len(blocks))
    feats = {
        "log_macs": math.log(max(cost.macs, 1)),
        "log_params": math.log(max(cost.params, 1)),
        "log_activations": math.log(max(cost.activations, 1)),
        "depth": float(len(blocks)),
        "kernel_mean": float(np.mean([b.k for b in blocks])) if blocks else 0.0,
        "expansion_mean": float(np.mean([b.t for b in blocks])) if blocks else 0.0,
        "se_share": sum(1 for b in blocks if b.se) / n,
        "residual_share": sum(1 for b in blocks if b.residual) / n,
        "strides": float(sum(1 for b in blocks if b.stride == 2) + (arch.stem.stride == 2)),
        "log_last_channels": math.log(blocks[-1].cout if blocks else arch.stem.cout),
        "log_head": math.log(1 + arch.head.conv),
    }
    for t in block_type_names():  # type_conv, type_dsconv, ...: saved predictors name these
        feats[f"type_{t}"] = sum(1 for b in blocks if b.type == t) / n
    for a in ACTS:
        feats[f"act_{a}"] = sum(1 for b in blocks if b.act == a) / n
    return feats


def shape_feature_names() -> frozenset[str]:
    """Every feature shape_features computes (a predictor file may use only these and its proxies' scores)."""
    return frozenset(
        {
            "log_macs",
            "log_params",
            "log_activations",
            "depth",
            "kernel_mean",
            "expansion_mean",
            "se_share",
            "residual_share",
            "strides",
            "log_last_channels",
            "log_head",
            *(f"type_{t}" for t in block_type_names()),
            *(f"act_{a}" for a in ACTS),
        }
    )


def check_proxies(proxies: Sequence[str]) -> None:
    """A predictor's inputs are single registered proxies (not ``default``, which may change, nor combinations)."""
    from nas.proxies import resolve

    for p in proxies:
        if p == "default" or ":" in p or "+" in p:
            raise ProxyError(f"predictor proxies: {p!r} is not a single proxy name (e.g. naswot, synflow)")
        resolve(p)  # names the known proxies when unknown


@dataclass(frozen=True)
class Predictor:
    """A fitted ridge model: standardise features, dot with coefficients, add the intercept."""

    name: str
    proxies: tuple[str, ...]
    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    alpha: float
    trained_on: dict[str, Any]

    def row(self, arch: Architecture, scores: Mapping[str, float]) -> np.ndarray:
        missing = [p for p in self.proxies if p not in scores]
        if missing:
            raise ProxyError(f"predictor {self.name!r}: needs the scores of {', '.join(missing)}")
        values = shape_features(arch) | {f"proxy_{p}": float(scores[p]) for p in self.proxies}
        try:
            return np.array([values[f] for f in self.features], dtype=float)
        except KeyError as exc:  # from_json refuses such files; a hand-built Predictor may still hold one
            raise ProxyError(f"predictor {self.name!r}: unknown feature {exc.args[0]!r}") from None

    def predict(self, arch: Architecture, scores: Mapping[str, float]) -> float:
        z = (self.row(arch, scores) - np.array(self.mean)) / np.array(self.scale)
        value = float(z @ np.array(self.coef) + self.intercept)
        if not math.isfinite(value):
            raise ProxyError(f"predictor {self.name!r}: the prediction is {value}")
        return value

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "hwnas.predictor",
            "version": 1,
            "name": self.name,
            "model": "ridge",
            "proxies": list(self.proxies),
            "features": list(self.features),
            "mean": list(self.mean),
            "scale": list(self.scale),
            "coef": list(self.coef),
            "intercept": self.intercept,
            "alpha": self.alpha,
            "trained_on": self.trained_on,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Predictor:
        if (
            not isinstance(data, Mapping)
            or not isinstance(data.get("proxies"), list)
            or not isinstance(data.get("features"), list)
        ):
            raise ProxyError("predictor: not an hwnas ridge predictor (an object with proxies and features lists)")
        try:
            if data.get("format") != "hwnas.predictor" or data.get("model") != "ridge":
                raise ProxyError("predictor: not an hwnas ridge predictor (format hwnas.predictor, model ridge)")
            k = len(data["features"])
            if not (len(data["mean"]) == len(data["scale"]) == len(data["coef"]) == k):
                raise ProxyError("predictor: features, mean, scale and coef must have the same length")
            check_proxies([str(p) for p in data["proxies"]])
            shape = shape_feature_names()
            known = shape | {f"proxy_{p}" for p in data["proxies"]}
            unknown = [str(f) for f in data["features"] if f not in known]
            if unknown:
                raise ProxyError(
                    f"predictor features: {', '.join(unknown)} unknown; expected shape features "
                    f"({', '.join(sorted(shape))}) or proxy_<one of its proxies>"
                )
            return cls(
                str(data["name"]),
                tuple(data["proxies"]),
                tuple(data["features"]),
                tuple(map(float, data["mean"])),
                tuple(map(float, data["scale"])),
                tuple(map(float, data["coef"])),
                float(data["intercept"]),
                float(data["alpha"]),
                dict(data.get("trained_on", {})),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ProxyError(f"predictor: malformed file ({type(exc).__name__}: {exc})") from None


def design(
    archs: Sequence[Architecture], scores: Mapping[str, Sequence[float]], proxies: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    rows = []
    for i, a in enumerate(archs):
        rows.append(shape_features(a) | {f"proxy_{p}": float(scores[p][i]) for p in proxies})
    names = list(rows[0])
    return np.array([[r[f] for f in names] for r in rows], dtype=float), names


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """Ridge on standardised columns (intercept unpenalised): closed form."""
    yc = y - y.mean()
    coef = np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ yc)
    return coef, float(y.mean())


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    return (x - mean) / scale, mean, scale


def cross_validated(
    archs: Sequence[Architecture],
    scores: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    proxies: Sequence[str],
    *,
    folds: int | None = None,
    alphas: Sequence[float] = ALPHAS,
) -> np.ndarray:
    """Out-of-fold predictions (leave-one-out by default): each net predicted by a model that never saw it,
    the model's alpha chosen inside the fold."""
    x, _ = design(archs, scores, proxies)
    y = np.asarray(truth, dtype=float)
    n = len(y)
    k = folds or n
    out = np.empty(n)
    for f in range(k):
        test = np.arange(n)[f::k]
        train = np.setdiff1d(np.arange(n), test)
        model = _fit_arrays(x[train], y[train], alphas)
        out[test] = ((x[test] - model[0]) / model[1]) @ model[2] + model[3]
    return out


def _fit_arrays(
    x: np.ndarray, y: np.ndarray, alphas: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    z, mean, scale = _standardise(x)
    best, best_err = alphas[0], math.inf
    n = len(y)
    for alpha in alphas:  # leave-one-out error of ridge in closed form: residual / (1 - leverage)
        h = z @ np.linalg.solve(z.T @ z + alpha * np.eye(z.shape[1]), z.T) + 1.0 / n
        coef, b = _ridge(z, y, alpha)
        resid = y - (z @ coef + b)
        err = float(np.mean((resid / np.maximum(1 - np.diag(h), 1e-9)) ** 2))
        if err < best_err:
            best, best_err = alpha, err
    coef, b = _ridge(z, y, best)
    return mean, scale, coef, b, best


def fit(
    name: str,
    archs: Sequence[Architecture],
    scores: Mapping[str, Sequence[float]],
    truth: Sequence[float],
    proxies: Sequence[str],
    *,
    trained_on: dict[str, Any] | None = None,
    alphas: Sequence[float] = ALPHAS,
) -> Predictor:
    if not NAME.match(name):
        raise ProxyError(f"predictor name {name!r}: lower-case letters, digits, '.', '_' or '-', up to 64")
    check_proxies(proxies)
    if len(archs) < 8:
        raise ProxyError(
            f"predictor {name!r}: needs at least 8 trained nets with every proxy's score, got {len(archs)}"
        )
    if len(truth) != len(archs) or any(len(scores[p]) != len(archs) for p in proxies):
        raise ProxyError(f"predictor {name!r}: every net needs its accuracy and every proxy's score")
    x, names = design(archs, scores, proxies)
    if not np.isfinite(x).all() or not np.isfinite(truth).all():
        raise ProxyError(f"predictor {name!r}: a score or accuracy is not finite; drop those nets")
    mean, scale, coef, b, alpha = _fit_arrays(x, np.asarray(truth, dtype=float), alphas)
    return Predictor(
        name,
        tuple(proxies),
        tuple(names),
        tuple(mean),
        tuple(scale),
        tuple(coef),
        b,
        alpha,
        dict(trained_on or {}, nets=len(archs)),
    )


def _env_dirs() -> list[Path]:
    return [Path(p) for p in os.environ.get("HWNAS_PREDICTORS", "").split(os.pathsep) if p]


def user_dir() -> Path:
    """Where ``hwnas proxies fit`` saves: $HWNAS_PREDICTORS's first folder, else ~/.local/share/hwnas/predictors."""
    env = _env_dirs()
    if env:
        return env[0]
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "hwnas" / "predictors"


def search_path() -> list[Path]:
    """Where ``predictor:<name>`` is looked up: $HWNAS_PREDICTORS (colon-separated), the user's folder, then
    the ones shipped with hwnas."""
    return list(dict.fromkeys([*_env_dirs(), user_dir(), BUILTIN_DIR]))


def save(predictor: Predictor, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{predictor.name}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(predictor.to_json(), indent=1) + "\n")
    os.replace(tmp, path)
    return path


def available() -> list[str]:
    return sorted({p.stem for d in search_path() if d.is_dir() for p in d.glob("*.json")})


def load(name: str) -> Predictor:
    if not NAME.match(name):
        raise ProxyError(f"predictor name {name!r}: lower-case letters, digits, '.', '_' or '-', up to 64")
    for d in search_path():
        path = d / f"{name}.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError) as exc:
                raise ProxyError(f"predictor {name!r}: cannot read {path}: {exc}") from None
            return Predictor.from_json(data)
    known = ", ".join(available()) or "none yet (hwnas proxies fit makes one)"
    raise ProxyError(f"predictor {name!r}: not found in {', '.join(map(str, search_path()))}; known: {known}")
