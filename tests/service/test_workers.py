"""Worker processes against a real database: sharing a queue, surviving kill -9, and the whole CLI session."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.db import session_scope
from service.models import Job
from tests.specs import SYNFLOW_VS_PARAMS


def worker_env(database_url: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HWNAS_DATABASE_URL": database_url,
        "HWNAS_LEASE_SECONDS": "3",
        "HWNAS_HEARTBEAT_SECONDS": "0.5",
        "HWNAS_POLL_SECONDS": "0.2",
        "OMP_NUM_THREADS": "1",
        **extra,
    }


def start_worker(database_url: str, log: Path, *args: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", *args],
            env=worker_env(database_url),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture()
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Every process a test starts is killed at its end, pass or fail."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)


def queue_jobs(database_url: str, n: int, **over: Any) -> list[str]:
    from nas.config import SearchConfig
    from service import jobs
    from service.security import get_or_create_user

    data: dict[str, Any] = {
        "space": "mobilenetv2-cifar",
        "strategy": {"name": "random"},
        "budget": {"trials": 3},
        "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "maximize"}],
        "workers": 1,
    }
    data.update(over)
    config = SearchConfig.parse(data)
    with session_scope(database_url) as session:
        owner = get_or_create_user(session, "alice")
        return [jobs.create_job(session, owner=owner, config=config).id for _ in range(n)]


def study_trials(database_url: str, job_id: str) -> dict[int, tuple[str, tuple[float, ...] | None, str]]:
    """number -> (state, values, params as JSON) of the job's study, read straight from Optuna."""
    import optuna

    from service.db import engine_kwargs

    storage = optuna.storages.RDBStorage(database_url, engine_kwargs=engine_kwargs(database_url))
    try:
        study = optuna.load_study(study_name=f"hwnas-job-{job_id}", storage=storage)
        return {
            t.number: (t.state.name, tuple(t.values) if t.values else None, json.dumps(t.params, sort_keys=True))
            for t in study.get_trials(deepcopy=False)
        }
    finally:
        # polled many times a second: a pool left to the garbage collector each time ran PostgreSQL out of
        # connections in CI ("too many clients already")
        storage.engine.dispose()


