"""Where expensive evaluations run: in the controller's process, or as Ray tasks (local or a cluster).

An executor takes (key, net, metrics, settings) jobs and hands back results
as they finish. The Ray executor runs one task per net with one CPU; a task
whose worker dies is retried ``retries`` times by Ray, a task running longer
than ``timeout`` seconds is cancelled and reported as timed out. Neither
failure is a property of the net, so neither is cached.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from nas.errors import ExecutorError
from nas.evaluate import EvalSettings, evaluate
from nas.store import Evaluation

if TYPE_CHECKING:
    from nas.config import SearchConfig

TRANSIENT = "transient: "  # prefix of errors that say nothing about the net (timeouts, lost workers)


@dataclass
class Job:
    key: Hashable
    arch: str
    metrics: list[str]
    settings: EvalSettings
    submitted: float = 0.0


class Executor(Protocol):
    workers: int

    def submit(self, job: Job) -> None: ...

    def poll(self, timeout: float) -> list[tuple[Job, dict[str, Evaluation]]]: ...

    def pending(self) -> int: ...

    def close(self) -> None: ...


def default_executor(config: SearchConfig) -> Executor:
    """What a search runs on when given no executor: this process for one local worker, else Ray."""
    if config.workers == 1 and config.ray_address is None:
        return SerialExecutor()
    return RayExecutor(config.workers, config.ray_address, config.retries, config.eval_timeout)


class SerialExecutor:
    """Evaluates in this process, one job per poll, in submission order (deterministic; tests, workers=1)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._queue: deque[Job] = deque()

    def submit(self, job: Job) -> None:
        self._queue.append(job)

    def poll(self, timeout: float) -> list[tuple[Job, dict[str, Evaluation]]]:
        if not self._queue:
            return []
        job = self._queue.popleft()
        return [(job, evaluate(job.arch, job.metrics, job.settings))]

    def pending(self) -> int:
        return len(self._queue)

    def close(self) -> None:
        self._queue.clear()


def _remote_evaluate(arch: str, metrics: list[str], settings: EvalSettings) -> dict[str, Evaluation]:
    """In a Ray task: the evaluations, each marked with the node that computed them."""
    from dataclasses import replace

    import ray

    node = ray.get_runtime_context().get_node_id()
    return {m: replace(e, node=node) for m, e in evaluate(arch, metrics, settings).items()}


def start_ray(address: str | None, cpus: int) -> None:
    """Join the Ray cluster at ``address``, or (None) start a private local Ray with ``cpus`` CPUs.

    The one place hwnas calls ``ray.init`` (the search's executor and the service's worker both come here).
    :class:`ExecutorError` carries Ray's own message when Ray cannot be started or reached.
    """
    import logging
    import os

    import ray

    # Ray 2.60 turns token auth on for a new local cluster and writes ~/.ray/auth_token; a private
    # local instance needs none (a cluster's own RAY_AUTH_MODE, if the user set one, is kept)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            # "local": never attach to some other cluster found through RAY_ADDRESS or /tmp/ray
            ray.init(
                address="local",
                num_cpus=cpus,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.WARNING,
                object_store_memory=128 * 2**20,
            )
    except Exception as exc:  # noqa: BLE001 - ray raises many types for "cannot connect"
        raise ExecutorError(str(exc).strip()) from None


class RayExecutor:
    """One Ray task per job (num_cpus=1); ``address`` None starts a private local Ray with ``workers`` CPUs."""

    def __init__(
        self, workers: int, address: str | None = None, retries: int = 2, timeout: float | None = None
    ) -> None:
        import ray

        self.workers = workers
        self.timeout = timeout
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            try:
                start_ray(address, workers)
            except ExecutorError as exc:
                raise ExecutorError(f"ray_address: cannot start or reach Ray ({exc})") from None
            self._owns = True
        self._task = ray.remote(num_cpus=1, max_retries=retries)(_remote_evaluate)
        self._running: dict[Any, Job] = {}

    def submit(self, job: Job) -> None:
        job.submitted = time.monotonic()
        ref = self._task.remote(job.arch, job.metrics, job.settings)
        self._running[ref] = job

    def poll(self, timeout: float) -> list[tuple[Job, dict[str, Evaluation]]]:
        ray = self._ray
        if not self._running:
            return []
        ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout)
        out: list[tuple[Job, dict[str, Evaluation]]] = []
        for ref in ready:
            job = self._running.pop(ref)
            try:
                result = ray.get(ref)
            except Exception as exc:  # noqa: BLE001 - worker death after retries, cancellation, ...
                msg = f"{TRANSIENT}{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                result = {m: Evaluation(None, msg, time.monotonic() - job.submitted) for m in job.metrics}
            out.append((job, result))
        if self.timeout is not None:
            now = time.monotonic()
            for ref, job in list(self._running.items()):
                if now - job.submitted > self.timeout:
                    ray.cancel(ref, force=True)
                    del self._running[ref]
                    msg = f"{TRANSIENT}timed out after {self.timeout:g} s (eval_timeout)"
                    out.append((job, {m: Evaluation(None, msg, now - job.submitted) for m in job.metrics}))
        return out

    def pending(self) -> int:
        return len(self._running)

    def close(self) -> None:
        for ref in list(self._running):
            self._ray.cancel(ref, force=True)
        self._running.clear()
        if self._owns:
            self._ray.shutdown()
