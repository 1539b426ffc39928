"""Registry of block types. Adding one: a file with a BlockType subclass + one line here.

Verbs as in every registry: :func:`register_block_type`, :func:`get_block_type`,
:func:`block_type_names` (sorted), plus :func:`block_types` in registration
order (calibration kinds follow it) and :func:`unregister_block_type`.
"""

from __future__ import annotations

import re

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
#: a type's name is the first token of its string form (tokens are split at '_', parts at '|')
_NAME = re.compile(r"^[a-z][a-z0-9]*$")
#: names the string form and the latency calibration use for what is not a block
_RESERVED = ("stem", "head")


def register_block_type(block_type: BlockType) -> BlockType:
    name = block_type.name
    if not _NAME.match(name) or name.startswith(_RESERVED):
        raise ValueError(
            f"block type name {name!r}: must be lowercase letters and digits, starting with a letter, "
            f"and not start with {' or '.join(_RESERVED)} (it is the type's token in the string form)"
        )
    if block_type.calibration_kind in _RESERVED:
        raise ValueError(f"block type {name!r}: calibration_kind {block_type.calibration_kind!r} is reserved")
    return _REGISTRY.register(name, block_type)


def unregister_block_type(name: str) -> BlockType:
    return _REGISTRY.unregister(name)


def get_block_type(name: str) -> BlockType:
    return _REGISTRY.get(name)


def block_type_names() -> list[str]:
    return _REGISTRY.names()


def block_types() -> list[BlockType]:
    """Every registered type, in registration order."""
    return _REGISTRY.entries()


for _cls in (InvertedBottleneck, FusedBottleneck, Tucker, DepthwiseSeparable, RegularConv, Skip):
    register_block_type(_cls())

__all__ = [
    "BlockType",
    "block_type_names",
    "block_types",
    "get_block_type",
    "register_block_type",
    "unregister_block_type",
]