@pytest.mark.slow  # two worker processes through twenty jobs: ~16 s
def test_two_workers_twenty_jobs_none_run_twice(
    postgres_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    from service.db import upgrade

    upgrade(postgres_url)
    ids = queue_jobs(postgres_url, 20)
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    for log in logs:
        processes.append(start_worker(postgres_url, log, "--idle-exit", "4"))
    for p in processes:
        assert p.wait(timeout=300) == 0
    ran = [set(re.findall(r"job ([0-9a-f]{32}): succeeded", log.read_text())) for log in logs]
    assert ran[0] | ran[1] == set(ids), "\n".join(log.read_text() for log in logs)
    assert not ran[0] & ran[1]  # no job run by both
    assert ran[0] and ran[1]  # both took a share
    with session_scope(postgres_url) as session:
        rows = session.scalars(select(Job).where(Job.id.in_(ids))).all()
        assert {j.status for j in rows} == {"succeeded"} and {j.attempts for j in rows} == {1}
    for job_id in ids:
        trials = study_trials(postgres_url, job_id)
        assert sorted(trials) == [0, 1, 2] and all(s == "COMPLETE" for s, _, _ in trials.values())


@pytest.mark.slow  # a worker killed and restarted five times: ~40 s
def test_kill_9_the_worker_five_times_loses_no_finished_trial(
    postgres_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    from service.db import upgrade

    upgrade(postgres_url)
    budget = 40
    (job_id,) = queue_jobs(
        postgres_url, 1, budget={"trials": budget}, objectives=SYNFLOW_VS_PARAMS, proxy={"batch_size": 8}
    )
    log = tmp_path / "workers.log"
    kept: dict[int, tuple[str, tuple[float, ...] | None, str]] = {}
    for kill in range(5):
        worker = start_worker(postgres_url, log)
        processes.append(worker)
        deadline = time.monotonic() + 120
        before = len(kept)
        while time.monotonic() < deadline:
            try:
                now = study_trials(postgres_url, job_id)
            except KeyError:  # the study is created by the first worker
                now = {}
            finished = {n: t for n, t in now.items() if t[0] in ("COMPLETE", "FAIL")}
            if len(finished) >= before + 3:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"kill {kill}: no progress in 120 s\n{log.read_text()[-3000:]}")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        after = {n: t for n, t in study_trials(postgres_url, job_id).items() if t[0] in ("COMPLETE", "FAIL")}
        assert all(after[n] == t for n, t in kept.items()), f"kill {kill}: a finished trial changed or vanished"
        kept = after
        assert len(kept) < budget, "the job finished before the kills were done; give it more trials"
    final = start_worker(postgres_url, log, "--max-jobs", "1")
    processes.append(final)
    assert final.wait(timeout=300) == 0, log.read_text()[-3000:]
    trials = study_trials(postgres_url, job_id)
    finished = {n: t for n, t in trials.items() if t[0] in ("COMPLETE", "FAIL")}
    assert all(finished[n] == t for n, t in kept.items())  # every trial finished before a kill is still there
    assert len(finished) == budget  # and the budget counts them: nothing was evaluated twice into it
    with session_scope(postgres_url) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "succeeded" and job.attempts == 6, (job and job.status, job.error)
        assert job.trials_done == budget


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # a live server and CLI subprocesses: ~14 s
def test_the_cli_session_against_a_live_server(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]], isolated_tables: Path
) -> None:
    """`hwnas serve` with auth required, a key from `hwnas keys create`, then submit --watch, jobs, pareto, download."""
    url = f"sqlite:///{tmp_path / 'hwnas.db'}"
    port = _free_port()
    env = worker_env(url, HWNAS_AUTH="required", HWNAS_DATA_DIR=str(tmp_path / "data"))

    def hwnas(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run(
            [sys.executable, "-m", "service.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        assert (r.returncode == 0) == ok, (args, r.stdout, r.stderr)
        return r

    refused = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert refused.returncode == 2 and "hwnas keys create --name NAME" in refused.stderr  # no key yet
    key = hwnas("keys", "create", "--name", "laptop", "--user", "alice").stdout.splitlines()[0]
    assert key.startswith("hwnas_")
    with (tmp_path / "serve.log").open("wb") as out:
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
        )
    server = f"http://127.0.0.1:{port}"
    env.update(HWNAS_SERVER=server)
    import httpx

    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{server}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
        time.sleep(0.3)
    assert "401" in hwnas("jobs", ok=False).stderr  # running, but refuses without the key
    env.update(HWNAS_API_KEY=key)
    config = tmp_path / "job.yaml"
    config.write_text(
        "space: mobilenetv2-cifar\nobjectives:\n  - {metric: params, direction: minimize}\n"
        "  - {metric: macs, direction: maximize}\nstrategy: {name: random}\nbudget: {trials: 6}\n"
    )
    job_id = hwnas("submit", str(config), "--watch").stdout.strip()
    status = json.loads(hwnas("status", job_id, "--json").stdout)
    assert status["status"] == "succeeded" and status["progress"]["done"] == 6
    assert job_id in hwnas("jobs").stdout
    front = json.loads(hwnas("pareto", job_id, "--json").stdout)
    best = front["data"][0]["arch_id"]
    hwnas("download", best, "--format", "onnx", "-o", str(tmp_path / "best.onnx"))
    import onnxruntime as ort

    session = ort.InferenceSession(str(tmp_path / "best.onnx"), providers=["CPUExecutionProvider"])
    assert session.get_outputs()[0].shape[-1] == 10
    missing = hwnas("status", "0" * 32, ok=False)
    assert missing.returncode == 2 and "404" in missing.stderr and "Traceback" not in missing.stderr
    listed = hwnas("keys", "list").stdout
    assert "alice" in listed and key not in listed
