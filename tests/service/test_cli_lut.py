"""``hwnas lut build/list/show`` and ``hwnas latency`` (validate and the kit are tested with their modules)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import searchspace as ss
from tests.service.conftest import RunCli

pytestmark = pytest.mark.usefixtures("isolated_tables")


def test_build_then_predict(cli: RunCli, tmp_path: Path) -> None:
    arch = ss.known_architecture("mobilenet_v3_small", classes=10).model_copy(update={"resolution": 32})
    code, out, err = cli("lut", "build", "--profile", "ort-cpu-fp32-t1", "--arch", arch.encode(), "--passes", "1")
    assert code == 0, err
    assert "layers [" in err  # the progress bar
    from latency_tables.host import REFERENCE_LAYERS
    from latency_tables.signatures import arch_keys

    assert len(set(arch_keys(arch))) == 11  # blocks 4 and 5 of v3-small are the same layer
    distinct = len(set(arch_keys(arch)) | set(REFERENCE_LAYERS))  # a build adds the speed signature's layers
    assert f"{distinct} entries" in out
    code, out, _ = cli("latency", arch.encode(), "--profile", "ort-cpu-fp32-t1", "--json")
    data = json.loads(out)
    assert data["total_ms"] > 0 and len(data["blocks"]) == 13
    assert data["total_ms"] == pytest.approx(data["raw_sum_ms"], rel=0.5)
    code, out, _ = cli("latency", arch.encode(), "--profile", "ort-cpu-fp32-t1")
    assert "predicted" in out and "blocks.10" in out
    code, out, _ = cli("lut", "list", "--json")
    [row] = json.loads(out)
    assert row["profile"] == "ort-cpu-fp32-t1" and row["entries"] == distinct
    assert Path(row["path"]).parent == tmp_path / "luts"
    code, out, _ = cli("lut", "show", "ort-cpu-fp32-t1")
    assert "these latencies describe that host" in out and "call overhead" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["lut", "build", "--profile", "ort-cpu-fp99-t1", "--space", "fbnet"], "is not a profile id"),
        (["lut", "build", "--profile", "ort-cpu-fp32-t1"], "name what to cover with --space"),
        (["lut", "build", "--profile", "ort-cpu-fp32-t1", "--space", "nope"], "unknown search space 'nope'"),
        (["latency", "mobilenet_v2", "--profile", "ort-cpu-fp32-t7"], "no latency table for profile ort-cpu-fp32-t7"),
        (["lut", "show", "ort-cpu-int8-t9"], "no latency table for profile ort-cpu-int8-t9"),
    ],
)
def test_errors_are_one_line(cli: RunCli, argv: list[str], message: str) -> None:
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("hwnas: error: ") and err.count("\n") == 1, err
    assert message in err


def test_a_table_from_another_host_is_one_warning_line(tmp_path: Path) -> None:
    """What a person sees on stderr, so a real process: under pytest, warnings go to pytest's recorder."""
    import os
    import subprocess
    import sys

    from latency_tables.profiles import DeviceProfile, HostInfo
    from latency_tables.signatures import arch_keys
    from latency_tables.table import Entry, LatencyTable

    arch = ss.known_architecture("mobilenet_v3_small", classes=10).model_copy(update={"resolution": 32})
    phone = HostInfo.current().model_copy(update={"cpu": "Cortex-A76"})
    table = LatencyTable(
        profile=DeviceProfile.parse("ort-cpu-fp32-t1"),
        host=phone,
        entries={k: Entry(median_ms=0.1, p10_ms=0.1, p90_ms=0.1, runs=10) for k in arch_keys(arch)},
    )
    path = table.save(tmp_path / table.default_filename())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "latency",
            arch.encode(),
            "--profile",
            "ort-cpu-fp32-t1",
            "--table",
            str(path),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "HWNAS_LUT_DIR": str(tmp_path / "luts")},
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["total_ms"] > 0
    err = proc.stderr
    assert err.startswith("hwnas: warning: table ort-cpu-fp32-t1@") and err.count("\n") == 1, err
    assert "Cortex-A76" in err and "UserWarning" not in err
