"""What the command line says about a table's host: ``hwnas lut check``, ``lut list``/``lut show``'s host fields,
``hwnas latency``'s warning, and ``lut validate --against shipped``. The speed signature and the net
measurements are replaced by fakes, so nothing here times a layer."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import searchspace as ss
from latency_tables import host as host_module
from latency_tables import table as table_module
from latency_tables import validate as validate_module
from latency_tables.errors import LatencyTableError
from latency_tables.host import REFERENCE_LAYERS, check_table
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_keys, space_layers
from latency_tables.table import Entry, LatencyTable, user_table_dir
from latency_tables.validate import report_path, validate, validate_tables
from service.cli import main
from tests.specs import TINY_SPEC

FP32 = DeviceProfile.parse("ort-cpu-fp32-t1")


def make_table(
    profile: str | DeviceProfile = FP32,
    host: HostInfo | None = None,
    figures: dict[str, float] | None = None,
) -> LatencyTable:
    figures = dict.fromkeys(REFERENCE_LAYERS, 0.1) if figures is None else figures
    return LatencyTable(
        profile=profile if isinstance(profile, DeviceProfile) else DeviceProfile.parse(profile),
        host=host or HostInfo.current(),
        entries={k: Entry(median_ms=v, p10_ms=v, p90_ms=v, runs=10) for k, v in figures.items()},
    )


def save(table: LatencyTable, folder: Path | None = None) -> Path:
    return table.save((folder or user_table_dir()) / table.default_filename())


class FakeSignature:
    """measure_signature replaced: each layer at ``ms[profile]`` (default 0.1 ms), and the calls counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, ms: dict[str, float] | None = None) -> None:
        self.calls: list[str] = []
        self.ms = ms or {}

        def fake(profile: DeviceProfile, keys: Any, **_: Any) -> dict[str, float]:
            self.calls.append(profile.id)
            return dict.fromkeys(keys, self.ms.get(profile.id, 0.1))

        monkeypatch.setattr(host_module, "measure_signature", fake)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def four_tables() -> dict[str, Path]:
    """One table per verdict, each of its own profile (so none shadows another on the search path)."""
    other_cpu = HostInfo.current().model_copy(update={"family": "not-this-family"})
    return {
        "same": save(make_table("ort-cpu-fp32-t1")),  # the fake times it as the table does
        "slower": save(make_table("ort-cpu-fp32-t2")),  # the fake times it at 0.048 ms: 0.48x
        "fingerprint": save(make_table("ort-cpu-fp32-t3", other_cpu)),
        "no-reference": save(make_table("ort-cpu-fp32-t4", figures={"16x8:conv_k3_c8_relu": 0.1})),
        "cuda": save(make_table("ort-cuda-fp32-t1")),
    }


