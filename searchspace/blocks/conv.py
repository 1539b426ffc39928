"""``conv``: regular kxk conv + BN + activation (also every stem and head conv)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType
from searchspace.ops import Act, BatchNorm, Conv, Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


class RegularConv(BlockType):
    name = "conv"
    uses = frozenset({"k", "act"})
    choice_fields = ("k", "act")
    summary = "kxk regular conv with BN and activation"

    def ops(self, block: Block) -> list[Op]:
        assert block.act is not None
        return [
            Conv("conv", block.cin, block.cout, block.k, block.stride),
            BatchNorm("bn", block.cout),
            Act("act", block.act),
        ]

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        from searchspace.architecture import Block

        return [
            Block(type=self.name, cin=cin, cout=cout, stride=stride, k=k, act=act)
            for k in choices.k
            for act in choices.act
        ]
