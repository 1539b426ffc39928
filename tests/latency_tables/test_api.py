"""The entry points the CLI, the API and a worker share: the table to extend, the layers to cover, importing
a table measured elsewhere, and describing tables."""

from __future__ import annotations

from pathlib import Path

import pytest

import searchspace as ss
from latency_tables import table as table_module
from latency_tables.api import (
    MIN_CALIBRATION_NETS,
    describe_table,
    import_table,
    layers_to_cover,
    open_table,
    table_summary,
    table_to_extend,
)
from latency_tables.errors import LatencyTableError
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_keys, space_layers
from latency_tables.table import Entry, LatencyTable, NetMeasurement, user_table_dir
from tests.specs import TINY_SPEC

FP32 = DeviceProfile.parse("ort-cpu-fp32-t1")
PHONE = HostInfo(
    cpu="Cortex-A76", cores=4, machine="aarch64", system="Linux", versions={"onnxruntime": "1.31.1"}, date="2025-01-01"
)


def make_table(
    keys: list[str],
    host: HostInfo = PHONE,
    ms: float = 0.1,
    profile: DeviceProfile = FP32,
    nets: list[NetMeasurement] | None = None,
) -> LatencyTable:
    return LatencyTable(
        profile=profile,
        host=host,
        networks=nets or [],
        entries={k: Entry(median_ms=ms, p10_ms=ms, p90_ms=ms, runs=10) for k in keys},
    )


def tiny_archs(n: int) -> list[ss.Architecture]:
    space = ss.load_space(TINY_SPEC)
    archs = {a.encode(): a for a in (space.sample(i) for i in range(200))}
    assert len(archs) >= n
    return list(archs.values())[:n]


# ------------------------------------------------------------ table_to_extend
def test_a_new_table_goes_to_the_user_folder_with_a_note() -> None:
    host = HostInfo.current()
    path, table = table_to_extend(FP32)
    assert path == user_table_dir() / f"ort-cpu-fp32-t1@{host.slug}.json.gz" and not path.exists()
    assert table.profile == FP32 and not table.entries and host.cpu in table.note
    assert "these latencies describe that host" in table.note


def test_the_table_of_this_host_is_extended_and_a_shipped_one_through_a_copy() -> None:
    shipped = make_table(["16x8:conv_k3_c8_relu"], host=HostInfo.current()).save(
        table_module.PACKAGE_DATA / f"ort-cpu-fp32-t1@{HostInfo.current().slug}.json.gz"
    )
    path, table = table_to_extend(FP32)
    assert path == user_table_dir() / shipped.name  # never the shipped file itself
    assert set(table.entries) == {"16x8:conv_k3_c8_relu"}
    mine = make_table(["16x8:conv_k3_c8_relu", "16x8:conv_k3_c16_relu"], host=HostInfo.current()).save(path)
    again, extended = table_to_extend(FP32)
    assert again == mine and len(extended.entries) == 2  # the user's copy now shadows the shipped table


def test_only_another_hosts_table_on_the_path_means_a_new_one() -> None:
    make_table(["16x8:conv_k3_c8_relu"]).save(user_table_dir() / "ort-cpu-fp32-t1@phone.json.gz")
    path, table = table_to_extend(FP32)
    assert path.name == f"ort-cpu-fp32-t1@{HostInfo.current().slug}.json.gz" and not table.entries


def test_a_named_table_file_is_created_or_checked(tmp_path: Path) -> None:
    path, table = table_to_extend(FP32, tmp_path / "new.json")
    assert path == tmp_path / "new.json" and not table.entries
    int8 = make_table([], host=HostInfo.current(), profile=DeviceProfile.parse("ort-cpu-int8-t1"))
    int8.save(tmp_path / "int8.json")
    with pytest.raises(LatencyTableError, match="is for profile ort-cpu-int8-t1, not ort-cpu-fp32-t1"):
        table_to_extend(FP32, tmp_path / "int8.json")
    make_table([]).save(tmp_path / "phone.json")
    with pytest.raises(LatencyTableError, match=r"measured on another host \(cpu: 'Cortex-A76' vs"):
        table_to_extend(FP32, tmp_path / "phone.json")


# ------------------------------------------------------------ layers_to_cover
def test_layers_to_cover_joins_spaces_and_nets() -> None:
    space = ss.load_space(TINY_SPEC)
    arch = ss.known_architecture("mobilenet_v3_small", classes=10).model_copy(update={"resolution": 32})
    assert layers_to_cover([space]) == space_layers(space)
    assert set(layers_to_cover(archs=[arch.encode()])) == set(arch_keys(arch))
    both = layers_to_cover([space], [arch])
    assert set(both) == set(space_layers(space)) | set(arch_keys(arch))
    # an identity skip costs nothing and is never measured
    with_skip = "r16_i3|conv_k3_s2_c8_relu6|ibn_k3_e2_c8_relu6|dsconv_k3_s2_c16_hswish|skip_c16|head_c32_relu6_n4"
    assert list(layers_to_cover(archs=[with_skip])) == [
        "16x3:conv_k3_s2_c8_relu6",
        "8x8:ibn_k3_e2_c8_relu6",
        "8x8:dsconv_k3_s2_c16_hswish",
        "4x16:head_c32_relu6_n4",
    ]
    with pytest.raises(ss.SearchSpaceError, match="unknown search space 'nope'"):
        layers_to_cover(["nope"])


