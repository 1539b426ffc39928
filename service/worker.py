"""``hwnas worker``: claim queued jobs and run them with nas.search, one at a time, forever.

A heartbeat thread renews the job's lease and notices a cancel request; a
worker that dies stops renewing, and another worker takes the job over once
the lease runs out and resumes it from its study (the search keeps every
finished trial and requeues the ones in flight). Whatever a job does wrong
fails that job with its reason; the worker goes on to the next.

Ray is started once, the first time a job needs parallel evaluations, and
kept for later jobs; a job with ``workers: 1`` never waits for it. A worker
that cannot start or reach Ray tries again a few times, then gives the job
back (any worker may claim it half a minute later) rather than fail it for
what is the worker's trouble; a job given back that way five times fails
with Ray's error.

Before a job's first trial its search chooses its latency tables and, on
this host's first use of a profile, builds this host's table (a minute or
two, cached for every later job): the job's notes show that build's
progress, and the job's ``latency_tables`` what was chosen.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service import jobs, trials
from service.settings import Settings

if TYPE_CHECKING:
    from nas.table_choice import TableEvent

log = logging.getLogger("hwnas.worker")

#: seconds between two progress notes of a latency table build
TABLE_REPORT_SECONDS = 2.0

#: pauses between attempts to start or reach Ray before a job is given back: a busy head's client server can
#: fail to start a new client's session (seen in CI: "Starting Ray client server failed") and work seconds later
RAY_CONNECT_PAUSES = (2.0, 5.0, 10.0)
#: a job given back for want of Ray is claimed again after this many seconds, by any worker ...
RAY_RETRY_AFTER = 30.0
#: ... and fails with Ray's error once it has been claimed this many times
RAY_MAX_ATTEMPTS = 5


class RayUnreachable(Exception):
    """This worker cannot start or reach Ray: the worker's trouble, not the job's."""


class Worker:
    def __init__(self, settings: Settings, name: str | None = None) -> None:
        self.settings = settings
        self.url = settings.database_url
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stopping = threading.Event()
        self.jobs_run = 0

    # ------------------------------------------------------------ the loop
    def run(self, max_jobs: int | None = None, idle_exit: float | None = None) -> None:
        """Claim and run jobs until stopped (or ``max_jobs`` ran, or nothing came for ``idle_exit`` seconds)."""
        from service.db import upgrade

        upgrade(self.url)
        log.info("worker %s watching %s", self.id, self.url)
        idle_since = time.monotonic()
        while not self.stopping.is_set():
            if max_jobs is not None and self.jobs_run >= max_jobs:
                return
            try:
                job = jobs.claim_job(self.url, worker=self.id, lease_seconds=self.settings.lease_seconds)
            except Exception as exc:  # noqa: BLE001 - a database hiccup must not end the worker
                log.warning("claiming a job failed: %s", exc)
                job = None
            if job is None:
                if idle_exit is not None and time.monotonic() - idle_since > idle_exit:
                    return
                self.stopping.wait(self.settings.poll_seconds)
                continue
            outcome = self.run_job(job.id, job.config, job.study_name, attempts=job.attempts)
            log.info("job %s: %s", job.id, outcome)
            self.jobs_run += 1
            idle_since = time.monotonic()

    def stop(self) -> None:
        self.stopping.set()

    # ------------------------------------------------------------ one job
    def run_job(self, job_id: str, config_json: str, study_name: str, attempts: int = 1) -> str:
        """Run one claimed job to its end; returns the state it ended in ('lost' when another worker has it,
        'queued' when it was given back). ``attempts``: how many times the job has been claimed, this one
        included."""
        from nas.config import SearchConfig
        from nas.search import Search, SearchError

        state = {"signal": "ok"}
        beat_stop = threading.Event()

        def heartbeat() -> None:
            while not beat_stop.wait(self.settings.heartbeat_seconds):
                try:
                    signal = jobs.renew_lease(
                        self.url, job_id=job_id, worker=self.id, lease_seconds=self.settings.lease_seconds
                    )
                except Exception as exc:  # noqa: BLE001 - try again next beat; the lease has slack
                    log.warning("renewing the lease of job %s failed: %s", job_id, exc)
                    continue
                if signal != "ok":
                    state["signal"] = signal
                if signal == "lost":
                    return

        beat = threading.Thread(target=heartbeat, name=f"hwnas-heartbeat-{job_id[:8]}", daemon=True)
        beat.start()
        try:
            data = json.loads(config_json)
            data.update(name=study_name, ray_address=self.settings.ray_address)
            config = SearchConfig.model_validate(data)
            # Ray starts after the latency tables are chosen: its processes starting up beside a table build
            # would distort the layers it measures
            needs_ray = config.workers > 1 or bool(self.settings.ray_address)
            if needs_ray and not config.latency_profiles:
                self._ensure_ray()

            def on_trial(record: Any, progress: Any) -> None:
                trials.record_trials(
                    self.url, job_id=job_id, records=[record], hypervolumes=[progress.hypervolume], progress=progress
                )

            search = Search(
                config,
                self.url,
                on_trial=on_trial,
                stop=lambda: state["signal"] != "ok" or self.stopping.is_set(),
                on_table=self._table_reporter(
                    job_id, len(config.latency_profiles), then=self._ensure_ray if needs_ray else None
                ),
            )
            previous = search.read()
            if previous is not None:  # a resumed job: mirror what the last worker told the study
                history = dict(previous.hv_history)
                trials.record_trials(
                    self.url,
                    job_id=job_id,
                    records=previous.trials,
                    hypervolumes=[history.get(i + 1) for i in range(len(previous.trials))],
                )
            result = search.run(resume=previous is not None)
            notes = list(result.notes)
        except RayUnreachable as exc:
            if attempts >= RAY_MAX_ATTEMPTS:
                return self._fail(job_id, exc)
            log.warning("job %s given back (claim %d of %d): %s", job_id, attempts, RAY_MAX_ATTEMPTS, exc)
            jobs.release_job(
                self.url,
                job_id=job_id,
                worker=self.id,
                note=f"waiting for Ray (claim {attempts} of {RAY_MAX_ATTEMPTS}): {exc}",
                retry_after=RAY_RETRY_AFTER,
            )
            return "queued"
        except SearchError as exc:
            if "another controller" in str(exc):  # its last worker's study lease is still fresh: try later
                from nas.search import LEASE_SECONDS

                jobs.release_job(
                    self.url, job_id=job_id, worker=self.id, note=f"waiting: {exc}", retry_after=LEASE_SECONDS
                )
                return "queued"
            return self._fail(job_id, exc)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:  # noqa: BLE001 - a bad job fails alone; the worker goes on
            return self._fail(job_id, exc)
        finally:
            beat_stop.set()
            beat.join(timeout=5)
        if state["signal"] == "lost":
            log.warning("job %s was taken over by another worker; its result stays theirs", job_id)
            return "lost"
        if state["signal"] == "ok" and self.stopping.is_set() and search.stopped:
            jobs.release_job(
                self.url, job_id=job_id, worker=self.id, note="its worker was stopped; the next worker resumes it"
            )
            return "queued"
        final = "cancelled" if state["signal"] == "cancel" else "succeeded"
        error = None
        failed = [t for t in result.trials if t.state == "FAIL" and t.error != "requeued"]
        if final == "succeeded" and failed and len(failed) == len(result.trials):
            final, error = "failed", f"all {len(failed)} trials failed; the first: {failed[0].error}"
            log.warning("job %s failed: %s", job_id, error)
        jobs.finish_job(self.url, job_id=job_id, worker=self.id, status=final, error=error, notes=notes)
        return final

    def _table_reporter(
        self, job_id: str, profiles: int, then: Callable[[], None] | None = None
    ) -> Callable[[TableEvent], None]:
        """The search's ``on_table``: a latency table build's progress as the job's notes (every
        TABLE_REPORT_SECONDS), then each table chosen, into the job's row; ``then`` runs once all ``profiles``
        have their table."""
        summaries: list[str] = []
        tables: dict[str, Any] = {}
        last = [0.0]

        def report(event: TableEvent) -> None:
            now = time.monotonic()
            if event.choice is None and now - last[0] < TABLE_REPORT_SECONDS:
                return
            last[0] = now
            if event.choice is not None:
                summaries.append(event.line())
                tables[event.profile] = event.choice.as_dict()
                log.info("job %s: %s", job_id, event.line())
            notes = summaries if event.choice is not None else [*summaries, event.line()]
            try:
                jobs.report_activity(
                    self.url, job_id=job_id, worker=self.id, notes=notes, tables=tables if event.choice else None
                )
            except Exception as exc:  # noqa: BLE001 - a progress note lost is no reason to stop the build
                log.warning("reporting the progress of job %s failed: %s", job_id, exc)
            if event.choice is not None and len(tables) == profiles and then is not None:
                then()

        return report

    def _fail(self, job_id: str, exc: BaseException) -> str:
        from latency_tables.errors import LatencyTableError
        from nas.errors import NasError
        from searchspace import SearchSpaceError

        if isinstance(exc, NasError | SearchSpaceError | LatencyTableError | RayUnreachable):
            message = str(exc)
            log.warning("job %s failed: %s", job_id, message)
        else:
            message = f"internal error: {type(exc).__name__}: {exc}"
            log.error("job %s failed:\n%s", job_id, "".join(traceback.format_exception(exc)))
        jobs.finish_job(self.url, job_id=job_id, worker=self.id, status="failed", error=message)
        return "failed"

    def _ensure_ray(self) -> None:
        """Start or reach Ray, trying again after each of :data:`RAY_CONNECT_PAUSES`; :class:`RayUnreachable`
        when every attempt failed."""
        import ray

        if ray.is_initialized():
            return
        where = f"HWNAS_RAY_ADDRESS={self.settings.ray_address}" if self.settings.ray_address else "a local Ray"
        for attempt, pause in enumerate((*RAY_CONNECT_PAUSES, None), start=1):
            try:
                self._init_ray()
                return
            except RayUnreachable as exc:
                with contextlib.suppress(Exception):  # a half-made connection must not stay "initialized"
                    ray.shutdown()
                if pause is None or self.stopping.is_set():
                    message = f"{where}: cannot start or reach Ray after {attempt} attempts ({exc})"
                    raise RayUnreachable(message) from None
                log.warning("attempt %d to reach %s failed, again in %.0f s: %s", attempt, where, pause, exc)
                self.stopping.wait(pause)

    def _init_ray(self) -> None:
        import signal

        from nas.errors import ExecutorError
        from nas.executors import start_ray

        handler = signal.getsignal(signal.SIGTERM)
        try:
            start_ray(self.settings.ray_address, self.settings.ray_cpus)
        except ExecutorError as exc:
            raise RayUnreachable(str(exc)) from None
        finally:
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, handler)  # ray.init installs its own; `hwnas worker` stops on ours
