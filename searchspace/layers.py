"""Torch modules for the pure ops in :mod:`searchspace.ops` (imports torch)."""

from __future__ import annotations

import torch
from torch import nn

from searchspace.ops import Act, ActName, BatchNorm, ChannelShuffle, Conv, GateName, Op, SqueezeExcite

_ACTS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hswish": nn.Hardswish,
    "swish": nn.SiLU,
}
_GATES: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "hsigmoid": nn.Hardsigmoid}


def make_act(kind: ActName) -> nn.Module:
    return _ACTS[kind]()


def make_gate(kind: GateName) -> nn.Module:
    return _GATES[kind]()


class SEModule(nn.Module):
    """Squeeze-excite: pool, conv_reduce (bias), ReLU, conv_expand (bias), gate."""

    def __init__(self, channels: int, hidden: int, gate: GateName) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU()
        self.conv_expand = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = make_gate(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(s))))


class ChannelShuffleModule(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


def make_op(op: Op) -> nn.Module:
    if isinstance(op, Conv):
        return nn.Conv2d(
            op.cin, op.cout, op.k, op.stride, op.k // 2, groups=op.groups, bias=op.bias
        )
    if isinstance(op, BatchNorm):
        return nn.BatchNorm2d(op.channels)
    if isinstance(op, Act):
        return make_act(op.kind)
    if isinstance(op, SqueezeExcite):
        return SEModule(op.channels, op.hidden, op.gate)
    if isinstance(op, ChannelShuffle):
        return ChannelShuffleModule(op.groups)
    raise TypeError(f"no torch module for op {op!r}")


class BlockModule(nn.Module):
    """A block: its layers in order (named as in the papers), plus the shortcut."""

    def __init__(self, ops: list[Op], residual: bool) -> None:
        super().__init__()
        self.residual = residual
        for op in ops:
            self.add_module(op.name, make_op(op))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.children():
            out = layer(out)
        return out + x if self.residual else out
