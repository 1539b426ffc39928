"""Download formats: each one loads back where it is meant to be used, the cache serves identical bytes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import searchspace as ss
import searchspace.export
from nas.datasets import DataSpec
from searchspace.cost import count_cost
from service import export_int8, exports
from service.exports import FORMATS, CardContext, Download, ExportError, render
from tests.specs import ALL_BLOCKS

SYNTHETIC = DataSpec(
    name="synthetic", options={"train": 96, "test": 16, "classes": 5, "size": 16, "channels": 3, "seed": 1}
)
LATENCIES = [
    {
        "profile": "ort-cpu-fp32-t1",
        "latency_ms": 0.4321,
        "table": "ort-cpu-fp32-t1.json.gz",
        "host": "box-a",
        "measured": False,
    },
    {
        "profile": "ort-cpu-int8-t1",
        "latency_ms": 0.2109,
        "table": "ort-cpu-int8-t1.json.gz",
        "host": "box-b",
        "measured": True,
    },
]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def arch() -> ss.Architecture:
    """One net holding every block type (all-blocks space of the nas tests), 16x16x3, 5 classes."""
    return ss.load_space(ALL_BLOCKS).sample(0)


@pytest.fixture(scope="module")
def onnx_bytes(arch: ss.Architecture) -> bytes:
    return render(arch, "onnx").content


@pytest.fixture(scope="module")
def int8_bytes(arch: ss.Architecture) -> bytes:
    return render(arch, "onnx-int8", dataset=SYNTHETIC).content


def _session(content: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(content, options, providers=["CPUExecutionProvider"])


def _images(arch: ss.Architecture, n: int) -> np.ndarray:
    x, _ = SYNTHETIC.view(arch.resolution, arch.in_channels).sample(n, seed=7, split="test")
    return x.numpy()


def _logits(content: bytes, x: np.ndarray) -> np.ndarray:
    session = _session(content)
    return np.concatenate([session.run(["logits"], {"input": x[i : i + 1]})[0] for i in range(len(x))])


def test_importing_the_module_does_not_load_torch() -> None:
    code = "import sys, service.exports; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path(__file__).parents[2]
    )
    assert out.stdout.strip() == "[]"


def test_unknown_format_names_the_field_and_the_choices(arch: ss.Architecture) -> None:
    assert FORMATS == ("json", "onnx", "onnx-int8", "pytorch", "card")
    with pytest.raises(ExportError, match=r"^format: 'tflite' .*expected one of json, onnx, onnx-int8, pytorch, card$"):
        render(arch, "tflite")
    assert issubclass(ExportError, ss.ExportError)


def test_json_round_trips_to_the_same_arch_id(arch: ss.Architecture) -> None:
    d = render(arch, "json")
    assert (d.media_type, d.filename) == ("application/json", f"{arch.arch_id}.json")
    back = ss.Architecture.from_json(d.content)
    assert back.arch_id == arch.arch_id
    assert back == arch
    assert ss.Architecture.decode(back.encode()).arch_id == arch.arch_id


def test_onnx_runs_in_onnxruntime(arch: ss.Architecture, onnx_bytes: bytes) -> None:
    d = render(arch, "onnx")
    assert d.filename == f"{arch.arch_id}.onnx" and d.media_type == "application/octet-stream"
    proto = onnx.load_from_string(onnx_bytes)
    assert {p.key: p.value for p in proto.metadata_props}["hwnas.arch_id"] == arch.arch_id
    assert [op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")] == [17]
    logits = _logits(onnx_bytes, _images(arch, 2))
    assert logits.shape == (2, arch.head.classes) and np.all(np.isfinite(logits))


def test_onnx_download_is_reproducible(arch: ss.Architecture, onnx_bytes: bytes) -> None:
    """Weights are drawn from a seed tied to the arch_id; the global torch RNG is left as it was."""
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    assert render(arch, "onnx").content == onnx_bytes
    assert torch.equal(torch.rand(1), before)


def test_onnx_int8_is_qdq_calibrated_on_the_dataset_and_tracks_fp32(
    arch: ss.Architecture, onnx_bytes: bytes, int8_bytes: bytes
) -> None:
    proto = onnx.load_from_string(int8_bytes)
    ops = {node.op_type for node in proto.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weight_scales = [t for t in proto.graph.initializer if t.name.endswith("_scale") and len(t.dims) == 1]
    assert weight_scales, "per-channel weights have one scale per output channel"
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["hwnas.arch_id"] == arch.arch_id and meta["hwnas.precision"] == "int8"
    calibration = json.loads(meta["hwnas.calibration"])
    assert calibration["dataset"]["name"] == "synthetic"
    assert calibration["images"] == exports.CALIBRATION_IMAGES == 32
    assert calibration["input"] == [3, 16, 16] and len(calibration["mean"]) == 3

    x = _images(arch, 8)
    fp32, int8 = _logits(onnx_bytes, x), _logits(int8_bytes, x)
    assert int8.shape == fp32.shape == (8, arch.head.classes)
    corr = np.corrcoef(fp32.ravel(), int8.ravel())[0, 1]
    assert corr > 0.9, f"int8 logits correlate {corr:.3f} with fp32"
    assert (fp32.argmax(1) == int8.argmax(1)).mean() >= 0.5


def test_onnx_int8_default_calibrates_on_fashion_mnist(arch: ss.Architecture, tmp_path: Path) -> None:
    d = render(arch, "onnx-int8", cache_dir=tmp_path)
    assert d.filename == f"{arch.arch_id}-int8.onnx"
    meta = {p.key: p.value for p in onnx.load_from_string(d.content).metadata_props}
    calibration = json.loads(meta["hwnas.calibration"])
    assert calibration["dataset"]["name"] == "fashion-mnist"
    assert calibration["fit"] == "resize"  # 28x28 images shrunk to the net's 16x16
    logits = _session(d.content).run(["logits"], {"input": np.zeros((1, 3, 16, 16), np.float32)})[0]
    assert logits.shape == (1, 5)
    key = exports.cache_name(arch, "onnx-int8", DataSpec())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{arch.arch_id}.onnx", key])


def test_onnx_int8_bad_dataset_names_the_field(arch: ss.Architecture) -> None:
    with pytest.raises(ExportError, match=r"^dataset: .*'folder'.*needs a path"):
        render(arch, "onnx-int8", dataset=DataSpec(name="folder"))


def test_pytorch_file_runs_in_a_fresh_interpreter(arch: ss.Architecture, tmp_path: Path) -> None:
    d = render(arch, "pytorch")
    assert d.filename == f"{arch.arch_id}.py" and d.media_type.startswith("text/x-python")
    path = tmp_path / d.filename
    path.write_bytes(d.content)
    script = textwrap.dedent(f"""
        import importlib.util, sys, torch
        assert "searchspace" not in sys.modules
        spec = importlib.util.spec_from_file_location("net", {str(path)!r})
        net = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(net)
        torch.manual_seed(0)
        model = net.build_model().eval()
        with torch.no_grad():
            out = model(torch.randn(2, 3, 16, 16))
        print(net.ARCH_ID, tuple(out.shape), "hwnas" in sys.modules or "searchspace" in sys.modules)
    """)
    # a fresh interpreter, run outside the repo: the file must need torch only, not hwnas
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [arch.arch_id, "(2,", "5)", "False"]


def test_card_reports_the_net_its_cost_and_its_context(arch: ss.Architecture) -> None:
    ctx = CardContext(
        job_id="job-42",
        job_name="tiny\nnets",
        space="all-blocks",
        objectives=[
            {"metric": "proxy", "direction": "maximize"},
            {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
        ],
        proxy="proxy:default -> macs",
        dataset="synthetic",
        metrics={"proxy": 0.8123, "acc": None, "a|b": 12345.6},
        latencies=LATENCIES,
    )
    d = render(arch, "card", card=ctx, dataset=SYNTHETIC)
    assert d.filename == f"{arch.arch_id}-card.md" and d.media_type.startswith("text/markdown")
    text = d.content.decode("utf-8")
    cost = count_cost(arch)
    assert cost.params >= 1000
    assert text.startswith(f"# hwnas model card: {arch.arch_id}\n")
    assert f"`{arch.encode()}`" in text
    assert f"Parameters: {cost.params:,}" in text and f"MACs: {cost.macs:,}" in text
    assert f"Peak activations: {cost.activations:,}" in text
    for layer in cost.layers:  # one table row per layer, with its params
        assert any(
            line.startswith(f"| {layer.name} |") and f"| {layer.params:,} |" in line for line in text.splitlines()
        ), layer.name
    assert "| ort-cpu-fp32-t1 | 0.432 | predicted | ort-cpu-fp32-t1.json.gz | box-a |" in text
    assert "| ort-cpu-int8-t1 | 0.211 | measured | ort-cpu-int8-t1.json.gz | box-b |" in text
    assert "- Job: tiny nets (`job-42`)\n" in text  # a newline in a name does not break the markdown
    assert "maximize `proxy`, minimize `latency:ort-cpu-fp32-t1`" in text
    assert "`proxy:default -> macs`" in text
    assert "| proxy | 0.8123 |" in text and "| acc | n/a |" in text
    assert "| a\\|b | 12,346 |" in text  # a pipe in a table cell is escaped
    assert "Calibrated on 32 images of the train split of `synthetic`" in text
    assert "not trained accuracy" in text


def test_card_without_context_leaves_the_sections_out(arch: ss.Architecture) -> None:
    text = render(arch, "card").content.decode()
    assert "## Latency" not in text and "## Where it comes from" not in text
    assert "## Blocks" in text and "## Limitations" in text
    assert "`fashion-mnist`" in text  # the default calibration set
    odd = CardContext(latencies=[{"profile": "p"}, "junk"], objectives=[{}], metrics={})  # type: ignore[list-item]
    text = render(arch, "card", card=odd).content.decode()
    assert "| p | n/a |  |  |  |" in text


def test_cache_serves_identical_bytes_without_exporting_again(
    arch: ss.Architecture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = {fmt: render(arch, fmt, cache_dir=tmp_path) for fmt in ("json", "onnx", "pytorch", "card")}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"{arch.arch_id}.{f}" for f in ("json", "onnx", "pytorch")
    )
    assert (tmp_path / f"{arch.arch_id}.onnx").read_bytes() == first["onnx"].content

    def fail(*_args: object, **_kwargs: object) -> Path:
        raise AssertionError("exported again despite the cache")

    for name in ("export_json", "export_onnx", "export_pytorch"):
        monkeypatch.setattr(searchspace.export, name, fail)
    for fmt in ("json", "onnx", "pytorch"):
        assert render(arch, fmt, cache_dir=tmp_path) == first[fmt]
    assert render(arch, "card", cache_dir=tmp_path, card=CardContext(job_id="j")).content != first["card"].content
    with pytest.raises(AssertionError, match="exported again"):
        render(arch, "onnx")  # no cache: the exporter runs (and the patch is what fails)


def test_int8_cache_is_keyed_by_dataset_and_reuses_the_fp32_graph(
    arch: ss.Architecture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def fake_quantize(a: ss.Architecture, fp32: bytes, dataset: DataSpec) -> bytes:
        calls.append(dataset.name)
        return b"int8 of " + dataset.model_dump_json().encode() + b" from " + fp32[:16]

    monkeypatch.setattr(exports, "quantize_int8", fake_quantize)
    other = SYNTHETIC.model_copy(update={"seed": 5})
    a = render(arch, "onnx-int8", cache_dir=tmp_path, dataset=SYNTHETIC)
    b = render(arch, "onnx-int8", cache_dir=tmp_path, dataset=other)
    assert a.content != b.content and calls == ["synthetic", "synthetic"]
    assert render(arch, "onnx-int8", cache_dir=tmp_path, dataset=SYNTHETIC) == a
    assert calls == ["synthetic", "synthetic"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 3 and f"{arch.arch_id}.onnx" in names  # fp32 exported once, shared by both int8 files
    assert exports.cache_name(arch, "onnx-int8", SYNTHETIC) in names
    assert exports.cache_name(arch, "onnx-int8", other) in names


def test_a_broken_cache_dir_does_not_break_the_download(arch: ss.Architecture, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    d = render(arch, "json", cache_dir=not_a_dir)
    assert isinstance(d, Download) and ss.Architecture.from_json(d.content) == arch
    assert not_a_dir.read_text() == "x"


def test_exporter_failures_become_export_errors(arch: ss.Architecture, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object, **_kwargs: object) -> Path:
        raise ss.ExportError("generated PyTorch code does not compile: boom")

    monkeypatch.setattr(searchspace.export, "export_pytorch", boom)
    with pytest.raises(ExportError, match="boom"):
        render(arch, "pytorch")
    monkeypatch.setattr(export_int8, "_check_runs", lambda *_a: (_ for _ in ()).throw(ExportError("int8 cannot run")))
    with pytest.raises(ExportError, match="int8 cannot run"):
        render(arch, "onnx-int8", dataset=SYNTHETIC)
