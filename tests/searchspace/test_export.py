"""Exporters: ONNX files must compute what the torch model computes, PyTorch code must load hwnas weights.

Every ONNX test compares onnxruntime with torch itself (not only through the
exporter's own ``verify``), block by block, on a different input and with
non-trivial BatchNorm statistics, so a wrong BN fold cannot hide behind the
reference init (unit BN, zero mean) or behind the damping of the logits.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import searchspace.pytorch_export as pytorch_export_module
from searchspace import Architecture, Block, ExportError, Head, known_architectures, list_spaces, load_space
from searchspace.blocks import block_type_names, get_block_type
from searchspace.export import (
    block_outputs,
    export_json,
    export_onnx,
    export_pytorch,
    fold_batchnorm,
)
from searchspace.model import Net, build_model
from searchspace.pytorch_export import _missing_op_templates
from searchspace.spec import LayerChoices

ort.disable_telemetry_events()

KNOWN = known_architectures()
TYPES = block_type_names()


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    """These nets are tiny; two OpenMP threads on a busy 2-core machine spin and run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# (cout, stride, shortcut allowed, SE gate, take a full cover of the options or just one)
_POSITIONS: list[tuple[int, int, bool, str, bool]] = [
    (16, 1, True, "hsigmoid", True),
    (24, 2, False, "sigmoid", False),
    (24, 1, False, "sigmoid", True),
    (32, 1, False, "hsigmoid", False),
    (32, 2, False, "hsigmoid", False),
]


def _cover(options: list[Block]) -> list[Block]:
    """Few options that together show every value each Block field takes among ``options`` (greedy)."""

    def pairs(b: Block) -> set[tuple[str, Any]]:
        return set(b.model_dump().items())

    todo = set().union(*(pairs(b) for b in options))
    picked: list[Block] = []
    while todo:
        best = max(options, key=lambda b: len(pairs(b) & todo))
        picked.append(best)
        todo -= pairs(best)
    return picked


def tiny_arch(type_name: str) -> Architecture:
    """A 32x32 net made of the given block type only, built from the type's own ``options`` (any new type works).

    Choices offer two or more values on every axis (t 1/4 so ibn also runs
    without expansion, SE on/off with both gates, groups 1/2, all activations);
    shape-preserving positions take a set of options covering every value.
    """
    block_type = get_block_type(type_name)
    stem = Block(type="conv", cin=3, cout=16, k=3, stride=2, act="relu")
    blocks: list[Block] = []
    c = 16
    for cout, stride, shortcut, gate, full in _POSITIONS:
        choices = LayerChoices(
            type=(type_name,),
            t=(1.0, 4.0),
            k=(3, 5),
            se=(0.0, 0.25),
            act=("relu", "relu6", "hswish", "swish"),
            groups=(1, 2),
            tucker_in=(0.25, 1.0),
            tucker_out=(0.5, 0.75),
            se_gate=gate,  # type: ignore[arg-type]
        )
        options = block_type.options(choices, c, cout, stride, shortcut and stride == 1 and c == cout, 8)
        assert options, f"{type_name} offers nothing for {c}->{cout} stride {stride}"
        blocks += _cover(options) if full else _cover(options)[:1]
        c = cout
    return Architecture(resolution=32, stem=stem, blocks=tuple(blocks), head=Head(conv=64, act="hswish", classes=10))


def at_resolution(arch: Architecture, resolution: int) -> Architecture:
    """``model_copy`` with a new resolution, re-validated (model_copy alone validates nothing)."""
    copied = arch.model_copy(update={"resolution": resolution})
    checked = Architecture.from_dict(copied.to_dict())
    assert checked.resolution == resolution
    return checked


def trained_like(arch: Architecture, seed: int) -> Net:
    """An eval-mode model whose BNs have non-trivial statistics and affine parameters."""
    torch.manual_seed(seed)
    model = build_model(arch)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model.eval()


