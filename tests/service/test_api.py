"""The REST API through the real app, on SQLite and on PostgreSQL: jobs, trials, fronts, downloads, auth."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.db import head_revision
from service.worker import Worker
from tests.service.conftest import World
from tests.specs import ALL_BLOCKS, SYNFLOW_VS_PARAMS


def job_config(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "space": ALL_BLOCKS,
        "objectives": SYNFLOW_VS_PARAMS,
        "strategy": {"name": "random"},
        "budget": {"trials": 8},
        "workers": 1,
        "seed": 1,
    }
    data.update(over)
    return data


def submit(world: World, user: str = "alice", **over: Any) -> dict[str, Any]:
    r = world.client.post("/api/v1/jobs", json=job_config(**over), headers=world.as_user(user))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


def run_queued(world: World, jobs: int = 1) -> None:
    Worker(world.settings, name="test-worker").run(max_jobs=jobs, idle_exit=5)


def test_a_whole_job_from_post_to_downloads(world: World, tmp_path: Path) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    assert job["status"] == "queued" and job["config"]["budget"] == {"trials": 8, "seconds": None}
    run_queued(world)
    done = world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).json()
    assert done["status"] == "succeeded", done
    assert done["progress"]["done"] == 8 and done["progress"]["fraction"] == 1.0
    assert set(done["best"]) == {"proxy:synflow", "params"} and done["hypervolume"] is not None

    trials = world.client.get(f"/api/v1/jobs/{job['id']}/trials", headers=alice).json()
    assert trials["count"] == 8 and [t["number"] for t in trials["data"]] == list(range(8))
    front = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()
    on_front = {t["number"] for t in trials["data"] if t["on_front"]}
    assert {p["number"] for p in front["data"]} == on_front and front["count"] == len(on_front) >= 1
    # the front is exactly the non-dominated feasible trials
    pts = np.array([[-t["metrics"]["proxy:synflow"], t["metrics"]["params"]] for t in trials["data"]])
    expected = {
        t["number"]
        for t, p in zip(trials["data"], pts, strict=True)
        if not any(np.all(q <= p) and np.any(q < p) for q in pts)
    }
    assert on_front == expected
    best = front["data"][0]
    assert best["encoding"].startswith("r16_i3|")

    arch = world.client.get(f"/api/v1/architectures/{best['arch_id']}", headers=alice).json()
    assert arch["arch_id"] == best["arch_id"] and arch["jobs"] == [job["id"]]
    assert arch["cost"]["params"] == best["metrics"]["params"]

    onnx = world.client.get(
        f"/api/v1/architectures/{best['arch_id']}/download", params={"format": "onnx"}, headers=alice
    )
    assert onnx.status_code == 200 and best["arch_id"] in onnx.headers["content-disposition"]
    import onnxruntime as ort

    session = ort.InferenceSession(onnx.content, providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 16, 16), dtype=np.float32)})[0]
    assert out.shape == (1, 5) and np.isfinite(out).all()

    code = world.client.get(
        f"/api/v1/architectures/{best['arch_id']}/download", params={"format": "pytorch"}, headers=alice
    )
    assert code.status_code == 200
    path = tmp_path / "net.py"
    path.write_bytes(code.content)
    script = textwrap.dedent(f"""
        import importlib.util, torch
        spec = importlib.util.spec_from_file_location("net", {str(path)!r})
        module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
        model = module.build_model().eval()
        print(tuple(model(torch.zeros(2, 3, 16, 16)).shape))
    """)
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "(2, 5)"

    card = world.client.get(
        f"/api/v1/architectures/{best['arch_id']}/download", params={"format": "card"}, headers=alice
    )
    assert card.status_code == 200 and job["id"] in card.text and best["arch_id"] in card.text


def test_a_job_on_proxy_default_says_which_proxy_it_was(world: World) -> None:
    """proxy:default is a name whose meaning the evidence may change: the job's notes and its nets' model cards
    say what it stood for when the job ran."""
    from nas.proxies import default_proxy

    alice = world.as_user("alice")
    job = submit(
        world,
        objectives=[
            {"metric": "proxy:default", "direction": "maximize"},
            {"metric": "params", "direction": "minimize"},
        ],
        budget={"trials": 3},
        dataset={"name": "synthetic"},
    )
    run_queued(world)
    done = world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).json()
    assert done["status"] == "succeeded", done
    assert f"proxy:default stands for {default_proxy()} (nas/proxies/default.json)" in done["notes"]
    best = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()["data"][0]
    card = world.client.get(
        f"/api/v1/architectures/{best['arch_id']}/download", params={"format": "card"}, headers=alice
    )
    assert card.status_code == 200 and f"proxy:default -> {default_proxy()}" in card.text


def test_trials_sort_filter_paginate_and_csv(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world, budget={"trials": 12})
    run_queued(world)
    url = f"/api/v1/jobs/{job['id']}/trials"
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"sort": "params", "order": "desc", "limit": 5}
        if cursor:
            params["cursor"] = cursor
        page = world.client.get(url, params=params, headers=alice).json()
        pages.append(page)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    values = [t["metrics"]["params"] for p in pages for t in p["data"]]
    assert len(pages) == 3 and len(values) == 12 and values == sorted(values, reverse=True)
    front_only = world.client.get(url, params={"on_front": True}, headers=alice).json()
    assert front_only["count"] == len(
        world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()["data"]
    )
    csv = world.client.get(url, params={"format": "csv", "sort": "proxy:synflow"}, headers=alice)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.strip().splitlines()
    assert len(lines) == 13 and lines[0].startswith("number,state,arch_id,feasible,on_front,params,proxy:synflow")
    bad = world.client.get(url, params={"sort": "accuracy"}, headers=alice)
    assert bad.status_code == 422 and "sort: unknown metric 'accuracy'" in bad.json()["detail"]
    hv = world.client.get(f"/api/v1/jobs/{job['id']}/hypervolume", headers=alice).json()["data"]
    assert hv and all(a["hypervolume"] <= b["hypervolume"] + 1e-9 for a, b in zip(hv, hv[1:], strict=False))


def test_jobs_list_is_own_filtered_and_paginated(world: World) -> None:
    ids = [submit(world)["id"] for _ in range(5)]
    submit(world, user="bob")
    alice = world.as_user("alice")
    page1 = world.client.get("/api/v1/jobs", params={"limit": 2}, headers=alice).json()
    assert page1["count"] == 5 and len(page1["data"]) == 2 and page1["next_cursor"]
    seen = [j["id"] for j in page1["data"]]
    cursor = page1["next_cursor"]
    while cursor:
        page = world.client.get("/api/v1/jobs", params={"limit": 2, "cursor": cursor}, headers=alice).json()
        seen += [j["id"] for j in page["data"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(ids) and len(seen) == 5  # newest first, none twice, none of bob's
    queued = world.client.get("/api/v1/jobs", params={"status": "succeeded"}, headers=alice).json()
    assert queued["count"] == 0


def test_cancel_a_queued_and_a_running_job_keeps_what_it_found(world: World) -> None:
    alice = world.as_user("alice")
    queued = submit(world)
    r = world.client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=alice)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    again = world.client.post(f"/api/v1/jobs/{queued['id']}/cancel", headers=alice)
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]

    running = submit(world, budget={"seconds": 120})
    worker = Worker(world.settings, name="cancel-worker")
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        state = world.client.get(f"/api/v1/jobs/{running['id']}", headers=alice).json()
        if state["progress"]["done"] >= 3:
            break
        time.sleep(0.2)
    asked = time.monotonic()
    assert world.client.post(f"/api/v1/jobs/{running['id']}/cancel", headers=alice).json()["cancel_requested"]
    thread.join(timeout=30)
    took = time.monotonic() - asked
    final = world.client.get(f"/api/v1/jobs/{running['id']}", headers=alice).json()
    assert not thread.is_alive() and final["status"] == "cancelled", final
    assert took < 15
    kept = world.client.get(f"/api/v1/jobs/{running['id']}/trials", headers=alice).json()["count"]
    assert kept >= 3 and final["progress"]["done"] == kept


def test_delete_only_finished_jobs_and_everything_goes(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    r = world.client.delete(f"/api/v1/jobs/{job['id']}", headers=alice)
    assert r.status_code == 409 and "cancel it first" in r.json()["detail"]
    run_queued(world)
    assert world.client.delete(f"/api/v1/jobs/{job['id']}", headers=alice).status_code == 204
    assert world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).status_code == 404
    assert world.client.get(f"/api/v1/jobs/{job['id']}/trials", headers=alice).status_code == 404
    import optuna

    from service.db import engine_kwargs

    storage = optuna.storages.RDBStorage(
        world.settings.database_url, engine_kwargs=engine_kwargs(world.settings.database_url)
    )
    assert f"hwnas-job-{job['id']}" not in {s.study_name for s in optuna.get_all_study_summaries(storage)}


def test_a_bad_job_fails_with_its_reason_and_the_worker_goes_on(world: World) -> None:
    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.table import LatencyTable, user_table_dir

    alice = world.as_user("alice")
    # a layer the (empty) latency table lacks, with measuring forbidden: the job fails, not the worker
    empty = LatencyTable(profile=DeviceProfile.parse("ort-cpu-fp32-t1"), host=HostInfo.current())
    bad = submit(
        world,
        objectives=[
            {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
            {"metric": "params", "direction": "minimize"},
        ],
        latency_missing="error",
        latency_table=str(empty.save(user_table_dir() / "empty.json.gz")),
    )
    good = submit(world)
    run_queued(world, jobs=2)
    failed = world.client.get(f"/api/v1/jobs/{bad['id']}", headers=alice).json()
    assert failed["status"] == "failed" and failed["error"].startswith("all 8 trials failed; the first: latency")
    trials = world.client.get(f"/api/v1/jobs/{bad['id']}/trials", headers=alice).json()["data"]
    assert all(t["state"] == "FAIL" and "latency" in (t["error"] or "") for t in trials)
    assert world.client.get(f"/api/v1/jobs/{good['id']}", headers=alice).json()["status"] == "succeeded"


def test_auth_isolation_between_users(world: World) -> None:
    job = submit(world)
    run_queued(world)
    alice, bob = world.as_user("alice"), world.as_user("bob")
    arch_id = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()["data"][0]["arch_id"]
    assert world.client.get("/api/v1/jobs", headers=bob).json()["count"] == 0
    for method, url in [
        ("GET", f"/api/v1/jobs/{job['id']}"),
        ("GET", f"/api/v1/jobs/{job['id']}/trials"),
        ("GET", f"/api/v1/jobs/{job['id']}/pareto"),
        ("GET", f"/api/v1/jobs/{job['id']}/hypervolume"),
        ("GET", f"/api/v1/jobs/{job['id']}/events"),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel"),
        ("DELETE", f"/api/v1/jobs/{job['id']}"),
        ("GET", f"/api/v1/architectures/{arch_id}"),
        ("GET", f"/api/v1/architectures/{arch_id}/download?format=onnx"),
    ]:
        r = world.client.request(method, url, headers=bob)
        assert r.status_code == 404, (method, url, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
    # alice still has everything
    assert world.client.get(f"/api/v1/jobs/{job['id']}", headers=alice).json()["status"] == "succeeded"


def test_keys_401_and_never_stored_in_clear(world: World) -> None:
    assert world.client.get("/api/v1/jobs").status_code == 401
    r = world.client.get("/api/v1/jobs", headers={"Authorization": "Bearer hwnas_abcdefgh_" + "x" * 40})
    assert r.status_code == 401 and r.json()["detail"] == "Authorization: this API key is not valid"
    assert r.headers["www-authenticate"] == "Bearer"
    r = world.client.get("/api/v1/jobs", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert r.status_code == 401 and "Bearer" in r.json()["detail"]
    from sqlalchemy import text

    from service.db import get_engine, session_scope
    from service.security import revoke_key

    with get_engine(world.settings.database_url).connect() as conn:
        stored = [tuple(str(c) for c in row) for row in conn.execute(text("SELECT * FROM hwnas_api_keys"))]
    flat = " ".join(" ".join(row) for row in stored)
    for key in world.keys.values():
        secret = key.split("_", 2)[2]
        assert secret not in flat and key not in flat
        assert key.split("_")[1] in flat  # the prefix is stored (and shown in listings)
    with session_scope(world.settings.database_url) as session:
        revoke_key(session, world.keys["bob"].split("_")[1])
    r = world.client.get("/api/v1/jobs", headers=world.as_user("bob"))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_server_without_keys_refuses_to_listen_beyond_localhost(tmp_path: Path, isolated_tables: Path) -> None:
    from service.api.main import create_app
    from service.errors import StartupError
    from tests.service.conftest import make_settings

    url = f"sqlite:///{tmp_path / 'k.db'}"
    with pytest.raises(StartupError, match=r"hwnas keys create --name NAME"):
        create_app(make_settings(url, tmp_path, host="0.0.0.0", auth="auto"))
    from fastapi.testclient import TestClient

    local = TestClient(create_app(make_settings(url, tmp_path, host="127.0.0.1", auth="auto")))
    r = local.post("/api/v1/jobs", json=job_config())
    assert r.status_code == 201 and r.json()["owner"] == "local"


def test_live_progress_as_server_sent_events(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    with world.client.stream("GET", f"/api/v1/jobs/{job['id']}/events", headers=alice) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        body = r.read().decode()
    events = [json.loads(line[5:]) for line in body.splitlines() if line.startswith("data:")]
    assert events and events[-1]["status"] == "succeeded" and events[-1]["progress"]["done"] == 8
    assert "event: job" in body


def test_limits_are_named(world: World, tmp_path: Path) -> None:
    alice = world.as_user("alice")
    r = world.client.post("/api/v1/jobs", json=job_config(budget={"trials": 10**6}), headers=alice)
    assert r.status_code == 422 and "budget.trials" in r.json()["detail"] and "HWNAS_MAX_TRIALS" in r.json()["detail"]
    r = world.client.post("/api/v1/jobs", json=job_config(workers=1000), headers=alice)
    assert r.status_code == 422 and "HWNAS_MAX_WORKERS" in r.json()["detail"]
    r = world.client.post("/api/v1/jobs", json=job_config(space="mobilenetv2"), headers=alice)
    assert r.status_code == 201  # 224x224 is within the default limits
    assert world.client.get("/api/v1/jobs", headers=alice).json()["count"] == 1  # nothing written on refusals


def test_health_ready_metrics(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok"}
    ready = world.client.get("/readyz").json()
    assert (
        ready["status"] == "ok" and ready["database"] == "ok" and ready["schema_revision"] == head_revision() == "0003"
    )
    submit(world)
    world.client.get("/api/v1/jobs", headers=world.as_user("alice"))
    text = world.client.get("/metrics").text
    assert 'hwnas_jobs{state="queued"} 1.0' in text
    assert 'hwnas_http_request_duration_seconds_count{method="GET",route="/api/v1/jobs",status="200"}' in text


def test_jobs_of_one_database_share_the_evaluation_cache(world: World) -> None:
    from sqlalchemy import func, select

    from nas.store import EvaluationRow
    from service.db import session_scope

    def evaluations() -> int:
        with session_scope(world.settings.database_url) as session:
            return int(session.scalar(select(func.count()).select_from(EvaluationRow)) or 0)

    alice = world.as_user("alice")
    first = submit(world)
    run_queued(world)
    stored = evaluations()
    assert stored >= 4  # synflow of each distinct net
    second = submit(world, user="bob")  # the same config: the same nets, sampled by the same seed
    run_queued(world)
    assert evaluations() == stored  # nothing scored again
    a = world.client.get(f"/api/v1/jobs/{first['id']}/trials", headers=alice).json()["data"]
    b = world.client.get(f"/api/v1/jobs/{second['id']}/trials", headers=world.as_user("bob")).json()["data"]
    assert [t["metrics"] for t in a] == [t["metrics"] for t in b]


def test_a_study_another_live_controller_holds_is_left_alone_for_a_while(world: World) -> None:
    import optuna

    from service import jobs
    from service.db import engine_kwargs

    job = submit(world)
    url = world.settings.database_url
    storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
    study = optuna.create_study(
        study_name=f"hwnas-job-{job['id']}", storage=storage, directions=["maximize", "minimize"]
    )
    study.set_user_attr(
        "hwnas_controller", {"token": "elsewhere", "pid": 1, "host": "another-host", "heartbeat": time.time()}
    )
    assert jobs.claim_job(url, worker="w1", lease_seconds=30) is not None
    outcome = Worker(world.settings, name="w1").run_job(job["id"], json.dumps(job["config"]), f"hwnas-job-{job['id']}")
    assert outcome == "queued"
    state = world.client.get(f"/api/v1/jobs/{job['id']}", headers=world.as_user("alice")).json()
    assert state["status"] == "running" and "another controller" in state["notes"][0]
    assert jobs.claim_job(url, worker="w2", lease_seconds=30) is None  # not again before the study lease can lapse


def test_pages_and_front_follow_trials_as_they_arrive(world: World) -> None:
    """The per-process cache of a job's trials is topped up: a new trial shows in sorted pages and the front."""
    from nas.search import TrialRecord
    from service import trials

    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    url = f"/api/v1/jobs/{job['id']}/trials"
    before = world.client.get(url, params={"sort": "params", "limit": 3}, headers=alice).json()
    smallest = before["data"][0]
    record = TrialRecord(
        number=100,
        state="COMPLETE",
        arch=None,
        arch_id=smallest["arch_id"],
        params={},
        metrics={"proxy:synflow": 1e9, "params": smallest["metrics"]["params"] - 1},
        objectives=[1e9, smallest["metrics"]["params"] - 1],
        violations=[],
        feasible=True,
        error=None,
        seconds=0.1,
    )
    trials.record_trials(world.settings.database_url, job_id=job["id"], records=[record], hypervolumes=[None])
    after = world.client.get(url, params={"sort": "params", "limit": 3}, headers=alice).json()
    assert after["count"] == before["count"] + 1 and after["data"][0]["number"] == 100
    front = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()
    assert [p["number"] for p in front["data"]] == [100]  # it dominates every other trial


def test_ready_needs_the_database_and_only_reports_ray(tmp_path: Path) -> None:
    """An API replica serves reads and submissions without Ray: a Ray outage is reported, not a 503."""
    from fastapi.testclient import TestClient

    from service.api.main import create_app
    from tests.service.conftest import make_keys, make_settings

    url = f"sqlite:///{tmp_path / 'r.db'}"
    make_keys(url, "alice")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = make_settings(url, tmp_path, ray_address=f"ray://127.0.0.1:{port}")
    with TestClient(create_app(settings)) as client:
        r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["ray"].startswith("unreachable")
