"""The torch-free ONNX graphs are the nets torch exports: same ops, same numbers."""

from __future__ import annotations

import random
from collections.abc import Iterator

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

import searchspace as ss
from latency_tables.graph import block_graph, network_graph
from searchspace.architecture import Architecture, Block
from searchspace.blocks import block_type_names
from searchspace.export import export_onnx

ort.disable_telemetry_events()


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blocks_of_every_type() -> list[Block]:
    """A few concrete blocks per registered type, from a space that offers them all."""
    space = ss.load_space(
        {
            "name": "all-types",
            "resolutions": [16],
            "classes": 4,
            "se_gate": "hsigmoid",
            "stem": {"channels": 16, "act": "relu"},
            "defaults": {
                "type": block_type_names(),
                "t": [1, 3],
                "k": [3, 5],
                "se": [0, 0.25],
                "act": ["relu", "relu6", "hswish", "swish"],
                "groups": [1, 2],
            },
            "stages": [{"channels": 16, "depth": 1}, {"channels": 24, "stride": 2, "depth": 1}],
            "head": {"conv": 32, "act": "hswish", "hidden": 24, "hidden_act": "swish"},
        }
    )
    rng = random.Random(0)
    out = []
    for cin, cout, stride in ((16, 16, 1), (16, 24, 2)):
        options = list(space.layer_options(0 if stride == 1 else 1, 0, cin, cout, stride))
        for name in block_type_names():
            of_type = [b for b in options if b.type == name]
            out += rng.sample(of_type, min(3, len(of_type)))
    return out


BLOCKS = _blocks_of_every_type()


def _run_onnx(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"input": x})[0]  # type: ignore[no-any-return]


def _load_graph_weights(module: torch.nn.Module, model: onnx.ModelProto) -> None:
    """Give torch's modules the graph's weights: convs and linears in order, BN as identity + bias."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    weighted = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    layers = [m for m in module.modules() if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len(weighted) == len(layers)
    bns = {id(m) for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)}
    mods = list(module.modules())
    for node, layer in zip(weighted, layers, strict=True):
        layer.weight.data = torch.from_numpy(inits[node.input[1]].copy())
        bias = torch.from_numpy(inits[node.input[2]].copy()) if len(node.input) > 2 else None
        if layer.bias is not None:
            assert bias is not None
            layer.bias.data = bias
        elif bias is not None:  # BN follows: it becomes identity plus the graph's bias
            bn = mods[mods.index(layer) + 1]
            assert id(bn) in bns
            bn.weight.data.fill_(1.0)
            bn.bias.data = bias
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)


@pytest.mark.parametrize("block", BLOCKS, ids=[f"{b.type}-{i}" for i, b in enumerate(BLOCKS)])
def test_block_graph_computes_what_torch_computes(block: Block) -> None:
    from searchspace.model import build_block

    graph = block_graph(block, 16)
    onnx.checker.check_model(graph, full_check=True)
    module = build_block(block).eval()
    _load_graph_weights(module, graph)
    x = np.random.default_rng(1).standard_normal((1, block.cin, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    got = _run_onnx(graph, x)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def _op_types(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node if n.op_type not in ("Identity", "Constant")]


@pytest.mark.parametrize("seed", range(3))
def test_network_graph_has_torch_exports_ops_and_numbers(seed: int, tmp_path: object) -> None:
    from pathlib import Path

    space = ss.load_space(["mobilenetv3-cifar", "mobiledet-cifar", "fbnet-cifar"][seed])
    arch: Architecture = space.sample(seed)
    graph = network_graph(arch)
    onnx.checker.check_model(graph, full_check=True)
    path = Path(str(tmp_path)) / "net.onnx"
    export_onnx(arch, path, verify=False)
    assert _op_types(graph) == _op_types(onnx.load(str(path)))
    model = ss.build_model(arch).eval()
    _load_graph_weights(model, graph)
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run_onnx(graph, x), want, atol=1e-4, rtol=1e-3)


def test_known_net_graph_matches_export_ops(tmp_path: object) -> None:
    from pathlib import Path

    arch = ss.known_architecture("mobilenet_v3_small").model_copy(update={"resolution": 64})
    path = Path(str(tmp_path)) / "v3s.onnx"
    export_onnx(arch, path, verify=False)
    assert _op_types(network_graph(arch)) == _op_types(onnx.load(str(path)))
