"""Validation: the rank/error statistics, sampling apart from calibration, and ``hwnas lut validate`` end to end."""

from __future__ import annotations

import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import searchspace as ss
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import build_table
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import space_layers
from latency_tables.stats import kendall_tau_b, rankdata, spearman
from latency_tables.table import LatencyTable
from latency_tables.validate import compare, mape, sample_archs, validate, within
from service.cli import main

FP32 = DeviceProfile.parse("ort-cpu-fp32-t1")

#: 16x16 input, a few layers: a table of it is measured in seconds
SMALL_SPEC: dict[str, Any] = {
    "name": "small16",
    "resolutions": [16],
    "classes": 4,
    "width_multipliers": [1.0],
    "channel_divisor": 8,
    "stem": {"channels": 8, "k": 3, "stride": 1, "act": "relu"},
    "defaults": {"type": "ibn", "k": [3], "se": 0, "act": "relu"},
    "stages": [
        {"channels": 8, "stride": 1, "depth": [1, 2], "choices": [{"t": [1, 3]}, {"type": "skip"}]},
        {"channels": 16, "stride": 2, "depth": 1, "choices": [{"t": [3]}, {"t": 1, "k": [3, 5]}]},
    ],
    "head": {"conv": 32, "act": "relu", "dropout": 0.0},
}

NET_KEYS = {"arch_id", "arch", "predicted_ms", "raw_ms", "measured1_ms", "measured2_ms", "estimated"}
METRIC_KEYS = {"within_5_pct", "within_10_pct", "mape_pct", "spearman", "kendall"}


# ------------------------------------------------------------------ metrics
def brute_ranks(x: list[float]) -> list[float]:
    """1 + number smaller + half the number of other equal values: the average rank, by definition."""
    return [1 + sum(v < xi for v in x) + (sum(v == xi for v in x) - 1) / 2 for xi in x]


def brute_kendall_b(x: list[float], y: list[float]) -> float:
    conc = disc = tie_x = tie_y = 0
    for i, j in itertools.combinations(range(len(x)), 2):
        dx, dy = x[i] - x[j], y[i] - y[j]
        if dx == 0 and dy == 0:
            tie_x += 1
            tie_y += 1
        elif dx == 0:
            tie_x += 1
        elif dy == 0:
            tie_y += 1
        elif dx * dy > 0:
            conc += 1
        else:
            disc += 1
    n0 = len(x) * (len(x) - 1) // 2
    return (conc - disc) / math.sqrt((n0 - tie_x) * (n0 - tie_y))


