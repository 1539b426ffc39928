"""The statistics that judge proxies: test-retest reliability, cost control, regret, intervals, the choice."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas.proxies import evidence


def synthetic(n: int = 200, noise: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.normal(size=n)
    return true, true + rng.normal(scale=noise, size=n), true + rng.normal(scale=noise, size=n)


def test_test_retest_recovers_the_noise_it_was_given() -> None:
    true, a, b = synthetic(2000, noise=0.5)
    r = evidence.test_retest(a, b)
    assert r["noise_sd"] == pytest.approx(0.5, rel=0.05)
    # single run: var 1 / (1 + 0.25) = 0.8; mean of two: 1 / (1 + 0.125) = 0.889
    assert r["reliability_single_run"] == pytest.approx(0.8, abs=0.03)
    assert r["reliability"] == pytest.approx(1 / 1.125, abs=0.03)
    assert r["ceiling"] == pytest.approx(math.sqrt(r["reliability"]))
    noisy = evidence.test_retest(*synthetic(2000, noise=2.0)[1:])
    assert noisy["reliability"] < 0.4 < r["reliability"]
    # a seed that lifts every net alike changes no order: measured, not counted as noise
    shifted = evidence.test_retest(a, b - 3.0)
    assert shifted["seed_offset"] == pytest.approx(3.0, abs=0.05)
    assert shifted["reliability"] == pytest.approx(r["reliability"], abs=1e-9)
    with pytest.raises(ValueError, match="at least 3 nets"):
        evidence.test_retest([1, 2], [1, 2])


def test_more_seeds_raise_reliability_as_spearman_brown_says_and_missing_runs_count_as_such() -> None:
    rng = np.random.default_rng(3)
    true = rng.normal(size=3000)
    offsets = np.array([0.1, -0.1, 0.5, 0.3])  # what each seed does to every net alike
    runs = true[:, None] + offsets + rng.normal(scale=0.5, size=(3000, 4))
    two, four = evidence.reliability(runs[:, :2]), evidence.reliability(runs)
    assert two == evidence.test_retest(runs[:, 0], runs[:, 1])  # two seeds: the same figures as before
    assert four["seeds"] == 4 and four["runs"] == 12000
    assert four["noise_sd"] == pytest.approx(0.5, rel=0.05)
    r = four["reliability_single_run"]
    assert r == pytest.approx(0.8, abs=0.03)
    assert four["reliability"] == pytest.approx(4 * r / (1 + 3 * r), abs=0.01) and four["reliability"] > 0.92
    assert two["reliability"] == pytest.approx(2 * r / (1 + r), abs=0.02)
    assert list(four["seed_offsets"].values()) == pytest.approx(list(offsets - offsets.mean()), abs=0.03)
    # a seed not run yet (an empty column) is left out, not turned into NaN everywhere
    planned = np.column_stack([runs[:, :2], np.full(3000, np.nan)])
    assert evidence.reliability(planned) == two and evidence.net_means(planned) == evidence.net_means(runs[:, :2])
    # half the nets with two seeds only (a truth stopped midway): each weighed by the seeds it has
    partial = runs.copy()
    partial[:1500, 2:] = np.nan
    mixed = evidence.reliability(partial)
    assert mixed["runs"] == 9000 and two["reliability"] < mixed["reliability"] < four["reliability"]
    # the extra seeds on the first nets only: a single run's reliability and the seeds' agreement stay those
    # of all the nets, not of the few the extra seeds cover (here: the widest-spread ones)
    wide = runs.copy()
    order = np.argsort(-np.abs(true))
    wide[order[300:], 2:] = np.nan
    assert evidence.reliability(wide)["reliability_single_run"] == pytest.approx(r, abs=0.03)
    assert evidence.reliability(wide)["spearman_between_seeds"] == pytest.approx(
        four["spearman_between_seeds"], abs=0.02
    )
    means = np.array(evidence.net_means(partial))
    # seeds 2 and 3 run high for every net: a net without them is not ranked lower for that
    assert abs(np.mean(means[:1500] - true[:1500]) - np.mean(means[1500:] - true[1500:])) < 0.03
    plain = np.nanmean(partial, axis=1)
    assert abs(np.mean(plain[:1500] - true[:1500]) - np.mean(plain[1500:] - true[1500:])) > 0.1
    assert evidence.net_means(runs[:5]) == pytest.approx(list(runs[:5].mean(axis=1)))  # complete: plain means
    # how many seeds a mean needs for 0.8: 0.54 one run (hwnas's own truth) -> 4, as Spearman-Brown says
    assert [evidence.seeds_for(v) for v in (0.54, 0.5, 0.8, 0.9, 0.0, math.nan)] == [4, 4, 1, 1, None, None]
    assert evidence.seeds_for(0.3) == 10 and 10 * 0.3 / (1 + 9 * 0.3) >= 0.8 > 9 * 0.3 / (1 + 8 * 0.3)
    with pytest.raises(ValueError, match="some with two seeds"):
        evidence.reliability([[1.0, math.nan], [2.0, math.nan], [3.0, math.nan]])
    with pytest.raises(ValueError, match="at least one run"):
        evidence.net_means([[1.0, 2.0], [math.nan, math.nan]])


def test_reliability_within_bins_is_the_ceiling_at_equal_cost() -> None:
    """Levels of cost far apart make a truth reliable across cost and say nothing of its order at equal cost:
    that order is judged against the spread within each bin."""
    rng = np.random.default_rng(7)
    labels = np.repeat(np.arange(5), 400)
    within = np.where(labels == 4, 0.0, 1.0)  # the last bin's nets are all alike
    true = 10.0 * labels + within * rng.normal(size=2000)
    runs = true[:, None] + rng.normal(size=(2000, 2))  # noise sd 1, two seeds: a mean's noise var 0.5
    whole = evidence.reliability(runs)
    assert whole["reliability"] > 0.99
    got = evidence.reliability_within(runs, labels)
    # four bins of true var 1 and one of 0, against noise 0.5: pooled 1 - 0.5 / (0.8 + 0.5)
    assert got["pooled"]["reliability"] == pytest.approx(1 - 0.5 / 1.3, abs=0.04)
    assert got["pooled"]["ceiling"] == pytest.approx(math.sqrt(got["pooled"]["reliability"]))
    assert [b["reliability"] for b in got["bins"][:4]] == pytest.approx([1 / 1.5] * 4, abs=0.06)
    assert got["bins"][4]["reliability"] < 0.2 and got["bins"][4]["nets"] == 400
    with pytest.raises(ValueError, match="labels"):
        evidence.reliability_within(runs, labels[:10])


def test_cost_control_sees_through_a_proxy_that_only_counts_cost() -> None:
    rng = np.random.default_rng(1)
    cost = rng.uniform(1, 100, 500)
    quality = rng.normal(size=500)
    truth = np.log(cost) + 0.3 * quality  # bigger nets are better, and so are some nets of equal size
    counts_cost = cost
    knows_quality = np.log(cost) + 0.3 * quality + rng.normal(scale=0.2, size=500)
    assert evidence.assess(counts_cost, truth, cost, cost, samples=50)["spearman"] > 0.8
    # bins of similar cost: what is left of cost's advantage is the spread of cost inside a bin
    assert evidence.cost_controlled_spearman(counts_cost, truth, cost, bins=5) < 0.5
    assert abs(evidence.cost_controlled_spearman(counts_cost, truth, cost, bins=20)) < 0.3
    assert evidence.cost_controlled_spearman(knows_quality, truth, cost, bins=20) > 0.8
    # few nets: fewer bins of at least 4 nets, not quintiles of 2-3 nets that give no number at all
    few = slice(0, 14)
    assert not np.isnan(evidence.cost_controlled_spearman(knows_quality[few], truth[few], cost[few], bins=5))
    assert evidence.cost_controlled_spearman(knows_quality[few], truth[few], cost[few], bins=5) == pytest.approx(
        evidence.cost_controlled_spearman(knows_quality[few], truth[few], cost[few], bins=3)
    )
    assert np.isnan(evidence.cost_controlled_spearman(knows_quality[:7], truth[:7], cost[:7]))  # one bin: no control


def test_a_resample_keeps_the_bins_of_equal_cost() -> None:
    """The equal-cost interval resamples nets within the full sample's bins. Re-binning each resample let
    duplicated nets straddle a bin's edge and mix costs the bins keep apart: a count's interval then strayed
    from its own figure by up to 0.2 on a truth like the benchmark's (groups of three nets of similar cost)."""
    strata = np.repeat([0, 1, 2], [5, 7, 9])
    sizes = []
    evidence.bootstrap(lambda i: sizes.append(np.bincount(strata[i]).tolist()) or 0.0, 21, samples=20, strata=strata)
    assert sizes == [[5, 7, 9]] * 20
    for seed in range(5):
        rng = np.random.default_rng(seed)
        cost = np.repeat(np.geomspace(5, 60, 20), 3) * rng.uniform(0.95, 1.05, 60)
        truth = 0.6 * np.log(cost) + rng.normal(scale=0.15, size=60)  # bigger is better, by noise at equal cost
        r = evidence.assess(cost, truth, cost, cost, samples=300)
        for figure, (lo, hi) in (
            (r["cost_controlled_spearman"], r["cost_controlled_interval"]),
            (r["latency_controlled_spearman"], r["latency_controlled_interval"]),
        ):
            assert lo <= figure <= hi and abs((lo + hi) / 2 - figure) < 0.1


