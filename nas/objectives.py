"""What a search measures about each net: its objectives' and constraints' metrics, cheap and expensive.

:class:`Objectives` is what a :class:`nas.search.Search` holds to turn a
net into metric values. Cheap metrics (params, MACs, activations, table
latency) are computed here, on the controller; expensive ones (proxies,
predictors, training) are split into the single proxies they are made of
(:meth:`Objectives.expensive_needed`), which workers compute, and put
together again here (:meth:`Objectives.combine`): an ensemble or rank
combination against its reference sample of the space, a predictor from
its proxies' scores. ``proxy:params`` and ``proxy:macs`` are counts, never
sent to a worker.
"""

from __future__ import annotations

import time
from typing import Any

from nas.config import SearchConfig
from nas.errors import NasError
from nas.evaluate import EvalSettings
from nas.executors import TRANSIENT, Executor, Job
from nas.store import Evaluation, EvaluationCache
from nas.table_choice import TableChoice, TableProgress, choose_table

__all__ = ["ANALYTIC", "Objectives"]

# proxies that are analytic counts: computed by the controller, never sent to a worker
ANALYTIC = frozenset({"proxy:params", "proxy:macs"})


class Objectives:
    """The metrics of one search's config, measured for its controller; latency tables, predictors and
    ensembles' reference samples are read once per search (a file changed meanwhile does not change them)."""

    def __init__(self, config: SearchConfig, settings: EvalSettings, cache: EvaluationCache, space: Any = None) -> None:
        self.config = config
        self.metrics = config.metrics
        self.settings = settings
        self.cache = cache
        #: the config's loaded space (loaded when first needed if not given)
        self.space = space
        #: profile -> the table its latencies are predicted from (:mod:`nas.table_choice`)
        self.tables: dict[str, TableChoice] = {}
        self._predictors: dict[str, Any] = {}
        self._references: dict[str, Any] = {}
        self._accuracy_predictors: dict[str, Any] = {}

    # ------------------------------------------------------------ latency tables
    def table_choice(self, profile: str, progress: TableProgress | None = None) -> TableChoice:
        """The table ``profile`` is predicted from, chosen (and on first use built) once per search."""
        if profile not in self.tables:
            self.tables[profile] = choose_table(self.config, profile, self.space, progress)
        return self.tables[profile]

    def prepare_tables(self, progress: TableProgress | None = None) -> list[TableChoice]:
        """Choose (and build where needed) the table of every latency profile: before any net is evaluated."""
        return [self.table_choice(p, progress) for p in self.config.latency_profiles]

    def foreign_latency(self) -> list[str]:
        """The latency metrics predicted from a table that describes another host."""
        return sorted(m for c in self.tables.values() if c.foreign for m in c.metrics)

    # ------------------------------------------------------------ cheap metrics, on the controller
    def latency_predictor(self, profile: str) -> Any:
        if profile not in self._predictors:
            from latency_tables.api import load_predictor

            choice = self.table_choice(profile)
            # the name first use fitted this space's calibration under (an inline spec's own name)
            if isinstance(self.config.space, str):
                space = self.config.space
            else:
                space = (self.space or self.config.load_space()).name
            predictor = load_predictor(profile, table=choice.path, missing=self.config.latency_missing, space=space)
            if choice.source == "shipped":
                # layers measured on demand stay in memory: saved, they would land in the user copy of the shipped
                # table's name, over this host's own table
                predictor.path = None
            self._predictors[profile] = predictor
        return self._predictors[profile]

    def cheap(self, arch: Any) -> dict[str, Evaluation]:
        from searchspace.cost import count_cost

        out: dict[str, Evaluation] = {}
        cost = None
        for m in self.metrics:
            if not m.cheap:
                continue
            start = time.perf_counter()
            try:
                if m.kind == "latency":
                    value = float(self.latency_predictor(m.arg).predict_many([arch])[0])
                else:
                    cost = cost or count_cost(arch)
                    value = float(getattr(cost, m.kind))
                out[m.name] = Evaluation(value, None, time.perf_counter() - start)
            except NasError as exc:
                out[m.name] = Evaluation(None, str(exc), time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - e.g. a latency table error: the trial fails, not the search
                out[m.name] = Evaluation(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        return out

    @staticmethod
    def analytic(arch: Any, metric: str) -> Evaluation:
        """``proxy:params`` / ``proxy:macs`` counted here: sending a count to a worker cost 4x a count."""
        from searchspace.cost import count_cost

        start = time.perf_counter()
        return Evaluation(float(getattr(count_cost(arch), metric.split(":", 1)[1])), None, time.perf_counter() - start)

    # ------------------------------------------------------------ expensive metrics: their parts, then the whole
    def members(self, metric: str) -> list[str]:
        """The single-proxy metrics an expensive metric is computed from."""
        from nas import proxies

        kind, arg = metric.split(":", 1)
        if kind == "predictor":
            return [f"proxy:{m}" for m in self.accuracy_predictor(arg).proxies]
        if kind != "proxy":
            return [metric]
        return [f"proxy:{m}" for m in proxies.resolve(arg)]

    def expensive_needed(self) -> list[str]:
        """What workers compute for each net: every expensive metric's members, each once, counts excluded."""
        out: list[str] = []
        for m in self.metrics:
            if not m.cheap:
                for x in self.members(m.name):
                    if x not in out and x not in ANALYTIC:
                        out.append(x)
        return out

    def accuracy_predictor(self, name: str) -> Any:
        """A ``predictor:<name>`` model, read once per search (a file changed meanwhile does not change it)."""
        from nas.proxies.predictor import load

        if name not in self._accuracy_predictors:
            self._accuracy_predictors[name] = load(name)
        return self._accuracy_predictors[name]

    def combine(self, metric: str, parts: dict[str, Evaluation], arch: Any = None) -> Evaluation:
        members = self.members(metric)
        missing = Evaluation(None, "not evaluated")
        got = [self.analytic(arch, m) if m in ANALYTIC and arch is not None else parts.get(m, missing) for m in members]
        bad = [f"{m}: {e.error}" for m, e in zip(members, got, strict=True) if not e.ok]
        if bad:
            return Evaluation(None, "; ".join(bad))
        if metric.startswith("predictor:"):
            scores = {m.split(":", 1)[1]: float(e.value or 0.0) for m, e in zip(members, got, strict=True)}
            try:
                value = self.accuracy_predictor(metric.split(":", 1)[1]).predict(arch, scores)
            except NasError as exc:
                return Evaluation(None, str(exc))
            return Evaluation(value, None, sum(e.seconds for e in got))
        if len(members) == 1:
            return got[0]
        ref = self._references[metric]
        value = ref.combine({m.split(":", 1)[1]: float(e.value or 0.0) for m, e in zip(members, got, strict=True)})
        return Evaluation(value, None, sum(e.seconds for e in got))

    # ------------------------------------------------------------ references for ensembles
    def prepare_references(self, executor: Executor, space: Any) -> None:
        """Each ensemble's reference sample: its members' scores of random nets of ``space``."""
        from nas import proxies
        from nas.proxies.ensemble import Reference, mode_of

        for m in self.metrics:
            if m.kind != "proxy" or len(self.members(m.name)) < 2 or m.name in self._references:
                continue
            members = self.members(m.name)
            archs = proxies.reference_archs(
                space,
                space.resolution,
                None,
                seed=self.config.proxy.seed,
                size=self.config.proxy.reference_size,
            )
            results = self.evaluate_all(executor, archs, members)
            scores = {x.split(":", 1)[1]: [] for x in members}  # type: dict[str, list[float]]
            for a in archs:
                for x in members:
                    e = results[(a.arch_id, x)]
                    if e.ok:
                        # mypy: e.ok was checked: value is not None
                        scores[x.split(":", 1)[1]].append(float(e.value))  # type: ignore[arg-type]
            mode = mode_of(proxies.canonical(m.arg))
            self._references[m.name] = Reference.fit(scores, f"{len(archs)} random nets of the space", mode)

    def evaluate_all(
        self, executor: Executor, archs: list[Any], metrics: list[str]
    ) -> dict[tuple[str, str], Evaluation]:
        """Expensive metrics of many nets through cache and executor (used for reference samples)."""
        out = {(a.arch_id, x): self.analytic(a, x) for a in archs for x in metrics if x in ANALYTIC}
        metrics = [x for x in metrics if x not in ANALYTIC]
        wanted = [(a.arch_id, x, self.settings.for_metric(x)) for a in archs for x in metrics]
        cached = self.cache.get_many(wanted)
        out |= {(k[0], k[1]): v for k, v in cached.items()}
        for a in archs:
            miss = [x for x in metrics if (a.arch_id, x) not in out]
            if miss:
                executor.submit(Job(("ref", a.arch_id), a.encode(), miss, self.settings))
        while executor.pending():
            for job, res in executor.poll(0.2):
                # mypy: reference jobs are keyed ('ref', arch_id); Job.key is typed Hashable
                arch_id = job.key[1]  # type: ignore[index]
                for x, e in res.items():
                    out[(arch_id, x)] = e
                    if e.error is None or not e.error.startswith(TRANSIENT):
                        self.cache.put(arch_id, x, self.settings.for_metric(x), e)
        return out