def export_and_compare(arch: Architecture, path: Path, seed: int = 0, batch_size: int = 2) -> onnx.ModelProto:
    """Export, check the file's structure, and compare onnxruntime with torch on a fresh input.

    Every block's output is compared, not only the logits: at the reference
    init the small classifier damps a wrong layer to a logit change of ~1e-7.
    """
    model = trained_like(arch, seed)
    assert export_onnx(arch, path, batch_size=batch_size, state_dict=model.state_dict()) == path
    proto = check_onnx_file(path, arch, batch_size)

    values = block_outputs(proto)
    with_nodes = ["stem"] + [f"blocks.{i}" for i, b in enumerate(arch.blocks) if get_block_type(b.type).ops(b)]
    assert sorted(values) == sorted(with_nodes)
    probe = onnx.load(str(path))
    probe.graph.output.extend(
        onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None) for v in values.values()
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])

    x = torch.randn(
        batch_size,
        arch.in_channels,
        arch.resolution,
        arch.resolution,
        generator=torch.Generator().manual_seed(seed + 1000),
    )
    expected: dict[str, torch.Tensor] = {}
    modules = {"stem": model.stem, **{f"blocks.{i}": b for i, b in enumerate(model.blocks)}}
    hooks = [
        modules[name].register_forward_hook(lambda _m, _i, out, name=name: expected.__setitem__(name, out))
        for name in values
    ]
    with torch.no_grad():
        logits = model(x).numpy()
    for hook in hooks:
        hook.remove()
    got = dict(zip(["logits", *values], session.run(["logits", *values.values()], {"input": x.numpy()}), strict=True))

    assert got["logits"].shape == (batch_size, arch.head.classes)
    assert np.abs(logits).max() > 1e-3, "logits too small for the comparison to mean anything"
    diff = np.abs(got["logits"] - logits).max()
    assert diff < 1e-4, f"onnxruntime logits differ from torch by {diff}"
    for name in values:
        want = expected[name].numpy()
        diff = np.abs(got[name] - want).max()
        assert diff < 1e-4 * max(1.0, np.abs(want).max()), f"{name} differs by {diff}"
    return proto


def check_onnx_file(path: Path, arch: Architecture, batch_size: int) -> onnx.ModelProto:
    onnx.checker.check_model(str(path), full_check=True)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name], "sidecar or temp files left"
    proto = onnx.load(str(path), load_external_data=False)
    assert not any(
        t.HasField("data_location") and t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer
    )
    assert [(o.domain, o.version) for o in proto.opset_import] == [("", 17)]
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and "Identity" not in ops, ops
    names = [n.name for n in proto.graph.node if n.op_type == "Conv"]
    assert names[0] == "/stem/conv/Conv", names[:3]
    assert all(re.fullmatch(r"/(stem|blocks/blocks\.\d+|head)/[\w./]+", n) for n in names), names
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta == {"hwnas.arch_id": arch.arch_id, "hwnas.architecture": arch.to_json(), "hwnas.format_version": "1"}
    assert Architecture.from_json(meta["hwnas.architecture"]) == arch
    (inp,) = proto.graph.input
    (out,) = proto.graph.output
    assert (inp.name, out.name) == ("input", "logits")
    static = [d.dim_value for d in inp.type.tensor_type.shape.dim]
    assert static == [batch_size, arch.in_channels, arch.resolution, arch.resolution]
    assert [d.dim_value for d in out.type.tensor_type.shape.dim] == [batch_size, arch.head.classes]
    return proto


