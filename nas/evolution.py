"""Regularised (aging) evolution as an Optuna sampler (Real et al., AAAI 2019).

The population is the ``population_size`` most recently *finished* trials
(so old nets age out, which is what regularises it). A child copies the
winner of a tournament among ``sample_size`` random population members and
changes one of its parameters; parameters the parent never had (a layer a
deeper child gains) are drawn at random. Until the population is full,
children are random.

Fitness is a weighted sum of the objectives, each min-max normalised over
the population and oriented so higher is better; a feasible net always
beats an infeasible one, and infeasible ones compare by total violation.
Every random draw is seeded by (seed, trial number), so a resumed search
continues exactly as an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

from nas.strategies import seeded, violations


class RegularizedEvolutionSampler(BaseSampler):
    def __init__(
        self,
        directions: Sequence[str],
        weights: Sequence[float],
        population_size: int = 50,
        sample_size: int = 10,
        seed: int = 0,
    ) -> None:
        if population_size < 2 or not 1 <= sample_size <= population_size:
            raise ValueError(
                f"population_size ({population_size}) must be >= 2 and sample_size ({sample_size}) between 1 and it"
            )
        self._signs = np.array([1.0 if d == "maximize" else -1.0 for d in directions])
        self._weights = np.asarray(weights, dtype=float)
        self._population_size = population_size
        self._sample_size = sample_size
        self._seed = seed
        self._fallback = RandomSampler(seed=seed)
        self._plans: dict[int, tuple[dict[str, Any] | None, str | None]] = {}

    def reseed_rng(self) -> None:
        self._fallback.reseed_rng()

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    # ---------------------------------------------------------------- the plan of one child
    def _fitness(self, population: list[FrozenTrial]) -> np.ndarray:
        values = np.array([t.values for t in population], dtype=float) * self._signs
        lo, hi = values.min(axis=0), values.max(axis=0)
        norm = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
        score = norm @ self._weights
        violation = np.array([sum(max(0.0, v) for v in violations(t)) for t in population])
        # feasible nets rank by score; infeasible ones below all of them, by violation
        return np.where(violation > 0, -1e9 - violation, score)

    def _plan(self, study: Study, trial: FrozenTrial) -> tuple[dict[str, Any] | None, str | None]:
        plan = self._plans.get(trial.number)
        if plan is not None:
            return plan
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.number < trial.number]
        done.sort(key=lambda t: (t.datetime_complete or t.datetime_start, t.number))
        if len(done) < self._population_size:
            plan = (None, None)
        else:
            population = done[-self._population_size :]
            rng = seeded(self._seed, trial.number, "tournament")
            picks = rng.sample(range(len(population)), self._sample_size)
            fitness = self._fitness(population)
            parent = population[max(picks, key=lambda i: (fitness[i], -i))]
            names = sorted(parent.params)
            plan = (dict(parent.params), rng.choice(names) if names else None)
        self._plans[trial.number] = plan
        return plan

    def sample_independent(
        self, study: Study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        parent, mutate = self._plan(study, trial)
        rng = seeded(self._seed, trial.number, param_name)
        if not isinstance(param_distribution, CategoricalDistribution):
            return self._fallback.sample_independent(study, trial, param_name, param_distribution)
        choices = list(param_distribution.choices)
        if parent is None or param_name not in parent or parent[param_name] not in choices:
            return rng.choice(choices)
        if param_name == mutate and len(choices) > 1:
            return rng.choice([c for c in choices if c != parent[param_name]])
        return parent[param_name]

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._plans.pop(trial.number, None)


__all__ = ["RegularizedEvolutionSampler"]
