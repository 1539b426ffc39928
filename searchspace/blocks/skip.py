"""``skip``: identity when stride 1 and cin == cout, else 1x1 conv (stride) + BN.

As a searchable choice it lets a layer vanish (ProxylessNAS' zero op, FBNet's
skip) without changing the stage's shape contract.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType
from searchspace.ops import BatchNorm, Conv, Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


class Skip(BlockType):
    name = "skip"
    uses = frozenset()
    choice_fields = ()
    summary = "identity, or 1x1 conv + BN where the shape changes"

    def is_identity(self, block: Block) -> bool:
        return block.stride == 1 and block.cin == block.cout

    def ops(self, block: Block) -> list[Op]:
        if self.is_identity(block):
            return []
        return [Conv("conv", block.cin, block.cout, 1, block.stride), BatchNorm("bn", block.cout)]

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        from searchspace.architecture import Block

        return [Block(type=self.name, cin=cin, cout=cout, stride=stride)]
