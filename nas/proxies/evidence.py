"""How far to trust a proxy: its agreement with trained accuracy, measured the way a user depends on it.

Pure statistics over lists (no torch): ``benchmarks/proxies.py`` and
``hwnas proxies check`` feed them trained accuracies and proxy scores.

- :func:`reliability` (:func:`test_retest` for two seeds): how reproducible
  the ground truth itself is (two or more training seeds per net). Its
  reliability bounds every correlation that can be measured against it
  (Spearman's attenuation: ceiling = sqrt(reliability)); :func:`net_means`
  is the truth itself, each net's mean over its seeds;
  :func:`reliability_within` the same among nets of equal cost, the ceiling
  of the equal-cost figures.
- :func:`cost_controlled_spearman`: rank agreement among nets of about the
  same cost (bins of equal MACs), averaged over bins. Under a latency
  objective this is the proxy's whole job; ``macs`` and ``params`` are near
  zero here by construction.
- ``latency_controlled_spearman`` (in :func:`assess`): the same within bins
  of similar latency. A search's front is accuracy against latency, not
  MACs, and nets of one latency differ in MACs by 2x or more (fused against
  depthwise blocks, resolution): a proxy that counts work favours, at equal
  latency, the nets that do more of it, which a search then finds.
- :func:`regret`: within each latency budget (by default the deciles of the
  nets' latency), how much accuracy a user gives up by taking the proxy's
  favourite instead of the best net, beside what a random pick gives up;
  :func:`regret_difference` compares two scorers' (or one and a random
  pick) on the same redraws of the truth within its noise, and on the same
  resamples of nets.
- :func:`assess`: all of that, with bootstrap intervals, for one scorer; its
  ``balanced`` score is the mean of Spearman and cost-controlled Spearman: a
  Pareto front needs both the order across costs and the order at equal cost
  (:func:`balanced` computes that key alone, with its interval).
- :func:`choose`: the default, picked with a margin: a candidate replaces a
  simpler one only when it beats it by more than the half-width of its
  interval.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from latency_tables.stats import kendall_tau_b, rankdata, spearman

Array = Sequence[float] | np.ndarray


def _arr(x: Array) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho, nan when either side is constant (no order to agree with)."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearman(x, y))


def test_retest(first: Array, second: Array) -> dict[str, Any]:
    """Reliability of a ground truth from two independent runs (seeds) of every net: :func:`reliability` of
    the two columns."""
    a, b = _arr(first), _arr(second)
    if len(a) != len(b) or len(a) < 3:
        raise ValueError(f"test_retest: needs two equal-length runs of at least 3 nets, got {len(a)} and {len(b)}")
    return reliability(np.column_stack([a, b]))


def _additive_fit(x: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Least squares of ``x[i, j] = net[i] + seed[j]`` over the entries ``seen`` (every column holding some):
    the seeds' effects centred on 0, and the rank of their part of the fit (k - 1 when the nets tie every seed
    to every other; less when the seeds fall into groups no net spans, whose offsets cannot be told apart).

    The nets' effects are eliminated exactly (each net's mean of ``x - seed`` over its own seeds), which leaves
    a k x k system for the seeds: small whatever the number of nets. Complete rows give the row means and the
    column means' deviations."""
    m = seen.sum(axis=1).astype(float)
    s = seen.astype(float)
    xz = np.where(seen, x, 0.0)
    row_mean = xz.sum(axis=1) / m
    # normal equations of the seeds' effects, the nets' effects eliminated: sum over nets of
    # (diag(s_i) - s_i s_i^T / m_i) seed = sum over nets of s_i * (x_i - mean_i)
    gram = np.diag(s.sum(axis=0)) - (s / m[:, None]).T @ s
    rhs = (s * (xz - row_mean[:, None])).sum(axis=0)
    seed, *_ = np.linalg.lstsq(gram, rhs, rcond=None)
    rank = int(np.linalg.matrix_rank(gram))
    seed = seed - seed.mean()
    net = (np.where(seen, x - seed[None, :], 0.0)).sum(axis=1) / m
    return net, seed, rank


