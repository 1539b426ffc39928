"""hwnas datasets / proxies / score / train: output, JSON shapes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import searchspace as ss
from nas import proxies
from tests.service.conftest import RunCli

ARCH = "r16_i3|conv_k3_s2_c8_relu6|ibn_k3_e2_c8_relu6|dsconv_k3_s2_c16_hswish|head_c32_relu6_n4"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def test_datasets_and_proxies_lists(cli: RunCli) -> None:
    code, out, _ = cli("datasets", "--json")
    data = {d["name"]: d for d in json.loads(out)}
    assert code == 0 and data["fashion-mnist"]["status"] == "available" and data["npz"]["path"] == "required"
    code, out, _ = cli("proxies", "--json")
    data = json.loads(out)
    assert code == 0 and data["default"]["stands_for"] == proxies.default_proxy()
    assert {p["name"] for p in data["proxies"]} >= {"synflow", "naswot", "zico", "params"}
    code, out, _ = cli("proxies")
    assert f"default = {proxies.default_proxy()}" in out


def test_score_on_an_npz_dataset(cli: RunCli, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.integers(0, 256, (40, 20, 20), dtype=np.uint8), y=np.arange(40) % 4)
    code, out, err = cli(
        "score",
        ARCH,
        "--dataset",
        str(tmp_path / "d.npz"),
        "--batch",
        "16",
        "--proxy",
        "synflow",
        "--proxy",
        "naswot",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [s["proxy"] for s in data["scores"]] == ["synflow", "naswot"]
    arch = ss.Architecture.decode(ARCH)
    assert data["scores"][0]["score"] == pytest.approx(proxies.score("synflow", arch))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["score", ARCH, "--proxy", "synflw"], "unknown proxy 'synflw'; expected one of"),
        (["score", ARCH, "--dataset", "/no/such/place"], "--dataset: '/no/such/place' is neither a dataset name"),
        (["score", "not|an|arch"], "hwnas: error:"),
        (["train", ARCH, "--steps", "3", "--epochs", "1"], "give exactly one budget"),
        (["train", ARCH, "--steps", "0"], "steps: Input should be greater than or equal to 1"),
    ],
)
def test_errors_are_one_line(cli: RunCli, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_train_prints_the_curve(cli: RunCli) -> None:
    code, out, err = cli("train", ARCH, "--dataset", "synthetic", "--steps", "4", "--evals", "2", "--batch-size", "8")
    assert code == 0, err
    assert "step      2  val accuracy" in out and "after 4 steps" in out
    code, out, _ = cli("train", ARCH, "--dataset", "synthetic", "--steps", "2", "--evals", "1", "--json")
    data = json.loads(out)
    assert data["steps"] == 2 and len(data["curve"]) == 1 and 0 <= data["val_accuracy"] <= 1


TINY_SPACE = """
name: tiny-check
resolutions: [16]
classes: 4
stem: {channels: 8, act: relu6}
defaults: {type: ibn, t: [1, 3], k: [3, 5], se: 0, act: [relu6, hswish]}
stages:
  - {channels: 8, depth: [1, 2]}
  - {channels: 16, stride: 2, depth: [1, 2, 3]}
