"""The device round trip: export a kit, measure it with the standalone agent, import the table.

The agent must run where only the standard library, numpy and onnxruntime
exist, so it runs here in a subprocess whose imports of torch, pydantic,
yaml, onnx, searchspace and the rest of hwnas fail.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest

from latency_tables import agent
from latency_tables.host import REFERENCE_LAYERS
from latency_tables.kit import KIT_FORMAT, KIT_VERSION, calibration_archs
from latency_tables.predictor import LatencyPredictor
from latency_tables.table import LatencyTable, user_table_dir
from searchspace import load_space
from service.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
BLOCKED = ("torch", "pydantic", "yaml", "onnx", "searchspace", "service", "nas")

# 21 layers: stem, inverted bottlenecks (k 3/5, t 1/3/6), a skip, a fused block with SE and hswish, head
TINY = {
    "name": "devkit",
    "version": 1,
    "resolutions": [16],
    "default_resolution": 16,
    "in_channels": 3,
    "classes": 10,
    "width_multipliers": [1.0],
    "channel_divisor": 8,
    "stem": {"channels": 8, "k": 3, "stride": 2, "act": "relu"},
    "defaults": {"type": "ibn", "k": [3, 5], "se": 0, "act": "relu"},
    "stages": [
        {"channels": 16, "stride": 2, "depth": [1, 2], "choices": [{"t": [1, 3]}, {"type": "skip"}]},
        {
            "channels": 24,
            "stride": 2,
            "depth": [1, 2],
            "choices": [{"t": [3, 6]}, {"type": "fused", "t": [3], "k": [3], "se": [0.25], "act": "hswish"}],
        },
    ],
    "head": {"conv": 64, "act": "relu"},
}
# 3 layers, for the (slower to export) int8 kit
MINI = {
    **TINY,
    "name": "mini",
    "resolutions": [8],
    "default_resolution": 8,
    "defaults": {"type": "ibn", "k": [3], "se": 0, "act": "relu"},
    "stages": [{"channels": 16, "stride": 2, "depth": [1], "choices": [{"t": [3]}]}],
    "head": {"conv": 32, "act": "relu"},
}

GUARD = f"""
import sys

_BLOCKED = {set(BLOCKED)!r}
_ALLOWED = {{"latency_tables", "latency_tables.agent", "latency_tables.portable", "latency_tables.timing"}}


class _DeviceGuard:
    '''A device has no torch, pydantic, yaml, onnx, nor any of hwnas but the agent and the modules it ships with.'''

    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in _BLOCKED or (top == "latency_tables" and name not in _ALLOWED):
            raise ImportError(f"{{name}} is not installed on this (simulated) device")
        return None


