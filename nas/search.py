"""The search loop: one controller owns an Optuna study, workers evaluate, nothing is lost.

The controller asks Optuna for candidates (the space's parameters via
:func:`nas.encoding.decide`), computes cheap metrics itself (params, MACs,
activations, table latency), looks expensive ones up in the evaluation
cache, sends what is missing to the executor (up to ``workers`` nets in
flight) and tells Optuna each result as it arrives: objective values, and
constraint violations for the sampler's ``constraints_func``.

Durability: the study lives in the storage (any SQLAlchemy URL). The
sampler works on an in-memory copy (Optuna writes each suggested parameter
to an RDB in its own transaction, far too slow for a controller), and each
finished trial is copied to the stored study in one transaction as it is
told; the params of trials in flight are logged in ``hwnas_inflight``. A
controller that starts on a study a killed one left reloads the finished
trials and requeues the logged ones, so completed evaluations are kept, the
interrupted ones run again first, and the budget counts what was done. One
controller at a time: a lease in the study's attributes (pid, host,
heartbeat) refuses a second live one.

Hypervolume is measured in the objectives' own units, all turned into
minimisation, against a reference point fixed once per study: the
config's ``hv_reference``, or else the worst value of each objective among
the first 10 feasible trials plus 10% of their range (stored with the study,
so a resumed search and its history use the same one). Nets worse than the
reference in any objective add nothing.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nas import encoding
from nas.config import SearchConfig
from nas.errors import NasError
from nas.evaluate import EvalSettings
from nas.executors import TRANSIENT, Executor, Job, SerialExecutor
from nas.pareto import hypervolume, non_dominated, to_minimize
from nas.store import Evaluation, EvaluationCache
from nas.strategies import RECORD_ATTR, make_sampler, violations

REFERENCE_TRIALS = 10
LEASE_SECONDS = 30.0


# proxies that are analytic counts: computed by the controller, never sent to a worker
ANALYTIC = frozenset({"proxy:params", "proxy:macs"})


class SearchError(NasError):
    """The search cannot start or continue (study exists, another controller runs it, ...)."""


@dataclass
class TrialRecord:
    number: int
    state: str
    arch: str | None
    arch_id: str | None
    params: dict[str, Any]
    metrics: dict[str, float | None]
    objectives: list[float] | None
    violations: list[float]
    feasible: bool
    error: str | None
    seconds: float
    on_front: bool = False
    node: str | None = None  # the Ray node that evaluated the trial's net (None: the controller or the cache)


@dataclass
class Progress:
    done: int
    budget_trials: int | None
    in_flight: int
    elapsed: float
    best: dict[str, float]
    front_size: int
    hypervolume: float | None


@dataclass
class SearchResult:
    study: str
    objectives: list[dict[str, str]]
    trials: list[TrialRecord]
    front: list[int]
    hv_reference: list[float] | None
    hv_history: list[tuple[int, float]]
    elapsed: float
    evaluations_cached: int = 0
    controller_seconds_per_trial: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=float)

    def to_csv(self) -> str:
        metric_names = sorted({m for t in self.trials for m in t.metrics})
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["number", "state", "arch_id", "feasible", "on_front", *metric_names, "error", "arch"])
        for t in self.trials:
            writer.writerow([t.number, t.state, t.arch_id, t.feasible, t.on_front,
                             *[t.metrics.get(m) for m in metric_names], t.error or "", t.arch or ""])
        return buf.getvalue()


# ---------------------------------------------------------------------- helpers
def _settings(config: SearchConfig) -> EvalSettings:
    return EvalSettings(
        dataset=config.dataset.model_dump(mode="json"), proxy_batch=config.proxy.batch_size,
        proxy_seed=config.proxy.seed, training=config.training.model_dump(mode="json") if config.training else None,
        train_seed=config.seed, threads=(config.training.threads or 1) if config.training else 1,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Writer:
    """Database writes off the controller's critical path, in order, on one background thread.

    What it writes is recoverable if the process dies first: a trial whose
    copy to the durable study is lost still has its in-flight row (removed
    only after the copy), so it is requeued, and its metrics come back from
    the evaluation cache.
    """

    def __init__(self) -> None:
        import queue
        import threading

        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="hwnas-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while True:
            job = self._queue.get()
            try:
                if job is None:
                    return
                if self._error is None:
                    job()
            except BaseException as exc:  # noqa: BLE001 - surfaced by flush()
                self._error = exc
            finally:
                self._queue.task_done()

    def put(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            self.flush()
        self._queue.put(job)

    def flush(self) -> None:
        self._queue.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise SearchError(f"writing to the study's database failed: {error}") from error

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._queue.put(None)
            self._thread.join(timeout=30)


class _FrontTracker:
    """The feasible front, kept incrementally (a new point is checked against the front, not every trial)."""

    def __init__(self, directions: list[str], names: list[str]) -> None:
        self.directions = directions
        self.names = names
        self.front = np.zeros((0, len(directions)))
        self.best = [float("inf")] * len(directions)

    def add(self, values: list[float]) -> None:
        p = to_minimize([values], self.directions)[0]
        self.best = [min(b, v) for b, v in zip(self.best, p, strict=True)]
        if any(np.all(q <= p) and np.any(q < p) for q in self.front):
            return
        keep = [not (np.all(p <= q) and np.any(p < q)) for q in self.front]
        self.front = np.vstack([self.front[np.asarray(keep, dtype=bool)] if len(self.front) else self.front, p])

    def progress(self, done: int, budget: int | None, in_flight: int, elapsed: float,
                 reference: list[float] | None) -> Progress:
        signs = [-1.0 if d == "maximize" else 1.0 for d in self.directions]
        best = {n: s * b for n, s, b in zip(self.names, signs, self.best, strict=True) if np.isfinite(b)}
        hv = hypervolume(self.front, reference) if reference is not None and len(self.front) else None
        return Progress(done, budget, in_flight, elapsed, best, len(self.front), hv)


class Search:
    """Run (or resume) the search a config describes, against a study in ``storage``."""

    def __init__(self, config: SearchConfig, storage: str, *, executor: Executor | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 on_trial: Callable[[TrialRecord, Progress], None] | None = None,
                 stop: Callable[[], bool] | None = None) -> None:
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
        self._lease = {"token": uuid.uuid4().hex, "pid": os.getpid(), "host": socket.gethostname()}
        self._storage = optuna.storages.RDBStorage(storage, engine_kwargs=self._engine_kwargs(storage))
        self.cache = EvaluationCache(self._storage.engine)
        self._durable: Any = None
        self._writer: Any = None
        self._inflight_log: Any = None
        self._told: list[Any] = []  # trials persisted since the last report, for on_trial

    @staticmethod
    def _engine_kwargs(url: str) -> dict[str, Any]:
        if url.startswith("sqlite"):
            return {"connect_args": {"timeout": 30}}
        return {"pool_pre_ping": True}

    # ------------------------------------------------------------ study
    def _open_studies(self, resume: bool) -> tuple[Any, Any]:
        """(durable study in the storage, in-memory working study holding the same finished trials).

        Optuna writes every suggest to an RDB storage as its own transaction
        (about 4 ms each on SQLite, 20 per net here), which would make the
        controller slow. So the sampler works on an in-memory study, and each
        finished trial (params, values, constraints, attributes) is copied to
        the durable study in one transaction when it is told; the params of
        trials in flight are logged in ``hwnas_inflight``. On resume the
        durable trials are loaded back, and logged in-flight params requeued.
        """
        import optuna
        from optuna.trial import TrialState

        name = self.config.study_name()
        existing = {s.study_name for s in optuna.get_all_study_summaries(self._storage, include_best_trial=False)}
        if name in existing and not resume:
            raise SearchError(f"study {name!r} already exists in {self._redacted()}; resume it (--resume) or give "
                              "the config another name")
        if name not in existing and resume:
            raise SearchError(f"no study {name!r} in {self._redacted()} to resume")
        durable = optuna.create_study(study_name=name, storage=self._storage,
                                      directions=self.config.directions,  # type: ignore[arg-type]
                                      load_if_exists=True)
        stored = durable.user_attrs.get("hwnas_config")
        if stored is None:
            durable.set_user_attr("hwnas_config", self.config.model_dump(mode="json"))
        elif SearchConfig.model_validate(stored).identity() != self.config.identity():
            raise SearchError(f"study {name!r} was started with a different config (only budget, workers, "
                              "eval_timeout, retries and ray_address may change on resume)")
        finished = sorted(durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)),
                          key=lambda t: t.number)
        work = optuna.create_study(storage=optuna.storages.InMemoryStorage(),
                                   directions=self.config.directions,  # type: ignore[arg-type]
                                   sampler=make_sampler(self.config, len(finished)))
        work.add_trials(finished)
        return durable, work

    def _redacted(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.storage_url).render_as_string(hide_password=True)

    def _take_lease(self, study: Any) -> None:
        lease = study.user_attrs.get("hwnas_controller")
        if lease and lease.get("token") != self._lease["token"]:
            fresh = time.time() - float(lease.get("heartbeat", 0)) < LEASE_SECONDS
            same_host = lease.get("host") == self._lease["host"]
            if fresh and (not same_host or _alive(int(lease.get("pid", 0)))):
                raise SearchError(f"another controller (pid {lease.get('pid')} on {lease.get('host')}) is running "
                                  f"study {study.study_name!r}")
        self._beat(study)

    def _beat(self, study: Any) -> None:
        study.set_user_attr("hwnas_controller", {**self._lease, "heartbeat": time.time()})
        self._last_beat = time.monotonic()

    def _seed_known(self, study: Any) -> int:
        from searchspace.known import known_architectures

        n = 0
        for name, arch in known_architectures().items():
            params = encoding.to_params(self.space, arch)
            if params is not None:
                study.enqueue_trial(params, user_attrs={"hwnas_known": name})
                n += 1
        return n

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
        got = [self._analytic(arch, m) if m in ANALYTIC and arch is not None else parts.get(m, missing)
               for m in members]
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
            archs = proxies.reference_archs(self.space, self.space.resolution, None, seed=self.config.proxy.seed,
                                            size=self.config.proxy.reference_size)
            results = self._evaluate_all(executor, archs, members)
            scores = {x.split(":", 1)[1]: [] for x in members}  # type: dict[str, list[float]]
            for a in archs:
                for x in members:
                    e = results[(a.arch_id, x)]
                    if e.ok:
                        scores[x.split(":", 1)[1]].append(float(e.value))  # type: ignore[arg-type]
            mode = mode_of(proxies.canonical(m.arg))
            self._references[m.name] = Reference.fit(scores, f"{len(archs)} random nets of the space", mode)

    def _evaluate_all(self, executor: Executor, archs: list[Any], metrics: list[str]
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
                arch_id = job.key[1]  # type: ignore[index]
                for x, e in res.items():
                    out[(arch_id, x)] = e
                    if e.error is None or not e.error.startswith(TRANSIENT):
                        self.cache.put(arch_id, x, self.settings.for_metric(x), e)
        return out

    # ------------------------------------------------------------ the loop
    def run(self, resume: bool = False) -> SearchResult:
        from optuna.trial import TrialState

        from nas.store import InflightLog

        durable, study = self._open_studies(resume)
        self._durable = durable
        self._take_lease(durable)
        inflight_log = InflightLog(self._storage.engine, durable.study_name)
        self._inflight_log = inflight_log
        writer = self._writer = _Writer()
        notes = []
        requeued = inflight_log.take_all()
        for params in requeued:
            study.enqueue_trial(params, user_attrs={"hwnas_requeued": True})
        if requeued:
            notes.append(f"{len(requeued)} trial(s) in flight when the last controller stopped were requeued")
        if not resume and self.config.seed_known:
            n = self._seed_known(study)
            notes.append(f"{n} known net(s) of the space enqueued first")
        executor = self.executor or self._default_executor()
        own_executor = self.executor is None
        budget = self.config.budget
        elapsed_before = float(durable.user_attrs.get("hwnas_elapsed", 0.0))
        start = time.monotonic()
        reference = self._hv_reference(study)
        expensive = self._expensive_needed()
        in_flight: dict[int, dict[str, Any]] = {}
        controller_time = 0.0
        told = 0
        tracker = _FrontTracker(self.config.directions, [o.metric for o in self.config.objectives])
        for t in self._completed(study):
            if self._feasible(t):
                tracker.add(list(t.values))
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)))

        def time_left() -> bool:
            return budget.seconds is None or elapsed_before + time.monotonic() - start < budget.seconds

        def report() -> None:
            if self.progress is None and self.on_trial is None:
                return
            snapshot = tracker.progress(done, budget.trials, len(in_flight),
                                        elapsed_before + time.monotonic() - start, reference)
            if self.progress is not None:
                self.progress(snapshot)
            if self.on_trial is not None:
                # queued behind the trial's own durable write, so a listener never sees a trial the study lacks
                for frozen in self._told:
                    writer.put(functools.partial(self.on_trial, self._record(frozen), snapshot))
            self._told.clear()

        try:
            self._prepare_references(executor)
            while True:
                if self.stop is not None and self.stop():
                    self.stopped = True
                    notes.append(f"stopped on request with {len(in_flight)} trial(s) in flight")
                    break
                t0 = time.perf_counter()
                while (len(in_flight) < executor.workers and time_left()
                       and (budget.trials is None or done + len(in_flight) < budget.trials)):
                    trial = study.ask()
                    # NSGA-II gives an enqueued (fully fixed) trial no generation unless relative sampling runs
                    _ = trial.relative_params
                    try:
                        arch = encoding.decide(self.space, trial.suggest_categorical)  # type: ignore[arg-type]
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
                    entry = {"trial": trial, "arch": arch, "parts": parts, "log": None}
                    in_flight[trial.number] = entry
                    if missing:
                        token = entry["log"] = uuid.uuid4().hex
                        params = dict(trial.params)
                        writer.put(functools.partial(inflight_log.add, token, params))
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
                    entry = in_flight.pop(job.key)  # type: ignore[call-overload]
                    arch_id = entry["arch"].arch_id
                    for x, e in res.items():
                        entry["parts"][x] = e
                        if e.error is None or not e.error.startswith(TRANSIENT):
                            digest = self.settings.for_metric(x)
                            writer.put(functools.partial(self.cache.put, arch_id, x, digest, e))
                    reference = self._finish(study, entry, reference, tracker)
                    done += 1
                    told += 1
                    controller_time += time.perf_counter() - t0
                    report()
                if time.monotonic() - self._last_beat > 5:
                    self._beat(durable)
                    durable.set_user_attr("hwnas_elapsed", elapsed_before + time.monotonic() - start)
        except KeyboardInterrupt:
            notes.append("interrupted: trials in flight are requeued on resume")
            raise
        finally:
            try:
                writer.close()
            finally:
                durable.set_user_attr("hwnas_elapsed", elapsed_before + time.monotonic() - start)
                durable.set_user_attr("hwnas_controller", {**self._lease, "heartbeat": 0.0})  # released
                if own_executor:
                    executor.close()
        result = self.results(study, notes)
        result.controller_seconds_per_trial = controller_time / told if told else None
        return result

    def _persist(self, study: Any, trial: Any, log_token: str | None = None) -> None:
        """Copy a finished trial of the working study into the durable one, then drop its in-flight row."""
        frozen = study._storage.get_trial(trial._trial_id)
        if self.on_trial is not None:
            self._told.append(frozen)

        def write() -> None:
            self._durable.add_trial(frozen)
            if log_token is not None:
                self._inflight_log.remove(log_token)

        self._writer.put(write)

    def _default_executor(self) -> Executor:
        if self.config.workers == 1 and self.config.ray_address is None:
            return SerialExecutor()
        from nas.executors import RayExecutor

        return RayExecutor(self.config.workers, self.config.ray_address, self.config.retries,
                           self.config.eval_timeout)

    def _finish(self, study: Any, entry: dict[str, Any], reference: list[float] | None,
                tracker: _FrontTracker) -> list[float] | None:
        from optuna.trial import TrialState

        trial, parts, arch = entry["trial"], entry["parts"], entry["arch"]
        values: dict[str, Evaluation] = {}
        for m in self.metrics:
            values[m.name] = parts[m.name] if m.cheap else self._combine(m.name, parts, arch)
        errors = [f"{k}: {v.error}" for k, v in values.items() if not v.ok]
        record: dict[str, Any] = {"arch": arch.encode(), "arch_id": arch.arch_id,
                                  "metrics": {k: v.value for k, v in values.items()},
                                  "cached": sorted(k for k, v in parts.items() if v.cached)}
        nodes = sorted({v.node for v in parts.values() if v.node is not None and not v.cached})
        if nodes:  # one Ray task evaluates a trial's net, so one node
            record["node"] = nodes[0]
        if errors:
            record["error"] = "; ".join(errors)
            trial.set_user_attr(RECORD_ATTR, record)
            study.tell(trial, state=TrialState.FAIL)
            self._persist(study, trial, entry.get("log"))
            return reference
        record["violations"] = [c.violation(float(values[c.metric].value))  # type: ignore[arg-type]
                                for c in self.config.constraints]
        trial.set_user_attr(RECORD_ATTR, record)
        for i, v in enumerate(record["violations"]):
            trial.set_constraint(f"c{i}", v)  # what Optuna 5's samplers read
        objective_values = [float(values[o.metric].value) for o in self.config.objectives]  # type: ignore[arg-type]
        study.tell(trial, objective_values)
        self._persist(study, trial, entry.get("log"))
        if all(v <= 0 for v in record["violations"]):
            tracker.add(objective_values)
        if reference is None:
            reference = self._hv_reference(study)
        return reference

    def _hv_reference(self, study: Any) -> list[float] | None:
        if self.config.hv_reference is not None:
            return list(to_minimize([self.config.hv_reference], self.config.directions)[0])
        stored = self._durable.user_attrs.get("hwnas_hv_reference") if self._durable is not None else None
        if stored is not None:
            return list(stored)
        feasible = [t for t in self._completed(study) if self._feasible(t)]
        if len(feasible) < min(REFERENCE_TRIALS, self.config.budget.trials or REFERENCE_TRIALS):
            return None
        pts = to_minimize([t.values for t in feasible[:REFERENCE_TRIALS]], self.config.directions)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        ref = [float(v) for v in hi + 0.1 * np.where(hi > lo, hi - lo, np.abs(hi) + 1e-12)]
        if self._durable is not None:
            self._durable.set_user_attr("hwnas_hv_reference", ref)
        return ref

    @staticmethod
    def _completed(study: Any) -> list[Any]:
        from optuna.trial import TrialState

        return sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)

    @staticmethod
    def _feasible(t: Any) -> bool:
        return all(v <= 0 for v in violations(t))

    # ------------------------------------------------------------ results
    def read(self) -> SearchResult | None:
        """The stored study's results, running nothing and taking no lease (None before the study exists)."""
        import optuna

        try:
            durable = optuna.load_study(study_name=self.config.study_name(), storage=self._storage)
        except KeyError:
            return None
        self._durable = durable
        return self.results(durable)

    @staticmethod
    def _record(t: Any) -> TrialRecord:
        """A finished Optuna trial as hwnas reports it (on_front is decided over all trials, later)."""
        rec = t.user_attrs.get(RECORD_ATTR, {})
        viol = list(rec.get("violations", []))
        return TrialRecord(
            number=t.number, state=t.state.name, arch=rec.get("arch"), arch_id=rec.get("arch_id"),
            params=dict(t.params), metrics=dict(rec.get("metrics", {})),
            objectives=list(t.values) if t.values is not None else None, violations=viol,
            feasible=t.state.name == "COMPLETE" and all(v <= 0 for v in viol),
            error=rec.get("error") or ("requeued" if rec.get("requeued") else None),
            seconds=(t.duration.total_seconds() if t.duration else 0.0), node=rec.get("node"),
        )

    def results(self, study: Any, notes: list[str] | None = None) -> SearchResult:
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        records = [self._record(t) for t in trials]
        ok = [r for r in records if r.feasible and r.objectives is not None]
        front: list[int] = []
        if ok:
            pts = to_minimize([r.objectives for r in ok], self.config.directions)  # type: ignore[misc]
            mask = non_dominated(pts)
            front = [r.number for r, keep in zip(ok, mask, strict=True) if keep]
            for r in ok:
                r.on_front = r.number in front
        reference = self._hv_reference(study)
        history: list[tuple[int, float]] = []
        if reference is not None:
            seen: list[np.ndarray] = []
            current: np.ndarray = np.zeros((0, len(reference)))
            for i, r in enumerate(records):
                if r.feasible and r.objectives is not None:
                    p = to_minimize([r.objectives], self.config.directions)[0]
                    seen.append(p)
                    current = np.vstack([current, p])
                    current = current[non_dominated(current)]
                history.append((i + 1, hypervolume(current, reference) if len(current) else 0.0))
        return SearchResult(
            study=self._durable.study_name if self._durable is not None else study.study_name,
            objectives=[{"metric": o.metric, "direction": o.direction} for o in self.config.objectives],
            trials=records, front=front, hv_reference=reference, hv_history=history,
            elapsed=float((self._durable or study).user_attrs.get("hwnas_elapsed", 0.0)), notes=list(notes or []),
        )