# ------------------------------------------------------------ lut check
def test_lut_check_gives_each_tables_verdict_reasons_and_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, four_tables: dict[str, Path]
) -> None:
    clock = FakeSignature(monkeypatch, {"ort-cpu-fp32-t2": 0.048})
    code, out, _ = run(capsys, "lut", "check", "--json")
    assert code == 0
    rows = {r["profile"]: r for r in json.loads(out)}
    # only where fingerprint and runtime allow; a foreign signature is measured twice before it is believed
    assert sorted(clock.calls) == ["ort-cpu-fp32-t1", "ort-cpu-fp32-t2", "ort-cpu-fp32-t2"]
    same, slower, other = rows["ort-cpu-fp32-t1"], rows["ort-cpu-fp32-t2"], rows["ort-cpu-fp32-t3"]
    assert same["verdict"] == "same" and same["speed_ratio"] == pytest.approx(1.0) and same["next_step"] is None
    assert slower["verdict"] == "foreign" and slower["speed_ratio"] == pytest.approx(0.48)
    assert slower["next_step"] == (
        "build this host's table: hwnas lut build --profile ort-cpu-fp32-t2 --space SPACE --first-use"
    )
    assert other["verdict"] == "foreign" and other["speed_ratio"] is None
    assert "cpu family: not-this-family vs" in other["reasons"][0]
    assert other["next_step"].startswith("build this host's table: hwnas lut build --profile ort-cpu-fp32-t3")
    lacking = rows["ort-cpu-fp32-t4"]
    assert lacking["verdict"] == "unverified" and "none of the reference layers" in lacking["reasons"][0]
    assert lacking["next_step"].startswith("build this host's table: ")  # building adds the reference layers
    cuda = rows["ort-cuda-fp32-t1"]
    assert cuda["verdict"] == "unverified" and "cannot run ort-cuda-fp32-t1" in cuda["reasons"][0]
    assert cuda["next_step"] is None  # nothing this host can build or measure
    assert rows["ort-cpu-fp32-t1"]["path"] == str(four_tables["same"])

    code, out, _ = run(capsys, "lut", "check")  # this boot's verdicts are cached: nothing timed again
    assert code == 0 and len(clock.calls) == 3
    lines = out.splitlines()
    assert lines[0].startswith(f"this host: {HostInfo.current().cpu}, ")
    row = next(line for line in lines if line.startswith("ort-cpu-fp32-t2@"))
    assert row.split()[1:3] == ["foreign", "0.48x"]
    assert next(line for line in lines if line.startswith("ort-cpu-fp32-t1@")).split()[1:3] == ["same", "1.00x"]
    detail = lines.index(next(line for line in lines if line.startswith("ort-cpu-fp32-t2@") and ": " in line))
    assert "this host runs the reference layers at 0.48x the table's time" in lines[detail]
    assert lines[detail + 1] == (
        "  build this host's table: hwnas lut build --profile ort-cpu-fp32-t2 --space SPACE --first-use"
    )
    assert not any(line.startswith("ort-cpu-fp32-t1@") and ": " in line for line in lines)  # no advice for same


def test_lut_check_no_measure_times_nothing_and_says_how_to_measure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, four_tables: dict[str, Path]
) -> None:
    clock = FakeSignature(monkeypatch)
    code, out, _ = run(capsys, "lut", "check", "--no-measure", "--profile", "ort-cpu-fp32-t1", "--json")
    assert code == 0 and clock.calls == []
    [row] = json.loads(out)
    assert row["verdict"] == "unverified" and row["reasons"] == ["the speed signature was not measured yet"]
    assert row["next_step"] == "measure its speed signature: hwnas lut check --profile ort-cpu-fp32-t1"
    code, out, _ = run(capsys, "lut", "check", "--no-measure", "--profile", "ort-cpu-fp32-t3")
    assert code == 0 and clock.calls == [] and "foreign" in out and "cpu family" in out


def test_lut_check_reports_a_profile_without_a_table_and_refuses_a_bad_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, four_tables: dict[str, Path]
) -> None:
    clock = FakeSignature(monkeypatch)
    code, out, _ = run(capsys, "lut", "check", "--profile", "ort-cpu-fp32-t8", "--json")
    assert code == 0 and clock.calls == []
    assert json.loads(out) == [
        {
            "table": None,
            "profile": "ort-cpu-fp32-t8",
            "path": None,
            "verdict": None,
            "reasons": ["no table of this profile on the search path"],
            "next_step": "build this host's table: hwnas lut build --profile ort-cpu-fp32-t8 --space SPACE --first-use",
        }
    ]
    for bad, message in [("ort-cpu-fp99-t1", "is not a profile id"), ("xyz-cpu-fp32-t1", "unknown runtime 'xyz'")]:
        code, out, err = run(capsys, "lut", "check", "--profile", bad)
        assert code == 2 and out == ""
        assert err.startswith("hwnas: error: profile: ") and err.count("\n") == 1 and message in err, err
    assert clock.calls == []


