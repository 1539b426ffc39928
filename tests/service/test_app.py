"""The web app's catalogue endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import searchspace as ss
from service.api.main import create_app
from service.dashboard import vendor
from service.dashboard.routes import bundles, plotly_js
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
    for path, role in (("/jobs/x", "2d"), ("/architectures/x", "basic")):
        url = bundles()[role][0]
        assert f'<script src="{url}" id="plotly-js" async>' in client.get(path).text
        js = client.get(url)
        assert js.status_code == 200 and "immutable" in js.headers["cache-control"] and len(js.content) > 1_000_000
    assert 'id="plotly-js"' not in page.text  # the jobs list draws no plot
    assert client.get("/static/bundles/0.0.0/plotly.min.js").status_code == 404
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
    url, path = bundles()["2d"]
    r = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.content == path.read_bytes()
    raw = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers and raw.content == path.read_bytes()
    assert client.get("/api/v1/spaces", headers={"Accept-Encoding": "gzip"}).headers["content-encoding"] == "gzip"


def test_partial_bundles_are_vendored_and_used() -> None:
    """``make`` fetched plotly.js's partial bundles (pinned version and sha512), and the pages use them."""
    manifest = vendor.read_manifest()
    assert manifest is not None, "no dashboard bundles: run `make bundles` (needs npm)"
    assert manifest["version"] == vendor.VERSION and manifest["integrity"] == vendor.INTEGRITY
    urls = {role: url for role, (url, _) in bundles().items()}
    assert len(set(urls.values())) == 3 and all(vendor.VERSION in u for u in urls.values())
    assert all(path.stat().st_size < plotly_js().stat().st_size / 2 for _, path in bundles().values())


def test_a_damaged_bundle_falls_back_to_the_full_plotly(tmp_path: Path) -> None:
    import json
    import shutil

    for f in vendor.VENDOR.iterdir():
        shutil.copy(f, tmp_path / f.name)
    assert vendor.read_manifest(tmp_path) is not None
    (tmp_path / vendor.BUNDLES["2d"]).write_bytes(b"truncated")
    assert vendor.read_manifest(tmp_path) is None
    (tmp_path / "plotly.json").write_text(json.dumps({"version": "1"}))
    assert vendor.read_manifest(tmp_path) is None
    assert vendor.sha512_integrity(b"") == (
        "sha512-z4PhNX7vuL3xVChQ1m2AB9Yg5AULVxXcg/SpIdNs6c5H0NE8XYXysP+DGNKHfuwvY7kxvUdBeoGlODJ6+SfaPg=="
    )


def test_proxies_route_lists_the_fitted_predictors(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    from nas.proxies import predictor

    nets = [ss.load_space("mobilenetv2-cifar").sample(random.Random(i)) for i in range(10)]
    truth = [predictor.shape_features(a)["log_macs"] for a in nets]
    model = predictor.fit(
        "listed",
        nets,
        {"naswot": [float(i) for i in range(10)]},
        truth,
        ["naswot"],
        trained_on={"space": "mobilenetv2-cifar"},
    )
    predictor.save(model, tmp_path / "p")
    (tmp_path / "p" / "broken.json").write_text("{}")
    monkeypatch.setenv("HWNAS_PREDICTORS", str(tmp_path / "p"))
    body = client.get("/api/v1/proxies").json()
    assert {p["name"] for p in body["data"]} >= {"swap", "meco_opt", "naswot"}
    assert [p["name"] for p in body["predictors"] if p["name"] in ("listed", "broken")] == ["listed"]
    listed = next(p for p in body["predictors"] if p["name"] == "listed")
    assert listed["proxies"] == ["naswot"] and listed["trained_on"]["space"] == "mobilenetv2-cifar"


def test_strategies_route_lists_the_registered_strategies(client: TestClient) -> None:
    from nas.strategies import STRATEGIES

    r = client.get("/api/v1/strategies")
    assert r.status_code == 200
    listed = {s["name"]: s for s in r.json()}
    assert sorted(listed) == sorted(STRATEGIES.names()) and "tpe" in listed and "nsga2" in listed
    assert all(s["description"] for s in listed.values())
    assert listed["nsga2"]["options"] == ["population_size"] and "weights" in listed["evolution"]["options"]
