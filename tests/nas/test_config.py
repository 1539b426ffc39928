"""SearchConfig: the issue's example parses; every bad field is named in one clear error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas.config import ConfigError, SearchConfig
from nas.metrics import parse_metric

EXAMPLE = {
    "space": "mobilenetv2-cifar",
    "objectives": [
        {"metric": "proxy:default", "direction": "maximize"},
        {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
    ],
    "constraints": [{"metric": "params", "max": 2000000}],
    "strategy": {"name": "nsga2"},
    "budget": {"trials": 40},
    "workers": 2,
    "seed": 0,
}


def test_the_issue_example_parses() -> None:
    cfg = SearchConfig.parse(EXAMPLE)
    assert [m.kind for m in cfg.metrics] == ["proxy", "latency", "params"]
    assert cfg.directions == ["maximize", "minimize"]
    assert cfg.constraints[0].violation(2_500_000) == 500_000 and cfg.constraints[0].violation(1) < 0
    # budget and workers may change on resume; they do not change the study
    other = SearchConfig.parse({**EXAMPLE, "budget": {"trials": 400}, "workers": 8})
    assert other.study_name() == cfg.study_name()
    assert SearchConfig.parse({**EXAMPLE, "seed": 1}).study_name() != cfg.study_name()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"space": "nope"}, "space: .*unknown search space 'nope'"),
        ({"objectives": []}, "objectives: List should have at least 1 item"),
        ({"objectives": [{"metric": "flops", "direction": "minimize"}]}, "metric 'flops': expected params, macs"),
        ({"objectives": [{"metric": "proxy:synflw", "direction": "maximize"}]}, "unknown proxy 'synflw'"),
        ({"objectives": [{"metric": "latency:ort-gpu-fp32-t1", "direction": "minimize"}]}, "is not a profile id"),
        ({"objectives": [{"metric": "params", "direction": "down"}]}, "direction: Input should be 'minimize'"),
        ({"objectives": [{"metric": "params", "direction": "minimize"}] * 2}, "params appears twice"),
        ({"constraints": [{"metric": "params"}]}, "constraints\\[0\\]: .*give max and/or min"),
        ({"constraints": [{"metric": "params", "min": 5, "max": 1}]}, "min \\(5.0\\) is above max \\(1.0\\)"),
        ({"strategy": {"name": "annealing"}}, "unknown strategy 'annealing'; expected one of evolution, gp, nsga2"),
        ({"strategy": {"name": "nsga2", "options": {"popsize": 3}}}, "strategy.options: popsize not understood"),
        ({"strategy": {"name": "evolution", "options": {"weights": [1.0]}}}, "one weight per objective \\(2\\)"),
        ({"budget": {}}, "budget: .*give trials and/or seconds"),
        ({"workers": 0}, "workers: Input should be greater than or equal to 1"),
        ({"hv_reference": [1.0]}, "hv_reference: one value per objective"),
        ({"objectives": [{"metric": "train:fashion-mnist", "direction": "maximize"}]}, "needs a training section"),
        (
            {"objectives": [{"metric": "train:synthetic", "direction": "maximize"}], "training": {"steps": 5}},
            "trains on 'synthetic' but the dataset section names 'fashion-mnist'",
        ),
        ({"training": {"steps": 5, "epochs": 1}}, "give exactly one of epochs, steps, seconds"),
    ],
)
def test_bad_configs_name_the_field(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchConfig.parse({**EXAMPLE, **change})


def test_files_and_metric_parsing(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("space: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        SearchConfig.from_file(tmp_path / "bad.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        SearchConfig.from_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping of settings, got list"):
        SearchConfig.from_file(tmp_path / "list.yaml")
    m = parse_metric("latency:ort-cpu-int8-t1")
    assert (m.kind, m.arg, m.cheap, m.unit) == ("latency", "ort-cpu-int8-t1", True, "ms")
    assert not parse_metric("proxy:ensemble:synflow+naswot").cheap