def test_latency_control_sees_a_proxy_that_favours_work_a_search_gets_cheaply() -> None:
    """At equal latency, nets differ in MACs (fused against depthwise blocks): where the extra MACs buy nothing, a
    MAC count ranks nets of one latency by nothing a user wants, however well it ranks them across latency."""
    rng = np.random.default_rng(2)
    latency = rng.uniform(1, 10, 400)
    work_per_ms = rng.uniform(1, 3, 400)  # how many MACs a millisecond buys: the block kinds' mix
    macs = latency * work_per_ms
    quality = rng.normal(size=400)
    truth = np.log(latency) + 0.3 * quality  # slower nets are better; at one latency, MACs do not matter
    knows_quality = truth + rng.normal(scale=0.1, size=400)
    by_macs = evidence.assess(macs, truth, macs, latency, samples=20)
    by_quality = evidence.assess(knows_quality, truth, macs, latency, samples=20)
    assert by_macs["spearman"] > 0.5
    assert abs(by_macs["latency_controlled_spearman"]) < 0.25
    assert by_quality["latency_controlled_spearman"] > 0.8
    lo, hi = by_quality["latency_controlled_interval"]
    assert lo <= by_quality["latency_controlled_spearman"] <= hi


def test_regret_is_what_the_proxys_pick_gives_up() -> None:
    truth = [0.9, 0.8, 0.7, 0.95]
    latency = [1.0, 1.0, 0.5, 3.0]
    pred = [0.0, 1.0, 2.0, 3.0]  # prefers the fast, worse nets
    r = evidence.regret(pred, truth, latency, [1.0, 3.0])
    assert [b["regret"] for b in r["budgets"]] == pytest.approx([0.2, 0.0])
    assert r["mean"] == pytest.approx(0.1)
    assert evidence.regret(truth, truth, latency, [1.0, 3.0])["mean"] == 0
    assert evidence.regret(pred, truth, latency, [0.1])["budgets"] == []
    assert evidence.regret(pred, truth, latency, [0.5])["budgets"] == []  # one net: nothing to choose
    # a pick at random gives up the best net's lead over the mean net: (0.9 - 0.8) and (0.95 - 0.8375)
    assert [b["random"] for b in r["budgets"]] == pytest.approx([0.1, 0.1125])
    assert r["random"] == pytest.approx(0.10625) and r["mean"] < r["random"]


