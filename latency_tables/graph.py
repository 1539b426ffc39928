"""ONNX graphs of blocks, heads and whole nets, built without torch.

The profiler measures each layer signature in isolation; building its graph
with ``onnx.helper`` takes about a millisecond where a torch export takes a
hundred, and keeps this layer free of torch (the device kit and the agent
need only onnx files). The graphs use exactly the ops torch's exporter
writes for :mod:`searchspace.torch_modules` modules in eval mode with BN folded
(Conv with bias, Relu, Clip, HardSwish, Sigmoid+Mul, ReduceMean, HardSigmoid,
Reshape/Transpose, Add, GlobalAveragePool, Flatten, Gemm); tests hold the two
to the same op sequence and the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import get_block_type
from searchspace.ops import Act, BatchNorm, ChannelShuffle, Conv, Op, SqueezeExcite, conv_out_size

OPSET = 17
#: onnxruntime 1.31 reads IR version <= 13 while onnx 1.23 writes 14 by default
IR_VERSION = 8


@dataclass
class _Graph:
    """Accumulates nodes and initializers; names are prefixed like torch's (``/blocks/blocks.3/...``)."""

    rng: np.random.Generator
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    inits: list[onnx.TensorProto] = field(default_factory=list)
    count: int = 0

    def name(self, prefix: str, what: str) -> str:
        self.count += 1
        return f"{prefix}/{what}_{self.count}"

    def const(self, prefix: str, array: np.ndarray) -> str:
        name = self.name(prefix, "w")
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attrs: Any) -> str:
        out = self.name(prefix, op)
        self.nodes.append(helper.make_node(op, inputs, [out], name=f"{prefix}/{op}_{self.count}", **attrs))
        return out

    def conv(self, x: str, op: Conv, prefix: str, bias: bool) -> str:
        fan_in = op.k * op.k * (op.cin // op.groups)
        w = self.rng.normal(0, (2.0 / fan_in) ** 0.5, (op.cout, op.cin // op.groups, op.k, op.k)).astype(np.float32)
        inputs = [x, self.const(prefix, w)]
        if bias:
            inputs.append(self.const(prefix, self.rng.normal(0, 0.01, op.cout).astype(np.float32)))
        pad = op.k // 2
        return self.node(
            "Conv",
            inputs,
            f"{prefix}/{op.name}",
            kernel_shape=[op.k, op.k],
            strides=[op.stride, op.stride],
            pads=[pad] * 4,
            group=op.groups,
            dilations=[1, 1],
        )

    def act(self, x: str, kind: str, prefix: str) -> str:
        if kind == "relu":
            return self.node("Relu", [x], prefix)
        if kind == "relu6":
            lo = self.const(prefix, np.array(0.0, dtype=np.float32))
            hi = self.const(prefix, np.array(6.0, dtype=np.float32))
            return self.node("Clip", [x, lo, hi], prefix)
        if kind == "hswish":
            return self.node("HardSwish", [x], prefix)
        if kind == "swish":
            return self.node("Mul", [x, self.node("Sigmoid", [x], prefix)], prefix)
        raise ValueError(f"no ONNX pattern for activation {kind!r}")

    def se(self, x: str, op: SqueezeExcite, prefix: str) -> str:
        p = f"{prefix}/{op.name}"
        s = self.node("ReduceMean", [x], p, axes=[2, 3], keepdims=1)
        s = self.conv(s, Conv("conv_reduce", op.channels, op.hidden, 1, bias=True), p, bias=True)
        s = self.node("Relu", [s], p)
        s = self.conv(s, Conv("conv_expand", op.hidden, op.channels, 1, bias=True), p, bias=True)
        gate = (
            self.node("HardSigmoid", [s], p, alpha=1.0 / 6.0) if op.gate == "hsigmoid" else self.node("Sigmoid", [s], p)
        )
        return self.node("Mul", [x, gate], p)

    def shuffle(self, x: str, op: ChannelShuffle, shape: tuple[int, int, int, int], prefix: str) -> str:
        n, c, h, w = shape
        p = f"{prefix}/{op.name}"
        five = self.const(p, np.array([n, op.groups, c // op.groups, h, w], dtype=np.int64))
        y = self.node("Reshape", [x, five], p)
        y = self.node("Transpose", [y], p, perm=[0, 2, 1, 3, 4])
        return self.node("Reshape", [y, self.const(p, np.array([n, c, h, w], dtype=np.int64))], p)

    def ops(self, x: str, ops: list[Op], shape: tuple[int, int, int, int], prefix: str) -> tuple[str, int, int]:
        """Append a block's ops (BN folded into the conv before it); return (output, channels, size)."""
        n, c, size, _ = shape
        for i, op in enumerate(ops):
            if isinstance(op, Conv):
                folded = i + 1 < len(ops) and isinstance(ops[i + 1], BatchNorm)
                x = self.conv(x, op, prefix, bias=folded or op.bias)
                c, size = op.cout, conv_out_size(size, op.k, op.stride)
            elif isinstance(op, BatchNorm):
                continue
            elif isinstance(op, Act):
                x = self.act(x, op.kind, f"{prefix}/{op.name}")
            elif isinstance(op, SqueezeExcite):
                x = self.se(x, op, prefix)
            elif isinstance(op, ChannelShuffle):
                x = self.shuffle(x, op, (n, c, size, size), prefix)
            else:  # pragma: no cover - a new op kind needs a pattern here
                raise TypeError(f"no ONNX pattern for op {op!r}")
        return x, c, size

    def block(self, x: str, block: Block, shape: tuple[int, int, int, int], prefix: str) -> tuple[str, int, int]:
        y, c, size = self.ops(x, get_block_type(block.type).ops(block), shape, prefix)
        if block.residual:
            y = self.node("Add", [y, x], prefix)
        return y, c, size

    def head(self, x: str, head: Head, channels: int, prefix: str = "/head") -> str:
        if head.conv:
            x = self.conv(x, Conv("conv", channels, head.conv, 1), prefix, bias=True)
            x = self.act(x, str(head.act), f"{prefix}/act")
            channels = head.conv
        x = self.node("GlobalAveragePool", [x], f"{prefix}/pool")
        x = self.node("Flatten", [x], f"{prefix}/flatten", axis=1)
        if head.hidden:
            x = self.gemm(x, channels, head.hidden, f"{prefix}/hidden")
            x = self.act(x, str(head.hidden_act), f"{prefix}/hidden_act")
            channels = head.hidden
        return self.gemm(x, channels, head.classes, f"{prefix}/classifier")

    def gemm(self, x: str, cin: int, cout: int, prefix: str) -> str:
        w = self.rng.normal(0, 0.01, (cout, cin)).astype(np.float32)
        b = np.zeros(cout, dtype=np.float32)
        inputs = [x, self.const(prefix, w), self.const(prefix, b)]
        return self.node("Gemm", inputs, prefix, alpha=1.0, beta=1.0, transB=1)


def _model(g: _Graph, x_shape: tuple[int, ...], out: str, out_shape: tuple[int, ...], name: str) -> onnx.ModelProto:
    graph = helper.make_graph(
        g.nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(out_shape))],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hwnas")
    model.ir_version = IR_VERSION
    return model


def block_graph(block: Block, size: int, batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    """One block on a ``batch x cin x size x size`` input."""
    g = _Graph(np.random.default_rng(seed))
    shape = (batch, block.cin, size, size)
    y, c, out = g.block("input", block, shape, "/block")
    return _model(g, shape, y, (batch, c, out, out), f"{block.type}")


def head_graph(head: Head, channels: int, size: int, batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    """The head (conv, pool, linear layers) on a ``batch x channels x size x size`` input."""
    g = _Graph(np.random.default_rng(seed))
    y = g.head("input", head, channels)
    return _model(g, (batch, channels, size, size), y, (batch, head.classes), "head")


def network_graph(arch: Architecture, batch: int = 1, seed: int = 0) -> onnx.ModelProto:
    """The whole net, as one graph, with the same ops as its blocks' graphs."""
    g = _Graph(np.random.default_rng(seed))
    shape = (batch, arch.in_channels, arch.resolution, arch.resolution)
    x, c, size = g.block("input", arch.stem, shape, "/stem")
    for i, block in enumerate(arch.blocks):
        x, c, size = g.block(x, block, (batch, c, size, size), f"/blocks/blocks.{i}")
    y = g.head(x, arch.head, c)
    return _model(g, shape, y, (batch, arch.head.classes), arch.arch_id)