def reliability(runs: Array | Sequence[Sequence[float]]) -> dict[str, Any]:
    """Reliability of a ground truth from independent runs (seeds) of every net: ``runs[i][j]`` is net i's
    accuracy under seed j, NaN where that run is missing (every net needs at least one, and some two; a seed
    with no run at all is left out).

    A run's accuracy is the net's own, plus what its seed does to every net alike (a seed shuffles the data
    the same way for all of them), plus noise. The shared part moves every net together and leaves their order
    alone, so it is measured (``seed_offsets``) and taken out: the noise variance is what is left of the
    additive fit (net + seed), per degree of freedom; two seeds: half the variance of their difference (the
    consistency form of the intraclass correlation). The truth used downstream is each net's mean over its
    seeds (:func:`net_means`), whose noise variance is a single run's over the net's number of seeds; its
    reliability is the share of its variance that is not noise, and the square root of that the highest
    correlation any proxy can be expected to reach against it. A single run's reliability comes from the same
    two variances (the nets' true spread and the noise), so a truth whose extra seeds cover some nets only is
    not judged on those nets' spread. More seeds raise the mean's reliability as Spearman-Brown says:
    k r / (1 + (k - 1) r) for a single run's reliability r.
    """
    x = np.atleast_2d(np.asarray(runs, dtype=float))
    seen = np.isfinite(x)
    used = seen.any(axis=0)
    x, seen = x[:, used], seen[:, used]
    per_net = seen.sum(axis=1)
    n, k = x.shape
    if n < 3 or k < 2 or per_net.min() < 1:
        raise ValueError(
            f"reliability: needs at least 3 nets with a run each and some with two seeds, got {n} nets x {k} seeds "
            f"with runs, {int(seen.sum())} runs"
        )
    net, seed, rank = _additive_fit(x, seen)
    dof = int(seen.sum()) - n - rank
    if dof < 1:
        raise ValueError(
            f"reliability: needs some nets with two seeds, got {n} nets x {k} seeds with {int(seen.sum())} runs"
        )
    resid = np.where(seen, x - net[:, None] - seed[None, :], 0.0)
    noise_var = float((resid**2).sum() / dof)
    mean_var = float(np.var(net, ddof=1))
    mean_noise = float(np.mean(noise_var / per_net))
    true_var = max(0.0, mean_var - mean_noise)
    single = true_var / (true_var + noise_var) if true_var + noise_var > 0 else math.nan
    of_mean = max(0.0, 1 - mean_noise / mean_var) if mean_var > 0 else math.nan
    # two seeds' agreement, averaged over the pairs of seeds that share the most nets: every pair when every
    # net has every seed; else only those (a half-done truth's extra seeds cover its first nets, not a sample)
    shared = {(i, j): int((seen[:, i] & seen[:, j]).sum()) for i in range(k) for j in range(i + 1, k)}
    most = max(shared.values())
    pairs = [
        rho
        for (i, j), count in shared.items()
        if count == most
        and count >= 3
        and not math.isnan(rho := _spearman(x[seen[:, i] & seen[:, j], i], x[seen[:, i] & seen[:, j], j]))
    ]
    seeds_used = [int(j) for j in np.flatnonzero(used)]
    return {
        "nets": n,
        "seeds": k,
        "runs": int(seen.sum()),
        "seeds_per_net": {str(c): int((per_net == c).sum()) for c in sorted(set(per_net.tolist()))},
        "noise_sd": math.sqrt(noise_var),
        # the first two seeds' difference (what a two-seed truth always reported), then each seed's own
        "seed_offset": float(seed[0] - seed[1]),
        "seed_offsets": dict(zip(map(str, seeds_used), map(float, seed), strict=True)),
        "between_net_sd": math.sqrt(mean_var),
        "reliability_single_run": single,
        "reliability": of_mean,
        "ceiling": math.sqrt(of_mean) if not math.isnan(of_mean) else math.nan,
        "spearman_between_seeds": float(np.mean(pairs)) if pairs else math.nan,
    }


