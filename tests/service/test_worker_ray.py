"""A worker that cannot start or reach Ray tries again, then gives the job back instead of failing it (the
worker's trouble, not the job's); a job given back that way too often fails with Ray's error, naming the
setting. Ray itself is faked: tests/deploy/test_local_cluster.py runs a real cluster."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import ray
from sqlalchemy import update

from service import worker as worker_module
from service.db import session_scope
from service.models import Job
from service.worker import RayUnreachable, Worker
from tests.service.conftest import World, make_settings
from tests.specs import TINY_SPEC

ADDRESS = "ray://127.0.0.1:1"


class FakeRay:
    """ray.init failing its first ``failures`` calls (as a busy head's client server does), then working."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.inits = 0
        self.shutdowns = 0
        self.up = False

    def init(self, **kwargs: Any) -> None:
        self.inits += 1
        if self.inits <= self.failures:
            raise ConnectionError("Starting Ray client server failed. See ray_client_server_23001.err")
        self.up = True

    def shutdown(self) -> None:
        self.shutdowns += 1
        self.up = False

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(ray, "init", self.init)
        monkeypatch.setattr(ray, "shutdown", self.shutdown)
        monkeypatch.setattr(ray, "is_initialized", lambda: self.up)
        monkeypatch.setattr(worker_module, "RAY_CONNECT_PAUSES", (0.0, 0.0, 0.0))


def test_a_failed_connection_is_tried_again_and_a_half_made_one_shut_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeRay(failures=2)
    fake.install(monkeypatch)
    w = Worker(make_settings(f"sqlite:///{tmp_path / 'db.sqlite'}", tmp_path, ray_address=ADDRESS))
    w._ensure_ray()
    assert (fake.inits, fake.shutdowns, fake.up) == (3, 2, True)
    w._ensure_ray()  # connected: nothing more
    assert fake.inits == 3

    never = FakeRay(failures=99)
    never.install(monkeypatch)
    with pytest.raises(RayUnreachable, match=r"HWNAS_RAY_ADDRESS=ray://127\.0\.0\.1:1: .* after 4 attempts"):
        w._ensure_ray()
    assert never.inits == 4


def job_row(url: str, job_id: str) -> dict[str, Any]:
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return {
            "status": job.status,
            "worker": job.worker,
            "lease_expires": job.lease_expires,
            "attempts": job.attempts,
            "error": job.error,
            "notes": json.loads(job.notes or "[]"),
        }


def test_a_job_whose_worker_cannot_reach_ray_is_given_back_then_failed(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeRay(failures=99).install(monkeypatch)
    config = {
        "space": TINY_SPEC,
        "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "maximize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
        "workers": 2,
    }
    r = world.client.post("/api/v1/jobs", json=config, headers=world.as_user("alice"))
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    url = world.settings.database_url
    settings = make_settings(url, tmp_path, ray_address=ADDRESS)

    before = time.time()
    Worker(settings, name="w1").run(max_jobs=1, idle_exit=5)
    row = job_row(url, job_id)
    # given back: no worker holds it, and none claims it before the pause
    assert (row["status"], row["worker"], row["error"], row["attempts"]) == ("running", None, None, 1), row
    assert row["lease_expires"] >= before + worker_module.RAY_RETRY_AFTER - 1
    assert "waiting for Ray (claim 1 of 5)" in row["notes"][0] and ADDRESS in row["notes"][0], row["notes"]
    seen = world.client.get(f"/api/v1/jobs/{job_id}", headers=world.as_user("alice")).json()
    assert seen["status"] == "running" and seen["notes"] == row["notes"]
    Worker(settings, name="w2").run(max_jobs=1, idle_exit=0.5)
    assert job_row(url, job_id)["attempts"] == 1

    # the pause over, claimed for the fifth time: Ray's error, naming the setting
    with session_scope(url) as session:
        session.execute(update(Job).where(Job.id == job_id).values(attempts=4, lease_expires=time.time() - 1))
    Worker(settings, name="w3").run(max_jobs=1, idle_exit=5)
    row = job_row(url, job_id)
    assert (row["status"], row["worker"], row["attempts"]) == ("failed", None, 5), row
    assert row["error"].startswith(f"HWNAS_RAY_ADDRESS={ADDRESS}: cannot start or reach Ray after 4 attempts")
    assert "Starting Ray client server failed" in row["error"]
