"""Devices: tables a device agent measured are uploaded, validated, listed, and used for a net's latency."""

from __future__ import annotations

import gzip

from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_layers
from latency_tables.table import Entry, LatencyTable
from searchspace import Architecture
from tests.service.conftest import World
from tests.service.test_api import run_queued, submit

PHONE = HostInfo(cpu="ARM Cortex-A76", cores=4, machine="aarch64", system="Linux",
                 versions={"onnxruntime": "1.31.1"})


def phone_table(arch: Architecture, skip_last: bool = False) -> LatencyTable:
    layers = list({layer.key: layer for _, layer in arch_layers(arch) if layer is not None}.values())
    if skip_last:
        layers = layers[:-1]
    entries = {layer.key: Entry(median_ms=0.1 * (i + 1), p10_ms=0.1 * (i + 1), p90_ms=0.1 * (i + 1), runs=20)
               for i, layer in enumerate(layers)}
    return LatencyTable(profile=DeviceProfile(runtime="ort", precision="int8", threads=4), host=PHONE,
                        entries=entries)


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
    for body, expected in [(b"", "expected a latency table"), (b"{not json", "not a latency table"),
                           (b'{"format": "something-else"}', "body"),
                           (gzip.compress(b"[1, 2]"), "body")]:
        r = world.client.post("/api/v1/devices/tables", content=body, headers={**alice, "content-type": "application/json"})
        assert r.status_code == 422, (body, r.text)
        assert expected in r.json()["detail"]
    assert world.client.get("/api/v1/devices", headers=alice).json() == []
    over_app_limit = b" " * (world.settings.max_body_bytes + 10) + b"{}"  # a table may be larger than other bodies
    r = world.client.post("/api/v1/devices/tables", content=over_app_limit,
                          headers={**alice, "content-type": "application/json"})
    assert r.status_code == 422, r.text  # read and judged as a table, not cut off at HWNAS_MAX_BODY_BYTES
    big = b"x" * (world.settings.max_table_bytes + 1)
    r = world.client.post("/api/v1/devices/tables", content=big, headers={**alice, "content-type": "application/gzip"})
    assert r.status_code == 413