def reliability_within(runs: Array | Sequence[Sequence[float]], labels: Array) -> dict[str, Any]:
    """:func:`reliability` among nets of one bin (``labels``: a bin per net, e.g. :func:`control_bins` of MACs):
    how well the truth itself can order nets of equal cost, and so the ceiling of any equal-cost Spearman.

    The nets' spread is measured around their own bin's mean (a bin's mean is its level of cost, which equal-cost
    figures leave out); the noise is the whole truth's. ``pooled`` over every bin; ``bins`` one by one (a bin's
    figure rests on a few nets: a rough guide)."""
    x = np.atleast_2d(np.asarray(runs, dtype=float))
    lab = np.asarray(labels)
    if len(lab) != len(x):
        raise ValueError(f"reliability_within: {len(lab)} labels for {len(x)} nets")
    whole = reliability(x)
    noise_var = whole["noise_sd"] ** 2
    per_net = np.isfinite(x).sum(axis=1)
    means = np.asarray(net_means(x))

    def judge(idx: list[np.ndarray]) -> dict[str, Any]:
        dof = sum(len(i) - 1 for i in idx)
        if dof < 2:
            return {"nets": int(sum(len(i) for i in idx)), "reliability": math.nan, "ceiling": math.nan}
        spread = sum(float(((means[i] - means[i].mean()) ** 2).sum()) for i in idx) / dof
        noise = float(np.mean(noise_var / per_net[np.concatenate(idx)]))
        r = max(0.0, 1 - noise / spread) if spread > 0 else math.nan
        return {
            "nets": int(sum(len(i) for i in idx)),
            "between_net_sd": math.sqrt(spread),
            "reliability": r,
            "ceiling": math.sqrt(r) if not math.isnan(r) else math.nan,
        }

    groups = [np.flatnonzero(lab == b) for b in np.unique(lab)]
    return {"pooled": judge(groups), "bins": [judge([g]) for g in groups], "noise_sd": whole["noise_sd"]}


def seeds_for(single_run: float, target: float = 0.8) -> int | None:
    """How many seeds per net a mean needs to reach reliability ``target``, given a single run's (Spearman-Brown:
    k r / (1 + (k - 1) r) >= target); None where a single run measures nothing (r <= 0 or NaN)."""
    if not single_run > 0:
        return None
    if single_run >= target:
        return 1
    return math.ceil(target * (1 - single_run) / (single_run * (1 - target)) - 1e-9)


def net_means(runs: Array | Sequence[Sequence[float]]) -> list[float]:
    """Each net's accuracy over its seeds (NaN: a missing run), the seeds' shared offsets taken out, so that a
    net missing a seed that runs high or low for every net is not moved by that: with every run present,
    the plain means."""
    x = np.atleast_2d(np.asarray(runs, dtype=float))
    seen = np.isfinite(x)
    if (seen.sum(axis=1) < 1).any():
        raise ValueError("net_means: every net needs at least one run")
    used = seen.any(axis=0)
    net, _, _ = _additive_fit(x[:, used], seen[:, used])
    return [float(v) for v in net]


