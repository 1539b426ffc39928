"""GET /api/v1/jobs/{id}/points: every trial as columns, lined up with /trials and /pareto, owner-scoped."""

from __future__ import annotations

import pytest

from tests.service.conftest import World
from tests.service.test_api import run_queued, submit


def test_points_line_up_with_trials_and_pareto(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    r = world.client.get(f"/api/v1/jobs/{job['id']}/points", headers=alice)
    assert r.status_code == 200, r.text
    points = r.json()
    trials = world.client.get(f"/api/v1/jobs/{job['id']}/trials", params={"limit": 1000}, headers=alice).json()
    rows = trials["data"]
    assert points["count"] == len(rows) == trials["count"] == 8
    n = points["count"]
    assert points["numbers"] == [t["number"] for t in rows]
    assert points["arch_ids"] == [t["arch_id"] for t in rows]
    assert points["feasible"] == [t["feasible"] for t in rows]
    assert points["on_front"] == [t["on_front"] for t in rows]
    assert set(points["metrics"]) >= {"proxy:synflow", "params"}
    for metric, values in points["metrics"].items():
        assert len(values) == n
        assert values == [t["metrics"].get(metric) for t in rows]
    front = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()
    on_front = {num for num, keep in zip(points["numbers"], points["on_front"], strict=True) if keep}
    assert on_front == {p["number"] for p in front["data"]} and len(on_front) == front["count"] > 0


def test_points_are_the_owners_only(world: World) -> None:
    job = submit(world)
    run_queued(world)
    r = world.client.get(f"/api/v1/jobs/{job['id']}/points", headers=world.as_user("bob"))
    assert r.status_code == 404
    assert world.client.get(f"/api/v1/jobs/{job['id']}/points").status_code == 401
    r = world.client.get("/api/v1/jobs/nope/points", headers=world.as_user("alice"))
    assert r.status_code == 404


def test_points_rounded_without_ids_and_a_trial_by_number(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    url = f"/api/v1/jobs/{job['id']}/points"
    full = world.client.get(url, headers=alice).json()
    small = world.client.get(url, params={"digits": 3, "arch_ids": False}, headers=alice)
    assert small.status_code == 200 and small.headers["content-type"] == "application/json"
    small_json = small.json()
    assert "arch_ids" not in small_json and small_json["numbers"] == full["numbers"]
    for metric, values in full["metrics"].items():
        for exact, rounded in zip(values, small_json["metrics"][metric], strict=True):
            assert (exact is None and rounded is None) or rounded == float(f"{exact:.3g}")
    assert any(v != r for m, vs in full["metrics"].items() for v, r in zip(vs, small_json["metrics"][m], strict=True))
    # the same bytes gzipped or not, and the same again (made once per state of the job)
    gz = world.client.get(url, params={"digits": 3, "arch_ids": False}, headers={**alice, "Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.json() == small_json
    # every rounding a client may ask for answers right, while a view keeps only the last few encodings
    from service.trials import ENCODED_PER_VIEW, TRIALS

    for digits in range(1, 18):
        r = world.client.get(url, params={"digits": digits}, headers={**alice, "Accept-Encoding": "gzip"})
        assert r.json()["metrics"].keys() == full["metrics"].keys()
    views = list(TRIALS._jobs.values())
    assert views and all(len(v.encoded) <= ENCODED_PER_VIEW for v in views)
    assert world.client.get(url, params={"digits": 3, "arch_ids": False}, headers=alice).json() == small_json
    for bad, field in (({"digits": 0}, "digits"), ({"digits": 18}, "digits"), ({"arch_ids": "maybe"}, "arch_ids")):
        r = world.client.get(url, params=bad, headers=alice)
        assert r.status_code == 422 and field in r.text, r.text
    # a clicked point: its trial, by number
    number, arch = full["numbers"][-1], full["arch_ids"][-1]
    one = world.client.get(f"/api/v1/jobs/{job['id']}/trials/{number}", headers=alice)
    assert one.status_code == 200 and one.json()["arch_id"] == arch and one.json()["number"] == number
    missing = world.client.get(f"/api/v1/jobs/{job['id']}/trials/999999", headers=alice)
    assert missing.status_code == 404 and "number: job" in missing.json()["detail"]
    assert world.client.get(f"/api/v1/jobs/{job['id']}/trials/x", headers=alice).status_code == 422
    assert (
        world.client.get(f"/api/v1/jobs/{job['id']}/trials/{number}", headers=world.as_user("bob")).status_code == 404
    )


def test_hypervolume_history_is_its_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from service import trials

    rows = tuple({"number": i, "hypervolume": hv} for i, hv in enumerate([None, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0]))
    monkeypatch.setattr(trials.TRIALS, "get", lambda session, job: SimpleNamespace(rows=rows))
    data = trials.hypervolume_history(None, job=None).data  # type: ignore[arg-type]
    assert [(p.trial, p.hypervolume) for p in data] == [(2, 1.0), (4, 2.0), (7, 3.0), (8, 3.0)]


def test_a_starting_server_warms_the_recent_jobs(world: World) -> None:
    import time

    from fastapi.testclient import TestClient

    from service import trials
    from service.api.main import create_app

    job = submit(world)
    run_queued(world)
    trials.TRIALS.forget(job["id"])
    with TestClient(create_app(world.settings.model_copy(update={"warm_jobs": 5}))):  # runs the lifespan
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            view = trials.TRIALS._jobs.get(job["id"])
            if view is not None and ("points", 6, False, True) in view.encoded:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the job was not warmed within 30 s")
    trials.TRIALS.forget(job["id"])
    assert trials.warm(world.settings.database_url, 0) == 0
    assert job["id"] not in trials.TRIALS._jobs


def test_points_answers_from_many_threads_at_once(world: World) -> None:
    """Request threads (and the start-up warm-up) share a view's encodings: no lost entry, no torn LRU."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from service.db import session_scope
    from service.models import Job
    from service.trials import points_json

    job = submit(world)
    run_queued(world)
    url = world.settings.database_url

    def one(i: int) -> dict[str, object]:
        with session_scope(url) as session:
            row = session.get(Job, job["id"])
            assert row is not None
            digits = 1 + i % 8
            body = points_json(session, job=row, digits=digits, arch_ids=bool(i % 2), gzipped=False)
        return json.loads(body)  # type: ignore[no-any-return]

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(one, range(400)))
    assert all(a["count"] == answers[0]["count"] for a in answers)
