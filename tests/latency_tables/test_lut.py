"""Profiles, table files, the profiler (resumable, locked), calibration and the predictor."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import searchspace as ss
from latency_tables import calibration
from latency_tables.errors import LatencyTableError, MissingEntryError
from latency_tables.portable import lock_path
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import build_table, measure_networks
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_keys, parse_key, space_layers
from latency_tables.table import Calibration, Entry, LatencyTable, list_tables
from searchspace.cost import count_cost
from tests.specs import TINY_SPEC

FP32 = DeviceProfile.parse("ort-cpu-fp32-t1")


# ------------------------------------------------------------------ profiles
def test_profile_ids_round_trip() -> None:
    for pid in ("ort-cpu-fp32-t1", "ort-cpu-int8-t4", "torch-cuda-fp32-t1-b8"):
        assert DeviceProfile.parse(pid).id == pid
    assert DeviceProfile.parse("ort-cpu-fp32-t2-b4").batch == 4


@pytest.mark.parametrize(
    ("pid", "message"),
    [
        ("ort-cpu-fp16-t1", "expected <runtime>-<cpu|cuda>-<fp32|int8>-t<threads>"),
        ("tflite-cpu-fp32-t1", "unknown runtime 'tflite'.*known runtimes: ort, torch"),
        ("ort-gpu-fp32-t1", "is not a profile id"),
    ],
)
def test_bad_profile_ids(pid: str, message: str) -> None:
    with pytest.raises(LatencyTableError, match=message):
        DeviceProfile.parse(pid)


def test_unavailable_providers_are_explained() -> None:
    from latency_tables.errors import RuntimeUnavailableError
    from latency_tables.profiler import check_available

    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(RuntimeUnavailableError, match="no CUDAExecutionProvider"):
            check_available(DeviceProfile.parse("ort-cuda-fp32-t1"))
    with pytest.raises(RuntimeUnavailableError, match="no precision 'int8'"):
        check_available(DeviceProfile.parse("torch-cpu-int8-t1"))


def test_host_differences() -> None:
    here = HostInfo.current()
    assert here.differences(here) == []
    other = here.model_copy(update={"cpu": "Cortex-A76", "cores": 4})
    assert any("cpu" in d for d in here.differences(other))
    assert here.slug.endswith(f"-{here.cores}c")


# ---------------------------------------------------------------- signatures
def test_space_layers_cover_every_sample(tiny_space: ss.SearchSpace) -> None:
    layers = space_layers(tiny_space)
    for seed in range(200):
        for key in arch_keys(tiny_space.sample(seed)):
            assert key in layers
            assert parse_key(key).key == key


def test_bad_keys() -> None:
    for key in ("nonsense", "16x8:", "axb:conv_k3_c8_relu", "16x8:ibn_k4_c8_relu"):
        with pytest.raises(LatencyTableError, match="is not a layer key"):
            parse_key(key)


# -------------------------------------------------------------------- tables
def _fake_table(entries: dict[str, float], host: HostInfo | None = None) -> LatencyTable:
    return LatencyTable(
        profile=FP32,
        host=host or HostInfo.current(),
        entries={k: Entry(median_ms=v, p10_ms=v, p90_ms=v, runs=10) for k, v in entries.items()},
    )


def test_table_round_trip_and_format_checks(tmp_path: Path) -> None:
    table = _fake_table({"16x8:conv_k3_c8_relu": 0.5})
    for name in ("t.json", "t.json.gz"):
        path = table.save(tmp_path / name)
        again = LatencyTable.load(path)
        assert again.entries == table.entries and again.profile == table.profile
    raw = gzip.decompress((tmp_path / "t.json.gz").read_bytes())
    data = json.loads(raw)
    data["version"] = 9
    (tmp_path / "future.json").write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match="version 9 is not supported .*upgrade hwnas"):
        LatencyTable.load(tmp_path / "future.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "something"}))
    with pytest.raises(LatencyTableError, match="format must be 'hwnas.latency-table'"):
        LatencyTable.load(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(LatencyTableError, match="not a JSON"):
        LatencyTable.load(tmp_path / "broken.json")
    data["version"] = 1
    data["entries"]["16x8:conv_k3_c8_relu"]["median_ms"] = -1
    (tmp_path / "neg.json").write_text(json.dumps(data))
    with pytest.raises(LatencyTableError, match=r"entries\.16x8:conv_k3_c8_relu\.median_ms"):
        LatencyTable.load(tmp_path / "neg.json")


def test_merge_refuses_other_hosts_and_profiles() -> None:
    a = _fake_table({"k1": 1.0})
    b = _fake_table({"k1": 2.0, "k2": 3.0})
    assert a.merge(b) == 1 and a.entries["k1"].median_ms == 1.0
    other = _fake_table({}, HostInfo.current().model_copy(update={"cpu": "elsewhere"}))
    with pytest.raises(LatencyTableError, match="different hosts"):
        a.merge(other)


# ------------------------------------------------------------------ profiler
def test_build_is_incremental_resumable_and_multi_pass(tiny_space: ss.SearchSpace, tmp_path: Path) -> None:
    layers = list(space_layers(tiny_space).values())
    path = tmp_path / "t.json.gz"
    table = LatencyTable(profile=FP32, host=HostInfo.current())

    def stop_after(n: int):  # noqa: ANN202
        def progress(done: int, total: int, item: str) -> None:
            if done == n and done < total:
                raise KeyboardInterrupt

        return progress

    with pytest.raises(KeyboardInterrupt):
        build_table(table, layers, path, progress=stop_after(5), passes=1)
    saved = LatencyTable.load(path)
    assert len(saved.entries) == 5  # what was finished is on disk
    assert saved.call_overhead_ms > 0
    assert build_table(saved, layers, path, passes=1) == len(layers) - 5
    first = dict(saved.entries)
    assert build_table(saved, layers, path, passes=1) == 0  # nothing left to do
    assert saved.entries == first
    build_table(saved, layers, path, passes=2)
    for key, entry in saved.entries.items():
        assert entry.passes == 2
        assert entry.median_ms <= first[key].median_ms + 1e-12  # the least-disturbed pass is kept


def test_measurements_wait_for_each_other(tmp_path: Path) -> None:
    marker = tmp_path / "holder.log"
    code = (
        "import time, pathlib\n"
        "from latency_tables.profiler import measurement_lock\n"
        f"m = pathlib.Path({str(marker)!r})\n"
        "with measurement_lock():\n"
        "    m.write_text('start')\n"
        "    time.sleep(1.5)\n"
        "    m.write_text('start end')\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=Path(__file__).parents[2])
    try:
        deadline = time.monotonic() + 20
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        from latency_tables.profiler import measurement_lock

        with measurement_lock(quiet=True):
            assert marker.read_text() == "start end"  # we only got in after the holder left
    finally:
        holder.wait(timeout=30)
    assert lock_path() == tmp_path / "measure.lock"


# --------------------------------------------------------------- calibration
def test_calibration_recovers_a_per_kind_model() -> None:
    rng = np.random.default_rng(0)
    n = 80
    kind_sums = rng.uniform(0.1, 2.0, (n, len(calibration.kinds())))
    layers = rng.integers(10, 30, n).astype(float)
    true = Calibration(
        model="per-kind",
        intercept_ms=0.2,
        per_layer_ms=0.01,
        kind_scales={k: 0.8 + 0.05 * i for i, k in enumerate(calibration.kinds())},
    )
    y = calibration.apply(true, kind_sums.sum(1), layers, kind_sums)
    cal = calibration.fit(kind_sums.sum(1), layers, kind_sums, y)
    assert cal.model == "per-kind"
    assert cal.cv_mape is not None and cal.cv_mape < 0.01
    pred = calibration.apply(cal, kind_sums.sum(1), layers, kind_sums)
    assert np.max(np.abs(pred - y) / y) < 0.01


def test_calibration_finds_the_weights_model_and_needs_params_for_it() -> None:
    """Nets with more weights run slower than their layers' sum: raw * ln(params) is the model's third term."""
    rng = np.random.default_rng(2)
    n = 60
    kind_sums = rng.uniform(0.05, 1.5, (n, len(calibration.kinds())))
    raw = kind_sums.sum(1)
    params = np.exp(rng.uniform(np.log(2e5), np.log(2e7), n))  # 0.2 to 20 M parameters
    true = Calibration(model="weights", intercept_ms=0.05, scale=1.0, weights_scale=0.06)
    y = calibration.apply(true, raw, np.full(n, 20.0), kind_sums, params=params) * rng.normal(1.0, 0.005, n)
    without = calibration.fit(raw, np.full(n, 20.0), kind_sums, y)  # no params: the weights model cannot compete
    assert without.model != "weights" and "weights" not in without.note
    cal = calibration.fit(raw, np.full(n, 20.0), kind_sums, y, params=params)
    assert cal.model == "weights" and cal.weights_scale == pytest.approx(0.06, rel=0.15)
    assert cal.cv_mape is not None and without.cv_mape is not None and cal.cv_mape < without.cv_mape / 2
    with pytest.raises(ValueError, match="needs each net's parameter count"):
        calibration.apply(cal, raw, np.full(n, 20.0), kind_sums)


def test_calibration_kinds_keep_their_columns() -> None:
    """Stored calibrations and shipped tables were fitted with these columns: stem, the built-in types in
    registration order, head. A new block type's kind goes before head; scales are stored by name."""
    assert calibration.kinds() == ("stem", "ibn", "fused", "tucker", "dsconv", "conv", "skip", "head")
    assert calibration.kind_index() == {k: i for i, k in enumerate(calibration.kinds())}


