"""From pure ops (:mod:`searchspace.ops`) to torch modules of :mod:`searchspace.torch_modules`."""

from __future__ import annotations

import dataclasses

from torch import nn

from searchspace import torch_modules
from searchspace.ops import Op
from searchspace.torch_modules import Block as BlockModule
from searchspace.torch_modules import ChannelShuffleModule, SEModule

__all__ = ["BlockModule", "ChannelShuffleModule", "SEModule", "make_op", "make_block"]


def make_op(op: Op) -> tuple[str, nn.Module]:
    """``(name, module)`` for one op: the factory of :mod:`searchspace.torch_modules` named like the op's class."""
    factory = getattr(torch_modules, type(op).__name__, None)
    if factory is None:
        raise TypeError(f"searchspace.torch_modules has no factory for op {op!r}")
    return factory(**{f.name: getattr(op, f.name) for f in dataclasses.fields(op)})


def make_block(ops: list[Op], residual: bool) -> BlockModule:
    return BlockModule([make_op(op) for op in ops], residual)
