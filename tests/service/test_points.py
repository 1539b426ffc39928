"""GET /api/v1/jobs/{id}/points: every trial as columns, lined up with /trials and /pareto, owner-scoped."""

from __future__ import annotations

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