def test_regret_is_judged_on_ten_budgets_and_compared_in_pairs() -> None:
    """Regret over the deciles of latency, not four picks that one net's seed noise can flip; two scorers (or
    one and a random pick) compared on the same resamples."""
    latency = np.arange(1.0, 101.0)
    assert evidence.budgets_for(latency) == pytest.approx([10.9 + 9.9 * k for k in range(10)])
    assert evidence.budgets_for([1.0, 2.0]) == pytest.approx(sorted({1.1 + 0.1 * k for k in range(10)}))
    assert len(evidence.budgets_for([5.0] * 8)) == 1  # repeated quantiles count once
    true, a, _ = synthetic(100, noise=0.2)
    r = evidence.assess(a, true, latency, latency, samples=50)
    assert len(r["regret"]["budgets"]) == 10 and r["regret"]["mean"] < r["regret"]["random"]
    vs_random = evidence.regret_difference(a, None, true, latency, evidence.budgets_for(latency), samples=200)
    lo, hi = vs_random["interval"]
    assert lo <= vs_random["difference"] <= hi < 0  # a good scorer beats picking at random, and surely
    inverse = evidence.regret_difference(-a, a, true, latency, evidence.budgets_for(latency), samples=200)
    assert inverse["difference"] > 0 and inverse["interval"][0] > 0
    assert vs_random["interval_kind"] == "nets resampled"
    # a scorer that scored nothing has no regret (not that of the first net listed)
    assert math.isnan(evidence.assess([math.nan] * 100, true, latency, latency, samples=5)["regret"]["mean"])


