"""Where hwnas' bottlenecks are as jobs, trials and workers grow: the figures docs/scaling.md extrapolates from.

Measured on this machine, each in CPU time where other processes could inflate wall time:

- the controller: CPU milliseconds per trial of a job run by a real `hwnas worker` code path (Optuna ask/tell,
  the in-flight log, the evaluation cache, the durable study, the service's trial mirror), cheap metrics only,
  so evaluation time is out of the picture; on SQLite and on PostgreSQL;
- database statements per trial on that path, by kind (SELECT / INSERT / UPDATE / DELETE), counted at the
  SQLAlchemy engine of every connection the process opens, and the PostgreSQL server's capacity for such
  single-row write transactions from one client;
- latency-table lookups: nets per second through LatencyPredictor.predict_many;
- Ray: the round trip of one task through the RayExecutor (a count: nothing to compute), tasks per second;
- a proxy evaluation per Ray worker: CPU seconds per 32x32 net for the proxies a search runs.

    .venv/bin/python benchmarks/scale.py [--trials 300] [--postgres URL]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_results  # noqa: E402

SPACE = "mobilenetv2-cifar"
PROFILE = "ort-cpu-fp32-t1"


class StatementCounter:
    """Every statement any SQLAlchemy engine in this process sends, by its first keyword."""

    def __init__(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        self.counts: Counter[str] = Counter()
        self.tables: Counter[str] = Counter()
        self.on = False
        event.listen(Engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.on:
            kind = statement.lstrip().split(None, 1)[0].upper()
            self.counts[kind] += 1
            table = re.search(r"\b(?:INTO|UPDATE|FROM)\s+\"?(\w+)", statement, re.IGNORECASE)
            self.tables[f"{kind} {table.group(1) if table else '?'}"] += 1

    def clear(self) -> None:
        self.counts.clear()
        self.tables.clear()


def controller(url: str, trials: int, counter: StatementCounter) -> dict[str, Any]:
    """One job through the worker's code path (claim, search, trial mirror, finish), cheap metrics only."""
    from nas.config import SearchConfig
    from service import jobs
    from service.db import session_scope, upgrade
    from service.security import get_or_create_user
    from service.settings import Settings
    from service.worker import Worker

    upgrade(url)
    config = SearchConfig.parse(
        {
            "space": SPACE,
            "strategy": {"name": "nsga2"},
            "budget": {"trials": trials},
            "workers": 1,
            "seed": 0,
            "objectives": [
                {"metric": f"latency:{PROFILE}", "direction": "minimize"},
                {"metric": "params", "direction": "minimize"},
            ],
            "constraints": [{"metric": "macs", "max": 60_000_000}],
        }
    )
    with session_scope(url) as session:
        job = jobs.create_job(session, owner=get_or_create_user(session, "bench"), config=config)
        job_id = job.id
    worker = Worker(Settings(database_url=url), name="bench-scale")
    counter.clear()
    counter.on = True
    cpu, wall = time.process_time(), time.perf_counter()
    worker.run(max_jobs=1)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    counter.on = False
    with session_scope(url) as session:
        from service.models import Job

        status = session.get(Job, job_id).status  # type: ignore[union-attr]
    statements = dict(counter.counts)
    return {
        "trials": trials,
        "status": status,
        "cpu_ms_per_trial": 1000 * cpu / trials,
        "wall_ms_per_trial": 1000 * wall / trials,
        "statements_per_trial": sum(statements.values()) / trials,
        "by_kind_per_trial": {k: v / trials for k, v in sorted(statements.items())},
        "by_table_per_trial": {k: v / trials for k, v in counter.tables.most_common() if v >= trials / 2},
    }


