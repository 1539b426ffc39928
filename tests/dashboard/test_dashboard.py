"""The dashboard in headless Chromium against a real server with a real finished job."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.dashboard.conftest import Server, screenshot

pytestmark = pytest.mark.slow  # a browser against a live server


def _local_only(page: Any, server: Server) -> None:
    strays = [u for u in page.requests if not u.startswith((server.url, "data:", "blob:", "about:"))]
    assert not strays, f"the page asked for something off the server: {strays[:5]}"


def test_jobs_page_lists_the_job(page_as: Any, server: Server) -> None:
    page = page_as("alice")
    page.goto(server.url + "/")
    page.wait_for_selector(f"#jobs-table tr[data-job-id='{server.job_id}']")
    row = page.locator(f"#jobs-table tr[data-job-id='{server.job_id}']")
    assert "dashboard test job" in row.inner_text() and row.locator(".badge.succeeded").count() == 1
    page.wait_for_selector("#submit-form #submit-job")
    screenshot(page, "jobs")
    _local_only(page, server)


def test_pareto_plot_has_every_trial_and_a_click_opens_the_net(page_as: Any, server: Server, tmp_path: Path) -> None:
    trials = server.api("alice", "GET", f"/api/v1/jobs/{server.job_id}/trials", params={"limit": 1000}).json()
    plotted = [
        t
        for t in trials["data"]
        if t["metrics"].get("proxy:default") is not None and t["metrics"].get("latency:ort-cpu-fp32-t1") is not None
    ]
    front = server.api("alice", "GET", f"/api/v1/jobs/{server.job_id}/pareto").json()
    page = page_as("alice")
    page.goto(f"{server.url}/jobs/{server.job_id}")
    plot = page.wait_for_selector("#pareto-plot[data-ready='1']")
    assert int(plot.get_attribute("data-points")) == len(plotted) > 0
    assert int(plot.get_attribute("data-front")) == front["count"]
    assert int(plot.get_attribute("data-total")) == trials["count"] == 24
    screenshot(page, "job")
    page.locator("#pareto-plot").scroll_into_view_if_needed()
    # the front as a table of links, for the keyboard: one per front net
    page.click("#front-list summary")
    links = page.locator("#front-table a")
    assert links.count() == front["count"]
    assert {links.nth(i).get_attribute("href").split("?")[0].rsplit("/", 1)[1] for i in range(links.count())} == {
        p["arch_id"] for p in front["data"]
    }
    # a click the API cannot resolve is reported beside the plot, and the front table stays
    page.evaluate("document.getElementById('pareto-plot').emit('plotly_click', {points: [{customdata: 99999}]})")
    page.wait_for_selector("#point-message .msg.error")
    assert "99999" in page.inner_text("#point-message") and page.locator("#front-table a").count() == front["count"]
    # a point off the front: its net is asked of the API by trial number when clicked
    by_number = {t["number"]: t["arch_id"] for t in trials["data"]}
    box = page.locator("#pareto-plot").bounding_box()
    for group in ("feasible", "front"):
        # the point of the group farthest (in pixels) from every other point, so the click cannot pick another
        x, y, number = page.evaluate(
            """(g) => {
            const d = document.getElementById('pareto-plot'), fl = d._fullLayout;
            const px = (t, i) => [fl.xaxis.l2p(t.x[i]) + fl._size.l, fl.yaxis.l2p(t.y[i]) + fl._size.t];
            const all = d._fullData.flatMap(t => t.x.map((_, i) => [...px(t, i), t.name, i]));
            const tr = d._fullData.find(t => t.name === g);
            let best = null, bestGap = -1;
            tr.x.forEach((_, i) => {
                const [a, b] = px(tr, i);
                const gap = Math.min(...all.filter(p => !(p[2] === g && p[3] === i))
                                          .map(p => Math.hypot(p[0] - a, p[1] - b)), 1e9);
                if (gap > bestGap) { bestGap = gap; best = [a, b, tr.customdata[i]]; }
            });
            return best; }""",
            group,
        )
        arch_id = by_number[number]
        assert (arch_id in {p["arch_id"] for p in front["data"]}) == (group == "front")
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.click(box["x"] + x, box["y"] + y)
        page.wait_for_url(f"**/architectures/{arch_id}**")
        if group == "feasible":
            page.go_back()
            page.wait_for_selector("#pareto-plot[data-ready='1']")
            page.locator("#pareto-plot").scroll_into_view_if_needed()
            box = page.locator("#pareto-plot").bounding_box()
    page.wait_for_selector("body[data-ready='1']")
    assert arch_id in page.inner_text("#arch-encoding") or page.locator("#block-diagram").count() == 1
    screenshot(page, "architecture")

    with page.expect_download() as download:
        page.click("#download-onnx")
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"{arch_id}.onnx"
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: np.zeros((1, 3, 32, 32), dtype=np.float32)})[0]
    assert out.shape == (1, 10) and np.isfinite(out).all()
    _local_only(page, server)


def _job_as_reported(page_as: Any, server: Server, table: dict[str, Any]) -> tuple[Any, Any]:
    """The job page, its JSON as a worker on another host would have reported its one table, and the banner
    for that table's verdict: the banner is tested on any host (which verdict this host gives the shipped
    table depends on the VM the tests run on)."""
    import re

    def rewrite(route: Any) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "latency_tables": [table]})

    page = page_as("alice")
    page.route(re.compile(rf".*/api/v1/jobs/{server.job_id}(\?.*)?$"), rewrite)
    page.goto(f"{server.url}/jobs/{server.job_id}")
    return page, page.wait_for_selector(f"#latency-warning[data-verdict='{table['verdict']}']")


def test_a_job_on_a_table_of_another_host_shows_a_banner_with_the_build_command(page_as: Any, server: Server) -> None:
    job = server.api("alice", "GET", f"/api/v1/jobs/{server.job_id}").json()
    [table] = job["latency_tables"]
    assert table["source"] == "shipped" and table["profile"] == "ort-cpu-fp32-t1"
    page = page_as("alice")
    page.goto(f"{server.url}/jobs/{server.job_id}")
    page.wait_for_selector("#job-status-value")
    assert page.locator("#latency-warning").is_visible() == table["foreign"]  # this host's own verdict, as it is

    command = "hwnas lut build --profile ort-cpu-fp32-t1 --space mobilenetv2-cifar --first-use"
    foreign = {
        **table,
        "verdict": "foreign",
        "foreign": True,
        "reasons": ["reference layers run 0.52x the table's figures here"],
        "build_command": command,
    }
    page, banner = _job_as_reported(page_as, server, foreign)
    assert banner.is_visible() and banner.get_attribute("role") == "alert"
    text = banner.inner_text()
    assert "another host" in text and "latency:ort-cpu-fp32-t1" in text and table["table"] in text
    assert "0.52x" in text
    assert page.inner_text("#latency-warning code.build-command") == command
    # the job asked for the shipped table: running it again unchanged would not help
    assert 'latency_table "auto"' in page.inner_text("#latency-warning-next")
    screenshot(page, "job-foreign-table")

    unverified = {
        **table,
        "source": "found",
        "verdict": "unverified",
        "foreign": False,
        "reasons": ["this host cannot run ort-cuda-fp32-t1 (no GPU)"],
        "build_command": None,
    }
    page, banner = _job_as_reported(page_as, server, unverified)
    text = banner.inner_text()
    assert "could not be checked" in text and "no GPU" in text and "hwnas lut export-kit" in text
    assert page.locator("#latency-warning code.build-command").count() == 0


def test_the_form_submits_a_job_that_then_runs(page_as: Any, server: Server) -> None:
    page = page_as("alice")
    page.goto(server.url + "/")
    page.wait_for_selector("#submit-form")
    page.fill("#f-name", "from the form")
    page.fill("#f-budget-trials", "200")
    page.click("#submit-job")
    link = page.wait_for_selector("#submitted-job-link")
    job_id = link.get_attribute("href").rstrip("/").split("/")[-1]
    deadline = time.monotonic() + 60
    status = ""
    while time.monotonic() < deadline:  # the embedded worker takes it
        status = server.api("alice", "GET", f"/api/v1/jobs/{job_id}").json()["status"]
        if status in ("running", "succeeded"):
            break
        time.sleep(0.2)
    assert status in ("running", "succeeded")
    page.reload()
    row = page.wait_for_selector(f"#jobs-table tr[data-job-id='{job_id}']")
    assert "from the form" in row.inner_text()
    server.api("alice", "POST", f"/api/v1/jobs/{job_id}/cancel")  # leave the worker free for the other tests


def test_an_invalid_form_shows_the_apis_message_at_the_field(page_as: Any, server: Server) -> None:
    page = page_as("alice")
    page.goto(server.url + "/")
    page.wait_for_selector("#submit-form")
    before = server.api("alice", "GET", "/api/v1/jobs").json()["count"]
    page.fill("#f-budget-trials", "-3")
    page.click("#submit-job")
    error = page.wait_for_selector("#f-budget-trials-error:has-text('greater than or equal to 1')")
    assert error.get_attribute("role") == "alert"
    assert page.get_attribute("#f-budget-trials", "aria-invalid") == "true"
    assert server.api("alice", "GET", "/api/v1/jobs").json()["count"] == before
    screenshot(page, "form-error")


def test_a_second_user_cannot_see_the_first_users_job(page_as: Any, server: Server) -> None:
    page = page_as("bob")
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']")
    assert page.locator(f"#jobs-table tr[data-job-id='{server.job_id}']").count() == 0
    page.goto(f"{server.url}/jobs/{server.job_id}")
    page.wait_for_selector("body[data-ready='1']")
    assert "dashboard test job" not in page.inner_text("body")
    assert "404" in page.inner_text("#main") or "no job" in page.inner_text("#main").lower()


def test_without_a_key_the_page_asks_for_one(page_as: Any, server: Server) -> None:
    page = page_as(None)
    page.goto(server.url + "/")
    page.wait_for_selector("#key-form #api-key")
    page.fill("#api-key", server.keys["alice"])
    page.click("#api-key-save")
    page.wait_for_selector(f"#jobs-table tr[data-job-id='{server.job_id}']")


# The innermost elements that reach past the screen's right edge, to name the culprit in a failure.
WIDER_THAN_THE_SCREEN = """() => {
  const out = [];
  for (const e of document.querySelectorAll('body *')) {
    const r = e.getBoundingClientRect();
    if (r.right <= window.innerWidth + 1 || r.width === 0) continue;
    if ([...e.children].some((c) => c.getBoundingClientRect().right > window.innerWidth + 1)) continue;
    out.push(`${e.tagName.toLowerCase()}#${e.id}.${e.className} right=${Math.round(r.right)}`);
  }
  return out.slice(0, 8);
}"""


def test_devices_page_and_phone_width(page_as: Any, server: Server) -> None:
    page = page_as("alice")
    page.goto(server.url + "/devices")
    page.wait_for_selector("#devices-table")
    page.wait_for_selector("#validation-plot")
    assert "ort-cpu-fp32-t1" in page.inner_text("#devices-table")
    screenshot(page, "devices")
    phone = page_as("alice", width=390, height=844)
    phone.goto(f"{server.url}/jobs/{server.job_id}")
    phone.wait_for_selector("#pareto-plot[data-ready='1']")
    width = phone.evaluate("document.documentElement.scrollWidth")
    wide = phone.evaluate(WIDER_THAN_THE_SCREEN) if width > 390 + 1 else []
    assert width <= 390 + 1, f"the job page scrolls sideways at phone width ({width} px): {wide}"
    screenshot(phone, "job-phone")


def test_three_objectives_get_parallel_coordinates_and_a_3d_view(page_as: Any, server: Server) -> None:
    config = {
        "name": "three objectives",
        "space": "mobilenetv2-cifar",
        "strategy": {"name": "random"},
        "objectives": [
            {"metric": "macs", "direction": "maximize"},
            {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
            {"metric": "params", "direction": "minimize"},
        ],
        "budget": {"trials": 12},
        "workers": 1,
        "seed": 5,
        "latency_table": "shipped",
    }
    job_id = server.api("alice", "POST", "/api/v1/jobs", json=config).json()["id"]
    deadline = time.monotonic() + 120
    while server.api("alice", "GET", f"/api/v1/jobs/{job_id}").json()["status"] != "succeeded":
        assert time.monotonic() < deadline
        time.sleep(0.3)
    feasible = server.api("alice", "GET", f"/api/v1/jobs/{job_id}/trials", params={"feasible": True}).json()["count"]
    page = page_as("alice")
    page.goto(f"{server.url}/jobs/{job_id}")
    page.wait_for_selector("#pareto-plot[data-ready='1']")
    page.wait_for_selector("#pareto-3d[data-points]")
    assert int(page.get_attribute("#pareto-3d", "data-points")) == feasible == 12
    assert page.locator("#parcoords-plot .parcoords").count() >= 1 or page.locator("#parcoords-plot svg").count() >= 1
    screenshot(page, "job-three-objectives")