head: {conv: 32, act: relu6}
"""


def test_proxies_check_then_fit_then_search_with_the_predictor(
    cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The self-check's plumbing on synthetic data: trains, resumes, judges, recommends; fit makes a metric."""
    # the budgets' latency comes from this host's table, built on first use as a search would: in a private folder
    monkeypatch.setenv("HWNAS_LUT_DIR", str(tmp_path / "luts"))
    monkeypatch.setenv("HWNAS_MEASURE_LOCK", str(tmp_path / "measure.lock"))
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPACE)
    out = tmp_path / "check"
    argv = [
        "proxies",
        "check",
        "--space",
        str(spec),
        "--dataset",
        "synthetic",
        "--nets",
        "10",
        "--steps",
        "3",
        "--batch-size",
        "8",
        "--reference-size",
        "6",
        "--bootstrap",
        "20",
        "--out",
        str(out),
    ]
    code, text, err = cli(*argv)
    assert code == 0, err
    assert "recommended for" in text and "reliability" in text and "training [" in err
    report = json.loads((out / "report.json").read_text())
    assert len(report["nets"]) == 10 and report["recommended"] in report["scorers"]
    assert {"naswot", "swap", "meco_opt", "rank:naswot+macs"} <= set(report["scorers"])
    assert len(report["budgets"]) == 10 and report["budgets_in"] == "latency:ort-cpu-fp32-t1"  # its deciles
    assert report["recommended"] not in ("macs", "params")  # the counts are baselines, never recommended
    assert "a pick at random within each budget gives up" in text
    assert report["protocol"]["warmup"] == 0.1
    # how well the truth itself orders nets of equal cost: the ceiling of the equal-MAC column
    assert "at equal MACs: reliability" in text
    assert (
        report["reliability_at_equal_macs"]["pooled"]["nets"] == 10
        and len(report["reliability_at_equal_macs"]["bins"]) == 2
    )
    runs = (out / "runs.jsonl").read_text().splitlines()
    assert len(runs) == 1 + 20
    scored = (out / "scores.jsonl").read_text()
    code, _, err = cli(*argv)  # everything trained and scored already: nothing runs again
    assert code == 0 and len((out / "runs.jsonl").read_text().splitlines()) == 21 and "20 of 20 runs" in err
    assert (out / "scores.jsonl").read_text() == scored
    assert json.loads((out / "report.json").read_text())["scores"] == report["scores"]
    code, _, err = cli(*argv, "--seeds", "3")  # a third seed later: only its runs train
    assert code == 0 and "20 of 30 runs" in err and len((out / "runs.jsonl").read_text().splitlines()) == 31
    grown = json.loads((out / "report.json").read_text())
    assert set(grown["accuracy"]) == {"seed0", "seed1", "seed2"} and grown["reliability"]["seeds"] == 3
    code, text, _ = cli(
        "proxies", "fit", "--from", str(out), "--name", "tiny-fit", "--dir", str(tmp_path / "predictors")
    )
    assert code == 0 and "predictor:tiny-fit on 10 nets" in text and "leave-one-out Spearman" in text
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path / "predictors"))
    from nas.proxies.predictor import load

    assert load("tiny-fit").trained_on["space"] == ss.load_space(str(spec)).name
    assert load("tiny-fit").trained_on["dataset"] == "synthetic"
    code, _, err = cli("proxies", "fit", "--from", str(out), "--name", "x", "--proxy", "rank:naswot+macs")
    assert code == 2 and "--proxy: predictor proxies: 'rank:naswot+macs' is not a single proxy name" in err
    report["scores"]["naswot"] = [None] * 10  # no net usable: a named error, not an IndexError
    (out / "report.json").write_text(json.dumps(report))
    code, _, err = cli("proxies", "fit", "--from", str(out), "--name", "x", "--proxy", "naswot")
    assert code == 2 and "has 0 nets with two seeds or more and every proxy's score" in err
    code, _, err = cli("proxies", "check", "--space", str(spec), "--seeds", "1", "--out", str(tmp_path / "s"))
    assert code == 2 and "--seeds must be 2 to 10 (got 1)" in err and not (tmp_path / "s").exists()
    code, _, err = cli("proxies", "check", "--space", str(spec), "--nets", "3")
    assert code == 2 and "--nets must be at least 8" in err
    code, _, err = cli("proxies", "check", "--space", str(spec), "--steps", "0")
    assert code == 2 and "invalid training protocol: steps: Input should be greater than or equal to 1" in err
    code, _, err = cli("proxies", "check", "--space", str(spec), "--budget", "5", "0")
    assert code == 2 and "--budget takes latencies in ms above 0, got [5.0, 0.0]" in err
    no_table = ["--profile", "ort-cuda-fp32-t1", "--budget", "5", "--out", str(tmp_path / "b")]
    code, _, err = cli("proxies", "check", "--space", str(spec), *no_table)
    assert code == 2 and "--budget is in ms of ort-cuda-fp32-t1, which has no latency table for" in err
    assert not (tmp_path / "b").exists()  # refused before anything was trained or written
    code, _, err = cli("proxies", "fit", "--from", str(tmp_path / "nothing"), "--name", "x")
    assert code == 2 and "no readable report.json" in err
