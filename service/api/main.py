"""The application, assembled: settings, database schema, routers, error handlers, metrics.

Nothing is created at import time; ``create_app(settings)`` brings the
database to the current schema and refuses to start a server reachable from
the network without API keys.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware

from service.api import problems
from service.api.routes import architectures, catalog, devices, jobs, ops
from service.dashboard import routes as dashboard
from service.db import session_scope, upgrade
from service.errors import StartupError
from service.security import any_active_key
from service.settings import Settings, get_settings

VERSION = "0.1.0"
log = logging.getLogger("hwnas.api")


def _warm_in_background(settings: Settings) -> None:
    """The most recent jobs' trials read into memory while the server already answers (a daemon thread)."""
    from service import trials

    def run() -> None:
        try:
            n = trials.warm(settings.database_url, settings.warm_jobs)
            log.info("trial cache warmed with %d recent job(s)", n)
        except Exception as exc:  # noqa: BLE001 - warming is an optimisation; the pages read on demand anyway
            log.warning("trial cache not warmed: %s", exc)

    threading.Thread(target=run, name="hwnas-warm", daemon=True).start()


def _check_tables_in_background() -> None:
    """Each table's host check (:mod:`latency_tables.host`) made once, off the request path, so the API's
    ``foreign_host`` / ``host_check`` read a measured verdict from the cache rather than the fingerprint's."""

    # imported here, in the starting thread: a module compiled in a thread while another thread parses Python
    # (hypothesis, a first import) can trip CPython 3.11's "AST constructor recursion depth mismatch"
    import onnxruntime  # noqa: F401

    import latency_tables.graph  # noqa: F401
    import latency_tables.runtimes.ort_runtime  # noqa: F401
    from latency_tables.host import check_table
    from latency_tables.table import list_tables

    def run() -> None:
        try:
            for path, table in list_tables():
                check = check_table(table)
                log.info("latency table %s (%s): %s", table.name, path, check.summary())
        except Exception as exc:  # noqa: BLE001 - a report, not a precondition: latencies still answer
            log.warning("latency tables not checked against this host: %s", exc)

    threading.Thread(target=run, name="hwnas-host-check", daemon=True).start()


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()
    if migrate:
        upgrade(settings.database_url)
    if settings.keys_required:
        with session_scope(settings.database_url) as session:
            if not any_active_key(session):
                where = f"{settings.host}:{settings.port}" if not settings.loopback else "this server"
                raise StartupError(
                    f"{where} needs API keys (HWNAS_AUTH={settings.auth}, bound to {settings.host}) and the database "
                    "has none: create one with `hwnas keys create --name NAME` (same HWNAS_DATABASE_URL), or bind "
                    "to 127.0.0.1"
                )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if settings.warm_jobs:
            _warm_in_background(settings)
        if settings.check_tables:
            _check_tables_in_background()
        yield

    app = FastAPI(
        title="hwnas",
        version=VERSION,
        lifespan=lifespan,
        description="Hardware-aware neural architecture search: search jobs over HTTP, Pareto fronts of "
        "accuracy proxies against measured latency, downloads as JSON, ONNX, int8 ONNX or PyTorch.",
    )
    app.state.settings = settings
    problems.install(app, settings.max_body_bytes, settings.max_table_bytes)
    # plotly.js and a big job's points shrink several times over; server-sent events are left alone
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    problems.document(app)
    ops.install_metrics(app, settings.database_url)
    for module in (ops, catalog, jobs, architectures, devices, dashboard):
        app.include_router(module.router)
    return app