# ------------------------------------------------------------ lut list and lut show
def test_lut_list_has_the_host_verdict_and_times_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, four_tables: dict[str, Path]
) -> None:
    clock = FakeSignature(monkeypatch, {"ort-cpu-fp32-t2": 0.048})
    check_table(LatencyTable.load(four_tables["slower"]))  # measured once, as `lut check` or a search would
    assert clock.calls == ["ort-cpu-fp32-t2"] * 2  # foreign: measured twice before it is believed
    code, out, _ = run(capsys, "lut", "list")
    assert code == 0 and clock.calls == ["ort-cpu-fp32-t2"] * 2
    header, *rows = out.splitlines()
    assert header.split()[:7] == ["table", "entries", "nets", "calibration", "CV", "MAPE", "host"]
    verdicts = {line.split("@")[0]: line.split()[5] for line in rows if "@" in line}
    assert verdicts == {
        "ort-cpu-fp32-t1": "unverified",  # same fingerprint, signature not measured on this boot
        "ort-cpu-fp32-t2": "foreign",  # the cached signature
        "ort-cpu-fp32-t3": "foreign",  # the fingerprint
        "ort-cpu-fp32-t4": "unverified",
        "ort-cuda-fp32-t1": "unverified",
    }
    code, out, _ = run(capsys, "lut", "list", "--json")
    slower = next(r for r in json.loads(out) if r["profile"] == "ort-cpu-fp32-t2")
    assert slower["host_check"]["verdict"] == "foreign" and slower["host_check"]["speed_ratio"] == pytest.approx(0.48)
    assert clock.calls == ["ort-cpu-fp32-t2"] * 2


def test_lut_show_prints_the_fingerprint_the_signature_and_the_cached_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = FakeSignature(monkeypatch, {"ort-cpu-fp32-t1": 0.048})
    path = save(make_table(figures={**dict.fromkeys(REFERENCE_LAYERS, 0.1), "16x8:conv_k3_c8_relu": 0.2}))
    code, out, _ = run(capsys, "lut", "show", str(path))
    assert code == 0 and clock.calls == []
    assert "speed signature (8 reference layers):" in out
    assert ["0.1000", "ms", REFERENCE_LAYERS[0]] in [line.split() for line in out.splitlines()]
    assert "host check: table ort-cpu-fp32-t1@" in out and "the speed signature was not measured yet" in out
    assert "measure its speed signature: hwnas lut check --profile ort-cpu-fp32-t1" in out

    check_table(LatencyTable.load(path))
    code, out, _ = run(capsys, "lut", "show", str(path))
    assert len(clock.calls) == 2  # the check's (foreign: twice); show itself times nothing
    assert ["0.1000", "ms", "(here", "0.48x)", REFERENCE_LAYERS[0]] in [line.split() for line in out.splitlines()]
    assert "was measured on another host: this host runs the reference layers at 0.48x" in out
    assert "build this host's table: hwnas lut build --profile ort-cpu-fp32-t1" in out

    code, out, _ = run(capsys, "lut", "show", str(path), "--json")
    info = json.loads(out)
    assert info["speed_signature"] == dict.fromkeys(REFERENCE_LAYERS, 0.1)
    assert info["host_check"]["verdict"] == "foreign" and info["host_check"]["speed_ratio"] == pytest.approx(0.48)
    assert info["next_step"].startswith("build this host's table: ")