def test_calibration_prefers_raw_when_sums_are_right() -> None:
    rng = np.random.default_rng(1)
    kind_sums = rng.uniform(0.1, 2.0, (40, len(calibration.kinds())))
    raw = kind_sums.sum(1)
    y = raw * rng.normal(1.0, 0.02, len(raw))
    cal = calibration.fit(raw, np.full(40, 20.0), kind_sums, y)
    assert cal.cv_mape is not None and cal.cv_mape < 0.03
    assert "raw" in cal.note and "per-kind" in cal.note


def test_spread_calibration_nets_cover_the_cost_range_in_strata() -> None:
    from latency_tables.kit import SPREAD_CANDIDATES, calibration_archs
    from searchspace.cost import count_cost

    spread = [a for _, a in calibration_archs(["mobiledet-cifar"], 10, 0)]  # the default
    assert spread == [a for _, a in calibration_archs(["mobiledet-cifar"], 10, 0, strategy="spread")]  # seeded
    pool = [a for _, a in calibration_archs(["mobiledet-cifar"], 10 * SPREAD_CANDIDATES, 0, strategy="random")]
    ranked = sorted(count_cost(a).macs for a in pool)
    macs = [count_cost(a).macs for a in spread]
    assert macs == sorted(macs) and len({a.encode() for a in spread}) == 10
    # one net from each tenth of the candidates' cost range, in order
    for i, m in enumerate(macs):
        assert ranked[i * SPREAD_CANDIDATES] <= m <= ranked[(i + 1) * SPREAD_CANDIDATES - 1]
    with pytest.raises(LatencyTableError, match="strategy must be 'random' or 'spread'"):
        calibration_archs(["mobiledet-cifar"], 10, 0, strategy="cheapest")