def strict_json(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None, recursively: what the reports write, so
    they are JSON every parser reads (json.dumps would write bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    if isinstance(value, np.floating | np.integer):
        return strict_json(value.item())
    return value


def cost_bins(cost: Array, bins: int = 5) -> np.ndarray:
    """Bin index (0..bins-1) of each net by quantiles of ``cost`` (equal-count bins of similar cost)."""
    c = _arr(cost)
    order = np.argsort(c, kind="stable")
    out = np.empty(len(c), dtype=int)
    for b, chunk in enumerate(np.array_split(order, bins)):
        out[chunk] = b
    return out


def control_bins(cost: Array, bins: int = 5) -> np.ndarray | None:
    """The bins :func:`cost_controlled_spearman` judges within: ``bins`` of similar cost, fewer where that many
    would hold under 4 nets each (14 nets: 3 bins, not 5 bins of 2-3 nets that say nothing); None under 8 nets
    (one bin is not cost control)."""
    c = _arr(cost)
    bins = min(bins, len(c) // 4)
    return cost_bins(c, bins) if bins >= 2 else None


def cost_controlled_spearman(
    pred: Array, truth: Array, cost: Array | None, bins: int = 5, *, labels: np.ndarray | None = None
) -> float:
    """Mean Spearman within bins of similar cost (:func:`control_bins`), or within given bin ``labels`` (a
    bootstrap resample keeps the full sample's bins: :func:`assess`); nan without two bins; bins under 4 nets
    or with no spread are skipped."""
    p, t = _arr(pred), _arr(truth)
    if labels is None:
        if cost is None:
            raise ValueError("cost_controlled_spearman: needs the nets' cost or their bin labels")
        labels = control_bins(cost, bins)
        if labels is None:
            return math.nan
    values = []
    for b in np.unique(labels):
        idx = labels == b
        if idx.sum() >= 4:
            rho = _spearman(p[idx], t[idx])
            if not math.isnan(rho):
                values.append(rho)
    return float(np.mean(values)) if values else math.nan


def regret(pred: Array, truth: Array, latency: Array, budgets: Sequence[float]) -> dict[str, Any]:
    """Per budget: best accuracy among nets within it, minus the accuracy of the proxy's favourite within it.

    ``random`` is the same for a pick at random within each budget (the mean net's shortfall): a proxy whose
    regret is not below it serves a user no better than sampling nets blindly."""
    p, t, lat = _arr(pred), _arr(truth), _arr(latency)
    per = []
    for budget in budgets:
        idx = np.flatnonzero(lat <= budget)
        if len(idx) < 2:  # one net within the budget: nothing to choose between, no regret to measure
            continue
        pick = idx[np.argmax(p[idx])]
        per.append(
            {
                "budget": float(budget),
                "nets": int(len(idx)),
                "best": float(t[idx].max()),
                "picked": float(t[pick]),
                "regret": float(t[idx].max() - t[pick]),
                "random": float(t[idx].max() - t[idx].mean()),
            }
        )
    if not per:
        return {"mean": math.nan, "random": math.nan, "budgets": per}
    return {
        "mean": float(np.mean([r["regret"] for r in per])),
        "random": float(np.mean([r["random"] for r in per])),
        "budgets": per,
    }


def top_hit(pred: Array, truth: Array, fraction: float = 0.1) -> float:
    """Share of the truly best ``fraction`` of nets that the proxy also puts in its best ``fraction``."""
    p, t = _arr(pred), _arr(truth)
    k = max(1, round(fraction * len(t)))
    return len(set(np.argsort(t)[-k:]) & set(np.argsort(p)[-k:])) / k


def bootstrap(
    stat: Callable[[np.ndarray], float],
    n: int,
    *,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.9,
    strata: np.ndarray | None = None,
) -> tuple[float, float]:
    """Percentile interval of ``stat(indices)`` over resamples of ``n`` nets with replacement; with ``strata``
    (a label per net), each stratum resampled within itself, so every resample keeps its size."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(strata == s) for s in np.unique(strata)] if strata is not None else None

    def draw() -> np.ndarray:
        if groups is None:
            return rng.integers(0, n, n)
        return np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])

    return percentile_interval([stat(draw()) for _ in range(samples)], level)


def percentile_interval(values: Sequence[float], level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` share of ``values`` (NaNs left out; NaN bounds when nothing is left)."""
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return (math.nan, math.nan)
    lo, hi = np.percentile(kept, [50 * (1 - level), 50 * (1 + level)])
    return (float(lo), float(hi))


# regret's budgets: the deciles of the nets' latency. Four (the quartiles) made regret a matter of four picks,
# each of which one net's seed noise could flip, and on the 60-net truth they ordered scorers otherwise than ten
# budgets do (README, "How well the proxies rank trained accuracy")
BUDGET_QUANTILES = tuple(round(0.1 * k, 1) for k in range(1, 11))


def budgets_for(latency: Array, quantiles: Sequence[float] = BUDGET_QUANTILES) -> list[float]:
    """A user's latency budgets by default: quantiles of the nets' own latency (the slowest net's is the last),
    each once (a few nets give repeated quantiles, which would weigh one choice several times)."""
    return sorted({float(np.quantile(_arr(latency), q)) for q in quantiles})


def regret_difference(
    pred: Array,
    other: Array | None,
    truth: Array,
    latency: Array,
    budgets: Sequence[float],
    *,
    truth_sd: Array | None = None,
    samples: int = 1000,
    seed: int = 0,
    level: float = 0.9,
) -> dict[str, Any]:
    """Mean regret of ``pred`` minus that of ``other`` (``None``: a pick at random), with two paired intervals.

    ``interval`` (given ``truth_sd``, each net's truth's noise sd: a run's over the square root of its seeds):
    the same nets, their truth redrawn as noise of that size around it; would other training seeds turn the
    verdict? Both scorers are judged on the same draw. ``nets_resampled_interval``: a bootstrap over nets
    (without ``truth_sd`` it is the only ``interval``). That one answers for other draws of nets, but is pulled
    toward zero: a resample holds ~63% of the distinct nets, so each budget has fewer to choose from and every
    scorer's regret, and their difference, shrinks (``nets_resampled_median`` shows how far)."""
    p, t, lat = _arr(pred), _arr(truth), _arr(latency)
    q = None if other is None else _arr(other)

    def diff_on(i: np.ndarray, truth_values: np.ndarray) -> float:
        tv = truth_values[i]
        mine = regret(p[i], tv, lat[i], budgets)
        theirs = mine["random"] if q is None else regret(q[i], tv, lat[i], budgets)["mean"]
        return float(mine["mean"] - theirs)

    n = len(t)
    everything = np.arange(n)
    rng = np.random.default_rng(seed)
    boot = [diff_on(rng.integers(0, n, n), t) for _ in range(samples)]
    nets_interval = percentile_interval(boot, level)
    out: dict[str, Any] = {
        "difference": diff_on(everything, t),
        "against": "random pick" if q is None else "other",
        "nets_resampled_interval": nets_interval,
        "nets_resampled_median": percentile_interval(boot, 0.0)[0],  # the central 0%: the median
    }
    if truth_sd is None:
        return out | {"interval": nets_interval, "interval_kind": "nets resampled"}
    sd = _arr(truth_sd)
    if len(sd) != n or not np.isfinite(sd).all() or (sd < 0).any():
        raise ValueError(f"regret_difference: truth_sd needs a finite sd >= 0 for each of the {n} nets")
    noise_rng = np.random.default_rng(seed + 1)
    draws = [diff_on(everything, t + noise_rng.normal(size=n) * sd) for _ in range(samples)]
    return out | {"interval": percentile_interval(draws, level), "interval_kind": "truth redrawn within its noise"}


def _ranked_last(pred: Array) -> tuple[np.ndarray, np.ndarray]:
    """Scores with a net the scorer could not score ranked last (what a search would do with it), and which
    nets were scored."""
    p = _arr(pred)
    ok = np.isfinite(p)
    return np.where(ok, p, np.nanmin(p[ok]) - 1 if ok.any() else 0.0), ok


def _controlled(p: np.ndarray, t: np.ndarray, labels: np.ndarray | None, i: np.ndarray) -> float:
    return math.nan if labels is None else cost_controlled_spearman(p[i], t[i], None, labels=labels[i])


def balanced(
    pred: Array, truth: Array, cost: Array, *, bins: int = 5, samples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """What a default is chosen by (:func:`choose`): the mean of Spearman and cost-controlled Spearman, with its
    bootstrap interval (nets resampled within the full sample's bins of equal cost, as in :func:`assess`)."""
    p, _ = _ranked_last(pred)
    t = _arr(truth)
    labels = control_bins(cost, bins)

    def stat(i: np.ndarray) -> float:
        return (_spearman(p[i], t[i]) + _controlled(p, t, labels, i)) / 2

    return {
        "balanced": stat(np.arange(len(t))),
        "balanced_interval": bootstrap(stat, len(t), samples=samples, seed=seed + 2, strata=labels),
    }


def assess(
    pred: Array,
    truth: Array,
    cost: Array,
    latency: Array,
    *,
    budgets: Sequence[float] | None = None,
    bins: int = 5,
    samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """One scorer against the ground truth: every measure, with bootstrap 90% intervals where they make sense."""
    p, t, c, lat = _arr(pred), _arr(truth), _arr(cost), _arr(latency)
    if not (len(p) == len(t) == len(c) == len(lat)):
        raise ValueError("assess: pred, truth, cost and latency must describe the same nets")
    p, ok = _ranked_last(p)
    budgets = list(budgets) if budgets is not None else budgets_for(lat)
    n = len(t)
    rho = _spearman(p, t)

    # the bins of equal cost (and of equal latency) are the full sample's, and a resample draws nets within each:
    # re-binning every resample would let duplicated nets straddle a bin's edge and mix costs the bins keep
    # apart, which pulls a count's interval up, away from its own figure (macs: -0.05, interval centred on +0.10)
    cost_labels, lat_labels = control_bins(c, bins), control_bins(lat, bins)

    def controlled(i: np.ndarray, labels: np.ndarray | None) -> float:
        return _controlled(p, t, labels, i)

    return {
        **balanced(p, t, c, bins=bins, samples=samples, seed=seed),
        "spearman": rho,
        "spearman_interval": bootstrap(lambda i: _spearman(p[i], t[i]), n, samples=samples, seed=seed),
        "kendall": float(kendall_tau_b(p, t)) if n > 2 else math.nan,
        "kendall_interval": bootstrap(
            lambda i: float(kendall_tau_b(p[i], t[i])) if np.ptp(p[i]) > 0 and np.ptp(t[i]) > 0 else math.nan,
            n,
            samples=samples,
            seed=seed + 3,
        ),
        "cost_controlled_spearman": controlled(np.arange(n), cost_labels),
        "cost_controlled_interval": bootstrap(
            lambda i: controlled(i, cost_labels), n, samples=samples, seed=seed + 1, strata=cost_labels
        ),
        "latency_controlled_spearman": controlled(np.arange(n), lat_labels),
        "latency_controlled_interval": bootstrap(
            lambda i: controlled(i, lat_labels), n, samples=samples, seed=seed + 4, strata=lat_labels
        ),
        "top10_hit": top_hit(p, t),
        # a scorer that scored no net picks nothing: its regret is unknown, not that of the first net listed
        "regret": regret(p, t, lat, budgets) if ok.any() else {"mean": math.nan, "random": math.nan, "budgets": []},
        "failures": int((~ok).sum()),
    }


def rank_combine(columns: Mapping[str, Array], weights: Mapping[str, float] | None = None) -> np.ndarray:
    """AZ-NAS style: the sum over members of log(rank / n) (rank 1 = worst), weighted. Higher = better."""
    if not columns:
        raise ValueError("rank_combine: no members")
    n = {len(v) for v in columns.values()}
    if len(n) != 1:
        raise ValueError(f"rank_combine: members scored different numbers of nets: {sorted(n)}")
    size = n.pop()
    total = np.zeros(size)
    for name, v in columns.items():
        total += (weights or {}).get(name, 1.0) * np.log(rankdata(np.nan_to_num(_arr(v), nan=-np.inf)) / size)
    return total


def choose(
    results: Mapping[str, Mapping[str, Any]],
    candidates: Sequence[str],
    *,
    key: str = "spearman",
    interval: str = "spearman_interval",
) -> dict[str, Any]:
    """The default among ``candidates``, listed simplest first.

    A richer candidate must beat a simpler one by more than the half-width of
    its own interval, or the simpler one stays: the choice is the simplest
    candidate that no richer one beats by that margin.
    """
    if not candidates:
        raise ValueError("choose: no candidates")

    def half(name: str) -> float:
        lo, hi = results[name][interval]
        return (hi - lo) / 2 if not (math.isnan(lo) or math.isnan(hi)) else math.inf

    def value(name: str) -> float:
        v = results[name][key]
        return -math.inf if v is None or math.isnan(v) else float(v)

    reasons: list[dict[str, Any]] = []
    for i, name in enumerate(candidates):
        beaten_by = [
            (r, value(r) - value(name), half(r)) for r in candidates[i + 1 :] if value(r) - value(name) > half(r)
        ]
        if not beaten_by:
            return {"choice": name, "key": key, "value": value(name), "half_width": half(name), "passed_over": reasons}
        r, gain, h = max(beaten_by, key=lambda x: x[1])
        reasons.append({"candidate": name, "beaten_by": r, "gain": gain, "half_width": h})
    raise AssertionError("unreachable: the richest candidate is never beaten by a richer one")