def write_capacity(url: str, n: int = 500) -> dict[str, Any]:
    """Single-row INSERT transactions per second from one client (what a trial's writes are made of)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS hwnas_bench_scale (id int, payload text)"))
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMPORARY TABLE IF NOT EXISTS hwnas_bench_scale (id int, payload text)"))
        conn.commit()
        start = time.perf_counter()
        for i in range(n):
            conn.execute(text("INSERT INTO hwnas_bench_scale VALUES (:i, :p)"), {"i": i, "p": "x" * 200})
            conn.commit()
        seconds = time.perf_counter() - start
    engine.dispose()
    return {"transactions": n, "per_second": n / seconds}


def latency_lookups(n: int = 2000) -> dict[str, Any]:
    from latency_tables.api import load_predictor
    from searchspace.spec import load_space

    space = load_space(SPACE)
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(n + 210)]  # distinct nets for each measurement: none cached
    predictor = load_predictor(PROFILE, space=SPACE)
    predictor.predict_many(archs[n : n + 10])
    cpu = time.process_time()
    predictor.predict_many(archs[:n])
    many = time.process_time() - cpu
    cpu = time.process_time()
    for a in archs[n + 10 :]:
        predictor.predict_many([a])
    one = (time.process_time() - cpu) / 200
    return {"nets": n, "batched_us_per_net": 1e6 * many / n, "one_at_a_time_us_per_net": 1e6 * one}


def ray_round_trip(tasks: int = 300) -> dict[str, Any]:
    from nas.evaluate import EvalSettings
    from nas.executors import Job, RayExecutor
    from searchspace.spec import load_space

    arch = load_space(SPACE).sample(0).encode()
    start = time.perf_counter()
    executor = RayExecutor(2)
    started = time.perf_counter() - start
    try:
        from nas.datasets import DataSpec

        settings = EvalSettings(dataset=DataSpec().model_dump(mode="json"))
        for warm in range(4):  # the workers' first task imports the project
            executor.submit(Job(("warm", warm), arch, ["params"], settings))
        while executor.pending():
            executor.poll(0.5)
        start = time.perf_counter()
        for i in range(tasks):
            executor.submit(Job(i, arch, ["params"], settings))
        done = 0
        while executor.pending():
            done += len(executor.poll(0.5))
        seconds = time.perf_counter() - start
    finally:
        executor.close()
    return {
        "tasks": tasks,
        "workers": 2,
        "tasks_per_second": tasks / seconds,
        "ms_per_task": 1000 * seconds / tasks,
        "ray_start_seconds": started,
    }


def proxy_seconds(names: tuple[str, ...] = ("meco_opt", "synflow", "naswot"), nets: int = 8) -> dict[str, float]:
    import torch

    from nas import proxies
    from searchspace.spec import load_space

    torch.set_num_threads(1)
    space = load_space(SPACE)
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(nets)]
    out = {}
    for name in names:
        proxies.score(name, archs[0])  # warm: imports, the batch
        cpu = time.process_time()
        for a in archs:
            proxies.score(name, a)
        out[name] = (time.process_time() - cpu) / nets
    return out


@contextlib.contextmanager
def scratch_database(server_url: str) -> Iterator[str]:
    """A database of its own on the server of ``server_url``, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(server_url)
    name = f"hwnas_bench_scale_{os.getpid()}"

    def admin(sql: str) -> None:
        with psycopg.connect(
            host=u.host or "127.0.0.1",
            port=u.port or 5432,
            user=u.username or "postgres",
            password=u.password,
            dbname=u.database or "postgres",
            autocommit=True,
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    url = u.set(database=name).render_as_string(hide_password=False)
    admin(f"CREATE DATABASE {name}")
    try:
        yield url
    finally:
        from service.db import get_engine

        get_engine(url).dispose()
        admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trials", type=int, default=300)
    p.add_argument(
        "--postgres",
        default=os.environ.get("HWNAS_TEST_POSTGRES_URL"),
        help="a PostgreSQL database to create the job in (default $HWNAS_TEST_POSTGRES_URL)",
    )
    args = p.parse_args(argv)
    import tempfile

    counter = StatementCounter()
    results: dict[str, Any] = {
        "settings": {
            "trials": args.trials,
            "space": SPACE,
            "profile": PROFILE,
            "load_average_before": list(os.getloadavg()),
        }
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["controller_sqlite"] = controller(f"sqlite:///{tmp}/scale.db", args.trials, counter)
        results["write_capacity_sqlite"] = write_capacity(f"sqlite:///{tmp}/capacity.db")
    if args.postgres:
        with scratch_database(args.postgres) as url:
            results["controller_postgresql"] = controller(url, args.trials, counter)
            results["write_capacity_postgresql"] = write_capacity(url)
    results["latency_lookups"] = latency_lookups()
    results["ray"] = ray_round_trip()
    results["proxy_cpu_seconds_per_net"] = proxy_seconds()
    results["settings"]["load_average_after"] = list(os.getloadavg())

    rows = []
    for backend in ("sqlite", "postgresql"):
        c = results.get(f"controller_{backend}")
        if c:
            rows.append((f"controller CPU ms / trial ({backend})", f"{c['cpu_ms_per_trial']:.1f}"))
            rows.append((f"controller wall ms / trial ({backend})", f"{c['wall_ms_per_trial']:.1f}"))
            rows.append(
                (
                    f"statements / trial ({backend})",
                    f"{c['statements_per_trial']:.1f} "
                    + " ".join(f"{k} {v:.1f}" for k, v in c["by_kind_per_trial"].items()),
                )
            )
            w = results[f"write_capacity_{backend}"]
            rows.append((f"1-row write transactions / s ({backend}, one client)", f"{w['per_second']:.0f}"))
    lk = results["latency_lookups"]
    rows.append(
        (
            "latency lookup us / net (batched / one at a time)",
            f"{lk['batched_us_per_net']:.0f} / {lk['one_at_a_time_us_per_net']:.0f}",
        )
    )
    rows.append(("Ray round trip ms / task (2 workers, nothing to compute)", f"{results['ray']['ms_per_task']:.2f}"))
    for name, sec in results["proxy_cpu_seconds_per_net"].items():
        rows.append((f"proxy {name}: CPU s / 32x32 net", f"{sec:.3f}"))
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    path = write_results("scale", results)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