# ----------------------------------------------------------------- predictor
def test_prediction_is_the_sum_of_entries(tiny_space: ss.SearchSpace) -> None:
    keys = space_layers(tiny_space)
    values = {k: 0.01 * (i + 1) for i, k in enumerate(sorted(keys))}
    table = _fake_table(values)
    table.call_overhead_ms = 0.002
    predictor = LatencyPredictor(table)
    archs = [tiny_space.sample(s) for s in range(50)]
    batch = predictor.predict_many(archs)
    for arch, total in zip(archs, batch, strict=True):
        ks = arch_keys(arch)
        want = sum(values[k] - 0.002 for k in ks) + 0.002
        assert total == pytest.approx(want)
        one = predictor.predict(arch)
        assert one.total_ms == pytest.approx(want)
        assert [lyr.key for lyr in one.layers if lyr.key != "identity"] == ks
        assert sum(lyr.macs for lyr in one.layers) == ss.count_cost(arch).macs
    decoded = [ss.Architecture.decode(a.encode()) for a in archs]  # unshared Block objects
    np.testing.assert_allclose(LatencyPredictor(table).predict_many(decoded), batch)


def test_batch_indexing_matches_net_by_net() -> None:
    """The batch path (blocks looked up by identity, sizes checked in numpy) gives every net the layers of
    :meth:`indices`, also when a block object recurs at another input size (several resolutions) and when
    nets of fresh objects are mixed with shared ones, in one call and over repeated calls."""
    spec = {**TINY_SPEC, "resolutions": [16, 32]}
    space = ss.load_space(spec)
    keys: set[str] = set()
    for res in spec["resolutions"]:
        keys |= set(space_layers(space, resolution=res))
    values = {k: 0.01 * (i + 1) for i, k in enumerate(sorted(keys))}
    table = _fake_table(values)
    fresh = LatencyPredictor(table)
    archs = [space.sample(s) for s in range(120)]
    archs += [ss.Architecture.decode(a.encode()) for a in archs[:20]]
    archs += [a.model_copy(update={"resolution": 32 if a.resolution == 16 else 16}) for a in archs[:30]]
    assert len({a.resolution for a in archs}) == 2
    want = np.asarray([sum(values[k] for k in arch_keys(a)) for a in archs])
    for _ in range(3):  # the first call learns the blocks, later ones take the batch path
        np.testing.assert_allclose(fresh.predict_many(archs), want)
    reference = LatencyPredictor(table)
    counts, flat = reference._flat_indices(archs)
    per_net = [reference.indices(a) for a in archs]
    assert counts.tolist() == [len(i) for i in per_net]
    assert flat.tolist() == [i for idx in per_net for i in idx]
    assert reference.predict_many([]).shape == (0,)
    # nets of one resolution, once seen, never take the net-by-net path
    assert not reference._gather(archs)[2].any()
    # one Block object at two input sizes in one net; and a net too big to pack (the net-by-net path)
    odd = ss.Architecture.decode(
        "r16_i3|conv_k3_s2_c8_relu6|fused_k3_e2_se0.25_sg_c8_relu6|dsconv_k3_s2_c8_hswish|"
        "fused_k3_e2_se0.25_sg_c8_relu6|head_c32_relu6_n4"
    )
    odd = odd.model_copy(update={"blocks": (odd.blocks[0], odd.blocks[1], odd.blocks[0])})
    huge = odd.model_copy(update={"resolution": 4096})
    extra = {k: 0.5 for a in (odd, huge) for k in arch_keys(a) if k not in values}
    table = _fake_table({**values, **extra})
    mixed = [odd, *archs[:20], huge, odd]  # more than 16 nets: the batch path
    want = np.asarray([sum({**values, **extra}[k] for k in arch_keys(a)) for a in mixed])
    predictor = LatencyPredictor(table)
    for _ in range(2):
        np.testing.assert_allclose(predictor.predict_many(mixed), want)
    assert predictor._gather(mixed)[2].tolist() == [False] * 21 + [True, False]


