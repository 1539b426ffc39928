"""The ground-truth plumbing: nets spread over cost, runs stored as they finish, a killed check resumed."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from nas.datasets import DataSpec
from nas.errors import ProxyError
from nas.proxies.check import Protocol, RunStore, checkpoint_dir, paired, sample_nets, seed_matrix, train_runs
from searchspace.cost import count_cost

TINY = Protocol(steps=2, batch_size=8, split="val", test_samples=16)
DATA = DataSpec(name="synthetic", val_fraction=0.2, limit=256)


def test_sample_nets_spreads_over_cost_in_groups_of_similar_cost() -> None:
    nets = sample_nets("mobilenetv2-cifar", 9, seed=0, group=3, pool=300)
    macs = [count_cost(a).macs for a in nets]
    assert len({a.arch_id for a in nets}) == 9
    groups = [macs[i : i + 3] for i in range(0, 9, 3)]
    for g in groups:  # similar cost inside a group, and the groups climb
        assert max(g) / min(g) < 1.3
    assert max(groups[0]) < min(groups[2])
    assert math.log(max(macs) / min(macs)) > 1.0
    capped = sample_nets("mobilenetv2-cifar", 4, seed=0, max_macs=20e6, pool=200)
    assert all(count_cost(a).macs <= 20e6 for a in capped)
    assert sample_nets("mobilenetv2-cifar", 4, seed=3, pool=200) == sample_nets(
        "mobilenetv2-cifar", 4, seed=3, pool=200
    )
    with pytest.raises(ProxyError, match="nets: the space"):
        sample_nets("mobilenetv2-cifar", 5, max_macs=1.0, pool=50)


@pytest.mark.slow  # trains nets in worker processes and kills one: ~7 s
def test_runs_are_stored_as_they_finish_and_a_killed_check_resumes(tmp_path: Path) -> None:
    nets = sample_nets("mobilenetv2-cifar", 2, seed=0, pool=100, max_macs=10e6)
    path = tmp_path / "truth.jsonl"
    store = RunStore(path, TINY, DATA)
    seen: list[int] = []
    assert train_runs(nets[:1], TINY, DATA, store, progress=lambda i, n, run: seen.append(i)) == 2
    assert seen == [1, 2] and len(store) == 2
    # a kill mid-write leaves a cut line: it is ignored and that run done again
    with path.open("a") as f:
        f.write('{"arch": "cut')
    again = RunStore(path, TINY, DATA)
    assert len(again) == 2
    assert train_runs(nets, TINY, DATA, again) == 2  # only the second net's two seeds
    kept, first, second = paired(RunStore(path, TINY, DATA), nets)
    assert kept == nets and len(first) == len(second) == 2
    assert all(0 <= a <= 1 for a in first + second)
    run = again.get(nets[0].encode(), 0)
    assert run is not None and run["split"] == "val" and run["cpu_seconds"] > 0
    # the same net and seed train the same way (seeded, one thread)
    fresh = RunStore(tmp_path / "again.jsonl", TINY, DATA)
    train_runs(nets[:1], TINY, DATA, fresh)
    assert fresh.get(nets[0].encode(), 0)["accuracy"] == run["accuracy"]  # type: ignore[index]
    header = json.loads(path.read_text().splitlines()[0])
    assert header["kind"] == "hwnas-ground-truth" and header["protocol"]["steps"] == 2
    with pytest.raises(ProxyError, match="another protocol"):
        RunStore(path, TINY.model_copy(update={"steps": 3}), DATA)
    # more seeds of the same protocol: the store grows, only the new seeds train, nets in order
    more = TINY.model_copy(update={"seeds": (0, 1, 2)})
    grown = RunStore(path, more, DATA)
    order: list[str] = []
    assert train_runs(nets, more, DATA, grown, progress=lambda i, n, run: order.append(run["arch_id"])) == 2
    assert order == [nets[0].arch_id, nets[1].arch_id]
    kept, rows = seed_matrix(grown, nets, more.seeds)
    assert kept == nets and all(len(row) == 3 and not math.isnan(row[2]) for row in rows)
    kept, rows = seed_matrix(grown, nets, (0, 1, 2, 3), min_seeds=4)
    assert kept == []
    kept, rows = seed_matrix(grown, nets, (0, 1, 2, 3))
    assert kept == nets and all(math.isnan(row[3]) for row in rows)


def test_a_runs_checkpoint_lives_beside_the_store_until_the_run_is_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(A killed checkpointed run resuming to the same end: tests/nas/test_training.py.)"""
    from nas.proxies import check
    from nas.training import Checkpointing

    monkeypatch.setattr(check, "CHECKPOINT_SECONDS", 0.0)
    saved: list[Path] = []
    real = Checkpointing.save

    def spy(self: Checkpointing, state: dict[str, Any], *args: Any) -> None:
        saved.append(self.path)
        real(self, state, *args)

    monkeypatch.setattr(Checkpointing, "save", spy)
    one = TINY.model_copy(update={"seeds": (0,)})
    store = RunStore(tmp_path / "truth.jsonl", one, DATA)
    nets = sample_nets("mobilenetv2-cifar", 1, seed=0, pool=50, max_macs=10e6)
    assert train_runs(nets, one, DATA, store) == 1
    assert saved and {p.parent for p in saved} == {checkpoint_dir(store)} == {tmp_path / "truth.partial"}
    assert not checkpoint_dir(store).exists()  # the run stored, its checkpoint and folder went


