"""SearchConfig: everything a search needs, as one strict model (YAML for the CLI, JSON for the REST API).

    space: mobilenetv2-cifar
    objectives:
      - {metric: "proxy:default", direction: maximize}
      - {metric: "latency:ort-cpu-fp32-t1", direction: minimize}
    constraints:
      - {metric: params, max: 2000000}
    strategy: {name: tpe}
    budget: {trials: 40}
    workers: 2
    seed: 0

Unknown keys are errors; every error names its field (``objectives[1].metric:
...``). Validation checks names against the registries (spaces, proxies,
profiles, datasets, strategies) so a bad config fails when it is submitted,
not an hour into the search.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nas.datasets import DataSpec
from nas.errors import ConfigError
from nas.metrics import Metric, parse_metric
from nas.training import TrainSettings
from searchspace.validation import validate_model

_STRICT = ConfigDict(extra="forbid", frozen=True)
#: what ``latency_table`` may name besides a table file (see SearchConfig.latency_table)
LATENCY_TABLE_MODES = ("auto", "host", "shipped")


class Objective(BaseModel):
    model_config = _STRICT

    metric: str
    direction: Literal["minimize", "maximize"]

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return parse_metric(value).name

    @property
    def parsed(self) -> Metric:
        return parse_metric(self.metric)


class Constraint(BaseModel):
    """``metric <= max`` and/or ``metric >= min``."""

    model_config = _STRICT

    metric: str
    max: float | None = None
    min: float | None = None

    @field_validator("metric")
    @classmethod
    def _known(cls, value: str) -> str:
        return parse_metric(value).name

    @model_validator(mode="after")
    def _bound(self) -> Constraint:
        if self.max is None and self.min is None:
            raise ValueError("give max and/or min")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self

    def violation(self, value: float) -> float:
        """How far ``value`` is outside the bounds (<= 0: satisfied), as Optuna's constraints expect."""
        over = value - self.max if self.max is not None else float("-inf")
        under = self.min - value if self.min is not None else float("-inf")
        return float(max(over, under))


class StrategySpec(BaseModel):
    model_config = _STRICT

    name: str = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        from nas.strategies import STRATEGIES

        STRATEGIES.get(value)
        return value


class Budget(BaseModel):
    model_config = _STRICT

    trials: int | None = Field(default=None, ge=1, le=1_000_000)
    seconds: float | None = Field(default=None, gt=0, le=30 * 86400)

    @model_validator(mode="after")
    def _some(self) -> Budget:
        if self.trials is None and self.seconds is None:
            raise ValueError("give trials and/or seconds")
        return self


class ProxySettings(BaseModel):
    model_config = _STRICT

    batch_size: int = Field(default=64, ge=2, le=4096)
    seed: int = 0
    reference_size: int = Field(default=32, ge=4, le=1024, description="nets ensembles standardise against")


