"""``hwnas serve`` (API + dashboard + one embedded worker), ``hwnas worker``, ``hwnas db upgrade``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from service.cli import AddCommand, CliError


def load_settings(**over: Any) -> Any:
    """Settings from HWNAS_* plus command-line values; a bad value is one line naming the variable."""
    from pydantic import ValidationError

    from service.settings import Settings

    try:
        return Settings(**{k: v for k, v in over.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(
            f"HWNAS_{'_'.join(str(p) for p in e['loc']).upper() or 'SETTINGS'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
        raise CliError(f"settings: {problems}") from None


def _die_with_parent() -> None:
    """Linux: the embedded worker gets SIGTERM when `hwnas serve` dies, however it dies (kill -9 included)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # elsewhere the worker's lease simply expires and another worker resumes its job


def _embedded_worker(settings: Any, stop: threading.Event) -> None:
    """Keep one `hwnas worker` process running beside the API (restarted if it dies), until ``stop``."""
    env = {**os.environ, "HWNAS_DATABASE_URL": settings.database_url}
    while not stop.is_set():
        proc = subprocess.Popen([sys.executable, "-m", "service.cli", "worker"], env=env, preexec_fn=_die_with_parent)
        while proc.poll() is None and not stop.wait(0.5):
            pass
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            return
        print(f"hwnas: the embedded worker exited ({proc.returncode}); restarting it", file=sys.stderr, flush=True)
        stop.wait(2.0)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from service.api.main import create_app
    from service.db import redacted

    settings = load_settings(host=args.host, port=args.port)
    app = create_app(settings)  # migrates; refuses a network-facing server without keys
    stop = threading.Event()
    worker = None
    if settings.embedded_worker and not args.no_worker:
        worker = threading.Thread(target=_embedded_worker, args=(settings, stop), name="hwnas-embedded-worker")
        worker.start()
    print(
        f"hwnas: serving on http://{settings.host}:{settings.port} (database {redacted(settings.database_url)}, "
        f"{'one embedded worker' if worker else 'no worker'}; API docs at /docs)",
        flush=True,
    )
    try:
        uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level)
    finally:
        stop.set()
        if worker is not None:
            worker.join()


def cmd_worker(args: argparse.Namespace) -> None:
    from service.db import redacted
    from service.worker import Worker

    settings = load_settings()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("hwnas").setLevel(logging.INFO)
    worker = Worker(settings, name=args.name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    print(f"hwnas: worker {worker.id} on {redacted(settings.database_url)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    worker.run(max_jobs=args.max_jobs, idle_exit=args.idle_exit)
    print(
        f"hwnas: worker {worker.id} ran {worker.jobs_run} job(s) in {time.monotonic() - started:.0f} s",
        file=sys.stderr,
        flush=True,
    )


def cmd_db_upgrade(args: argparse.Namespace) -> None:
    from service.db import head_revision, redacted, upgrade

    settings = load_settings()
    revision = upgrade(settings.database_url)
    print(f"{redacted(settings.database_url)}: schema at revision {revision} (newest {head_revision()})")


def add_commands(sub: Any, add: AddCommand) -> None:
    p = add(
        "serve",
        cmd_serve,
        "run the REST API, the dashboard and one job worker (SQLite and a local Ray "
        "by default; HWNAS_DATABASE_URL for PostgreSQL)",
    )
    p.add_argument("--host", help="address to bind (default 127.0.0.1; anything else needs API keys)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--no-worker", action="store_true", help="API only (run `hwnas worker` processes elsewhere)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])

    p = add("worker", cmd_worker, "claim queued search jobs from the database and run them")
    p.add_argument("--name", help="worker id (default host:pid:random)")
    p.add_argument("--max-jobs", type=int, help="exit after this many jobs")
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds without a job")

    p = sub.add_parser("db", help="the service database", description="the service database")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    up = db_sub.add_parser("upgrade", help="create or migrate the schema to the newest revision")
    up.set_defaults(func=cmd_db_upgrade)
