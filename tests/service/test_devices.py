"""Devices: tables a device agent measured are uploaded, validated, listed, and used for a net's latency."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_layers
from latency_tables.table import Entry, LatencyTable
from searchspace import Architecture
from tests.service.conftest import World
from tests.service.test_api import run_queued, submit

PHONE = HostInfo(cpu="ARM Cortex-A76", cores=4, machine="aarch64", system="Linux", versions={"onnxruntime": "1.31.1"})


def phone_table(arch: Architecture, skip_last: bool = False) -> LatencyTable:
    layers = list({layer.key: layer for _, layer in arch_layers(arch) if layer is not None}.values())
    if skip_last:
        layers = layers[:-1]
    entries = {
        layer.key: Entry(median_ms=0.1 * (i + 1), p10_ms=0.1 * (i + 1), p90_ms=0.1 * (i + 1), runs=20)
        for i, layer in enumerate(layers)
    }
    return LatencyTable(profile=DeviceProfile(runtime="ort", precision="int8", threads=4), host=PHONE, entries=entries)


def test_upload_list_and_use_a_device_table(world: World) -> None:
    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    best = world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()["data"][0]
    arch = Architecture.decode(best["encoding"])
    table = phone_table(arch, skip_last=True)
    body = gzip.compress(table.model_dump_json().encode())
    r = world.client.post("/api/v1/devices/tables", content=body, headers={**alice, "content-type": "application/gzip"})
    assert r.status_code == 201, r.text
    assert r.json()["profile"] == "ort-cpu-int8-t4" and r.json()["layers"] == len(table.entries)

    devices = world.client.get("/api/v1/devices", headers=alice).json()
    phone = next(d for d in devices if d["id"] == "ort-cpu-int8-t4")
    assert phone["tables"][0]["host"]["cpu"] == "ARM Cortex-A76" and phone["precision"] == "int8"

    lat = world.client.get(f"/api/v1/architectures/{best['arch_id']}", headers=alice).json()["latencies"]
    on_phone = next(x for x in lat if x["profile"] == "ort-cpu-int8-t4")
    assert on_phone["foreign_host"] and not on_phone["measured"]  # the last layer is estimated, and flagged
    measured = [layer for layer in on_phone["layers"] if layer["measured"]]
    assert len(measured) == len(on_phone["layers"]) - 1
    assert abs(on_phone["raw_sum_ms"] - sum(layer["latency_ms"] for layer in on_phone["layers"])) < 1e-6
    assert all(layer["macs"] >= 0 for layer in on_phone["layers"])


def test_bad_tables_are_refused_and_nothing_is_written(world: World) -> None:
    alice = world.as_user("alice")
    for body, expected in [
        (b"", "expected a latency table"),
        (b"{not json", "not a latency table"),
        (b'{"format": "something-else"}', "body"),
        (gzip.compress(b"[1, 2]"), "body"),
    ]:
        r = world.client.post(
            "/api/v1/devices/tables", content=body, headers={**alice, "content-type": "application/json"}
        )
        assert r.status_code == 422, (body, r.text)
        assert expected in r.json()["detail"]
    assert world.client.get("/api/v1/devices", headers=alice).json() == []
    over_app_limit = b" " * (world.settings.max_body_bytes + 10) + b"{}"  # a table may be larger than other bodies
    r = world.client.post(
        "/api/v1/devices/tables", content=over_app_limit, headers={**alice, "content-type": "application/json"}
    )
    assert r.status_code == 422, r.text  # read and judged as a table, not cut off at HWNAS_MAX_BODY_BYTES
    big = b"x" * (world.settings.max_table_bytes + 1)
    r = world.client.post("/api/v1/devices/tables", content=big, headers={**alice, "content-type": "application/gzip"})
    assert r.status_code == 413


def test_validation_reports_of_a_table_are_listed_and_served(world: World) -> None:
    from latency_tables.validate import save_report

    alice = world.as_user("alice")
    arch = Architecture.decode(submit_and_best(world))
    table = phone_table(arch)
    r = world.client.post(
        "/api/v1/devices/tables",
        content=table.model_dump_json().encode(),
        headers={**alice, "content-type": "application/json"},
    )
    assert r.status_code == 201 and r.json()["validation"] == []
    metrics = {"within_5_pct": 40.0, "within_10_pct": 80.0, "mape_pct": 7.5, "spearman": 0.97, "kendall": 0.9}
    save_report(
        {
            "profile": "ort-cpu-int8-t4",
            "table": table.name,
            "space": "all-blocks",
            "resolution": 16,
            "samples": 2,
            "seed": 0,
            "rounds": 1,
            "calibration": "raw",
            "metrics": {"predicted": metrics, "raw": metrics, "noise": {**metrics, "within_10_pct": 90.0}},
            "nets": [
                {
                    "arch_id": arch.arch_id,
                    "arch": arch.encode(),
                    "predicted_ms": 1.0,
                    "raw_ms": 1.0,
                    "measured1_ms": 1.1,
                    "measured2_ms": 1.05,
                    "estimated": False,
                }
            ]
            * 2,
            "measured_on": {"cpu": "ARM Cortex-A76"},
        }
    )
    from service.latency import forget_tables

    forget_tables()
    phone = next(d for d in world.client.get("/api/v1/devices", headers=alice).json() if d["id"] == "ort-cpu-int8-t4")
    (summary,) = phone["tables"][0]["validation"]
    assert summary["space"] == "all-blocks" and summary["predicted"]["within_10_pct"] == 80.0
    assert summary["noise"]["within_10_pct"] == 90.0 and summary["measured_on"]["cpu"] == "ARM Cortex-A76"
    report = world.client.get("/api/v1/devices/ort-cpu-int8-t4/validation/all-blocks", headers=alice).json()
    assert len(report["nets"]) == 2 and report["nets"][0]["measured2_ms"] == 1.05 and "arch" not in report["nets"][0]
    missing = world.client.get("/api/v1/devices/ort-cpu-int8-t4/validation/fbnet", headers=alice)
    assert missing.status_code == 404 and "hwnas lut validate" in missing.json()["detail"]


def submit_and_best(world: World) -> str:
    alice = world.as_user("alice")
    job = submit(world)
    run_queued(world)
    return str(world.client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=alice).json()["data"][0]["encoding"])


def test_the_shipped_tables_carry_their_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """benchmarks/latency.py keeps each validation beside the shipped table; the service reads it from there."""
    from latency_tables.table import list_tables
    from latency_tables.validate import load_reports

    monkeypatch.setenv("HWNAS_LUT_DIR", str(tmp_path / "no-user-tables"))
    shipped = [t.name for _, t in list_tables()]
    assert shipped
    for name in shipped:
        reports = load_reports(name)
        assert {r["space"] for r in reports} >= {"mobilenetv2", "mobilenetv2-cifar"}
        assert all(r["samples"] == len(r["nets"]) >= 50 for r in reports)
        assert all(0 <= r["metrics"]["predicted"]["within_10_pct"] <= 100 for r in reports)