def test_regret_difference_over_the_truths_own_noise() -> None:
    """Resampled nets leave each budget fewer to choose from, which shrinks every regret and every difference
    toward zero; redrawing the truth within its measured noise keeps the nets and asks whether other seeds
    could turn the verdict."""
    rng = np.random.default_rng(5)
    latency = np.geomspace(1, 100, 60)
    true = np.log(latency) + rng.normal(scale=0.5, size=60)
    good, blind = true + rng.normal(scale=0.2, size=60), latency  # blind: ranks by cost alone
    budgets = evidence.budgets_for(latency)
    quiet = evidence.regret_difference(good, blind, true, latency, budgets, truth_sd=np.full(60, 0.01), samples=200)
    loud = evidence.regret_difference(good, blind, true, latency, budgets, truth_sd=np.full(60, 1.0), samples=200)
    assert quiet["interval_kind"] == "truth redrawn within its noise"
    lo, hi = quiet["interval"]
    assert lo <= quiet["difference"] <= hi < 0 and hi - lo < 0.1  # little noise: a sure verdict
    assert loud["interval"][1] - loud["interval"][0] > 5 * (hi - lo)  # noise as wide as the nets' spread: none
    assert quiet["nets_resampled_median"] > quiet["difference"]  # the shrinkage, measured
    assert quiet["nets_resampled_interval"] == loud["nets_resampled_interval"]  # the truth's noise plays no part
    with pytest.raises(ValueError, match="truth_sd"):
        evidence.regret_difference(good, blind, true, latency, budgets, truth_sd=[0.1] * 3)


def test_assess_gives_intervals_and_ranks_unscorable_nets_last() -> None:
    true, a, _ = synthetic(100, noise=0.2)
    r = evidence.assess(a, true, np.arange(100), np.arange(100), samples=200)
    lo, hi = r["spearman_interval"]
    assert lo < r["spearman"] < hi and hi - lo < 0.1
    a = a.copy()
    a[np.argmax(true)] = math.nan
    r2 = evidence.assess(a, true, np.arange(100), np.arange(100), samples=20)
    assert r2["failures"] == 1 and r2["top10_hit"] < 1.0


def test_rank_combine_is_a_sum_of_log_ranks() -> None:
    combined = evidence.rank_combine({"a": [1, 2, 3], "b": [3, 2, 1]})
    assert combined == pytest.approx(
        [math.log(1 / 3) + math.log(1), 2 * math.log(2 / 3), math.log(1) + math.log(1 / 3)]
    )
    # a net good by every member beats one that is best by one member and worst by another
    assert np.argmax(evidence.rank_combine({"a": [3, 1, 2], "b": [1, 3, 2]})) == 2
    with pytest.raises(ValueError, match="different numbers"):
        evidence.rank_combine({"a": [1, 2], "b": [1]})


def test_choose_keeps_the_simpler_unless_beaten_by_more_than_the_interval() -> None:
    results = {
        "macs": {"spearman": 0.60, "spearman_interval": (0.50, 0.70)},
        "proxy": {"spearman": 0.65, "spearman_interval": (0.55, 0.75)},  # +0.05 < half-width 0.10
        "ensemble": {"spearman": 0.85, "spearman_interval": (0.80, 0.90)},
    }  # +0.25 > 0.05
    assert evidence.choose(results, ["macs", "proxy"])["choice"] == "macs"
    chosen = evidence.choose(results, ["macs", "proxy", "ensemble"])
    assert chosen["choice"] == "ensemble" and [p["candidate"] for p in chosen["passed_over"]] == ["macs", "proxy"]
    results["ensemble"]["spearman"] = 0.64  # +0.04 over macs, within its half-width 0.05
    assert evidence.choose(results, ["macs", "proxy", "ensemble"])["choice"] == "macs"


def test_reports_are_strict_json() -> None:
    import json

    got = evidence.strict_json({"a": float("nan"), "b": [1.0, float("inf"), (np.float64(2.5), np.int64(3))], "c": "x"})
    assert got == {"a": None, "b": [1.0, None, [2.5, 3]], "c": "x"}
    json.dumps(got, allow_nan=False)