def test_lut_show_prints_each_fingerprint_field(capsys: pytest.CaptureFixture[str]) -> None:
    host = HostInfo.current().model_copy(
        update={
            "vendor": "TestVendor",
            "family": "977",
            "model_number": "42",
            "stepping": "3",
            "microcode": "0xabc",
            "flags": ("avx2", "fma"),
            "caches": {"L2": "1024K", "L3": "32768K"},
        }
    )
    path = save(make_table(host=host, figures={}))
    code, out, _ = run(capsys, "lut", "show", str(path))
    assert code == 0
    assert "(vendor TestVendor, family 977, model 42, stepping 3, microcode 0xabc)" in out
    assert "  caches: L2 1024K, L3 32768K" in out and "  instruction sets: avx2 fma" in out
    assert "speed signature: none (the table holds no reference layer)" in out
    code, out, _ = run(capsys, "lut", "show", str(path), "--json")
    assert json.loads(out)["fingerprint"] == {
        "vendor": "TestVendor",
        "family": "977",
        "model_number": "42",
        "stepping": "3",
        "microcode": "0xabc",
        "flags": ["avx2", "fma"],
        "caches": {"L2": "1024K", "L3": "32768K"},
    }
    old = save(make_table("ort-cpu-fp32-t2", HostInfo(cpu="Old CPU", cores=2, machine="x86_64", system="Linux")))
    code, out, _ = run(capsys, "lut", "show", str(old))
    assert "no CPU fingerprint (the table predates them)" in out
    assert json.loads(run(capsys, "lut", "show", str(old), "--json")[1])["fingerprint"] == {}


# ------------------------------------------------------------ hwnas latency
def tiny_net_table(ms: float = 0.1) -> tuple[ss.Architecture, Path]:
    arch = ss.load_space(TINY_SPEC).sample(3)
    figures = dict.fromkeys(REFERENCE_LAYERS, 0.1) | dict.fromkeys(arch_keys(arch), ms)
    return arch, save(make_table(figures=figures))


def test_latency_from_a_foreign_table_ends_with_a_warning_and_the_build_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder
) -> None:
    FakeSignature(monkeypatch, {"ort-cpu-fp32-t1": 0.048})
    arch, _ = tiny_net_table()
    code, out, _ = run(capsys, "latency", arch.encode(), "--profile", "ort-cpu-fp32-t1", "--space", "tiny")
    assert code == 0
    *_, predicted, warning = out.splitlines()
    assert predicted.startswith("predicted ")
    assert warning.startswith("warning: table ort-cpu-fp32-t1@") and "was measured on another host" in warning
    assert "0.48x" in warning
    assert warning.endswith(
        "build this host's table: hwnas lut build --profile ort-cpu-fp32-t1 --space tiny --first-use"
    )
    assert not [w for w in recwarn if "another host" in str(w.message)]  # said once, after the table

    code, out, _ = run(capsys, "latency", arch.encode(), "--profile", "ort-cpu-fp32-t1", "--json")
    data = json.loads(out)
    assert data["foreign_host"] is True
    assert data["host_check"]["verdict"] == "foreign" and data["host_check"]["speed_ratio"] == pytest.approx(0.48)
    assert "--space SPACE" in data["host_warning"]
    assert [w for w in recwarn if "another host" in str(w.message)]  # JSON on stdout: the warning on stderr


