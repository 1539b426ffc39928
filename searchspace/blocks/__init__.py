"""Registry of block types. Adding one: a file with a BlockType subclass + one line here."""

from __future__ import annotations

from searchspace.blocks.base import BlockType
from searchspace.blocks.conv import RegularConv
from searchspace.blocks.dsconv import DepthwiseSeparable
from searchspace.blocks.fused import FusedBottleneck
from searchspace.blocks.ibn import InvertedBottleneck
from searchspace.blocks.skip import Skip
from searchspace.blocks.tucker import Tucker
from searchspace.errors import UnknownNameError
from searchspace.registry import Registry

_REGISTRY: Registry[BlockType] = Registry("block type", UnknownNameError)


def register(block_type: BlockType) -> BlockType:
    return _REGISTRY.register(block_type.name, block_type)


def get_block_type(name: str) -> BlockType:
    return _REGISTRY.get(name)


def block_type_names() -> list[str]:
    return _REGISTRY.names()


for _cls in (InvertedBottleneck, FusedBottleneck, Tucker, DepthwiseSeparable, RegularConv, Skip):
    register(_cls())

__all__ = ["BlockType", "register", "get_block_type", "block_type_names"]
