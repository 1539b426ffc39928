"""/healthz (the process answers), /readyz (its database, and Ray where configured), /metrics (Prometheus)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from service import schemas
from service.api.deps import SettingsDep
from service.db import current_revision, get_engine, head_revision, redacted
from service.models import JOB_STATES, Job, Trial

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=schemas.Health)
def healthz() -> schemas.Health:
    return schemas.Health(status="ok")


@router.get("/api/v1/health", response_model=schemas.Health, include_in_schema=False)
def health() -> schemas.Health:
    return schemas.Health(status="ok")


def _ray_status(address: str | None) -> str:
    if not address:
        return "local (started by a worker when a job needs it)"
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=1.0):
            return f"reachable at {address}"
    except (OSError, ValueError) as exc:
        return f"unreachable at {address}: {exc}"


@router.get("/readyz", response_model=schemas.Readiness, responses={503: {"model": schemas.Readiness}})
def readyz(settings: SettingsDep, response: Response) -> schemas.Readiness:
    """Ready when the database answers at the current schema: all the API itself needs (reads and submissions
    never touch Ray). Whether a configured Ray cluster is reachable is reported, for the operator, and does not
    take the replica out of its load balancer: the workers, which use Ray, wait for it themselves."""
    url = settings.database_url
    try:
        with get_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(url)
        database = "ok" if revision == head_revision() else f"schema at {revision}, expected {head_revision()}"
    except Exception as exc:  # noqa: BLE001 - any failure to talk to the database means not ready
        revision, database = None, f"unreachable ({redacted(url)}): {type(exc).__name__}"
    ray = _ray_status(settings.ray_address)
    ok = database == "ok"
    if not ok:
        response.status_code = 503
    return schemas.Readiness(status="ok" if ok else "unavailable", database=database, schema_revision=revision, ray=ray)


class DatabaseCollector:
    """Jobs by state and evaluation throughput, read from the database at scrape time (workers are other
    processes, so their counters live there)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily("hwnas_jobs", "Jobs by state", labels=["state"])
        trials = GaugeMetricFamily("hwnas_trials", "Finished trials (evaluations) stored, all jobs")
        rate = GaugeMetricFamily("hwnas_evaluations_per_second", "Trials finished per second, last 60 s")
        try:
            with get_engine(self.url).connect() as conn:
                counts = dict(conn.execute(select(Job.status, func.count()).group_by(Job.status)).all())
                total = conn.scalar(select(func.count()).select_from(Trial)) or 0
                from datetime import UTC, datetime, timedelta

                since = datetime.now(UTC) - timedelta(seconds=60)
                recent = conn.scalar(select(func.count()).select_from(Trial).where(Trial.finished >= since)) or 0
        except Exception:  # noqa: BLE001 - a scrape during a database outage reports nothing rather than failing
            return
        for state in JOB_STATES:
            jobs.add_metric([state], counts.get(state, 0))
        trials.add_metric([], total)
        rate.add_metric([], recent / 60.0)
        yield jobs
        yield trials
        yield rate


def install_metrics(app: Any, url: str) -> None:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(url))
    latency = Histogram(
        "hwnas_http_request_duration_seconds",
        "Request latency",
        ["method", "route", "status"],
        registry=registry,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
    )
    app.state.metrics_registry = registry

    @app.middleware("http")
    async def observe(request: Request, call_next: Any) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        latency.labels(request.method, path, str(response.status_code)).observe(time.perf_counter() - start)
        return response


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.metrics_registry), media_type=CONTENT_TYPE_LATEST)
