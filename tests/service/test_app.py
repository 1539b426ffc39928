"""The web app's catalogue endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import searchspace as ss
from service.api.main import create_app
from service.settings import Settings


@pytest.fixture()
def client(tmp_path: Path) -> TestClient:
    return TestClient(create_app(Settings(database_url=f"sqlite:///{tmp_path / 'h.db'}", data_dir=tmp_path)))


def test_catalogue_endpoints(client: TestClient) -> None:
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    spaces = client.get("/api/v1/spaces").json()
    assert [s["name"] for s in spaces] == ss.list_spaces()
    assert int(spaces[0]["cardinality"]) == ss.load_space(spaces[0]["name"]).cardinality()
    known = {k["name"]: k for k in client.get("/api/v1/known").json()}
    assert known["mobilenet_v3_large"]["params"] == 5483032
    page = client.get("/")
    assert page.status_code == 200 and 'data-page="jobs"' in page.text
    assert '<script type="module" src="/static/dashboard.js">' in page.text and "http" not in page.text.lower()
    for path in ("/jobs/x", "/architectures/x", "/compare?a=1&b=2", "/devices"):
        assert client.get(path).status_code == 200
    js = client.get("/static/plotly.min.js")
    assert js.status_code == 200 and "max-age" in js.headers["cache-control"] and len(js.content) > 1_000_000
    assert client.get("/static/dashboard.js").status_code == 200
    assert client.get("/static/../routes.py").status_code == 404


def test_describe_and_errors(client: TestClient) -> None:
    arch = ss.known_architecture("mobilenet_v2")
    r = client.get("/api/v1/architectures/describe", params={"arch": arch.encode()})
    assert r.status_code == 200 and r.json()["arch_id"] == arch.arch_id
    r = client.get("/api/v1/architectures/describe", params={"arch": "r32_i3|conv_k4_c8_relu|head_n10"})
    assert r.status_code == 422 and "kernel size must be odd" in r.json()["detail"]
    r = client.get("/api/v1/spaces/nope")
    assert r.status_code == 404 and "built-in spaces" in r.json()["detail"]


def test_plotly_and_api_answers_are_compressed_once(client: TestClient) -> None:
    from service.dashboard.routes import plotly_js

    r = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == plotly_js().read_bytes()
    raw = client.get("/static/plotly.min.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == plotly_js().read_bytes()
    assert client.get("/api/v1/spaces", headers={"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"