def test_proxies_are_timed_on_one_thread_and_the_callers_count_comes_back(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    import searchspace as ss
    from nas import proxies
    from nas.proxies.judging import score_nets

    seen: list[int] = []
    monkeypatch.setattr(proxies, "score", lambda name, arch, batch, seed=0: seen.append(torch.get_num_threads()) or 1.0)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        scores, seconds = score_nets(
            [ss.load_space("mobilenetv2-cifar").sample(0)], ["a", "b"], DataSpec(name="synthetic")
        )
        assert seen == [1, 1] and scores == {"a": [1.0], "b": [1.0]} and set(seconds) == {"a", "b"}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_combination_whose_member_scored_too_few_reference_nets_is_nan_not_a_crash() -> None:
    from nas.proxies.judging import combined

    nets = {"naswot": [1.0, 2.0], "macs": [3.0, 4.0]}
    reference = {"naswot": [float("nan")] * 6 + [1.0], "macs": [1.0, 2, 3, 4, 5, 6, 7]}
    assert all(math.isnan(v) for v in combined("rank:naswot+macs", nets, reference, "test"))


def test_scores_are_cached_so_a_check_killed_while_scoring_resumes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import searchspace as ss
    from nas import proxies
    from nas.proxies.judging import ScoreCache, score_nets

    calls: list[str] = []
    monkeypatch.setattr(proxies, "score", lambda name, arch, batch, seed=0: calls.append(name) or float(len(calls)))
    nets = [ss.load_space("mobilenetv2-cifar").sample(i) for i in range(2)]
    path = tmp_path / "scores.jsonl"
    first, _ = score_nets(nets, ["a", "b"], DATA, cache=ScoreCache(path, DATA))
    assert len(calls) == 4
    again, seconds = score_nets(nets, ["a", "b", "c"], DATA, cache=ScoreCache(path, DATA))
    assert len(calls) == 6  # only the new proxy, on each net
    assert again["a"] == first["a"] and again["b"] == first["b"] and set(seconds) == {"a", "b", "c"}
    with path.open("a") as fh:
        fh.write('{"arch": "cut')  # a kill mid-line: that score is simply computed again
    score_nets(nets, ["a"], DATA, cache=ScoreCache(path, DATA))
    assert len(calls) == 6
    other = DATA.model_copy(update={"seed": 1})  # scores made on another batch are not reused
    score_nets(nets, ["a"], other, cache=ScoreCache(path, other))
    assert len(calls) == 8
    with pytest.raises(ValueError, match="made for other data"):
        score_nets(nets, ["a"], DATA, cache=ScoreCache(path, other))

    def flaky(name: str, arch: object, batch: object, seed: int = 0) -> float:
        calls.append(name)
        if name == "oom":
            raise MemoryError("out of memory")
        raise ProxyError(f"proxy {name!r}: cannot score this net")

    monkeypatch.setattr(proxies, "score", flaky)
    fresh = tmp_path / "fresh.jsonl"
    got, _ = score_nets(nets[:1], ["oom", "cannot"], DATA, cache=ScoreCache(fresh, DATA))
    assert all(math.isnan(v[0]) for v in got.values())
    before = len(calls)
    score_nets(nets[:1], ["oom", "cannot"], DATA, cache=ScoreCache(fresh, DATA))
    assert calls[before:] == ["oom"]  # a passing failure is tried again; a proxy that cannot score is not


def test_a_training_run_holds_a_compute_slot(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A ground truth's or a check's runs take turns with latency measurements on the host, as search workers do."""
    from latency_tables import portable
    from nas.proxies import check

    monkeypatch.setenv("HWNAS_MEASURE_LOCK", str(tmp_path / "measure.lock"))
    held: list[int] = []
    monkeypatch.setattr(check, "train_one", lambda *job: held.append(portable._SLOT.depth) or {"seed": job[1]})
    assert check._train_job(("net", 0, "{}", "{}")) == {"seed": 0}
    assert held == [1] and portable._SLOT.depth == 0


def test_the_counts_are_baselines_never_candidates_for_a_default() -> None:
    """With latency on the other axis, a count on the accuracy axis sorts the front by size: macs and params
    are judged beside every proxy but a choice (the default, a check's recommendation) never falls on them."""
    from nas.proxies import evidence
    from nas.proxies.check import BASELINES, simplicity_order

    seconds = {"macs": 0.0, "params": 0.0, "naswot": 0.2, "meco_opt": 0.05, "rank:meco_opt+macs": 0.05}
    seconds["ensemble:naswot+meco_opt"] = 0.25
    seconds["predictor:ridge(naswot)"] = 0.2
    scores = {n: [0.0] for n in seconds}
    order = simplicity_order(scores, seconds)
    assert order == [
        "meco_opt",
        "naswot",
        "ensemble:naswot+meco_opt",
        "rank:meco_opt+macs",
        "predictor:ridge(naswot)",
    ]
    assert not set(BASELINES) & set(order)
    # even where the counts rank best by far, the choice is among the proxies
    results = {n: {"balanced": 0.1, "balanced_interval": (0.0, 0.2)} for n in seconds}
    results["macs"] = results["params"] = {"balanced": 0.9, "balanced_interval": (0.85, 0.95)}
    assert evidence.choose(results, order, key="balanced", interval="balanced_interval")["choice"] == "meco_opt"


def test_choice_stability_counts_what_other_halves_choose() -> None:
    """A clearly better candidate wins on nearly every half; between two alike, the simpler one keeps it (the
    margin), so a choice that flips between halves shows as a split count."""
    import numpy as np

    from nas.proxies.check import choice_stability

    rng = np.random.default_rng(0)
    truth = rng.normal(size=60)
    cost = np.exp(rng.normal(size=60))
    columns = {
        "blind": rng.normal(size=60).tolist(),
        "sees": (truth + rng.normal(scale=0.3, size=60)).tolist(),
        "sees_too": (truth + rng.normal(scale=0.3, size=60)).tolist(),
    }
    args = (columns, truth.tolist(), cost.tolist())
    got = choice_stability(*args, ["blind", "sees"], splits=10, samples=40)
    assert sum(got.values()) == 10 and got["sees"] >= 9
    alike = choice_stability(*args, ["sees", "sees_too"], splits=10, samples=40)
    assert alike["sees"] >= 7
    with pytest.raises(ValueError, match="no candidates"):
        choice_stability(columns, truth.tolist(), cost.tolist(), [])
