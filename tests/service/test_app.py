"""The web app's catalogue endpoints (the job API arrives with the search issues)."""

from __future__ import annotations

from fastapi.testclient import TestClient

import searchspace as ss
from service.app import create_app


def test_catalogue_endpoints() -> None:
    client = TestClient(create_app())
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    spaces = client.get("/api/v1/spaces").json()
    assert [s["name"] for s in spaces] == ss.list_spaces()
    assert int(spaces[0]["cardinality"]) == ss.load_space(spaces[0]["name"]).cardinality()
    known = {k["name"]: k for k in client.get("/api/v1/known").json()}
    assert known["mobilenet_v3_large"]["params"] == 5483032
    page = client.get("/")
    assert page.status_code == 200 and "mobiledet_edgetpu" in page.text


def test_describe_and_errors() -> None:
    client = TestClient(create_app())
    arch = ss.known_architecture("mobilenet_v2")
    r = client.get("/api/v1/architectures/describe", params={"arch": arch.encode()})
    assert r.status_code == 200 and r.json()["arch_id"] == arch.arch_id
    r = client.get("/api/v1/architectures/describe", params={"arch": "r32_i3|conv_k4_c8_relu|head_n10"})
    assert r.status_code == 422 and "kernel size must be odd" in r.json()["detail"]
    r = client.get("/api/v1/spaces/nope")
    assert r.status_code == 404 and "built-in spaces" in r.json()["detail"]
