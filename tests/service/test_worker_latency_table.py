"""A job's latency table through the service: the worker shows the first-use build as the job's progress, the
job and its results say which table each latency came from, and a table of another host is flagged in the API,
the CLI and the trials' CSV. The build itself is faked (tests/nas/test_first_use_search.py builds a real one)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from latency_tables.table import user_table_dir
from service import worker as worker_module
from service.db import session_scope
from service.models import Job
from service.worker import Worker
from tests.nas.test_first_use_search import (
    FP32,
    LATENCY,
    FakeFirstUse,
    no_first_use,
    other_host,
    save_shipped,
    tiny_table,
)
from tests.service.conftest import RunCli, World
from tests.specs import TINY_SPEC


def job_config(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "space": TINY_SPEC,
        "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": LATENCY, "direction": "minimize"}],
        "strategy": {"name": "random"},
        "budget": {"trials": 4},
        "workers": 1,
        "seed": 1,
    }
    data.update(over)
    return data


def submit(world: World, **over: Any) -> dict[str, Any]:
    r = world.client.post("/api/v1/jobs", json=job_config(**over), headers=world.as_user("alice"))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def run_queued(world: World) -> None:
    Worker(world.settings, name="test-worker").run(max_jobs=1, idle_exit=5)


def test_the_worker_shows_the_first_use_build_as_the_jobs_progress(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_shipped(tiny_table(host=other_host()))  # a new host: the table there is describes another one
    monkeypatch.setattr(worker_module, "TABLE_REPORT_SECONDS", 0.0)
    job = submit(world)
    seen: list[tuple[str, int, list[str]]] = []

    def look() -> None:  # what a client sees while the table is built
        with session_scope(world.settings.database_url) as session:
            row = session.scalars(select(Job).where(Job.id == job["id"])).one()
            seen.append((row.status, row.trials_done, json.loads(row.notes)))

    events: list[str] = []
    FakeFirstUse(monkeypatch, events, hook=look)
    run_queued(world)
    assert events == ["build"]
    assert {(status, done) for status, done, _ in seen} == {("running", 0)}
    assert [notes for _, _, notes in seen] == [
        *[[f"latency table {FP32}: measuring this host's layers {i}/3"] for i in range(3)],
        *[[f"latency table {FP32}: measuring calibration nets {i}/2"] for i in range(2)],
    ]
    alice = world.as_user("alice")
    done = world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).json()
    assert done["status"] == "succeeded", done
    assert any(n.startswith(f"built this host's latency table {FP32}@") for n in done["notes"])
    [chosen] = done["latency_tables"]
    assert (chosen["profile"], chosen["source"], chosen["verdict"]) == (FP32, "host", "same")
    assert chosen["built_now"] and not chosen["foreign"] and chosen["warning"] is None
    assert (chosen["layers_measured"], chosen["nets_measured"]) == (3, 2)
    assert chosen["path"] == str(user_table_dir() / tiny_table().default_filename())
    trials = world.client.get(f"/api/v1/jobs/{job['id']}/trials", headers=alice).json()["data"]
    assert len(trials) == 4 and not any(t["latency_foreign"] for t in trials)
    front = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()
    assert front["latency_warnings"] == [] and not any(p["latency_foreign"] for p in front["data"])


def test_a_job_on_a_table_of_another_host_is_flagged_everywhere(
    world: World, monkeypatch: pytest.MonkeyPatch, cli: RunCli
) -> None:
    save_shipped(tiny_table(host=other_host()))
    no_first_use(monkeypatch)
    job = submit(world, latency_table="shipped")
    with pytest.warns(UserWarning, match="another host"):
        run_queued(world)
    alice = world.as_user("alice")
    done = world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).json()
    assert done["status"] == "succeeded", done
    [chosen] = done["latency_tables"]
    command = f"hwnas lut build --profile {FP32} --space SPACE --first-use"
    assert chosen["source"] == "shipped" and chosen["foreign"] and chosen["build_command"] == command
    assert chosen["warning"].endswith(f"build this host's table: {command}") and chosen["reasons"]
    trials = world.client.get(f"/api/v1/jobs/{job['id']}/trials", headers=alice).json()["data"]
    assert len(trials) == 4 and all(t["latency_foreign"] for t in trials)
    one = world.client.get(f"/api/v1/jobs/{job['id']}/trials/{trials[0]['number']}", headers=alice).json()
    assert one["latency_foreign"] is True
    front = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()
    assert front["data"] and all(p["latency_foreign"] for p in front["data"])
    assert front["latency_warnings"] == [chosen["warning"]]
    text = world.client.get(f"/api/v1/jobs/{job['id']}/trials", params={"format": "csv"}, headers=alice).text
    assert {r["latency_foreign"] for r in csv.DictReader(io.StringIO(text))} == {"True"}

    # `hwnas status` and `hwnas pareto` print the warning with the command
    from service.cli import client as client_module

    def answer(self: Any, method: str, path: str, **kw: Any) -> Any:
        return world.client.request(method, path, headers=alice, **kw).json()

    monkeypatch.setattr(client_module.Client, "json", answer)
    code, out, _ = cli("status", job["id"])
    assert code == 0 and f"  warning: {chosen['warning']}" in out.splitlines()
    code, out, _ = cli("pareto", job["id"])
    assert code == 0 and f"warning: {chosen['warning']}" in out.splitlines()


def test_a_job_names_table_files_of_the_servers_table_folder_only(world: World, tmp_path: Path) -> None:
    alice = world.as_user("alice")
    elsewhere = tiny_table().save(tmp_path / "elsewhere.json.gz")
    for value in (str(elsewhere), "/etc/passwd.json", str(user_table_dir() / ".." / "x.json.gz")):
        r = world.client.post("/api/v1/jobs", json=job_config(latency_table=value), headers=alice)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "latency_table"
        assert "a job may name table files in" in r.json()["detail"]
    mine = tiny_table().save(user_table_dir() / "mine.json.gz")
    assert submit(world, latency_table=str(mine))["config"]["latency_table"] == str(mine)
    r = world.client.post("/api/v1/jobs", json=job_config(latency_table="fastest"), headers=alice)
    assert r.status_code == 422 and "latency_table: expected auto, host, shipped" in r.json()["detail"]


# ------------------------------------------------------------ `hwnas search`, without the service
def test_hwnas_search_shows_the_build_and_warns_about_a_foreign_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: RunCli, isolated_tables: Path
) -> None:
    save_shipped(tiny_table(host=other_host()))
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(job_config(name="auto")))
    FakeFirstUse(monkeypatch, [])
    code, out, err = cli("search", str(path), "--out", str(tmp_path / "auto"))
    assert code == 0, err
    assert f"latency table {FP32}: measuring this host's layers [" in err
    assert f"latency table {FP32}: measuring calibration nets [" in err
    assert f"built this host's latency table {FP32}@" in err
    assert "warning:" not in out and "(foreign table)" not in out

    path.write_text(yaml.safe_dump(job_config(name="shipped", latency_table="shipped")))
    no_first_use(monkeypatch)
    with pytest.warns(UserWarning, match="another host"):
        code, out, err = cli("search", str(path), "--out", str(tmp_path / "shipped"))
    assert code == 0, err
    assert f"{LATENCY} (foreign table)" in out
    [warning] = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert warning.startswith(f"warning: {LATENCY} predicted from latency table {FP32}@")
    assert warning.endswith(f"build this host's table: hwnas lut build --profile {FP32} --space SPACE --first-use")


def test_ray_starts_once_every_latency_table_is_chosen(world: World) -> None:
    """A job that needs Ray starts it after the table builds, whose measurements its processes would disturb."""
    from nas.table_choice import TableChoice, TableEvent

    started: list[str] = []
    report = Worker(world.settings)._table_reporter("0" * 32, 2, then=lambda: started.append("ray"))

    def chosen(profile: str) -> TableEvent:
        choice = TableChoice(profile, [f"latency:{profile}"], "host", f"{profile}@here", "p", "same")
        return TableEvent(profile, 1, 1, "done", choice)

    report(TableEvent(FP32, 0, 10, "measuring this host's layers"))
    report(chosen(FP32))
    assert started == []
    report(TableEvent("ort-cpu-int8-t1", 5, 10, "measuring this host's layers"))
    report(chosen("ort-cpu-int8-t1"))
    assert started == ["ray"]
