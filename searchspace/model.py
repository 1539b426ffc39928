"""build_model: Architecture -> torch.nn.Module (imports torch)."""

from __future__ import annotations

import torch
from torch import nn

from searchspace.architecture import Architecture, Block
from searchspace.blocks import get_block_type
from searchspace.layers import BlockModule, make_block
from searchspace.torch_modules import Head, init_weights


def build_block(block: Block) -> BlockModule:
    return make_block(get_block_type(block.type).ops(block), block.residual)


class Net(nn.Module):
    """stem -> blocks -> head; module names survive into state_dict and ONNX."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.stem = build_block(arch.stem)
        self.blocks = nn.Sequential(*[build_block(b) for b in arch.blocks])
        chans = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
        self.head = Head(chans, **arch.head.model_dump())
        self.arch_id = arch.arch_id
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


def build_model(arch: Architecture) -> Net:
    """A freshly initialised torch module for ``arch`` (train mode, like any nn.Module)."""
    return Net(arch)