class SearchConfig(BaseModel):
    model_config = _STRICT

    name: str | None = Field(default=None, max_length=200, description="study name (default: derived from config)")
    space: str | dict[str, Any]
    objectives: list[Objective] = Field(min_length=1, max_length=8)
    constraints: list[Constraint] = Field(default_factory=list, max_length=32)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    budget: Budget
    workers: int = Field(default=1, ge=1, le=1024)
    seed: int = Field(
        default=0,
        ge=0,
        le=2**31 - 1,
        description="the sampler's seed (NumPy takes 0..2**32-1; a resumed search adds its trial count)",
    )
    seed_known: bool = Field(default=False, description="start from the known nets that lie in the space")
    dataset: DataSpec = Field(default_factory=DataSpec)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    training: TrainSettings | None = None
    latency_table: str = Field(
        default="auto",
        min_length=1,
        max_length=1000,
        description="the latency table each latency metric is predicted from: auto = this host's table, built on "
        "first use when this host can run the profile, else the best table found (flagged if measured elsewhere); "
        "host = this host's table (an error where this host cannot run the profile); shipped = the table shipped "
        "with hwnas (flagged if measured elsewhere); or a table file (.json / .json.gz)",
    )
    latency_missing: Literal["auto", "measure", "estimate", "error"] = Field(
        default="auto",
        description="a layer the latency table lacks: measure it (on the table's host), estimate "
        "it (flagged), or fail; auto = measure where possible, else fail",
    )
    hv_reference: list[float] | None = Field(
        default=None,
        description="hypervolume reference point, one value per objective in its own units "
        "(default: the worst of the first 10 feasible trials plus 10% of their range)",
    )
    eval_timeout: float | None = Field(default=None, gt=0, description="seconds one evaluation may take")
    retries: int = Field(default=2, ge=0, le=10, description="retries when a worker dies")
    ray_address: str | None = Field(default=None, description="a Ray cluster to use (default: a local Ray)")

    @field_validator("space")
    @classmethod
    def _space(cls, value: str | dict[str, Any]) -> str | dict[str, Any]:
        from searchspace.spec import load_space

        load_space(value)  # raises SpecError / UnknownNameError with the reason
        return value

    @field_validator("latency_table")
    @classmethod
    def _latency_table(cls, value: str) -> str:
        if value in LATENCY_TABLE_MODES:
            return value
        if not value.endswith((".json", ".json.gz")):
            raise ValueError(
                f"expected {', '.join(LATENCY_TABLE_MODES)} or a table file (.json / .json.gz), got {value!r}"
            )
        try:
            found = Path(value).is_file()
        except (OSError, ValueError):  # a name too long for the file system, ...
            found = False
        if not found:
            raise ValueError(f"no table file at {value!r}; expected {', '.join(LATENCY_TABLE_MODES)} or a table file")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> SearchConfig:
        names = [o.metric for o in self.objectives]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"objectives: {', '.join(dupes)} appears twice")
        for metric in [*names, *(c.metric for c in self.constraints)]:
            m = parse_metric(metric)
            if m.kind == "train":
                if self.training is None:
                    raise ValueError(f"training: {metric} needs a training section (e.g. training: {{steps: 200}})")
                if m.arg != self.dataset.name:
                    raise ValueError(
                        f"dataset: {metric} trains on {m.arg!r} but the dataset section names {self.dataset.name!r}"
                    )
            if m.kind == "predictor":
                self._check_predictor(m.arg)
        if self.hv_reference is not None and len(self.hv_reference) != len(self.objectives):
            raise ValueError(
                f"hv_reference: one value per objective ({len(self.objectives)}), got {len(self.hv_reference)}"
            )
        self._check_latency_table()
        from nas.strategies import STRATEGIES

        STRATEGIES.get(self.strategy.name).check(self)
        return self

    def _check_latency_table(self) -> None:
        """A table file serves one profile; ``shipped`` needs a shipped table of every latency profile."""
        profiles = self.latency_profiles
        if self.latency_table == "shipped":
            from nas.table_choice import shipped_table

            for profile in profiles:
                shipped_table(profile)  # a ConfigError naming the shipped tables there are
        elif self.latency_table not in LATENCY_TABLE_MODES and profiles:
            from nas.table_choice import table_profile

            pid = table_profile(self.latency_table)
            if profiles != [pid]:
                raise ValueError(
                    f"latency_table: {self.latency_table} is a table of {pid}, but this search predicts "
                    f"{', '.join(profiles)}; give a table of that profile, or auto, host or shipped"
                )

    def _check_predictor(self, name: str) -> None:
        """A few-shot predictor answers for the space and data it was fitted on, not for others."""
        from nas.proxies.predictor import load

        trained = load(name).trained_on
        space = self.load_space().name
        if trained.get("space") not in (None, space):
            raise ValueError(
                f"objectives: predictor:{name} was fitted on nets of {trained['space']!r}, not of "
                f"{space!r}; fit one on this space (hwnas proxies check --space ..., then proxies fit)"
            )
        if trained.get("dataset") not in (None, self.dataset.name):
            raise ValueError(
                f"dataset: predictor:{name} predicts accuracy on {trained['dataset']!r}, but this "
                f"search's dataset is {self.dataset.name!r}"
            )

    # ------------------------------------------------------------ derived
    def load_space(self) -> Any:
        from searchspace.spec import load_space

        return load_space(self.space)

    @property
    def metrics(self) -> list[Metric]:
        """Every metric objectives and constraints need, each once, objectives first."""
        seen: dict[str, Metric] = {}
        for name in [o.metric for o in self.objectives] + [c.metric for c in self.constraints]:
            seen.setdefault(name, parse_metric(name))
        return list(seen.values())

    @property
    def latency_profiles(self) -> list[str]:
        """The device profiles of the latency metrics (objectives and constraints), each once."""
        return list(dict.fromkeys(m.arg for m in self.metrics if m.kind == "latency"))

    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    #: what may change when a search is resumed (everything else defines the study)
    RESUMABLE_CHANGES: ClassVar[frozenset[str]] = frozenset(
        {"budget", "workers", "eval_timeout", "retries", "ray_address"}
    )

    def identity(self) -> dict[str, Any]:
        """The settings that define the study: two configs that agree here can continue each other's search.

        ``latency_table`` is left out at its default, so configs written before it existed keep their study.
        """
        data = self.model_dump(mode="json", exclude=set(self.RESUMABLE_CHANGES))
        if data.get("latency_table") == "auto":
            del data["latency_table"]
        return data

    def study_name(self) -> str:
        if self.name:
            return self.name
        import hashlib
        import json

        return "hwnas-" + hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:12]

    # ------------------------------------------------------------ loading
    @classmethod
    def parse(cls, data: Any, source: str = "config") -> SearchConfig:
        """Validate ``data``; a ConfigError lists every problem as ``field.path: message``."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of settings, got {type(data).__name__}")
        return validate_model(cls, data, ConfigError, f"{source}: invalid search config")

    @classmethod
    def from_file(cls, path: str | Path) -> SearchConfig:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from None
        return cls.parse(data, str(p))
