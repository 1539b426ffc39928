"""build_model: Architecture -> torch.nn.Module (imports torch)."""

from __future__ import annotations

import torch
from torch import nn

from searchspace.architecture import Architecture, Block
from searchspace.blocks import get_block_type
from searchspace.layers import BlockModule, make_act


def build_block(block: Block) -> BlockModule:
    return BlockModule(get_block_type(block.type).ops(block), block.residual)


class HeadModule(nn.Module):
    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        h = arch.head
        chans = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
        if h.conv:
            assert h.act is not None
            self.conv = nn.Conv2d(chans, h.conv, 1, bias=False)
            self.bn = nn.BatchNorm2d(h.conv)
            self.act = make_act(h.act)
            chans = h.conv
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        if h.hidden:
            assert h.hidden_act is not None
            self.hidden = nn.Linear(chans, h.hidden)
            self.hidden_act = make_act(h.hidden_act)
            chans = h.hidden
        self.dropout = nn.Dropout(h.dropout)
        self.classifier = nn.Linear(chans, h.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class Net(nn.Module):
    """stem -> blocks -> head; module names survive into state_dict and ONNX."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.stem = build_block(arch.stem)
        self.blocks = nn.Sequential(*[build_block(b) for b in arch.blocks])
        self.head = HeadModule(arch)
        self.arch_id = arch.arch_id
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def _init_weights(model: nn.Module) -> None:
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


def build_model(arch: Architecture) -> Net:
    """A freshly initialised torch module for ``arch`` (train mode, like any nn.Module)."""
    return Net(arch)