def test_latency_from_this_hosts_table_has_no_warning(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    FakeSignature(monkeypatch)
    arch, _ = tiny_net_table()
    code, out, _ = run(capsys, "latency", arch.encode(), "--profile", "ort-cpu-fp32-t1")
    assert code == 0 and out.splitlines()[-1].startswith("predicted ") and "warning" not in out
    data = json.loads(run(capsys, "latency", arch.encode(), "--profile", "ort-cpu-fp32-t1", "--json")[1])
    assert data["foreign_host"] is False and data["host_check"]["verdict"] == "same"
    assert data["host_warning"] is None


# ------------------------------------------------------------ lut validate --against shipped
class FakeNets:
    """measure_twice replaced: every layer of a net takes 0.1 ms here (pass 2 1% slower); calls counted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0

        def fake(archs: Any, profile: DeviceProfile, rounds: int = 3, progress: Any = None, seed: int = 0) -> Any:
            self.calls += 1
            m1 = np.asarray([0.1 * len(arch_keys(a)) for a in archs])
            return m1, m1 * 1.01

        monkeypatch.setattr(validate_module, "measure_twice", fake)


def tiny_tables(lack: frozenset[str] = frozenset()) -> tuple[Path, Path]:
    """A "shipped" table of the tiny space at twice this host's time (layers and signature), without the layers
    in ``lack``, and this host's own table at its time, of the same name (it shadows the shipped one)."""
    keys = sorted(space_layers(ss.load_space(TINY_SPEC)))
    shipped = make_table(figures=dict.fromkeys([*REFERENCE_LAYERS, *(k for k in keys if k not in lack)], 0.2))
    own = make_table(figures=dict.fromkeys([*REFERENCE_LAYERS, *keys], 0.1))
    assert shipped.name == own.name
    return save(shipped, table_module.PACKAGE_DATA), save(own)


def validate_shipped(capsys: pytest.CaptureFixture[str], out_dir: Path, *extra: str) -> tuple[int, str, str]:
    spec = out_dir.parent / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    argv = ["lut", "validate", "--profile", "ort-cpu-fp32-t1", "--space", str(spec), "--samples", "4"]
    return run(capsys, *argv, "--rounds", "1", "--against", "shipped", "--output-dir", str(out_dir), *extra)


def test_validate_against_shipped_measures_once_for_both_tables_and_keeps_its_report_apart(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clock, nets = FakeSignature(monkeypatch), FakeNets(monkeypatch)
    shipped_path, own_path = tiny_tables()
    shipped_bytes, own_bytes = shipped_path.read_bytes(), own_path.read_bytes()
    code, out, err = validate_shipped(capsys, tmp_path / "out")
    assert code == 0, err
    assert nets.calls == 1  # the nets are measured once, for both tables
    lines = out.splitlines()
    assert lines[1].startswith(f"shipped table ort-cpu-fp32-t1@{HostInfo.current().slug} ({shipped_path}): ")
    assert lines[2].startswith("host check: table ort-cpu-fp32-t1@") and "0.50x the table's time" in lines[2]
    assert lines[3].startswith(f"this host's table: ort-cpu-fp32-t1@{HostInfo.current().slug} ({own_path}, ")
    assert lines[4].split() == [
        "shipped",
        "table",
        "shipped",
        "raw",
        "sum",
        "this",
        "host's",
        "table",
        "noise",
        "(meas.",
        "2",
        "vs",
        "1)",
    ]
    mape = next(line for line in lines if line.startswith("MAPE")).split()
    assert mape[1:] == ["100.0%", "100.0%", "0.0%", "1.0%"]  # the shipped table 2x off, this host's table right
    assert "this host runs these nets at 0.50x the shipped table's prediction" in out

    report = json.loads((tmp_path / "out" / "validate-ort-cpu-fp32-t1-tiny-shipped.json").read_text())
    assert report["against"] == "shipped" and report["shipped_path"] == str(shipped_path)
    assert report["host_check"]["verdict"] == "foreign" and report["host_check"]["speed_ratio"] == pytest.approx(0.5)
    assert report["measured_over_predicted_median"] == pytest.approx(0.5)
    assert report["metrics"]["predicted"]["mape_pct"] == pytest.approx(100.0)
    assert report["host_table"]["path"] == str(own_path)
    assert report["host_table"]["metrics"]["predicted"]["mape_pct"] == pytest.approx(0.0, abs=1e-9)
    assert [n["arch_id"] for n in report["nets"]] == [n["arch_id"] for n in report["host_table"]["nets"]]
    assert (tmp_path / "out" / "validate-ort-cpu-fp32-t1-tiny-shipped.png").read_bytes()[:4] == b"\x89PNG"
    # the service's reports (save_report) are untouched; neither table is written
    assert not report_path(report["table"], "tiny").exists()
    assert shipped_path.read_bytes() == shipped_bytes and own_path.read_bytes() == own_bytes
    assert len(clock.calls) == 3  # each table's signature once, the foreign shipped one's twice


def test_validate_against_shipped_estimates_what_the_shipped_table_lacks_and_works_without_a_host_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    FakeSignature(monkeypatch)
    FakeNets(monkeypatch)
    first = validate_module.sample_archs(ss.load_space(TINY_SPEC), 4)[0]
    shipped_path, own_path = tiny_tables(lack=frozenset(arch_keys(first)[1:2]))
    own_path.unlink()
    shipped_bytes = shipped_path.read_bytes()
    code, out, err = validate_shipped(capsys, tmp_path / "out")
    assert code == 0, err
    assert "this host has no table of ort-cpu-fp32-t1; build it: hwnas lut build --profile ort-cpu-fp32-t1 " in out
    assert "this host's table" not in out.splitlines()[4]
    report = json.loads((tmp_path / "out" / "validate-ort-cpu-fp32-t1-tiny-shipped.json").read_text())
    assert report["host_table"] is None
    assert next(n for n in report["nets"] if n["arch_id"] == first.arch_id)["estimated"]
    assert "nets have layers the shipped table lacks (estimated)" in out
    assert report["layers_measured"] == 0
    assert shipped_path.read_bytes() == shipped_bytes and not list(user_table_dir().glob("[!.]*.json*"))


def test_validate_against_shipped_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    FakeSignature(monkeypatch, {"ort-cpu-fp32-t1": 0.05})
    nets = FakeNets(monkeypatch)
    code, _, err = validate_shipped(capsys, tmp_path / "out")
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("hwnas: error: profile: hwnas ships no ort-cpu-fp32-t1 table (shipped: none)"), err
    tiny_tables()
    foreign = save(make_table(figures=dict.fromkeys(REFERENCE_LAYERS, 0.1)), tmp_path)
    code, _, err = validate_shipped(capsys, tmp_path / "out", "--table", str(foreign))
    assert code == 2 and err.count("\n") == 1
    assert f"--table {foreign} is not this host's table" in err, err
    assert nets.calls == 0 and not (tmp_path / "out").exists()


def test_validate_refuses_another_hosts_table_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeSignature(monkeypatch)
    FakeNets(monkeypatch)
    shipped_path, _ = tiny_tables()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = LatencyPredictor(
            LatencyTable.load(shipped_path), missing="estimate", host_check=check_table(LatencyTable.load(shipped_path))
        )
    space = ss.load_space(TINY_SPEC)
    with pytest.raises(LatencyTableError, match="validate it on that host"):
        validate(predictor, space, 2, rounds=1)
    [result] = validate_tables([predictor], space, 2, rounds=1, foreign_ok=True)
    assert result.samples == 2 and result.metrics["predicted"]["mape_pct"] == pytest.approx(100.0)


def test_lut_build_first_use_builds_what_a_search_would_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(TINY_SPEC))
    argv = ("lut", "build", "--profile", "ort-cpu-fp32-t1", "--space", str(spec), "--first-use", "--calibrate", "10")
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "built this host's latency table ort-cpu-fp32-t1@" in out and "10 calibration nets measured" in out
    [path] = [p for p in user_table_dir().glob("[!.]*.json.gz")]
    table = LatencyTable.load(path)
    assert sum(1 for n in table.networks if n.space == "tiny") == 10 and "tiny" in table.space_calibrations
    # a second time: nothing to measure (the signature timed as the table has it, and the verdict the build
    # cached forgotten: a busy CI must not make the table look foreign)
    (user_table_dir() / "host-checks.cache").unlink(missing_ok=True)
    monkeypatch.setattr(
        host_module,
        "measure_signature",
        lambda profile, keys, **_: {k: LatencyTable.load(path).entries[k].median_ms for k in keys},
    )
    nets = {n.arch: n.median_ms for n in table.networks}
    monkeypatch.setattr(host_module, "measure_nets", lambda profile, codes, **_: [nets[c] for c in codes])
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "matches this host" in out and "built" not in out
    for extra, message in [((), "name the spaces with --space"), (("--space", "x", "--table", "t.json"), "--table")]:
        code, _, err = run(capsys, "lut", "build", "--profile", "ort-cpu-fp32-t1", "--first-use", *extra)
        assert code == 2 and message in err, err
