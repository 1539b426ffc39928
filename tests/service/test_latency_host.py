"""The API's latencies and device tables say whose host a table describes, from the cached host check: the
server never times a speed signature inside a request (measure_signature is replaced and must not be called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import searchspace as ss
from latency_tables import host as host_module
from latency_tables.host import REFERENCE_LAYERS, check_table
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_keys
from latency_tables.table import Entry, LatencyTable, user_table_dir
from service import latency
from tests.service.conftest import World
from tests.specs import TINY_SPEC

pytestmark = pytest.mark.usefixtures("isolated_tables")


class FakeSignature:
    """measure_signature replaced: every reference layer at 0.048 ms (tables hold 0.1: 0.48x); calls counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        def fake(profile: DeviceProfile, keys: Any, **_: Any) -> dict[str, float]:
            self.calls += 1
            return dict.fromkeys(keys, 0.048)

        monkeypatch.setattr(host_module, "measure_signature", fake)


def net_and_table(profile: str = "ort-cpu-fp32-t1", host: HostInfo | None = None) -> tuple[ss.Architecture, Path]:
    arch = ss.load_space(TINY_SPEC).sample(3)
    table = LatencyTable(
        profile=DeviceProfile.parse(profile),
        host=host or HostInfo.current(),
        entries={
            k: Entry(median_ms=0.1, p10_ms=0.1, p90_ms=0.1, runs=10) for k in [*REFERENCE_LAYERS, *arch_keys(arch)]
        },
    )
    return arch, table.save(user_table_dir() / table.default_filename())


def test_latencies_report_the_cached_host_check_and_never_measure(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeSignature(monkeypatch)
    arch, path = net_and_table()
    latency.forget_tables()
    [lat], errors = latency.latencies(arch, "tiny")
    assert errors == {} and clock.calls == 0  # the predictor is loaded with the cached check only
    assert lat.host_check == "unverified" and lat.foreign_host is False
    assert lat.host_note is not None and "the speed signature was not measured yet" in lat.host_note
    assert lat.host_note.endswith("measure its speed signature: hwnas lut check --profile ort-cpu-fp32-t1")

    check_table(LatencyTable.load(path))  # as `hwnas lut check` or a search worker does, on this boot
    assert clock.calls == 2  # foreign: measured twice before it is believed
    [lat], _ = latency.latencies(arch, "tiny")  # the same cached predictor: the check is read per request
    assert clock.calls == 2
    assert lat.foreign_host is True and lat.host_check == "foreign"
    assert lat.host_note is not None and "this host runs the reference layers at 0.48x" in lat.host_note
    assert lat.host_note.endswith(
        "build this host's table: hwnas lut build --profile ort-cpu-fp32-t1 --space tiny --first-use"
    )

    [table] = latency.devices()[0].tables
    assert table.host_check.verdict == "foreign" and table.host_check.speed_ratio == pytest.approx(0.48)
    assert table.host_check.note is not None and "--space SPACE" in table.host_check.note
    assert clock.calls == 2


def test_another_cpu_is_foreign_by_its_fingerprint_without_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeSignature(monkeypatch)
    other = HostInfo.current().model_copy(update={"family": "not-this-family"})
    arch, _ = net_and_table(host=other)
    latency.forget_tables()
    [lat], _ = latency.latencies(arch, None)
    assert lat.foreign_host is True and lat.host_check == "foreign"
    assert lat.host_note is not None and "cpu family: not-this-family vs" in lat.host_note
    assert "--space SPACE" in lat.host_note
    assert clock.calls == 0


def test_the_endpoints_carry_the_host_check(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from service.api.routes import architectures

    clock = FakeSignature(monkeypatch)
    arch, path = net_and_table()
    check_table(LatencyTable.load(path))
    latency.forget_tables()
    alice = world.as_user("alice")
    [device] = world.client.get("/api/v1/devices", headers=alice).json()
    host_check = device["tables"][0]["host_check"]
    assert host_check["verdict"] == "foreign" and host_check["speed_ratio"] == pytest.approx(0.48)
    assert "0.48x" in host_check["reasons"][0] and "hwnas lut build" in host_check["note"]

    # the net as if from one of alice's jobs: what the endpoint answers is the point here, not the job
    monkeypatch.setattr(architectures, "_owned", lambda session, user, arch_id: (arch, ["no-such-job"]))
    r = world.client.get(f"/api/v1/architectures/{arch.arch_id}", headers=alice)
    assert r.status_code == 200, r.text
    [lat] = r.json()["latencies"]
    assert lat["foreign_host"] is True and lat["host_check"] == "foreign"
    assert "build this host's table: hwnas lut build --profile ort-cpu-fp32-t1" in lat["host_note"]
    assert clock.calls == 2  # the check made before the server started (foreign: twice); none in a request


def test_the_server_checks_its_tables_at_start_off_the_request_path(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from fastapi.testclient import TestClient

    from service.api.main import create_app
    from tests.service.conftest import make_settings

    clock = FakeSignature(monkeypatch)
    _, path = net_and_table()
    table = LatencyTable.load(path)
    assert check_table(table, measure=False).verdict == "unverified"
    with TestClient(create_app(make_settings(database_url, tmp_path, check_tables=True, auth="auto"))):
        deadline = time.monotonic() + 10
        while check_table(table, measure=False).verdict == "unverified" and time.monotonic() < deadline:
            time.sleep(0.02)
    assert clock.calls == 2
    check = check_table(table, measure=False)
    assert check.foreign and check.speed_ratio == pytest.approx(0.48)  # the cache holds the measured verdict
    off = make_settings(database_url, tmp_path)  # the tests' default: HWNAS_CHECK_TABLES=0
    assert off.check_tables is False


def test_a_table_built_while_the_server_runs_is_served_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    FakeSignature(monkeypatch)
    arch, path = net_and_table()
    latency.forget_tables()
    [before], _ = latency.latencies(arch, "tiny")
    assert before.latency_ms > 0
    # a worker's first-use build rewrites the table (here: every layer twice as slow) while the server runs
    table = LatencyTable.load(path)
    table.entries = {k: e.model_copy(update={"median_ms": 2 * e.median_ms}) for k, e in table.entries.items()}
    table.save(path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # a coarse clock may not tick
    [after], _ = latency.latencies(arch, "tiny")
    assert after.raw_sum_ms == pytest.approx(2 * before.raw_sum_ms)
