"""The search loop: one controller owns an Optuna study, workers evaluate, nothing is lost.

The controller asks Optuna for candidates (the space's parameters via
:func:`nas.search_params.decide`), computes cheap metrics itself (params, MACs,
activations, table latency), looks expensive ones up in the evaluation
cache, sends what is missing to the executor (up to ``workers`` nets in
flight) and tells Optuna each result as it arrives: objective values, and
constraint violations for the sampler's ``constraints_func``.

Durability (:mod:`nas.study`): the sampler works on an in-memory copy of
the study, each finished trial is copied to the stored study as it is told,
trials in flight are logged and requeued if the controller dies, and a lease
keeps a second controller off the study. What the run produces (trial
records, the front, the hypervolume history and its reference point) is
:mod:`nas.results`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas import search_params
from nas.config import SearchConfig
from nas.errors import NasError, SearchError
from nas.evaluate import EvalSettings
from nas.executors import TRANSIENT, Executor, Job, default_executor
from nas.pareto import to_minimize
from nas.results import Front, SearchProgress, SearchResult, TrialRecord, reference_point, summarize, trial_record
from nas.store import Evaluation, EvaluationCache
from nas.strategies import RECORD_ATTR
from nas.study import LEASE_SECONDS, StudySession, engine_kwargs

# the loop plus the result, error and lease names its callers use with it
__all__ = ["ANALYTIC", "LEASE_SECONDS", "InFlight", "Search", "SearchError", "SearchResult", "TrialRecord"]


# proxies that are analytic counts: computed by the controller, never sent to a worker
ANALYTIC = frozenset({"proxy:params", "proxy:macs"})


@dataclass
class InFlight:
    """A trial the controller asked for and has not told yet: its net and the metrics known so far."""

    trial: Any  # optuna.Trial of the working study
    arch: Any  # searchspace Architecture
    parts: dict[str, Evaluation]
    log: str | None = None  # token of its in-flight row, when something was sent to a worker


def _settings(config: SearchConfig) -> EvalSettings:
    return EvalSettings(
        dataset=config.dataset.model_dump(mode="json"),
        proxy_batch=config.proxy.batch_size,
        proxy_seed=config.proxy.seed,
        training=config.training.model_dump(mode="json") if config.training else None,
        train_seed=config.seed,
        threads=(config.training.threads or 1) if config.training else 1,
    )


class Search:
    """Run (or resume) the search a config describes, against a study in ``storage``."""

    def __init__(
        self,
        config: SearchConfig,
        storage: str,
        *,
        executor: Executor | None = None,
        progress: Callable[[SearchProgress], None] | None = None,
        on_trial: Callable[[TrialRecord, SearchProgress], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> None:
        """``on_trial`` sees every finished trial (after it is in the study); ``stop`` returning True ends the
        run early: trials in flight are cancelled (and requeued if the study is resumed), finished ones kept."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.config = config
        self.storage_url = storage
        self.space = config.load_space()
        self.executor = executor
        self.progress = progress
        self.on_trial = on_trial
        self.stop = stop
        self.stopped = False
        self.settings = _settings(config)
        self.metrics = config.metrics
        self._predictors: dict[str, Any] = {}
        self._references: dict[str, Any] = {}
        self._accuracy_predictors: dict[str, Any] = {}
        self._storage = optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs(storage))
        self._session = StudySession(config, self._storage, storage)
        self.cache = EvaluationCache(self._storage.engine)
        self._told: list[Any] = []  # trials persisted since the last report, for on_trial

    # ------------------------------------------------------------ metrics
    def _predictor(self, profile: str) -> Any:
        if profile not in self._predictors:
            from latency_tables.api import load_predictor

            space = self.config.space if isinstance(self.config.space, str) else None
            self._predictors[profile] = load_predictor(profile, missing=self.config.latency_missing, space=space)
        return self._predictors[profile]

    def _cheap(self, arch: Any) -> dict[str, Evaluation]:
        from searchspace.cost import count_cost

        out: dict[str, Evaluation] = {}
        cost = None
        for m in self.metrics:
            if not m.cheap:
                continue
            start = time.perf_counter()
            try:
                if m.kind == "latency":
                    value = float(self._predictor(m.arg).predict_many([arch])[0])
                else:
                    cost = cost or count_cost(arch)
                    value = float(getattr(cost, m.kind))
                out[m.name] = Evaluation(value, None, time.perf_counter() - start)
            except NasError as exc:
                out[m.name] = Evaluation(None, str(exc), time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - e.g. a latency table error: the trial fails, not the search
                out[m.name] = Evaluation(None, f"{type(exc).__name__}: {exc}", time.perf_counter() - start)
        return out

    def _members(self, metric: str) -> list[str]:
        """The single-proxy metrics an expensive metric is computed from."""
        from nas import proxies

        kind, arg = metric.split(":", 1)
        if kind == "predictor":
            return [f"proxy:{m}" for m in self._accuracy_predictor(arg).proxies]
        if kind != "proxy":
            return [metric]
        return [f"proxy:{m}" for m in proxies.resolve(arg)]

    def _expensive_needed(self) -> list[str]:
        out: list[str] = []
        for m in self.metrics:
            if not m.cheap:
                for x in self._members(m.name):
                    if x not in out and x not in ANALYTIC:
                        out.append(x)
        return out

    def _accuracy_predictor(self, name: str) -> Any:
        """A ``predictor:<name>`` model, read once per search (a file changed meanwhile does not change it)."""
        from nas.proxies.predictor import load

        if name not in self._accuracy_predictors:
            self._accuracy_predictors[name] = load(name)
        return self._accuracy_predictors[name]

    @staticmethod
    def _analytic(arch: Any, metric: str) -> Evaluation:
        """``proxy:params`` / ``proxy:macs`` counted here: sending a count to a worker cost 4x a count."""
        from searchspace.cost import count_cost

        start = time.perf_counter()
        return Evaluation(float(getattr(count_cost(arch), metric.split(":", 1)[1])), None, time.perf_counter() - start)

    def _combine(self, metric: str, parts: dict[str, Evaluation], arch: Any = None) -> Evaluation:
        members = self._members(metric)
        missing = Evaluation(None, "not evaluated")
        got = [
            self._analytic(arch, m) if m in ANALYTIC and arch is not None else parts.get(m, missing) for m in members
        ]
        bad = [f"{m}: {e.error}" for m, e in zip(members, got, strict=True) if not e.ok]
        if bad:
            return Evaluation(None, "; ".join(bad))
        if metric.startswith("predictor:"):
            scores = {m.split(":", 1)[1]: float(e.value or 0.0) for m, e in zip(members, got, strict=True)}
            try:
                value = self._accuracy_predictor(metric.split(":", 1)[1]).predict(arch, scores)
            except NasError as exc:
                return Evaluation(None, str(exc))
            return Evaluation(value, None, sum(e.seconds for e in got))
        if len(members) == 1:
            return got[0]
        ref = self._references[metric]
        value = ref.combine({m.split(":", 1)[1]: float(e.value or 0.0) for m, e in zip(members, got, strict=True)})
        return Evaluation(value, None, sum(e.seconds for e in got))

    # ------------------------------------------------------------ references for ensembles
    def _prepare_references(self, executor: Executor) -> None:
        from nas import proxies
        from nas.proxies.ensemble import Reference, mode_of

        for m in self.metrics:
            if m.kind != "proxy" or len(self._members(m.name)) < 2 or m.name in self._references:
                continue
            members = self._members(m.name)
            archs = proxies.reference_archs(
                self.space,
                self.space.resolution,
                None,
                seed=self.config.proxy.seed,
                size=self.config.proxy.reference_size,
            )
            results = self._evaluate_all(executor, archs, members)
            scores = {x.split(":", 1)[1]: [] for x in members}  # type: dict[str, list[float]]
            for a in archs:
                for x in members:
                    e = results[(a.arch_id, x)]
                    if e.ok:
                        # mypy: e.ok was checked: value is not None
                        scores[x.split(":", 1)[1]].append(float(e.value))  # type: ignore[arg-type]
            mode = mode_of(proxies.canonical(m.arg))
            self._references[m.name] = Reference.fit(scores, f"{len(archs)} random nets of the space", mode)

    def _evaluate_all(
        self, executor: Executor, archs: list[Any], metrics: list[str]
    ) -> dict[tuple[str, str], Evaluation]:
        """Expensive metrics of many nets through cache and executor (used for reference samples)."""
        out = {(a.arch_id, x): self._analytic(a, x) for a in archs for x in metrics if x in ANALYTIC}
        metrics = [x for x in metrics if x not in ANALYTIC]
        wanted = [(a.arch_id, x, self.settings.for_metric(x)) for a in archs for x in metrics]
        cached = self.cache.get_many(wanted)
        out |= {(k[0], k[1]): v for k, v in cached.items()}
        todo: dict[str, list[str]] = {}
        for a in archs:
            miss = [x for x in metrics if (a.arch_id, x) not in out]
            if miss:
                todo[a.arch_id] = miss
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

    # ------------------------------------------------------------ the loop
    def run(self, resume: bool = False) -> SearchResult:
        from optuna.trial import TrialState

        session = self._session
        durable, study = session.open(resume)
        session.take_lease()
        notes = session.start(study)
        writer = session.writer
        if not resume and self.config.seed_known:
            n = session.seed_known(study, self.space)
            notes.append(f"{n} known net(s) of the space enqueued first")
        executor = self.executor or default_executor(self.config)
        own_executor = self.executor is None
        budget = self.config.budget
        elapsed_before = float(durable.user_attrs.get("hwnas_elapsed", 0.0))
        start = time.monotonic()
        reference = self._hv_reference(study)
        expensive = self._expensive_needed()
        in_flight: dict[int, InFlight] = {}
        controller_time = 0.0
        told = 0
        tracker = Front.of_study(study, self.config.directions, [o.metric for o in self.config.objectives])
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))

        def time_left() -> bool:
            return budget.seconds is None or elapsed_before + time.monotonic() - start < budget.seconds

        def report() -> None:
            if self.progress is None and self.on_trial is None:
                return
            snapshot = tracker.progress(
                done, budget.trials, len(in_flight), elapsed_before + time.monotonic() - start, reference
            )
            if self.progress is not None:
                self.progress(snapshot)
            if self.on_trial is not None:
                # queued behind the trial's own durable write, so a listener never sees a trial the study lacks
                for frozen in self._told:
                    writer.put(functools.partial(self.on_trial, trial_record(frozen), snapshot))
            self._told.clear()

        try:
            self._prepare_references(executor)
            while True:
                if self.stop is not None and self.stop():
                    self.stopped = True
                    notes.append(f"stopped on request with {len(in_flight)} trial(s) in flight")
                    break
                t0 = time.perf_counter()
                while (
                    len(in_flight) < executor.workers
                    and time_left()
                    and (budget.trials is None or done + len(in_flight) < budget.trials)
                ):
                    trial = study.ask()
                    # NSGA-II gives an enqueued (fully fixed) trial no generation unless relative sampling runs
                    _ = trial.relative_params
                    try:
                        arch = search_params.decide(self.space, trial.suggest_categorical)
                    except Exception as exc:  # noqa: BLE001 - a bad enqueued param set: fail the trial, go on
                        trial.set_user_attr(RECORD_ATTR, {"error": f"params: {exc}"})
                        study.tell(trial, state=TrialState.FAIL)
                        self._persist(study, trial)
                        done += 1
                        report()
                        continue
                    parts = self._cheap(arch)
                    wanted = [(arch.arch_id, x, self.settings.for_metric(x)) for x in expensive]
                    for k, v in self.cache.get_many(wanted).items():
                        parts[k[1]] = v
                    missing = [x for x in expensive if x not in parts]
                    entry = InFlight(trial, arch, parts)
                    in_flight[trial.number] = entry
                    if missing:
                        entry.log = session.log_inflight(dict(trial.params))
                        executor.submit(Job(trial.number, arch.encode(), missing, self.settings))
                    else:
                        reference = self._finish(study, in_flight.pop(trial.number), reference, tracker)
                        done += 1
                        told += 1
                        report()
                controller_time += time.perf_counter() - t0
                if not in_flight:
                    break
                for job, res in executor.poll(0.2):
                    t0 = time.perf_counter()
                    # mypy: trial jobs are keyed by trial number; Job.key is typed Hashable
                    entry = in_flight.pop(job.key)  # type: ignore[call-overload]
                    arch_id = entry.arch.arch_id
                    for x, e in res.items():
                        entry.parts[x] = e
                        if e.error is None or not e.error.startswith(TRANSIENT):
                            digest = self.settings.for_metric(x)
                            writer.put(functools.partial(self.cache.put, arch_id, x, digest, e))
                    reference = self._finish(study, entry, reference, tracker)
                    done += 1
                    told += 1
                    controller_time += time.perf_counter() - t0
                    report()
                session.heartbeat(elapsed_before + time.monotonic() - start)
        except KeyboardInterrupt:
            notes.append("interrupted: trials in flight are requeued on resume")
            raise
        finally:
            try:
                session.close()
            finally:
                session.release(elapsed_before + time.monotonic() - start)
                if own_executor:
                    executor.close()
        result = self.results(study, notes)
        result.controller_seconds_per_trial = controller_time / told if told else None
        return result

    def _persist(self, study: Any, trial: Any, log_token: str | None = None) -> None:
        """Copy a finished trial into the durable study (on the writer); keep it for on_trial."""
        frozen = self._session.persist(study, trial, log_token)
        if self.on_trial is not None:
            self._told.append(frozen)

    def _finish(self, study: Any, entry: InFlight, reference: list[float] | None, tracker: Front) -> list[float] | None:
        from optuna.trial import TrialState

        trial, parts, arch = entry.trial, entry.parts, entry.arch
        values: dict[str, Evaluation] = {}
        for m in self.metrics:
            values[m.name] = parts[m.name] if m.cheap else self._combine(m.name, parts, arch)
        errors = [f"{k}: {v.error}" for k, v in values.items() if not v.ok]
        record: dict[str, Any] = {
            "arch": arch.encode(),
            "arch_id": arch.arch_id,
            "metrics": {k: v.value for k, v in values.items()},
            "cached": sorted(k for k, v in parts.items() if v.cached),
        }
        nodes = sorted({v.node for v in parts.values() if v.node is not None and not v.cached})
        if nodes:  # one Ray task evaluates a trial's net, so one node
            record["node"] = nodes[0]
        if errors:
            record["error"] = "; ".join(errors)
            trial.set_user_attr(RECORD_ATTR, record)
            study.tell(trial, state=TrialState.FAIL)
            self._persist(study, trial, entry.log)
            return reference
        # mypy: every metric is ok here (errors returned above): values are not None
        record["violations"] = [
            c.violation(float(values[c.metric].value))  # type: ignore[arg-type]
            for c in self.config.constraints
        ]
        trial.set_user_attr(RECORD_ATTR, record)
        for i, v in enumerate(record["violations"]):
            trial.set_constraint(f"c{i}", v)  # what Optuna 5's samplers read
        # mypy: every metric is ok here (errors returned above): values are not None
        objective_values = [float(values[o.metric].value) for o in self.config.objectives]  # type: ignore[arg-type]
        study.tell(trial, objective_values)
        self._persist(study, trial, entry.log)
        if all(v <= 0 for v in record["violations"]):
            tracker.add(objective_values)
        if reference is None:
            reference = self._hv_reference(study)
        return reference

    def _hv_reference(self, study: Any) -> list[float] | None:
        """The config's reference point, else the one stored with the study, else one fixed (and stored) now."""
        if self.config.hv_reference is not None:
            return list(to_minimize([self.config.hv_reference], self.config.directions)[0])
        durable = self._session.durable
        stored = durable.user_attrs.get("hwnas_hv_reference") if durable is not None else None
        if stored is not None:
            return list(stored)
        ref = reference_point(study, self.config.directions, self.config.budget.trials)
        if ref is None:
            return None
        if durable is not None:
            durable.set_user_attr("hwnas_hv_reference", ref)
        return ref

    # ------------------------------------------------------------ results
    def read(self) -> SearchResult | None:
        """The stored study's results, running nothing and taking no lease (None before the study exists)."""
        durable = self._session.load()
        return None if durable is None else self.results(durable)

    def results(self, study: Any, notes: list[str] | None = None) -> SearchResult:
        reference = self._hv_reference(study)
        records, front, history = summarize(study.get_trials(deepcopy=False), self.config.directions, reference)
        durable = self._session.durable
        return SearchResult(
            study=durable.study_name if durable is not None else study.study_name,
            objectives=[{"metric": o.metric, "direction": o.direction} for o in self.config.objectives],
            trials=records,
            front=front,
            hv_reference=reference,
            hv_history=history,
            elapsed=float((durable or study).user_attrs.get("hwnas_elapsed", 0.0)),
            notes=list(notes or []),
        )
