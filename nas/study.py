"""One controller's hold on a study: the durable and the working copy, the lease, and nothing lost in between.

The study lives in the storage (any SQLAlchemy URL). The sampler works on
an in-memory copy (Optuna writes each suggested parameter to an RDB in its
own transaction, far too slow for a controller), and each finished trial is
copied to the stored study in one transaction as it is told; the params of
trials in flight are logged in ``hwnas_inflight``. A controller that starts
on a study a killed one left reloads the finished trials and requeues the
logged ones, so completed evaluations are kept, the interrupted ones run
again first, and the budget counts what was done. One controller at a
time: a lease in the study's attributes (pid, host, heartbeat) refuses a
second live one.
"""

from __future__ import annotations

import functools
import os
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from nas.config import SearchConfig
from nas.errors import SearchError
from nas.store import InflightLog
from nas.strategies import make_sampler

__all__ = ["LEASE_SECONDS", "StudySession", "Writer", "engine_kwargs", "frozen_copy"]

LEASE_SECONDS = 30.0
#: seconds between two heartbeats of a running controller (well inside LEASE_SECONDS)
BEAT_SECONDS = 5.0


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options for the study's storage."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def frozen_copy(study: Any, trial: Any) -> Any:
    """The finished ``trial`` of ``study`` as a FrozenTrial, read straight from the study's storage.

    The one place hwnas touches Optuna's private API (``Study._storage``,
    ``Trial._trial_id``): copying a just-told trial of the in-memory working
    study into the durable one needs it frozen, and Optuna's public
    ``study.trials`` would copy every trial of the study to get one.
    """
    return study._storage.get_trial(trial._trial_id)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Writer:
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