# ------------------------------------------------------------------ ONNX
@pytest.mark.parametrize("type_name", TYPES)
def test_tiny_arch_has_the_interesting_variants(type_name: str) -> None:
    arch = tiny_arch(type_name)
    block_type = get_block_type(type_name)
    blocks = arch.blocks
    assert all(b.type == type_name for b in blocks)
    assert any(b.stride == 2 for b in blocks)
    if block_type.residual:
        assert any(b.residual for b in blocks) and not all(b.residual for b in blocks)
    if "se" in block_type.uses:
        assert {b.se_gate for b in blocks if b.se} == {"sigmoid", "hsigmoid"}
    if "groups" in block_type.uses:
        assert any(b.groups == 2 and b.mid != b.cin for b in blocks), "no grouped block with channel shuffle"
    if "act" in block_type.uses:
        assert {b.act for b in blocks} == {"relu", "relu6", "hswish", "swish"}
    if type_name == "skip":
        assert any(b.is_identity for b in blocks) and any(not b.is_identity for b in blocks)


@pytest.mark.parametrize("type_name", TYPES)
def test_onnx_matches_torch_per_block_type(type_name: str, tmp_path: Path) -> None:
    export_and_compare(tiny_arch(type_name), tmp_path / f"{type_name}.onnx")


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_onnx_matches_torch_known_nets(name: str, tmp_path: Path) -> None:
    export_and_compare(at_resolution(KNOWN[name], 64), tmp_path / "net.onnx", batch_size=1)


def _samples() -> list[tuple[str, int]]:
    return [(space, seed) for space, seed in itertools.product(list_spaces(), range(3))]


@pytest.mark.parametrize(("space", "seed"), _samples())
def test_onnx_matches_torch_random_samples(space: str, seed: int, tmp_path: Path) -> None:
    arch = load_space(space).sample(seed)
    if not space.endswith("-cifar"):
        arch = at_resolution(arch, 64)
    else:
        assert arch.resolution == 32
    export_and_compare(arch, tmp_path / "sample.onnx", seed=seed, batch_size=1)


def test_fold_batchnorm_removes_every_bn_and_keeps_the_output() -> None:
    arch = tiny_arch("ibn")
    model = trained_like(arch, 3)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) > 5, "the original is untouched"
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), folded(x), atol=1e-5)
        assert not torch.allclose(model(x), build_model(arch).eval()(x), atol=1e-3)


def test_onnx_metadata_uses_the_fresh_arch_id(tmp_path: Path) -> None:
    """model_copy keeps a cached arch_id from before the copy; the export must not carry it over."""
    arch = KNOWN["mobilenet_v3_small"]
    stale = arch.arch_id
    copied = arch.model_copy(update={"resolution": 32})
    path = export_onnx(copied, tmp_path / "m.onnx")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    fresh = Architecture.from_json(meta["hwnas.architecture"])
    assert fresh.resolution == 32
    assert meta["hwnas.arch_id"] == fresh.arch_id != stale


def test_export_into_missing_directory_leaves_nothing(tmp_path: Path) -> None:
    arch = tiny_arch("conv")
    target = tmp_path / "missing" / "m.onnx"
    for export in (export_onnx, export_pytorch, export_json):
        with pytest.raises(ExportError, match="does not exist"):
            export(arch, target)
    assert list(tmp_path.iterdir()) == []


def test_failed_verification_leaves_nothing(tmp_path: Path) -> None:
    """An impossible tolerance fails the comparison: no final file and no scratch file may remain."""
    (tmp_path / "other.txt").write_text("kept")
    with pytest.raises(ExportError, match="max abs diff"):
        export_onnx(tiny_arch("ibn"), tmp_path / "m.onnx", atol=1e-30)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.txt"]


def test_failed_export_keeps_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "m.onnx"
    target.write_bytes(b"previous")
    with pytest.raises(ExportError, match="does not fit"):
        export_onnx(tiny_arch("conv"), target, state_dict={"nonsense": torch.zeros(1)})
    assert target.read_bytes() == b"previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_onnx_export_to_a_directory_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="is a directory"):
        export_onnx(tiny_arch("conv"), tmp_path)