def test_spearman_and_kendall_match_hand_computed_values_with_ties() -> None:
    # ranks of y: 1, 2, 3.5, 5, 3.5 -> rho = 8 / sqrt(10 * 9.5)
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / math.sqrt(95))
    assert spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    # 2 concordant, 6 discordant, 2 pairs tied in x, 1 tied in y: (2 - 6) / sqrt(8 * 9)
    assert kendall_tau_b([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-4 / math.sqrt(72))
    assert kendall_tau_b([12, 2, 1, 12, 2], [1, 4, 7, 1, 0]) == pytest.approx(-0.47140452079103173)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert kendall_tau_b([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(kendall_tau_b([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1], [2])) and math.isnan(kendall_tau_b([1], [2]))


def test_rank_statistics_match_brute_force_on_random_data_with_ties() -> None:
    rng = random.Random(7)
    for n in (2, 3, 7, 25, 60):
        x = [float(rng.randint(0, 6)) for _ in range(n)]
        y = [float(rng.randint(0, 6)) for _ in range(n)]
        assert rankdata(x).tolist() == pytest.approx(brute_ranks(x))
        if len(set(x)) > 1 and len(set(y)) > 1:
            assert kendall_tau_b(x, y) == pytest.approx(brute_kendall_b(x, y))
            assert spearman(x, y) == pytest.approx(float(np.corrcoef(brute_ranks(x), brute_ranks(y))[0, 1]))
    # without ties Spearman is 1 - 6 sum d^2 / (n (n^2 - 1))
    x = rng.sample(range(100), 30)
    y = rng.sample(range(100), 30)
    d = np.asarray(brute_ranks([float(v) for v in x])) - np.asarray(brute_ranks([float(v) for v in y]))
    assert spearman(x, y) == pytest.approx(1 - 6 * float(d @ d) / (30 * (30**2 - 1)))


def test_within_and_mape() -> None:
    ref = [1.0, 1.0, 1.0, 1.0]
    pred = [1.05, 1.1, 1.2, 0.9]
    assert within(pred, ref, 0.05) == pytest.approx(0.25)  # exactly 5% off counts
    assert within(pred, ref, 0.10) == pytest.approx(0.75)
    assert within([2.0], [1.0], 0.99) == 0.0
    assert mape([1.1, 0.8], [1.0, 1.0]) == pytest.approx(0.15)
    stats = compare(pred, ref)
    assert set(stats) == METRIC_KEYS
    assert stats["within_10_pct"] == pytest.approx(75.0) and stats["mape_pct"] == pytest.approx(
        11.25
    )  # (5 + 10 + 20 + 10) / 4
    assert stats["spearman"] is None  # the reference has no order to agree with


# ----------------------------------------------------------------- sampling
def test_validation_nets_are_apart_from_calibration_nets() -> None:
    space = ss.load_space("fbnet-cifar")
    first = sample_archs(space, 20, seed=0)
    assert len({a.encode() for a in first}) == 20
    assert all(a.resolution == space.resolution for a in first)
    assert [a.encode() for a in sample_archs(space, 20, seed=0)] == [a.encode() for a in first]  # seeded
    others = sample_archs(space, 20, seed=0, exclude={a.encode() for a in first[:10]})
    assert not {a.encode() for a in others} & {a.encode() for a in first[:10]}
    from latency_tables.kit import calibration_archs

    calibrated = {a.encode() for _, a in calibration_archs(["fbnet-cifar"], 20, 0)}
    assert not calibrated & {a.encode() for a in first}


# --------------------------------------------------------------- end to end
def test_validate_end_to_end_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = ss.load_space(SMALL_SPEC)
    layers = space_layers(space)
    assert len(layers) <= 10
    path = tmp_path / "small.json"
    table = LatencyTable(profile=FP32, host=HostInfo.current())
    build_table(table, layers.values(), path, passes=1)
    predictor = LatencyPredictor(LatencyTable.load(path), path)

    result = validate(predictor, space, samples=4, seed=0, rounds=1)
    data = json.loads(json.dumps(result.as_dict()))  # JSON-serializable as it is
    assert {
        "profile",
        "table",
        "space",
        "samples",
        "seed",
        "rounds",
        "calibration",
        "metrics",
        "nets",
        "predict_us_per_net",
        "measure_s",
    } <= set(data)
    assert data["profile"] == "ort-cpu-fp32-t1" and data["space"] == "small16" and data["samples"] == 4
    assert set(data["metrics"]) == {"predicted", "raw", "noise"}
    assert all(set(m) == METRIC_KEYS for m in data["metrics"].values())
    assert len(data["nets"]) == 4 and all(set(n) == NET_KEYS for n in data["nets"])
    for net in data["nets"]:
        assert ss.Architecture.decode(net["arch"]).arch_id == net["arch_id"]
        assert net["predicted_ms"] > 0 and net["measured1_ms"] > 0 and net["measured2_ms"] > 0
        assert net["predicted_ms"] == pytest.approx(net["raw_ms"])  # an uncalibrated table: raw sums
    assert len(result.metric_rows()) == 5
    png = result.save_plot(tmp_path / "plots" / "v.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # the same through the command line, the space given as a file
    spec_file = tmp_path / "small16.json"
    spec_file.write_text(json.dumps(SMALL_SPEC))
    out_dir = tmp_path / "out"
    code = main(
        [
            "lut",
            "validate",
            "--profile",
            "ort-cpu-fp32-t1",
            "--space",
            str(spec_file),
            "--samples",
            "2",
            "--rounds",
            "1",
            "--table",
            str(path),
            "--output-dir",
            str(out_dir),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "within +-10%" in out and "noise" in out and "Spearman" in out
    saved = json.loads((out_dir / "validate-ort-cpu-fp32-t1-small16.json").read_text())
    assert saved["samples"] == 2 and set(saved["nets"][0]) == NET_KEYS
    assert (out_dir / "validate-ort-cpu-fp32-t1-small16.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--profile", "xyz-cpu-fp32-t1", "--space", "fbnet-cifar"], "unknown runtime 'xyz'"),
        (["--profile", "ort-cpu-fp99-t1", "--space", "fbnet-cifar"], "is not a profile id"),
        (["--profile", "ort-cpu-fp32-t1", "--space", "nope"], "unknown search space 'nope'"),
        (["--profile", "ort-cpu-fp32-t7", "--space", "fbnet-cifar"], "no latency table for profile ort-cpu-fp32-t7"),
        (
            ["--profile", "ort-cpu-fp32-t1", "--space", "fbnet-cifar", "--table", "/nonexistent/t.json"],
            "cannot read latency table",
        ),
        (["--profile", "ort-cpu-fp32-t1", "--space", "fbnet-cifar", "--rounds", "0"], "must be at least 1"),
    ],
)
def test_cli_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    code = main(["lut", "validate", "--samples", "3", *argv, "--output-dir", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hwnas: error:"), err
    assert message in lines[0], lines[0]
    assert not list(tmp_path.glob("validate-*"))


def test_reports_round_trip_user_first_and_refuse_other_versions(tmp_path: Path) -> None:
    import json

    from latency_tables.errors import LatencyTableError
    from latency_tables.validate import load_reports, report_path, save_report

    base = {
        "profile": "ort-cpu-fp32-t1",
        "table": "t@host",
        "space": "s",
        "samples": 1,
        "seed": 0,
        "rounds": 1,
        "metrics": {"predicted": {}, "raw": {}, "noise": {}},
        "nets": [{"arch_id": "a", "arch": "r16_i3|...", "predicted_ms": 1.0}],
        "plot": "x.png",
    }
    path = save_report(base)
    assert path == report_path("t@host", "s")
    (got,) = load_reports("t@host")
    assert got["nets"] == [{"arch_id": "a", "predicted_ms": 1.0}] and "plot" not in got  # no string forms kept
    data = json.loads(path.read_text())
    path.write_text(json.dumps(data | {"version": 99}))
    with pytest.raises(LatencyTableError, match="hwnas lut validate"):
        load_reports("t@host")
