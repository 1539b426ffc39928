"""``dsconv``: MobileNet v1 depthwise-separable conv.

kxk depthwise with the stride + BN + act, then 1x1 pointwise + BN + act.
No shortcut.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType
from searchspace.ops import Act, BatchNorm, Conv, Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


class DepthwiseSeparable(BlockType):
    name = "dsconv"
    uses = frozenset({"k", "act"})
    choice_fields = ("k", "act")
    summary = "kxk depthwise + 1x1 pointwise, both with BN and activation"

    def ops(self, block: Block) -> list[Op]:
        assert block.act is not None
        return [
            Conv("conv_dw", block.cin, block.cin, block.k, block.stride, block.cin),
            BatchNorm("bn1", block.cin),
            Act("act1", block.act),
            Conv("conv_pw", block.cin, block.cout, 1),
            BatchNorm("bn2", block.cout),
            Act("act2", block.act),
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