class StudySession:
    """The durable study of a config in ``storage`` and, while a controller runs, its lease, writer and log."""

    def __init__(self, config: SearchConfig, storage: Any, url: str) -> None:
        self.config = config
        self.storage = storage  # an optuna RDBStorage
        self.url = url
        self.lease = {"token": uuid.uuid4().hex, "pid": os.getpid(), "host": socket.gethostname()}
        self.durable: Any = None
        self.writer: Any = None
        self.inflight_log: Any = None
        self.last_beat = 0.0

    def redacted(self) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    def open(self, resume: bool) -> tuple[Any, Any]:
        """(durable study in the storage, in-memory working study holding the same finished trials).

        Optuna writes every suggest to an RDB storage as its own transaction
        (one per parameter of a net), which would make the controller slow.
        So the sampler works on an in-memory study, and each finished trial
        (params, values, constraints, attributes) is copied to the durable
        study in one transaction when it is told; the params of trials in
        flight are logged in ``hwnas_inflight``. On resume the durable trials
        are loaded back, and logged in-flight params requeued. The statements
        and time this costs per trial: benchmarks/results/scale.json.
        """
        import optuna
        from optuna.trial import TrialState

        name = self.config.study_name()
        existing = {s.study_name for s in optuna.get_all_study_summaries(self.storage, include_best_trial=False)}
        if name in existing and not resume:
            raise SearchError(
                f"study {name!r} already exists in {self.redacted()}; resume it (--resume) or give "
                "the config another name"
            )
        if name not in existing and resume:
            raise SearchError(f"no study {name!r} in {self.redacted()} to resume")
        # mypy: the config validated directions as 'minimize'/'maximize'; Optuna types them as its own
        durable = optuna.create_study(
            study_name=name,
            storage=self.storage,
            directions=self.config.directions,  # type: ignore[arg-type]
            load_if_exists=True,
        )
        stored = durable.user_attrs.get("hwnas_config")
        if stored is None:
            durable.set_user_attr("hwnas_config", self.config.model_dump(mode="json"))
        elif SearchConfig.model_validate(stored).identity() != self.config.identity():
            raise SearchError(
                f"study {name!r} was started with a different config (only budget, workers, "
                "eval_timeout, retries and ray_address may change on resume)"
            )
        finished = sorted(
            durable.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)), key=lambda t: t.number
        )
        # mypy: the config validated directions as 'minimize'/'maximize'; Optuna types them as its own
        work = optuna.create_study(
            storage=optuna.storages.InMemoryStorage(),
            directions=self.config.directions,  # type: ignore[arg-type]
            sampler=make_sampler(self.config, len(finished)),
        )
        work.add_trials(finished)
        self.durable = durable
        return durable, work

    def load(self) -> Any:
        """The stored study, taking no lease (None before it exists)."""
        import optuna

        try:
            self.durable = optuna.load_study(study_name=self.config.study_name(), storage=self.storage)
        except KeyError:
            return None
        return self.durable

    def seed_known(self, work: Any, space: Any) -> int:
        """Enqueue in ``work`` the known nets (MobileNets, ...) that ``space`` holds; how many."""
        from nas import search_params
        from searchspace.known import known_architectures

        n = 0
        for name, arch in known_architectures().items():
            params = search_params.to_params(space, arch)
            if params is not None:
                work.enqueue_trial(params, user_attrs={"hwnas_known": name})
                n += 1
        return n

    # ------------------------------------------------------------ lease
    def take_lease(self) -> None:
        study = self.durable
        lease = study.user_attrs.get("hwnas_controller")
        if lease and lease.get("token") != self.lease["token"]:
            fresh = time.time() - float(lease.get("heartbeat", 0)) < LEASE_SECONDS
            same_host = lease.get("host") == self.lease["host"]
            if fresh and (not same_host or _alive(int(lease.get("pid", 0)))):
                raise SearchError(
                    f"another controller (pid {lease.get('pid')} on {lease.get('host')}) is running "
                    f"study {study.study_name!r}"
                )
        self.beat()

    def beat(self) -> None:
        self.durable.set_user_attr("hwnas_controller", {**self.lease, "heartbeat": time.time()})
        self.last_beat = time.monotonic()

    def heartbeat(self, elapsed: float) -> None:
        """Renew the lease and record the elapsed time, when the last beat is BEAT_SECONDS old."""
        if time.monotonic() - self.last_beat > BEAT_SECONDS:
            self.beat()
            self.durable.set_user_attr("hwnas_elapsed", elapsed)

    def release(self, elapsed: float) -> None:
        """Record the elapsed time and give the lease up (a heartbeat of 0 is never fresh)."""
        self.durable.set_user_attr("hwnas_elapsed", elapsed)
        self.durable.set_user_attr("hwnas_controller", {**self.lease, "heartbeat": 0.0})

    # ------------------------------------------------------------ trials in flight and their durable copies
    def start(self, work: Any) -> list[str]:
        """Start the writer and requeue in ``work`` what the last controller left in flight; notes on it."""
        self.inflight_log = InflightLog(self.storage.engine, self.durable.study_name)
        self.writer = Writer()
        requeued = self.inflight_log.take_all()
        for params in requeued:
            work.enqueue_trial(params, user_attrs={"hwnas_requeued": True})
        if requeued:
            return [f"{len(requeued)} trial(s) in flight when the last controller stopped were requeued"]
        return []

    def log_inflight(self, params: dict[str, Any]) -> str:
        """Log a trial's params as in flight (on the writer); the token removes the row once it is persisted."""
        token = uuid.uuid4().hex
        self.writer.put(functools.partial(self.inflight_log.add, token, params))
        return token

    def persist(self, work: Any, trial: Any, log_token: str | None = None) -> Any:
        """Copy a finished trial of the working study into the durable one, then drop its in-flight row.

        Returns the frozen trial; the copy is queued on the writer.
        """
        frozen = frozen_copy(work, trial)
        durable, inflight_log = self.durable, self.inflight_log

        def write() -> None:
            durable.add_trial(frozen)
            if log_token is not None:
                inflight_log.remove(log_token)

        self.writer.put(write)
        return frozen

    def close(self) -> None:
        """Wait for the writer's queue (raising what it hit) and stop it."""
        self.writer.close()
