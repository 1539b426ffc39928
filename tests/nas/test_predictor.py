"""The few-shot predictor: fits what it is shown, is judged on nets it never saw, round-trips as JSON."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

import searchspace as ss
from latency_tables.stats import spearman
from nas.errors import ProxyError
from nas.proxies import predictor


@pytest.fixture(scope="module")
def nets() -> list[ss.Architecture]:
    space = ss.load_space("mobilenetv2-cifar")
    rng = random.Random(0)
    return [space.sample(rng) for _ in range(40)]


def world(nets: list[ss.Architecture], noise: float = 0.005) -> tuple[dict[str, list[float]], list[float]]:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=len(nets))  # what a good proxy sees and size does not
    feats = [predictor.shape_features(a) for a in nets]
    truth = [0.8 + 0.01 * f["log_macs"] + 0.02 * h + rng.normal(scale=noise) for f, h in zip(feats, hidden, strict=True)]
    scores = {"good": list(hidden + rng.normal(scale=0.3, size=len(nets))), "junk": list(rng.normal(size=len(nets)))}
    return scores, truth


def test_cross_validated_predictions_rank_unseen_nets(nets: list[ss.Architecture]) -> None:
    scores, truth = world(nets)
    with_proxy = predictor.cross_validated(nets, scores, truth, ["good", "junk"])
    shape_only = predictor.cross_validated(nets, scores, truth, [])
    assert spearman(with_proxy, truth) > 0.7
    assert spearman(with_proxy, truth) > spearman(shape_only, truth) + 0.2
    five = predictor.cross_validated(nets, scores, truth, ["good"], folds=5)
    assert spearman(five, truth) > 0.6


def test_fit_save_load_predict(nets: list[ss.Architecture], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scores, truth = world(nets)
    model = predictor.fit("fmnist-test", nets, scores, truth, ["good"], trained_on={"space": "mobilenetv2-cifar"})
    assert model.alpha in predictor.ALPHAS and model.trained_on["nets"] == 40
    path = predictor.save(model, tmp_path)
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path))
    assert "fmnist-test" in predictor.available()
    again = predictor.load("fmnist-test")
    assert again == model
    one = {"good": scores["good"][3]}
    assert again.predict(nets[3], one) == pytest.approx(model.predict(nets[3], one))
    fitted = [model.predict(a, {"good": g}) for a, g in zip(nets, scores["good"], strict=True)]
    assert spearman(fitted, truth) > 0.8
    with pytest.raises(ProxyError, match="needs the scores of good"):
        model.predict(nets[0], {})
    data = json.loads(path.read_text())
    data["coef"] = data["coef"][:-1]
    path.write_text(json.dumps(data))
    with pytest.raises(ProxyError, match="same length"):
        predictor.load("fmnist-test")
    with pytest.raises(ProxyError, match="not found"):
        predictor.load("nope")
    with pytest.raises(ProxyError, match="lower-case"):
        predictor.load("../etc/passwd")
    with pytest.raises(ProxyError, match="at least 8"):
        predictor.fit("x", nets[:5], {"good": scores["good"][:5]}, truth[:5], ["good"])
