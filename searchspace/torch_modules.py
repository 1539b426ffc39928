"""The torch modules every hwnas net is made of.

This file imports nothing but torch: :func:`searchspace.export.export_pytorch`
copies it verbatim into the standalone PyTorch files it writes, and
:mod:`searchspace.model` builds hwnas' own models from it, so an exported
file and hwnas' model are the same code with the same ``state_dict`` keys.

Op factories are named like the op classes of ``searchspace.ops`` and take
the same arguments; each returns ``(module name, module)``.
"""

from __future__ import annotations

import torch
from torch import nn

_ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish, "swish": nn.SiLU}
_GATES: dict[str, type[nn.Module]] = {"sigmoid": nn.Sigmoid, "hsigmoid": nn.Hardsigmoid}


class SEModule(nn.Module):
    """Squeeze-excite: pool, conv_reduce (bias), ReLU, conv_expand (bias), gate."""

    def __init__(self, channels: int, hidden: int, gate: str) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.act = nn.ReLU()
        self.conv_expand = nn.Conv2d(hidden, channels, 1, bias=True)
        self.gate = _GATES[gate]()

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


def Conv(  # noqa: N802 - named like the op it builds
    name: str, cin: int, cout: int, k: int = 1, stride: int = 1, groups: int = 1, bias: bool = False
) -> tuple[str, nn.Module]:
    return name, nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=bias)


def BatchNorm(name: str, channels: int) -> tuple[str, nn.Module]:  # noqa: N802
    return name, nn.BatchNorm2d(channels)


def Act(name: str, kind: str) -> tuple[str, nn.Module]:  # noqa: N802
    return name, _ACTS[kind]()


def SqueezeExcite(name: str, channels: int, hidden: int, gate: str) -> tuple[str, nn.Module]:  # noqa: N802
    return name, SEModule(channels, hidden, gate)


def ChannelShuffle(name: str, groups: int) -> tuple[str, nn.Module]:  # noqa: N802
    return name, ChannelShuffleModule(groups)


class Block(nn.Module):
    """The layers in order (named as in the papers), plus the identity shortcut when ``residual``."""

    def __init__(self, layers: list[tuple[str, nn.Module]], residual: bool = False) -> None:
        super().__init__()
        self.residual = residual
        for name, layer in layers:
            self.add_module(name, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for layer in self.children():
            out = layer(out)
        return out + x if self.residual else out


class Head(nn.Module):
    """Optional 1x1 conv + BN + act, global pool, optional hidden linear + act, dropout, classifier."""

    def __init__(
        self,
        cin: int,
        *,
        classes: int,
        conv: int = 0,
        act: str | None = None,
        hidden: int = 0,
        hidden_act: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        chans = cin
        if conv:
            self.conv = nn.Conv2d(chans, conv, 1, bias=False)
            self.bn = nn.BatchNorm2d(conv)
            self.act = _ACTS[str(act)]()
            chans = conv
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        if hidden:
            self.hidden = nn.Linear(chans, hidden)
            self.hidden_act = _ACTS[str(hidden_act)]()
            chans = hidden
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(chans, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


def init_weights(model: nn.Module) -> None:
    """The MobileNet reference init: Kaiming fan-out convs, unit BN, small linear."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
