"""The search loop: one controller owns an Optuna study, workers evaluate, nothing is lost.

The controller asks Optuna for candidates (the space's parameters via
:func:`nas.search_params.decide`), computes cheap metrics itself (params, MACs,
activations, table latency: :mod:`nas.objectives`, which also puts ensembles
and predictors together from their proxies), looks expensive ones up in the evaluation
cache, sends what is missing to the executor (up to ``workers`` nets in
flight) and tells Optuna each result as it arrives: objective values, and
constraint violations for the sampler's ``constraints_func``.

Durability (:mod:`nas.study`): the sampler works on an in-memory copy of
the study, each finished trial is copied to the stored study as it is told,
trials in flight are logged and requeued if the controller dies, and a lease
keeps a second controller off the study. What the run produces (trial
records, the front, the hypervolume history and its reference point) is
:mod:`nas.results`.

Before the first net is evaluated (and before Ray starts), the controller
chooses the latency table of every latency profile, building this host's on
first use (:mod:`nas.table_choice`); the choices are kept with the study, and
each trial records the latency metrics it got from a table of another host.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

from latency_tables.portable import abandonable_waits
from nas import search_params
from nas.config import SearchConfig
from nas.errors import SearchError
from nas.evaluate import EvalSettings
from nas.executors import TRANSIENT, Executor, Job, default_executor
from nas.objectives import ANALYTIC, Objectives
from nas.pareto import to_minimize
from nas.results import Front, SearchProgress, SearchResult, TrialRecord, reference_point, summarize, trial_record
from nas.store import Evaluation, EvaluationCache
from nas.strategies import RECORD_ATTR
from nas.study import BEAT_SECONDS, LEASE_SECONDS, StudySession, engine_kwargs
from nas.table_choice import STUDY_ATTR, TableEvent

#: the rank: formula a study's trials were scored by (nas.proxies.ensemble.RANK_FORMULA)
FORMULA_ATTR = "hwnas_rank_formula"
DEFAULT_ATTR = "hwnas_default_proxy"  # what proxy:default stood for when the study's trials were scored
#: the note every run with a proxy:default objective carries, so a result (and a service job) says what it meant
DEFAULT_NOTE = "proxy:default stands for {} (nas/proxies/default.json)"


def default_proxy_in(notes: Sequence[str]) -> str | None:
    """What proxy:default stood for in a run, from its notes (:data:`DEFAULT_NOTE`); None where none says."""
    head, tail = DEFAULT_NOTE.split("{}")
    for note in notes:
        if note.startswith(head) and note.endswith(tail):
            return note[len(head) : len(note) - len(tail)]
    return None


# the loop plus the result, error and lease names its callers use with it
__all__ = ["ANALYTIC", "LEASE_SECONDS", "InFlight", "Search", "SearchError", "SearchResult", "TrialRecord"]


@dataclass
class InFlight:
    """A trial the controller asked for and has not told yet: its net and the metrics known so far."""

    trial: Any  # optuna.Trial of the working study
    arch: Any  # searchspace Architecture
    parts: dict[str, Evaluation]
    log: str | None = None  # token of its in-flight row, when something was sent to a worker


class _Stopped(BaseException):
    """Raised through a table build, or a lock wait, when the search is asked to stop (what it interrupted
    resumes next time). Not an Exception: the handlers that turn a metric's error into a failed trial must let
    it through."""


def _settings(config: SearchConfig) -> EvalSettings:
    return EvalSettings(
        dataset=config.dataset.model_dump(mode="json"),
        proxy_batch=config.proxy.batch_size,
        proxy_seed=config.proxy.seed,
        training=config.training.digest_dump() if config.training else None,
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
        on_table: Callable[[TableEvent], None] | None = None,
    ) -> None:
        """``on_trial`` sees every finished trial (after it is in the study); ``stop`` returning True ends the
        run early: trials in flight are cancelled (and requeued if the study is resumed), finished ones kept.
        ``on_table`` sees the progress of choosing (and building) the latency tables, before any trial."""
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.config = config
        self.storage_url = storage
        self.space = config.load_space()
        self.executor = executor
        self.progress = progress
        self.on_trial = on_trial
        self.stop = stop
        self.on_table = on_table
        self.stopped = False
        self.settings = _settings(config)
        self.metrics = config.metrics
        self._storage = optuna.storages.RDBStorage(storage, engine_kwargs=engine_kwargs(storage))
        self._session = StudySession(config, self._storage, storage)
        self.cache = EvaluationCache(self._storage.engine)
        self.objectives = Objectives(config, self.settings, self.cache, self.space)
        self._told: list[Any] = []  # trials persisted since the last report, for on_trial

    def _expensive_needed(self) -> list[str]:
        return self.objectives.expensive_needed()

    # ------------------------------------------------------------ the loop
    def run(self, resume: bool = False) -> SearchResult:
        from optuna.trial import TrialState

        session = self._session
        durable, study = session.open(resume)
        session.take_lease()
        elapsed_before = float(durable.user_attrs.get("hwnas_elapsed", 0.0))
        try:
            table_notes = self._prepare_tables()
        except _Stopped:
            self.stopped = True
            session.release(elapsed_before)
            return self.results(study, ["stopped on request while building a latency table (resumed next time)"])
        except BaseException:
            session.release(elapsed_before)
            raise
        notes = session.start(study) + table_notes + self._formula_changes(durable) + self._default_changes(durable)
        writer = session.writer
        if not resume and self.config.seed_known:
            n = session.seed_known(study, self.space)
            notes.append(f"{n} known net(s) of the space enqueued first")
        executor = self.executor or default_executor(self.config)
        own_executor = self.executor is None
        budget = self.config.budget
        start = time.monotonic()
        reference = self._hv_reference(study)
        expensive = self.objectives.expensive_needed()
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
            self.objectives.prepare_references(executor, self.space)
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
                    try:
                        # a layer the table lacks is measured here, after the host's measurement lock: a stop ends
                        # that wait, and the trial, logged in flight, runs first when the search resumes
                        with self._stoppable():
                            parts = self.objectives.cheap(arch)
                    except _Stopped:
                        in_flight[trial.number] = InFlight(trial, arch, {}, session.log_inflight(dict(trial.params)))
                        break
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

    def _stop_check(self) -> None:
        if self.stop is not None and self.stop():
            raise _Stopped()

    def _stoppable(self) -> AbstractContextManager[None]:
        """Where the search may wait for the host's measurement lock (a table build, a missing layer): a stop
        ends the wait (:class:`_Stopped`) instead of waiting out another job's measurement or training run."""
        return nullcontext() if self.stop is None else abandonable_waits(self._stop_check)

    def _prepare_tables(self) -> list[str]:
        """Choose (and on first use build) every latency profile's table, keep the choices with the study;
        notes on them. The lease is renewed meanwhile: a first build takes a minute or two."""
        import threading

        if not self.config.latency_profiles:
            return []
        session = self._session
        done = threading.Event()

        def beat() -> None:
            while not done.wait(BEAT_SECONDS):
                try:
                    session.beat()
                except Exception:  # noqa: BLE001 - a missed beat is retried; the lease has slack
                    continue

        def progress(event: TableEvent) -> None:
            self._stop_check()
            if self.on_table is not None:
                self.on_table(event)

        beater = threading.Thread(target=beat, name="hwnas-table-lease", daemon=True)
        beater.start()
        try:
            # a build may first wait for the host's measurement lock (another job measuring or training) for as
            # long as that takes: a stop ends the wait too
            with self._stoppable():
                choices = self.objectives.prepare_tables(progress)
        finally:
            done.set()
            beater.join(timeout=5)
        durable = session.durable
        notes = [c.summary for c in choices] + self._table_changes(durable, choices)
        durable.set_user_attr(
            STUDY_ATTR, {c.profile: c.as_dict() | {"host": self._host_fingerprint()} for c in choices}
        )
        return notes

    @staticmethod
    def _host_fingerprint() -> str:
        from latency_tables.profiles import HostInfo

        return HostInfo.current().fingerprint()

    @staticmethod
    def _recorded_change(durable: Any, attr: str, now: Any) -> tuple[int, Any] | None:
        """Record ``now`` under ``attr`` with the study; (trials finished before, what was recorded) where a
        resumed study's earlier trials were scored under something else, else None."""
        before = durable.user_attrs.get(attr)
        finished = sum(1 for t in durable.get_trials(deepcopy=False) if t.state.is_finished())
        durable.set_user_attr(attr, now)
        return None if not finished or before == now else (finished, before)

    def _formula_changes(self, durable: Any) -> list[str]:
        """A note where a resumed study's rank: objectives were scored by an earlier formula than this run's
        (their values do not compare); the formula this run uses is recorded with the study."""
        from nas.proxies.ensemble import RANK_FORMULA, RANK_PREFIX

        ranked = [m.name for m in self.metrics if m.name.startswith(f"proxy:{RANK_PREFIX}")]
        change = self._recorded_change(durable, FORMULA_ATTR, RANK_FORMULA) if ranked else None
        if change is None:
            return []
        finished, before = change
        return [
            f"{', '.join(ranked)} of the {finished} trial(s) finished before this run were scored by an earlier "
            f"rank formula ({before or 'log normal CDF'}) than this run's ({RANK_FORMULA}): the two may not be "
            "comparable"
        ]

    def _default_changes(self, durable: Any) -> list[str]:
        """What proxy:default stands for in this run (:data:`DEFAULT_NOTE`), and a note where a resumed study's
        proxy:default was scored by another proxy than it stands for now (nas/proxies/default.json changed
        between the runs: MAC counts and MeCo scores in one column do not compare); what it stands for in this
        run is recorded with the study."""
        from nas.proxies import default_proxy

        if not any(m.name == "proxy:default" for m in self.metrics):
            return []
        now = default_proxy()
        change = self._recorded_change(durable, DEFAULT_ATTR, now)
        if change is None:
            return [DEFAULT_NOTE.format(now)]
        finished, before = change
        return [
            DEFAULT_NOTE.format(now),
            f"proxy:default of the {finished} trial(s) finished before this run was "
            f"{before or 'an earlier default (not recorded)'}; from now on it is {now}: the two are not comparable "
            f"(start a new study, or name the proxy, e.g. proxy:{now}, to keep one scale)",
        ]

    def _table_changes(self, durable: Any, choices: list[Any]) -> list[str]:
        """Notes where a resumed study's earlier trials were predicted from another table (or on another host,
        or before tables were recorded) than the trials of this run: their latencies may not be comparable."""
        finished = sum(1 for t in durable.get_trials(deepcopy=False) if t.state.is_finished())
        if not finished:
            return []
        before = durable.user_attrs.get(STUDY_ATTR) or {}
        here = self._host_fingerprint()
        notes = []
        for c in choices:
            old = before.get(c.profile)
            if old is None:
                was = "a table this study did not record (it predates the record)"
            elif (old.get("table"), old.get("path"), old.get("host", here)) != (c.table, c.path, here):
                was = f"table {old.get('table')} ({old.get('path')})" + (
                    " on another host" if old.get("host", here) != here else ""
                )
            else:
                continue
            notes.append(
                f"latency:{c.profile} of the {finished} trial(s) finished before this run came from {was}; from now "
                f"on it comes from {c.table} ({c.path}): the two may not be comparable"
            )
        return notes

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
            values[m.name] = parts[m.name] if m.cheap else self.objectives.combine(m.name, parts, arch)
        errors = [f"{k}: {v.error}" for k, v in values.items() if not v.ok]
        record: dict[str, Any] = {
            "arch": arch.encode(),
            "arch_id": arch.arch_id,
            "metrics": {k: v.value for k, v in values.items()},
            "cached": sorted(k for k, v in parts.items() if v.cached),
        }
        foreign = self.objectives.foreign_latency()
        if foreign:  # these metrics' values describe another host
            record["latency_foreign"] = foreign
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
            latency_tables=dict((durable or study).user_attrs.get(STUDY_ATTR, {})),
        )