# ------------------------------------------------------------ import_table
def test_import_saves_then_merges_keeping_existing_figures(tmp_path: Path) -> None:
    source = make_table(["16x8:conv_k3_c8_relu", "16x8:conv_k3_c16_relu"], ms=0.2)
    first = import_table(source.save(tmp_path / "device.json.gz"))
    assert first.path == user_table_dir() / source.default_filename() and first.path.exists()
    assert (first.received, first.added, first.kept, first.merged) == (2, 2, 0, False)
    assert first.calibration_skipped == f"0 nets measured, it needs at least {MIN_CALIBRATION_NETS}"
    assert set(LatencyTable.load(first.path).entries) == set(source.entries)

    again = make_table(["16x8:conv_k3_c8_relu", "16x8:conv_k3_c24_relu"], ms=0.9)
    again.call_overhead_ms = 0.01  # the first import had none: taken from this one
    second = import_table(again)
    assert (second.received, second.added, second.kept, second.merged) == (2, 1, 1, True)
    saved = LatencyTable.load(second.path)
    assert len(saved.entries) == 3 and saved.entries["16x8:conv_k3_c8_relu"].median_ms == 0.2  # kept
    assert saved.entries["16x8:conv_k3_c24_relu"].median_ms == 0.9 and saved.call_overhead_ms == 0.01


def test_import_names_the_file_and_refuses_paths() -> None:
    done = import_table(make_table(["16x8:conv_k3_c8_relu"]), "phone")
    assert done.path == user_table_dir() / "phone.json.gz"
    assert import_table(make_table([]), "plain.json").path == user_table_dir() / "plain.json"
    for bad in ("../escape", "a/b.json.gz", ".", ".."):
        with pytest.raises(LatencyTableError, match="is a file name in the table folder, not a path"):
            import_table(make_table([]), bad)
    # (beside the tables: only their hidden save locks)
    assert sorted(p.name for p in user_table_dir().iterdir() if not p.name.startswith(".")) == [
        "phone.json.gz",
        "plain.json",
    ]


def test_import_writes_nothing_on_a_bad_table_or_a_clash(tmp_path: Path) -> None:
    with pytest.raises(LatencyTableError):
        import_table(make_table(["not a key"]))
    assert not user_table_dir().exists()
    existing = import_table(make_table(["16x8:conv_k3_c8_relu"]), "phone").path
    before = existing.read_bytes()
    other_host = make_table(["16x8:conv_k3_c16_relu"], host=PHONE.model_copy(update={"cores": 8}))
    with pytest.raises(LatencyTableError, match=r"different hosts .*phone.json.gz exists: import under another"):
        import_table(other_host, "phone")
    assert existing.read_bytes() == before


def test_import_refuses_to_mix_two_devices_of_one_name_at_different_speeds() -> None:
    from latency_tables.host import REFERENCE_LAYERS

    refs = list(REFERENCE_LAYERS)
    existing = import_table(make_table([*refs, "16x8:conv_k3_c8_relu"], ms=0.2), "phone").path
    before = existing.read_bytes()
    # the same label, cores and versions, but a phone running every layer twice as fast
    with pytest.raises(LatencyTableError, match=r"another speed: .* at 0\.50x the existing table's .*--name"):
        import_table(make_table([*refs, "16x8:conv_k3_c16_relu"], ms=0.1), "phone")
    assert existing.read_bytes() == before
    # within the signature's tolerance it is the same device: merged
    assert import_table(make_table([*refs, "16x8:conv_k3_c16_relu"], ms=0.205), "phone").added == 1
    # nothing to compare (no reference layers in the import): merged as before
    assert import_table(make_table(["16x8:conv_k3_c24_relu"], ms=0.1), "phone").added == 1


def test_import_refits_the_calibration_from_enough_nets() -> None:
    archs = tiny_archs(MIN_CALIBRATION_NETS)
    keys = sorted({k for a in archs for k in arch_keys(a)})
    nets = [
        NetMeasurement(
            arch=a.encode(),
            space="tiny",
            median_ms=0.1 * len(arch_keys(a)) * 1.3 + 0.05,
            p10_ms=0.0,
            p90_ms=0.0,
            runs=1,
        )
        for a in archs
    ]
    done = import_table(make_table(keys, nets=nets))
    assert done.calibration_skipped is None
    saved = LatencyTable.load(done.path)
    assert saved.calibration.fitted_on == MIN_CALIBRATION_NETS and saved.calibration.model != "raw"
    assert saved.space_calibrations["tiny"].fitted_on == MIN_CALIBRATION_NETS

    # nets whose layers the table lacks: imported all the same, the calibration left as it was, and why
    lacking = import_table(make_table(keys[:1], nets=nets), "lacking")
    assert lacking.calibration_skipped is not None and "has no entry" in lacking.calibration_skipped
    assert LatencyTable.load(lacking.path).calibration.model == "raw"


# ------------------------------------------------------------ describing tables
def test_open_summarise_and_describe(tmp_path: Path) -> None:
    table = make_table(["16x8:conv_k3_c8_relu", "8x16:head_c32_relu6_n4"], host=HostInfo.current())
    path = table.save(tmp_path / "t.json.gz")
    assert open_table(path)[1].entries == table.entries
    with pytest.raises(LatencyTableError, match="no latency table for profile ort-cpu-fp32-t1"):
        open_table("ort-cpu-fp32-t1")  # not a file, and no table on the search path
    table.save(user_table_dir() / table.default_filename())
    assert open_table("ort-cpu-fp32-t1")[0] == user_table_dir() / table.default_filename()

    summary = table_summary(path, table)
    assert summary["name"] == table.name and summary["entries"] == 2 and summary["path"] == str(path)
    assert summary["calibration"] == "raw" and summary["cv_mape"] is None
    info = describe_table(path, table)
    assert info.items() >= summary.items()
    assert info["entries_by_kind"] == {"conv": 1, "head": 1} and info["median_p90_over_median"] == 1.0
