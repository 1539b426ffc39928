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


def test_shape_feature_names_are_those_saved_predictors_use(nets: list[ss.Architecture]) -> None:
    """Saved predictor files name these features; the block-type ones now come from the block registry."""
    assert predictor.shape_feature_names() == {
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
        "type_conv",
        "type_dsconv",
        "type_fused",
        "type_ibn",
        "type_skip",
        "type_tucker",
        "act_relu",
        "act_relu6",
        "act_hswish",
        "act_swish",
    }
    assert set(predictor.shape_features(nets[0])) == predictor.shape_feature_names()


def world(nets: list[ss.Architecture], noise: float = 0.005) -> tuple[dict[str, list[float]], list[float]]:
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=len(nets))  # what a good proxy sees and size does not
    feats = [predictor.shape_features(a) for a in nets]
    truth = [
        0.8 + 0.01 * f["log_macs"] + 0.02 * h + rng.normal(scale=noise) for f, h in zip(feats, hidden, strict=True)
    ]
    scores = {"naswot": list(hidden + rng.normal(scale=0.3, size=len(nets))), "zico": list(rng.normal(size=len(nets)))}
    return scores, truth


def test_cross_validated_predictions_rank_unseen_nets(nets: list[ss.Architecture]) -> None:
    scores, truth = world(nets)
    with_proxy = predictor.cross_validated(nets, scores, truth, ["naswot", "zico"])
    shape_only = predictor.cross_validated(nets, scores, truth, [])
    assert spearman(with_proxy, truth) > 0.7
    assert spearman(with_proxy, truth) > spearman(shape_only, truth) + 0.2
    five = predictor.cross_validated(nets, scores, truth, ["naswot"], folds=5)
    assert spearman(five, truth) > 0.6


def test_fit_save_load_predict(nets: list[ss.Architecture], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scores, truth = world(nets)
    model = predictor.fit("fmnist-test", nets, scores, truth, ["naswot"], trained_on={"space": "mobilenetv2-cifar"})
    assert model.alpha in predictor.ALPHAS and model.trained_on["nets"] == 40
    path = predictor.save(model, tmp_path)
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path))
    assert "fmnist-test" in predictor.available()
    again = predictor.load("fmnist-test")
    assert again == model
    one = {"naswot": scores["naswot"][3]}
    assert again.predict(nets[3], one) == pytest.approx(model.predict(nets[3], one))
    fitted = [model.predict(a, {"naswot": g}) for a, g in zip(nets, scores["naswot"], strict=True)]
    assert spearman(fitted, truth) > 0.8
    with pytest.raises(ProxyError, match="needs the scores of naswot"):
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
        predictor.fit("x", nets[:5], {"naswot": scores["naswot"][:5]}, truth[:5], ["naswot"])


def test_a_predictor_file_is_checked_against_what_it_can_compute(
    nets: list[ss.Architecture], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unknown features or proxies are refused on load (a search would otherwise fail on its first net)."""
    scores, truth = world(nets)
    path = predictor.save(predictor.fit("checked", nets, scores, truth, ["naswot"]), tmp_path)
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path))
    good = json.loads(path.read_text())
    for change, message in [
        ({"features": [*good["features"][:-1], "wingspan"]}, "features: wingspan unknown"),
        ({"features": [*good["features"][:-1], "proxy_zico"]}, "features: proxy_zico unknown"),
        ({"proxies": ["rank:naswot+macs"]}, "not a single proxy"),
        ({"proxies": ["default"]}, "not a single proxy"),
        ({"proxies": ["telepathy"]}, "telepathy"),
    ]:
        path.write_text(json.dumps(good | change))
        with pytest.raises(ProxyError, match=message):
            predictor.load("checked")
    with pytest.raises(ProxyError, match="not a single proxy"):
        predictor.fit("x", nets, {"ensemble:naswot+zico": scores["naswot"]}, truth, ["ensemble:naswot+zico"])
    odd = predictor.Predictor("odd", (), ("wingspan",), (0.0,), (1.0,), (1.0,), 0.0, 1.0, {})
    with pytest.raises(ProxyError, match="unknown feature 'wingspan'"):
        odd.predict(nets[0], {})
