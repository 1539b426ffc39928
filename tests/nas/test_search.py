"""The search loop: deterministic, constrained, cached, resumable, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import yaml

from nas.config import SearchConfig
from nas.errors import ProxyError
from nas.pareto import non_dominated, to_minimize
from nas.proxies import register_proxy
from nas.proxies.base import Candidate
from nas.search import Search, SearchError
from tests.conftest import postgres_or_skip
from tests.specs import ALL_BLOCKS, SYNFLOW_VS_PARAMS


def _test_no_groups(c: Candidate) -> float:
    if any(b.groups > 1 for b in c.arch.blocks):
        raise ProxyError("proxy 'test_no_groups': this net has grouped convs")
    return float(len(c.arch.blocks))


@pytest.fixture()
def no_groups_proxy() -> Iterator[str]:
    """A scorer that cannot score some nets, registered for one test only (other test files list every proxy)."""
    from nas.proxies.base import PROXIES

    register_proxy(
        "test_no_groups",
        paper="test",
        sign="higher = better",
        needs_data=False,
        bn="not used",
        summary="fails on nets with grouped convs (a scorer that cannot score some nets)",
    )(_test_no_groups)
    try:
        yield "test_no_groups"
    finally:
        PROXIES.unregister("test_no_groups")


def make_config(**over: Any) -> SearchConfig:
    data: dict[str, Any] = {
        "name": f"t-{uuid.uuid4().hex[:8]}",
        "space": ALL_BLOCKS,
        "objectives": SYNFLOW_VS_PARAMS,
        "strategy": {"name": "nsga2", "options": {"population_size": 8}},
        "budget": {"trials": 16},
        "workers": 1,
        "seed": 3,
    }
    data.update(over)
    return SearchConfig.parse(data)


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'search.db'}"
    return postgres_or_skip()


def test_serial_search_is_deterministic(tmp_path: Path) -> None:
    cfg = make_config(name="same")
    a = Search(cfg, f"sqlite:///{tmp_path / 'a.db'}").run()
    b = Search(cfg, f"sqlite:///{tmp_path / 'b.db'}").run()
    assert len(a.trials) == 16
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.objectives for t in a.trials] == [t.objectives for t in b.trials]
    assert len({t.arch_id for t in a.trials}) > 8  # it explores


def test_constraints_hold_on_the_front_and_the_front_is_exact(storage: str) -> None:
    cfg = make_config(
        constraints=[{"metric": "params", "max": 16500}, {"metric": "macs", "min": 110000}], budget={"trials": 24}
    )
    result = Search(cfg, storage).run()
    feasible = [t for t in result.trials if t.feasible]
    assert feasible and any(not t.feasible and t.state == "COMPLETE" for t in result.trials)
    front = [t for t in result.trials if t.on_front]
    assert front and all(t.metrics["params"] <= 16500 and t.metrics["macs"] >= 110000 for t in front)
    pts = to_minimize([t.objectives for t in feasible], cfg.directions)  # type: ignore[misc]
    assert {t.number for t, keep in zip(feasible, non_dominated(pts), strict=True) if keep} == set(result.front)
    hv = [v for _, v in result.hv_history]
    assert hv == sorted(hv)  # a fixed reference point: hypervolume never shrinks
    durable = optuna.load_study(study_name=cfg.study_name(), storage=storage)
    assert len(durable.trials) == 24 and all(t.state.name == "COMPLETE" for t in durable.trials)
    assert {int(k[1:]) for k in durable.trials[0].constraints} == {0, 1}  # Optuna 5's constraints


def test_failed_evaluations_are_recorded_and_the_search_goes_on(tmp_path: Path, no_groups_proxy: str) -> None:
    cfg = make_config(
        objectives=[
            {"metric": f"proxy:{no_groups_proxy}", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        budget={"trials": 12},
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}").run()
    failed = [t for t in result.trials if t.state == "FAIL"]
    assert len(result.trials) == 12 and failed and len(failed) < 12
    assert all("this net has grouped convs" in (t.error or "") for t in failed)
    assert all(t.metrics["params"] is not None for t in failed)  # what could be measured is kept


def test_evaluations_are_cached_across_studies(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    first = Search(make_config(name="one"), db).run()
    second = Search(make_config(name="two"), db).run()
    assert [t.arch_id for t in first.trials] == [t.arch_id for t in second.trials]
    durable = optuna.load_study(study_name="two", storage=db)
    assert all(t.user_attrs["hwnas"]["cached"] == ["proxy:synflow"] for t in durable.trials)


def test_resume_extends_the_budget_and_keeps_trials(storage: str) -> None:
    cfg = make_config(budget={"trials": 6})
    first = Search(cfg, storage).run()
    with pytest.raises(SearchError, match="already exists .* resume it"):
        Search(cfg, storage).run()
    more = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"trials": 10})})
    second = Search(more, storage).run(resume=True)
    assert len(second.trials) == 10
    assert [t.objectives for t in second.trials[:6]] == [t.objectives for t in first.trials]
    other = make_config(name=cfg.name, seed=99)
    with pytest.raises(SearchError, match="different config"):
        Search(other, storage).run(resume=True)
    with pytest.raises(SearchError, match="no study 'nothing-here'"):
        Search(make_config(name="nothing-here"), storage).run(resume=True)


@pytest.mark.slow  # a controller in a subprocess, killed and resumed: ~14 s
def test_resume_after_sigkill_loses_no_completed_trial(storage: str, tmp_path: Path) -> None:
    """A real controller process killed with SIGKILL mid-search, then resumed to the end of its budget."""
    BUDGET = 120  # noqa: N806 - a constant of this test
    name = f"kill-{uuid.uuid4().hex[:8]}"
    cfg = {
        "name": name,
        "space": ALL_BLOCKS,
        # far more trials than the kill waits for: trials take tens of ms, and a poll of the storage under load
        # can take long enough for 40 of them to finish first (seen in CI: all 40 done before the kill)
        "budget": {"trials": BUDGET},
        "workers": 1,
        "seed": 1,
        "objectives": [
            {"metric": "proxy:naswot", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        "strategy": {"name": "tpe"},
        "dataset": {"name": "synthetic", "options": {"size": 16}},
        "proxy": {"batch_size": 16},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cmd = [
        sys.executable,
        "-m",
        "service.cli",
        "search",
        str(path),
        "--storage",
        storage,
        "--out",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    seen: list[optuna.trial.FrozenTrial] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                seen = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
            except KeyError:
                seen = []
            if len(seen) >= 12:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = {
        t.number: t.values
        for t in optuna.load_study(study_name=name, storage=storage).trials
        if t.state.name == "COMPLETE"
    }
    assert 12 <= len(before) < BUDGET
    done = subprocess.run([*cmd, "--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = optuna.load_study(study_name=name, storage=storage).trials
    assert len([t for t in after if t.state.name in ("COMPLETE", "FAIL")]) == BUDGET
    assert all(after[n].values == v for n, v in before.items())  # nothing completed was lost or changed


def test_known_nets_seed_the_search(tmp_path: Path) -> None:
    cfg = SearchConfig.parse(
        {
            "space": "mobilenetv3",
            "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "minimize"}],
            "budget": {"trials": 4},
            "seed_known": True,
        }
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}").run()
    import searchspace as ss

    known = {ss.known_architecture(n).arch_id for n in ("mobilenet_v3_large", "mobilenet_v3_small")}
    assert known <= {t.arch_id for t in result.trials[:2]}
    assert "2 known net(s)" in " ".join(result.notes)


def test_results_export(tmp_path: Path) -> None:
    result = Search(make_config(budget={"trials": 8}), f"sqlite:///{tmp_path / 's.db'}").run()
    import csv
    import io
    import json

    rows = list(csv.DictReader(io.StringIO(result.to_csv())))
    assert len(rows) == 8 and {"params", "proxy:synflow", "on_front", "arch"} <= set(rows[0])
    data = json.loads(result.to_json())
    assert data["front"] == result.front and len(data["trials"]) == 8
    assert np.isfinite(data["hv_history"][-1][1])


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[2] / "examples").glob("*.yaml")))
def test_example_configs_are_valid(path: Path) -> None:
    cfg = SearchConfig.from_file(path)
    assert cfg.budget.trials is not None and cfg.budget.trials <= 40


@pytest.mark.parametrize("strategy", ["evolution", "nsga3", "random", "tpe", "gp"])
def test_every_strategy_runs_a_constrained_search(strategy: str, tmp_path: Path) -> None:
    options = {"population_size": 4, "weights": [1.0, 0.5]} if strategy == "evolution" else {}
    if strategy == "nsga3":
        options = {"population_size": 4}
    cfg = make_config(
        strategy={"name": strategy, "options": options},
        budget={"trials": 12},
        constraints=[{"metric": "params", "max": 16500}],
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}").run()
    assert len(result.trials) == 12 and all(t.state == "COMPLETE" for t in result.trials)
    assert result.front and all(t.feasible for t in result.trials if t.on_front)


def test_evolution_children_copy_a_parent_but_one_parameter(tmp_path: Path) -> None:
    cfg = make_config(
        strategy={"name": "evolution", "options": {"population_size": 4, "sample_size": 2}},
        budget={"trials": 14},
        objectives=[{"metric": "params", "direction": "minimize"}],
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}").run()
    earlier = [t.params for t in result.trials[:4]]
    for t in result.trials[4:]:
        # a child differs from some earlier trial in exactly one shared parameter (plus params it gained/lost)
        parents = [
            p
            for p in [x.params for x in result.trials[: t.number]]
            if sum(p.get(k) != v for k, v in t.params.items() if k in p) <= 1
        ]
        assert parents, t.number
    assert len(earlier) == 4
    with pytest.raises(Exception, match="sample_size: must be between 1 and the population size"):
        make_config(strategy={"name": "evolution", "options": {"population_size": 4, "sample_size": 9}})


def test_a_fitted_predictor_is_a_search_metric(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """predictor:<name>: its proxy from the workers (cached like any proxy), the prediction by the controller."""
    import random

    from nas.proxies import predictor, score
    from nas.proxies.predictor import shape_features
    from searchspace.spec import load_space

    space = load_space(ALL_BLOCKS)
    rng = random.Random(0)
    nets = [space.sample(rng) for _ in range(12)]
    synflow = [score("synflow", a) for a in nets]
    truth = [0.5 + 0.01 * s + 0.001 * shape_features(a)["depth"] for s, a in zip(synflow, nets, strict=True)]
    model = predictor.fit("test-fit", nets, {"synflow": synflow}, truth, ["synflow"])
    predictor.save(model, tmp_path / "predictors")
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path / "predictors"))
    cfg = make_config(
        objectives=[
            {"metric": "predictor:test-fit", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        budget={"trials": 8},
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}").run()
    assert len(result.trials) == 8 and all(t.state == "COMPLETE" for t in result.trials)
    for t in result.trials:
        from searchspace.architecture import Architecture

        arch = Architecture.decode(t.arch)  # type: ignore[arg-type]
        assert t.metrics["predictor:test-fit"] == pytest.approx(
            model.predict(arch, {"synflow": score("synflow", arch)})
        )
    fitted_elsewhere = predictor.fit(
        "test-other",
        nets,
        {"synflow": synflow},
        truth,
        ["synflow"],
        trained_on={"space": "mobiledet-cifar", "dataset": "fashion-mnist"},
    )
    predictor.save(fitted_elsewhere, tmp_path / "predictors")
    with pytest.raises(Exception, match="predictor:test-other was fitted on nets of 'mobiledet-cifar'"):
        make_config(
            objectives=[
                {"metric": "predictor:test-other", "direction": "maximize"},
                {"metric": "params", "direction": "minimize"},
            ]
        )
    other_data = predictor.fit(
        "test-data",
        nets,
        {"synflow": synflow},
        truth,
        ["synflow"],
        trained_on={"space": space.name, "dataset": "cifar10-npz"},
    )
    predictor.save(other_data, tmp_path / "predictors")
    with pytest.raises(Exception, match="predicts accuracy on 'cifar10-npz'"):
        make_config(
            objectives=[
                {"metric": "predictor:test-data", "direction": "maximize"},
                {"metric": "params", "direction": "minimize"},
            ]
        )
    with pytest.raises(Exception, match="predictor 'nope': not found"):
        make_config(
            objectives=[
                {"metric": "predictor:nope", "direction": "maximize"},
                {"metric": "params", "direction": "minimize"},
            ]
        )


def test_rank_combinations_search_and_counts_stay_on_the_controller(tmp_path: Path) -> None:
    """rank:<proxy>+macs (AZ-NAS style) as an objective; the MAC count is never sent to a worker."""
    cfg = make_config(
        objectives=[
            {"metric": "proxy:rank:synflow+macs", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        budget={"trials": 8},
        proxy={"reference_size": 8},
    )
    search = Search(cfg, f"sqlite:///{tmp_path / 's.db'}")
    assert search._expensive_needed() == ["proxy:synflow"]
    result = search.run()
    assert all(t.state == "COMPLETE" for t in result.trials)
    values = [t.metrics["proxy:rank:synflow+macs"] for t in result.trials]
    assert all(v is not None and v <= 0 for v in values)  # a sum of log-probabilities
    assert len(set(values)) > 1
    assert not any("rank formula" in n for n in result.notes)
    # a study whose earlier trials were scored by the formula before this one: resuming it says so
    from nas.search import FORMULA_ATTR

    storage = f"sqlite:///{tmp_path / 's.db'}"
    durable = optuna.load_study(study_name=cfg.study_name(), storage=storage)
    assert durable.user_attrs[FORMULA_ATTR] == "log percentile in the reference sample"
    durable.set_user_attr(FORMULA_ATTR, None)
    again = Search(cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"trials": 10})}), storage)
    notes = again.run(resume=True).notes
    assert any("scored by an earlier rank formula (log normal CDF)" in n and "8 trial(s)" in n for n in notes), notes


def test_a_resumed_study_says_when_proxy_default_stood_for_another_proxy(tmp_path: Path) -> None:
    """default.json changed between two runs of one study (macs -> meco_opt): the column mixes two scales."""
    from nas.proxies import default_proxy
    from nas.search import DEFAULT_ATTR

    cfg = make_config(
        objectives=[
            {"metric": "proxy:default", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        budget={"trials": 4},
        dataset={"name": "synthetic"},
    )
    storage = f"sqlite:///{tmp_path / 's.db'}"
    first = Search(cfg, storage).run()
    assert not any("proxy:default of the" in n for n in first.notes)
    durable = optuna.load_study(study_name=cfg.study_name(), storage=storage)
    assert durable.user_attrs[DEFAULT_ATTR] == default_proxy()
    more = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"trials": 5})})
    assert not any("proxy:default of the" in n for n in Search(more, storage).run(resume=True).notes)
    durable.set_user_attr(DEFAULT_ATTR, "an-older-default")
    more = cfg.model_copy(update={"budget": cfg.budget.model_copy(update={"trials": 6})})
    notes = Search(more, storage).run(resume=True).notes
    assert any(
        f"proxy:default of the 5 trial(s) finished before this run was an-older-default; from now on it is "
        f"{default_proxy()}" in n
        for n in notes
    ), notes
    assert optuna.load_study(study_name=cfg.study_name(), storage=storage).user_attrs[DEFAULT_ATTR] == default_proxy()
