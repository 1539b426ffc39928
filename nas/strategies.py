"""Search strategies: each is an Optuna sampler, made from the config by a registered factory.

``nsga2``, ``nsga3``, ``tpe`` (multivariate, grouped for conditional
parameters, constant liar so parallel asks spread out), ``gp`` (Optuna's
Gaussian-process sampler, log-EHVI for several objectives), ``random`` and
``evolution`` (regularised evolution, Real et al. 2019, on a weighted sum of
the objectives). Every one gets the config's seed. Constraints reach
the samplers through ``trial.set_constraint`` (Optuna 5's mechanism; the
search sets every constraint on every completed trial), so NSGA-II/III,
TPE and GP learn from infeasible candidates; ``random`` ignores them and
``evolution`` ranks infeasible nets last.
A custom strategy is one more :class:`Strategy` registered here: a
function from the config to an Optuna sampler.

The default is ``tpe``: in benchmarks/search.py it reaches random search's
final hypervolume in fewer evaluations than NSGA-II (Optuna's NSGA-II only
recombines parameters every trial has, so the layer ops of variable-depth
stages stay random). Its cost is controller time per trial, well above
NSGA-II's, which matters only when every metric is cheap. The figures are in
benchmarks/results/search.json (``efficiency`` and ``overhead``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas.errors import StrategyError
from searchspace.registry import Registry

if TYPE_CHECKING:
    import optuna

    from nas.config import SearchConfig

#: the user attribute where the search keeps a trial's record (arch, metrics, constraint violations, error)
RECORD_ATTR = "hwnas"


def violations(trial: optuna.trial.FrozenTrial) -> list[float]:
    """A trial's constraint violations (<= 0: satisfied), as the search recorded them."""
    return list(trial.user_attrs.get(RECORD_ATTR, {}).get("violations", []))


@dataclass(frozen=True)
class Strategy:
    name: str
    description: str
    make: Callable[[SearchConfig], optuna.samplers.BaseSampler]
    options: dict[str, type] = field(default_factory=dict)
    single_objective_only: bool = False

    def check(self, config: SearchConfig) -> None:
        unknown = sorted(set(config.strategy.options) - set(self.options))
        if unknown:
            allowed = ", ".join(self.options) or "none"
            raise StrategyError(
                f"strategy.options: {', '.join(unknown)} not understood by {self.name!r}; allowed: {allowed}"
            )
        for key, kind in self.options.items():
            value = config.strategy.options.get(key)
            if value is not None and not isinstance(value, kind if kind is not float else (int, float)):
                raise StrategyError(f"strategy.options.{key}: expected {kind.__name__}, got {value!r}")
        weights = config.strategy.options.get("weights")
        if weights is not None and len(weights) != len(config.objectives):
            raise StrategyError(
                f"strategy.options.weights: one weight per objective ({len(config.objectives)}), got {len(weights)}"
            )
        population = config.strategy.options.get("population_size")
        if population is not None and population < 2:
            raise StrategyError(f"strategy.options.population_size: must be >= 2, got {population}")
        sample = config.strategy.options.get("sample_size")
        if sample is not None and not 1 <= sample <= (population or _population(config)):
            raise StrategyError(
                f"strategy.options.sample_size: must be between 1 and the population size "
                f"({population or _population(config)}), got {sample}"
            )


STRATEGIES: Registry[Strategy] = Registry("strategy", StrategyError)


def register_strategy(strategy: Strategy) -> Strategy:
    return STRATEGIES.register(strategy.name, strategy)


def make_sampler(config: SearchConfig, resumed_at: int = 0) -> optuna.samplers.BaseSampler:
    """The config's sampler. Optuna does not store a sampler's random state, so a search resumed after
    ``resumed_at`` trials seeds it with seed + resumed_at (its draws do not repeat the first run's)."""
    import warnings

    import optuna

    if resumed_at:
        config = config.model_copy(update={"seed": config.seed + resumed_at})
    with warnings.catch_warnings():  # NSGA-III and TPE's group= are marked experimental; chosen knowingly
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return STRATEGIES.get(config.strategy.name).make(config)


def _population(config: SearchConfig) -> int:
    value = config.strategy.options.get("population_size")
    if value is not None:
        return int(value)
    # Optuna's default (50) makes a 40-trial search pure random; a fifth of the budget, at least 8
    trials = config.budget.trials or 250
    return max(8, min(50, trials // 5))


def _nsga2(config: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIISampler(population_size=_population(config), seed=config.seed)


def _nsga3(config: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.NSGAIIISampler(population_size=_population(config), seed=config.seed)


def _tpe(config: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    startup = config.strategy.options.get("n_startup_trials", 10)
    return optuna.samplers.TPESampler(
        seed=config.seed, multivariate=True, group=True, constant_liar=True, n_startup_trials=int(startup)
    )


def _gp(config: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    startup = config.strategy.options.get("n_startup_trials", 10)
    return optuna.samplers.GPSampler(seed=config.seed, n_startup_trials=int(startup), warn_independent_sampling=False)


def _random(config: SearchConfig) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=config.seed)


def _evolution(config: SearchConfig) -> optuna.samplers.BaseSampler:
    from nas.evolution import RegularizedEvolutionSampler

    opts = config.strategy.options
    weights = opts.get("weights") or [1.0] * len(config.objectives)
    population = int(opts.get("population_size", _population(config)))
    return RegularizedEvolutionSampler(
        directions=config.directions,
        weights=[float(w) for w in weights],
        population_size=population,
        sample_size=int(opts.get("sample_size", max(2, population // 4))),
        seed=config.seed,
    )


register_strategy(
    Strategy(
        "nsga2", "NSGA-II (Deb et al. 2002): elitist multi-objective genetic search", _nsga2, {"population_size": int}
    )
)
register_strategy(
    Strategy(
        "nsga3",
        "NSGA-III (Deb & Jain 2014): reference-point selection, many objectives",
        _nsga3,
        {"population_size": int},
    )
)
register_strategy(
    Strategy(
        "tpe", "multivariate TPE, constant liar for parallel asks, multi-objective", _tpe, {"n_startup_trials": int}
    )
)
register_strategy(
    Strategy(
        "gp", "Gaussian-process Bayesian optimisation (log-EHVI for several objectives)", _gp, {"n_startup_trials": int}
    )
)
register_strategy(Strategy("random", "uniform random sampling (the baseline)", _random))
register_strategy(
    Strategy(
        "evolution",
        "regularised evolution (Real et al. 2019) on a weighted sum of objectives",
        _evolution,
        {"population_size": int, "sample_size": int, "weights": list},
    )
)


def seeded(seed: int, *parts: Any) -> random.Random:
    """A Random that depends only on ``seed`` and ``parts`` (resumed searches draw the same numbers)."""
    return random.Random(":".join(str(p) for p in (seed, *parts)))
