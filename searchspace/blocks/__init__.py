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

_REGISTRY: dict[str, BlockType] = {}


def register(block_type: BlockType) -> BlockType:
    if block_type.name in _REGISTRY:
        raise ValueError(f"block type '{block_type.name}' is registered twice")
    _REGISTRY[block_type.name] = block_type
    return block_type


def get_block_type(name: str) -> BlockType:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(
            f"unknown block type '{name}'; expected one of: {', '.join(block_type_names())}"
        ) from None


def block_type_names() -> list[str]:
    return sorted(_REGISTRY)


for _cls in (InvertedBottleneck, FusedBottleneck, Tucker, DepthwiseSeparable, RegularConv, Skip):
    register(_cls())

__all__ = ["BlockType", "register", "get_block_type", "block_type_names"]
