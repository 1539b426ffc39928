"""The hwnas command line: output, JSON shapes, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import searchspace as ss
from tests.service.conftest import RunCli


def test_spaces_lists_every_space_with_its_size(cli: RunCli) -> None:
    code, out, _ = cli("spaces", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["name"] for d in data] == ss.list_spaces()
    assert all(d["cardinality"] == ss.load_space(d["name"]).cardinality() for d in data)
    code, out, _ = cli("spaces")
    assert "mobiledet-cifar" in out and "architectures" in out


def test_space_show(cli: RunCli) -> None:
    code, out, _ = cli("space", "show", "fbnet")
    assert code == 0
    assert "ibn(k=3/5 act=relu groups=1/2) | ibn(t=3/6 k=3/5 act=relu) | skip" in out
    assert f"architectures: {ss.load_space('fbnet').cardinality():,}" in out
    code, out, _ = cli("space", "show", "mobilenetv2", "--json")
    assert json.loads(out)["stages"][0]["channels"] == [16]


def test_known_json(cli: RunCli) -> None:
    code, out, _ = cli("known", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["mobilenet_v2"]["params"] == 3504872
    assert rows["mobilenet_v2"]["spaces"] == ["mobilenetv2"]
    assert "mobilenetv3" in rows["mobilenet_v3_small"]["spaces"]


def test_describe_table_and_json(cli: RunCli, tmp_path: Path) -> None:
    code, out, _ = cli("describe", "mobilenet_v3_small")
    assert code == 0
    assert "2,542,856 params" in out and "blocks.10" in out
    code, out, _ = cli("describe", "mnasnet_b1", "--json")
    data = json.loads(out)
    assert data["params"] == 4383312
    assert len(data["layers"]) == 1 + 17 + 1  # stem, blocks, head
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]
    # the same net given as a string and as a file
    arch = ss.known_architecture("mnasnet_b1")
    code, out, _ = cli("describe", arch.encode(), "--json")
    assert json.loads(out)["arch_id"] == arch.arch_id
    path = tmp_path / "a.json"
    arch.save(path)
    code, out, _ = cli("describe", str(path), "--json")
    assert json.loads(out)["arch_id"] == arch.arch_id


def test_export_json(cli: RunCli, tmp_path: Path) -> None:
    out_path = tmp_path / "v2.json"
    code, out, _ = cli("export", "mobilenet_v2", "--format", "json", "-o", str(out_path))
    assert code == 0 and "wrote" in out
    assert ss.Architecture.load(out_path) == ss.known_architecture("mobilenet_v2")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["describe", "nosuchnet"], "is not a known net"),
        (["describe", "r32_i3|conv_k3_c16_relu|ibn_k4_c16_relu|head_n10"], r"blocks\[0\]"),
        (["space", "show", "nosuchspace"], "unknown search space 'nosuchspace'"),
        (["export", "mobilenet_v2", "--format", "json", "-o", "/nonexistent-dir/x.json"], "/nonexistent-dir"),
    ],
)
def test_bad_input_is_one_line_exit_2(cli: RunCli, argv: list[str], message: str) -> None:
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("hwnas: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resolution": 32, "blocks": []}')
    proc = subprocess.run([sys.executable, "-m", "service.cli", "describe", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "stem: required field is missing" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "service.cli", "frobnicate"], capture_output=True, text=True)
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_space_sample_is_seeded_and_in_the_space(cli: RunCli) -> None:
    code, out, _ = cli("space", "sample", "fbnet-cifar", "-n", "3", "--seed", "4")
    lines = out.split()
    assert code == 0 and len(lines) == 3
    space = ss.load_space("fbnet-cifar")
    assert all(space.contains(ss.Architecture.decode(line)) for line in lines)
    assert cli("space", "sample", "fbnet-cifar", "-n", "3", "--seed", "4")[1].split() == lines
    code, _, err = cli("space", "sample", "fbnet-cifar", "-n", "0")
    assert code == 2 and "-n must be >= 1" in err
