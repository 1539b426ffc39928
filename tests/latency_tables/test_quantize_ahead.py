"""int8 builds quantize what they are about to time in worker processes first (the slow part of a build)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

import searchspace as ss
from latency_tables.profiler import build_table, interleaved_timings
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.runtimes import get_runtime, ort_parallel, ort_runtime
from latency_tables.runtimes.base import Prepared
from latency_tables.signatures import space_layers
from latency_tables.table import LatencyTable

INT8 = DeviceProfile.parse("ort-cpu-int8-t1")
FP32 = DeviceProfile.parse("ort-cpu-fp32-t1")


@pytest.fixture()
def layers(tiny_space: ss.SearchSpace) -> list:  # type: ignore[type-arg]
    return [lyr for lyr in space_layers(tiny_space).values() if not lyr.is_identity]


def test_workers_quantize_exactly_what_this_process_would(layers: list, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    monkeypatch.setattr(ort_runtime, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setenv("HWNAS_QUANTIZE_WORKERS", "2")
    ort = get_runtime("ort")
    ready = ort.ahead(INT8, layers=layers)
    assert isinstance(ready, ort_runtime.PreparedOrt)
    assert set(ready.quantized) == set(ready.graphs) == {("layer", lyr.key) for lyr in layers}
    for lyr in layers:  # byte for byte: the same recipe, the same seeded calibration inputs
        assert ready.quantized[("layer", lyr.key)] == ort.layer_model(lyr, INT8)[0]
    ready.layer(layers[0])()  # a runner, and each graph is handed out once
    assert ("layer", layers[0].key) not in ready.quantized
    assert ("layer", layers[0].key) not in ready.graphs


def test_a_model_that_fails_in_a_worker_is_left_to_the_caller(layers: list) -> None:  # type: ignore[type-arg]
    ort = get_runtime("ort")
    model, shape = ort.layer_graph(layers[0], INT8)  # type: ignore[attr-defined]
    good = (model.SerializeToString(), shape)
    out = ort_parallel.quantize_many([good, (b"not a graph", shape), good], workers=2)
    assert out[0] is not None and out[1] is None and out[0] == out[2]


def test_workers_that_cannot_start_leave_everything_to_the_caller(
    layers: list,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,  # type: ignore[type-arg]
) -> None:
    def no_processes(*args: object, **kwargs: object) -> None:
        raise OSError("no processes in this sandbox")

    monkeypatch.setattr(subprocess, "Popen", no_processes)
    ort = get_runtime("ort")
    model, shape = ort.layer_graph(layers[0], INT8)  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING):
        assert ort_parallel.quantize_many([(model.SerializeToString(), shape)] * 3, workers=2) == [None] * 3
    assert "quantizing in this process" in caplog.text


def test_nothing_runs_ahead_for_fp32_one_worker_or_little_work(layers: list, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[type-arg]
    ort = get_runtime("ort")
    calls: list[int] = []
    monkeypatch.setattr(ort_parallel, "quantize_many", lambda jobs, workers=None: calls.append(len(jobs)) or [])
    assert type(ort.ahead(FP32, layers=layers)) is Prepared
    small = ort.ahead(INT8, layers=layers[:2])  # a few nodes: starting workers costs more than they save
    assert isinstance(small, ort_runtime.PreparedOrt) and small.quantized == {}
    monkeypatch.setattr(ort_runtime, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setenv("HWNAS_QUANTIZE_WORKERS", "1")
    assert type(ort.ahead(INT8, layers=layers)) is Prepared
    assert calls == []
    monkeypatch.setenv("HWNAS_QUANTIZE_WORKERS", "two")
    assert ort_parallel.quantize_workers() == 1


def test_a_small_job_is_quantized_here_from_the_graphs_built_ahead(
    layers: list,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    ort = get_runtime("ort")
    expected = {lyr.key: ort.layer_model(lyr, INT8)[0] for lyr in layers[:2]}
    ready = ort.ahead(INT8, layers=layers[:2])
    built: list[object] = []
    graph = ort_runtime.OnnxRuntime.layer_graph
    monkeypatch.setattr(
        ort_runtime.OnnxRuntime, "layer_graph", staticmethod(lambda lyr, p: built.append(lyr.key) or graph(lyr, p))
    )
    quantized: list[bytes] = []
    original = ort_runtime.quantize_int8
    monkeypatch.setattr(
        ort_runtime, "quantize_int8", lambda *a, **k: quantized.append(original(*a, **k)) or quantized[-1]
    )
    for lyr in layers[:2]:
        ready.layer(lyr)()
    assert built == []  # the graphs built ahead, not built again
    assert quantized == [expected[lyr.key] for lyr in layers[:2]]  # the serial path's bytes, made when asked for
    ready.layer(layers[2])()  # a layer not announced ahead is built as it would have been alone
    assert built == [layers[2].key]


def test_an_int8_build_and_net_timings_use_what_was_quantized_ahead(
    tiny_space: ss.SearchSpace,
    layers: list,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    monkeypatch.setattr(ort_runtime, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setenv("HWNAS_QUANTIZE_WORKERS", "2")
    serial: list[str] = []
    original = ort_runtime.quantize_int8
    monkeypatch.setattr(ort_runtime, "quantize_int8", lambda *a, **k: serial.append("q") or original(*a, **k))
    table = LatencyTable(profile=INT8, host=HostInfo.current())
    build_table(table, layers, passes=1, min_gap_s=0)
    assert set(table.entries) == {lyr.key for lyr in layers}
    assert all(e.median_ms > 0 for e in table.entries.values())
    archs = [tiny_space.sample(s) for s in range(3)]
    assert len(interleaved_timings(archs, INT8, rounds=1)) == 3
    assert serial == []  # nothing was quantized in this process: the workers did it all


def test_a_worker_never_runs_the_callers_main_script(tmp_path: Path) -> None:
    """A user's script without a ``__main__`` guard builds an int8 table: workers started by multiprocessing's
    "spawn" would each run the whole script again; ours run only the quantizer."""
    marker = tmp_path / "ran"
    script = tmp_path / "user_script.py"
    root = Path(__file__).resolve().parents[2]
    script.write_text(
        f"import sys; sys.path.insert(0, {str(root)!r})\n"
        f"open({str(marker)!r}, 'a').write('x')\n"
        "from latency_tables.runtimes import ort_parallel, get_runtime\n"
        "from latency_tables.profiles import DeviceProfile\n"
        "from latency_tables.signatures import space_layers\n"
        "import searchspace as ss\n"
        "from tests.specs import TINY_SPEC\n"
        "p = DeviceProfile.parse('ort-cpu-int8-t1')\n"
        "lyr = [l for l in space_layers(ss.load_space(TINY_SPEC)).values() if not l.is_identity][0]\n"
        "m, s = get_runtime('ort').layer_graph(lyr, p)\n"
        "out = ort_parallel.quantize_many([(m.SerializeToString(), s)] * 2, workers=2)\n"
        "assert all(out), out\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=root)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "x"
