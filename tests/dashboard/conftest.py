"""A real server with a real finished job, and Debian's chromium driven by Playwright.

The server is `hwnas serve` (API, dashboard, embedded worker) on a fresh
SQLite database with API keys required; alice owns a finished search job.
Screenshots go to test-artifacts/screenshots/ (kept after the run).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import make_keys

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
JOB = {
    "name": "dashboard test job",
    "space": "mobilenetv2-cifar",
    "objectives": [
        {"metric": "proxy:default", "direction": "maximize"},
        {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
    ],
    "constraints": [{"metric": "params", "max": 1500000}],
    "strategy": {"name": "random"},
    "budget": {"trials": 24},
    "workers": 1,
    "seed": 3,
    # the shipped table: no first-use build of this host's table (a minute) before the tests can start; on
    # any host but the one that measured it, the job page then shows the foreign-table banner
    "latency_table": "shipped",
}


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    job_id: str
    database_url: str

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[user]}"}

    def api(self, user: str, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, self.url + path, headers=self.headers(user), timeout=60, **kw)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("dashboard")
    database_url = f"sqlite:///{work / 'hwnas.db'}"
    keys = make_keys(database_url, "alice", "bob")
    port = _free_port()
    env = {
        **os.environ,
        "HWNAS_DATABASE_URL": database_url,
        "HWNAS_AUTH": "required",
        "HWNAS_DATA_DIR": str(work / "data"),
        "HWNAS_LUT_DIR": str(work / "luts"),  # a table a job builds (the form's job) stays in the test's folder
        "HWNAS_POLL_SECONDS": "0.2",
        "OMP_NUM_THREADS": "1",
    }
    log = (work / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=work,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (work / "serve.log").read_text()
            time.sleep(0.3)
        srv = Server(url, keys, "", database_url)
        r = srv.api("alice", "POST", "/api/v1/jobs", json=JOB)
        assert r.status_code == 201, r.text
        srv.job_id = r.json()["id"]
        deadline = time.monotonic() + 240
        while srv.api("alice", "GET", f"/api/v1/jobs/{srv.job_id}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, (work / "serve.log").read_text()[-3000:]
            time.sleep(0.5)
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture()
def page_as(browser: Any, server: Server) -> Iterator[Any]:
    """``page_as(user)``: a fresh browser page sending that user's key with every request, recording every
    URL it asks for (nothing may leave the server)."""
    contexts = []

    def make(user: str | None, width: int = 1280, height: int = 800) -> Any:
        headers = server.headers(user) if user else {}
        context = browser.new_context(
            viewport={"width": width, "height": height}, extra_http_headers=headers, accept_downloads=True
        )
        contexts.append(context)
        page = context.new_page()
        page.requests = []  # type: ignore[attr-defined]
        page.on("request", lambda request: page.requests.append(request.url))
        page.set_default_timeout(15_000)
        return page

    yield make
    for c in contexts:
        c.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