def test_missing_entries_elsewhere_error_or_estimate(tiny_space: ss.SearchSpace) -> None:
    keys = sorted(space_layers(tiny_space))
    values = {k: 0.05 for k in keys}
    elsewhere = HostInfo.current().model_copy(update={"cpu": "Cortex-A76"})
    arch = tiny_space.sample(3)
    gone = arch_keys(arch)[1]
    table = _fake_table({k: v for k, v in values.items() if k != gone}, host=elsewhere)
    with pytest.warns(UserWarning, match="measured on another host"):
        predictor = LatencyPredictor(table)
    with pytest.raises(MissingEntryError, match=f"{gone}.*hwnas lut build --profile ort-cpu-fp32-t1"):
        predictor.predict(arch)
    with pytest.warns(UserWarning):
        estimating = LatencyPredictor(table, missing="estimate")
    pred = estimating.predict(arch)
    assert pred.estimated
    assert [lyr.key for lyr in pred.layers if lyr.estimated] == [gone]
    assert estimating.estimated_mask([arch, tiny_space.sample(4)]).dtype == bool


def test_missing_entries_here_are_measured_and_saved(tiny_space: ss.SearchSpace, tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    table = LatencyTable(profile=FP32, host=HostInfo.current())
    arch = tiny_space.sample(5)
    predictor = LatencyPredictor(table, path)
    total = predictor.predict_many([arch])[0]
    assert total > 0
    saved = LatencyTable.load(path)
    assert set(arch_keys(arch)) <= set(saved.entries)


def test_calibrating_on_measured_nets(tiny_space: ss.SearchSpace, tmp_path: Path) -> None:
    path = tmp_path / "t.json.gz"
    table = LatencyTable(profile=FP32, host=HostInfo.current())
    build_table(table, space_layers(tiny_space).values(), path, passes=1)
    unique = {a.arch_id: a for a in (tiny_space.sample(s) for s in range(40))}
    nets = [("tiny", a) for a in list(unique.values())[:12]]
    assert measure_networks(table, nets, path, rounds=1) == 12
    assert measure_networks(table, nets, path, rounds=2) == 0
    assert all(n.rounds == 2 for n in table.networks)
    predictor = LatencyPredictor(table, path)
    predictor.calibrate()
    assert table.calibration.fitted_on == 12
    assert table.calibration.model in ("raw", "affine", "weights", "per-kind")
    assert np.all(predictor.predict_many([a for _, a in nets]) > 0)
    # 12 nets of one space: that space gets its own calibration, chosen by the predictor's space
    assert set(table.space_calibrations) == {"tiny"}
    table.space_calibrations["tiny"] = Calibration(model="affine", intercept_ms=1.0, scale=2.0)
    raw_total = LatencyPredictor(table, space="other").predict_many([nets[0][1]])[0]
    tiny_total = LatencyPredictor(table, space="tiny").predict_many([nets[0][1]])[0]
    uncalibrated = LatencyPredictor(table.model_copy(update={"calibration": Calibration(), "space_calibrations": {}}))
    raw_sum = uncalibrated.predict_many([nets[0][1]])[0]
    assert tiny_total == pytest.approx(1.0 + 2.0 * raw_sum)
    layers, sums, params = _feat(table, nets[0][1])
    assert raw_total == pytest.approx(
        calibration.apply(table.calibration, np.array([raw_sum]), layers, sums, params=params)[0]
    )
    # the weights model reads each net's parameters, summed over its layers as count_cost counts them
    table.space_calibrations["tiny"] = Calibration(model="weights", intercept_ms=0.1, scale=1.5, weights_scale=0.2)
    archs = [a for _, a in nets]
    params = np.array([count_cost(a).params for a in archs], dtype=float)
    sums_raw = uncalibrated.predict_many(archs)
    expected = 0.1 + 1.5 * sums_raw + 0.2 * sums_raw * np.log(params / 1e6)
    assert LatencyPredictor(table, space="tiny").predict_many(archs) == pytest.approx(expected)
    assert LatencyPredictor(table, space="tiny").predict(archs[0]).total_ms == pytest.approx(expected[0])


def _feat(table: LatencyTable, arch: ss.Architecture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    predictor = LatencyPredictor(table)
    _, layers, sums = predictor.features([arch])
    return layers, sums, predictor.params([arch])


def test_list_tables_searches_user_then_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = _fake_table({"16x8:conv_k3_c8_relu": 0.5})
    table.save(tmp_path / "luts" / table.default_filename())
    names = [t.name for _, t in list_tables()]
    assert table.name in names


def test_shipped_tables_are_never_extended_implicitly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from latency_tables.api import writable_copy_path

    shipped = tmp_path / "package-data"
    shipped.mkdir()
    monkeypatch.setattr("latency_tables.table.PACKAGE_DATA", shipped)
    table = _fake_table({"16x8:conv_k3_c8_relu": 0.5})
    path = table.save(shipped / table.default_filename())
    target = writable_copy_path(path, table)
    assert target.parent == tmp_path / "luts" and target.name == path.name
    mine = table.save(tmp_path / "mine.json.gz")
    assert writable_copy_path(mine, table) == mine