# ----------------------------------------------------------------- PyTorch
def _load_generated(path: Path) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "generated"}
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), namespace)
    return namespace


def _check_pytorch_export(arch: Architecture, path: Path) -> None:
    assert export_pytorch(arch, path) == path
    source = path.read_text(encoding="utf-8")
    imports = re.findall(r"^\s*(?:from\s+(\S+)\s+import|import\s+(\S+))", source, re.MULTILINE)
    assert {a or b for a, b in imports} == {"__future__", "torch"}, imports
    assert re.search(r"\b(searchspace|latency_tables|service|nas)\b", source) is None
    namespace = _load_generated(path)
    assert namespace["ARCH_ID"] == arch.arch_id
    assert Architecture.from_dict(namespace["ARCHITECTURE"]) == arch
    reference = trained_like(arch, 5)
    generated = namespace["build_model"]()
    want = reference.state_dict()
    got = generated.state_dict()
    assert list(got) == list(want)
    assert all(got[k].shape == want[k].shape for k in want)
    generated.load_state_dict(want)
    generated.eval()
    x = torch.randn(2, arch.in_channels, arch.resolution, arch.resolution)
    layers = [
        ("stem", generated.stem, reference.stem),
        *((f"blocks.{i}", g, r) for i, (g, r) in enumerate(zip(generated.blocks, reference.blocks, strict=True))),
        ("head", generated.head, reference.head),
    ]
    ours = theirs = x
    with torch.no_grad():
        for name, g, r in layers:  # layer by layer: the logits alone would hide a wrong layer (see above)
            ours, theirs = g(ours), r(theirs)
            diff = (ours - theirs).abs().max().item()
            assert diff <= 1e-6 * max(1.0, theirs.abs().max().item()), f"{name} differs by {diff}"
        assert torch.equal(generated(x), ours) and torch.equal(reference(x), theirs)


@pytest.mark.parametrize("type_name", TYPES)
def test_pytorch_export_per_block_type(type_name: str, tmp_path: Path) -> None:
    _check_pytorch_export(tiny_arch(type_name), tmp_path / "net.py")


@pytest.mark.parametrize("name", ["mobilenet_v3_large", "mobiledet_dsp"])
def test_pytorch_export_known_nets(name: str, tmp_path: Path) -> None:
    arch = at_resolution(KNOWN[name], 64)
    path = tmp_path / "net.py"
    _check_pytorch_export(arch, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    block_lines = [line for line in lines if re.match(r"\s+Block\(\[.*\),  # \d+: \w+$", line)]
    assert len(block_lines) == len(arch.blocks)


def test_broken_pytorch_code_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Code that does not compile, or whose weights would not load, fails the export and leaves no file."""
    source = pytorch_export_module._torch_modules_source()
    arch = tiny_arch("ibn")
    broken = source.replace("nn.BatchNorm2d(channels)", "nn.BatchNorm2d(channels + 1)")
    assert broken != source
    monkeypatch.setattr(pytorch_export_module, "_torch_modules_source", lambda: broken)
    with pytest.raises(ExportError, match="state_dict layout"):
        export_pytorch(arch, tmp_path / "net.py")
    monkeypatch.setattr(pytorch_export_module, "_torch_modules_source", lambda: source.replace("def Act(", "def Act(("))
    with pytest.raises(ExportError, match="does not compile"):
        export_pytorch(arch, tmp_path / "net.py", verify=False)
    assert list(tmp_path.iterdir()) == []


def test_pytorch_template_knows_every_op() -> None:
    assert _missing_op_templates() == []


def test_export_json_round_trips(tmp_path: Path) -> None:
    arch = KNOWN["mobiledet_edgetpu"]
    path = export_json(arch, tmp_path / "a.json")
    assert path.read_text(encoding="utf-8") == arch.to_json(indent=2) + "\n"
    assert Architecture.load(path) == arch
    assert sorted(os.listdir(tmp_path)) == ["a.json"]