sys.meta_path.insert(0, _DeviceGuard())
"""


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agent")


@pytest.fixture(scope="module")
def device_env(work: Path) -> dict[str, str]:
    """PYTHONPATH of a simulated device: the guard above, then the repo (for the agent only)."""
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(textwrap.dedent(GUARD))
    return {"PYTHONPATH": f"{guard}{os.pathsep}{ROOT}"}


def run_device(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # os.environ read now, not in the module fixture: it carries this test's own measurement lock (conftest)
    full = {**os.environ, **env}
    full.pop("PYTHONSTARTUP", None)
    return subprocess.run([sys.executable, *args], env=full, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tiny_kit(work: Path) -> Path:
    spec = work / "devkit.json"
    spec.write_text(json.dumps(TINY))
    kit = work / "tiny-kit.zip"
    assert cli_main(["lut", "export-kit", "--space", str(spec), "--calibrate", "3", "-o", str(kit)]) == 0
    return kit


def manifest(kit: Path) -> dict[str, Any]:
    with zipfile.ZipFile(kit) as zf:
        data: dict[str, Any] = json.loads(zf.read("manifest.json"))
    return data


def read_json(path: Path) -> dict[str, Any]:
    raw = path.read_bytes()
    data: dict[str, Any] = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
    return data


def test_guard_blocks_what_a_device_lacks(device_env: dict[str, str], work: Path) -> None:
    probe = (
        "import importlib, sys\nfor m in sys.argv[1:]:\n    try:\n        importlib.import_module(m)\n"
        "        print('imported', m)\n    except ImportError:\n        pass\n"
    )
    got = run_device(["-c", probe, *BLOCKED, "latency_tables.table", "latency_tables.graph"], device_env, work)
    assert got.returncode == 0, got.stderr
    assert got.stdout == ""
    assert run_device(["-c", "import torch"], device_env, work).returncode != 0
    ok = run_device(["-c", "import numpy, onnxruntime, latency_tables.agent"], device_env, work)
    assert ok.returncode == 0, ok.stderr


def test_kit_contents(tiny_kit: Path) -> None:
    m = manifest(tiny_kit)
    assert (m["format"], m["version"], m["profile_id"]) == (KIT_FORMAT, KIT_VERSION, "ort-cpu-fp32-t1")
    assert [s["name"] for s in m["spaces"]] == ["devkit"]
    assert 15 <= len(m["layers"]) <= 40
    assert 1 <= len(m["networks"]) <= 3
    with zipfile.ZipFile(tiny_kit) as zf:
        names = set(zf.namelist())
    assert {i["file"] for i in m["layers"] + m["networks"]} | {"overhead.onnx", "__main__.py"} <= names
    assert m["layers"][0]["input_shape"][0] == 1
    # the calibration nets are the ones `hwnas lut build --calibrate` would measure
    expected = {a.encode() for _, a in calibration_archs([load_space(TINY)], 3, 0)}
    assert {n["arch"] for n in m["networks"]} == expected


def test_round_trip(
    tiny_kit: Path,
    device_env: dict[str, str],
    work: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = work / "device-table.json.gz"
    got = run_device(
        [
            "-m",
            "latency_tables.agent",
            str(tiny_kit),
            "--profile",
            "ort-cpu-fp32-t1",
            "-o",
            str(out),
            "--passes",
            "1",
            "--rounds",
            "1",
        ],
        device_env,
        work,
    )
    assert got.returncode == 0, got.stderr
    assert "Traceback" not in got.stderr and "ETA" in got.stderr
    assert out.read_bytes()[:2] == b"\x1f\x8b"

    lut_dir = work / "lut-home"
    monkeypatch.setenv("HWNAS_LUT_DIR", str(lut_dir))
    assert cli_main(["lut", "import", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "imported ort-cpu-fp32-t1@" in printed and "calibration not refitted" in printed
    [path] = list(lut_dir.glob("*.json.gz"))
    assert path.parent == user_table_dir()
    table = LatencyTable.load(path)
    m = manifest(tiny_kit)
    assert set(table.entries) == {i["key"] for i in m["layers"]}
    assert all(e.median_ms > 0 and e.runs > 0 and e.passes == 1 for e in table.entries.values())
    assert {n.arch for n in table.networks} == {n["arch"] for n in m["networks"]}
    assert all(n.median_ms > 0 and n.space == "devkit" for n in table.networks)
    assert table.call_overhead_ms > 0
    pred = LatencyPredictor(table, missing="error").predict(load_space(TINY).sample(1))
    assert pred.total_ms > 0 and not pred.estimated

    # importing again merges: nothing new, nothing lost
    assert cli_main(["lut", "import", str(out)]) == 0
    assert "0 new entries" in capsys.readouterr().out
    assert set(LatencyTable.load(path).entries) == set(table.entries)


def test_import_refits_calibration_from_ten_nets(
    tiny_kit: Path, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # a measured table with 10 whole nets, their times made up from the entries (no timing here)
    out = work / "ten.json"
    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "1", "--rounds", "1"]) == 0
    data = read_json(out)
    base = LatencyTable.from_dict(data)
    space = load_space(TINY)
    archs = {a.encode(): a for a in (space.sample(i) for i in range(40))}
    assert len(archs) >= 10
    predictor = LatencyPredictor(base, missing="error")
    data["networks"] = [
        {
            "arch": code,
            "space": "devkit",
            "median_ms": 1.3 * float(predictor.predict_many([a])[0]) + 0.01,
            "p10_ms": 0.0,
            "p90_ms": 0.0,
            "runs": 1,
            "rounds": 1,
        }
        for code, a in list(archs.items())[:10]
    ]
    out.write_text(json.dumps(data))
    monkeypatch.setenv("HWNAS_LUT_DIR", str(work / "lut-ten"))
    assert cli_main(["lut", "import", str(out), "--name", "phone"]) == 0
    assert "refitted on 10 nets" in capsys.readouterr().out
    table = LatencyTable.load(work / "lut-ten" / "phone.json.gz")
    assert table.calibration.fitted_on == 10 and table.calibration.model != "raw"


def test_resume_does_not_measure_again(tiny_kit: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = work / "resume.json"
    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "1", "--rounds", "1", "--limit", "5"]) == 0
    assert "--limit" in capsys.readouterr().err
    first = read_json(out)["entries"]
    assert len(first) == 5

    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "1", "--rounds", "1"]) == 0
    assert "resuming" in capsys.readouterr().err
    second = read_json(out)
    assert len(second["entries"]) == len(manifest(tiny_kit)["layers"])
    assert {k: second["entries"][k] for k in first} == first
    assert len(second["networks"]) == len(manifest(tiny_kit)["networks"])

    # nothing left: a third run measures nothing
    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "1", "--rounds", "1"]) == 0
    third = read_json(out)
    assert (third["entries"], third["networks"]) == (second["entries"], second["networks"])
    assert third["call_overhead_ms"] == second["call_overhead_ms"]

    # asking for a second pass re-measures every layer once more and keeps the less disturbed figure
    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "2", "--rounds", "1"]) == 0
    fourth = read_json(out)["entries"]
    assert set(fourth) == set(second["entries"])
    for key, entry in fourth.items():
        assert entry["passes"] == 2 and entry["median_ms"] <= second["entries"][key]["median_ms"]


def test_interrupt_saves_progress(
    tiny_kit: Path, work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = {"n": 0}
    real = agent.time_calls

    def interrupted(run: Any, **kw: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:  # the overhead, two layers, then Ctrl-C
            raise KeyboardInterrupt
        return real(run, **kw)

    monkeypatch.setattr(agent, "time_calls", interrupted)
    out = work / "interrupted.json.gz"
    assert agent.main([str(tiny_kit), "-o", str(out), "--passes", "1"]) == agent.EXIT_INTERRUPTED
    assert "run the same command again to resume" in capsys.readouterr().err
    assert len(read_json(out)["entries"]) == 2


def _one_error_line(got: subprocess.CompletedProcess[str]) -> str:
    assert got.returncode == 2, got.stderr
    assert "Traceback" not in got.stderr
    lines = got.stderr.strip().splitlines()
    assert len(lines) == 1, got.stderr
    assert lines[0].startswith("hwnas-agent: error: ")
    return lines[0]


def test_bad_input_is_one_line(tiny_kit: Path, device_env: dict[str, str], work: Path) -> None:
    def agent_cmd(*args: str) -> subprocess.CompletedProcess[str]:
        return run_device(["-m", "latency_tables.agent", *args], device_env, work)

    line = _one_error_line(agent_cmd(str(tiny_kit), "--profile", "ort-cpu-int8-t1"))
    assert "fp32" in line and "int8" in line

    not_zip = work / "not-a-kit.zip"
    not_zip.write_text("hello")
    assert "not a zip" in _one_error_line(agent_cmd(str(not_zip)))

    assert "does not exist" in _one_error_line(agent_cmd(str(work / "missing.zip")))

    future = work / "future-kit.zip"
    with zipfile.ZipFile(future, "w") as zf:
        zf.writestr("manifest.json", json.dumps({**manifest(tiny_kit), "version": KIT_VERSION + 1}))
    assert "version 2" in _one_error_line(agent_cmd(str(future)))

    # an onnxruntime older than the kit's graphs need: said before anything runs
    old_ort = work / "new-graphs-kit.zip"
    with zipfile.ZipFile(old_ort, "w") as zf:
        zf.writestr("manifest.json", json.dumps({**manifest(tiny_kit), "min_onnxruntime": "99.0"}))
    assert "onnxruntime >= 99.0" in _one_error_line(agent_cmd(str(old_ort)))

    # a result file of another profile is not resumed into
    other = work / "other.json"
    other.write_text(
        json.dumps(
            {
                "format": "hwnas.latency-table",
                "version": 1,
                "entries": {},
                "networks": [],
                "host": {},
                "profile": {**manifest(tiny_kit)["profile"], "threads": 4},
            }
        )
    )
    assert "ort-cpu-fp32-t4" in _one_error_line(agent_cmd(str(tiny_kit), "-o", str(other)))


def test_import_rejects_a_non_table(
    work: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HWNAS_LUT_DIR", str(work / "lut-bad"))
    bad = work / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert cli_main(["lut", "import", str(bad)]) == 2
    assert capsys.readouterr().err.startswith("hwnas: error: ")
    assert not (work / "lut-bad").exists()
    assert (
        cli_main(["lut", "export-kit", "--space", "x", "--profile", "torch-cpu-fp32-t1", "-o", str(work / "k.zip")])
        == 2
    )
    assert "'ort'" in capsys.readouterr().err


def test_int8_kit(work: Path, device_env: dict[str, str]) -> None:
    spec = work / "mini.json"
    spec.write_text(json.dumps(MINI))
    kit = work / "mini-int8.zip"
    assert (
        cli_main(
            [
                "lut",
                "export-kit",
                "--space",
                str(spec),
                "--profile",
                "ort-cpu-int8-t1",
                "--calibrate",
                "1",
                "-o",
                str(kit),
            ]
        )
        == 0
    )
    m = manifest(kit)
    # the space's 3 layers and the speed signature's, so the device's table can be told from another's
    assert m["profile"]["precision"] == "int8" and len(m["layers"]) == 3 + len(REFERENCE_LAYERS)
    assert set(REFERENCE_LAYERS) <= {i["key"] for i in m["layers"]}
    # the kit runs as a zip app on the device, its own agent inside, threads overridden
    out = work / "int8.json.gz"
    alone = {**device_env, "PYTHONPATH": device_env["PYTHONPATH"].split(os.pathsep)[0]}  # no repo: the kit's agent
    got = run_device([str(kit), "-o", str(out), "--passes", "1", "--rounds", "1", "--threads", "2"], alone, work)
    assert got.returncode == 0, got.stderr
    table = LatencyTable.load(out)
    assert table.profile.id == "ort-cpu-int8-t2"
    assert set(table.entries) == {i["key"] for i in m["layers"]}
    assert all(e.median_ms > 0 for e in table.entries.values()) and len(table.networks) == 1


@pytest.mark.parametrize("pid", ["ort-cpu-fp32-t1", "ort-cuda-int8-t4-b8", "torch-cpu-fp32-t2"])
def test_agent_and_host_read_profile_ids_alike(pid: str) -> None:
    """One pattern, in portable.py, which the kit ships: the agent reads an id as DeviceProfile does."""
    from latency_tables import portable
    from latency_tables.profiles import DeviceProfile

    assert agent.PROFILE_ID is portable.PROFILE_ID
    profile = DeviceProfile.parse(pid)
    assert agent.parse_profile(pid) == profile.model_dump()
    assert agent.profile_id(agent.parse_profile(pid)) == profile.id == pid
