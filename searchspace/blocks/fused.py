"""``fused``: MobileDets fused inverted bottleneck (timm's EdgeResidual).

Regular kxk conv expanding to ``mid`` with the stride, optional SE, 1x1
project with no activation. On accelerators this beats expand + depthwise in
early, narrow layers even though it has more MACs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType, expanded, se_variants
from searchspace.blocks.ibn import se_ops
from searchspace.ops import Act, BatchNorm, Conv, Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


class FusedBottleneck(BlockType):
    name = "fused"
    uses = frozenset({"k", "mid", "se", "act"})
    choice_fields = ("t", "k", "se", "act")
    expands = True
    residual = True
    summary = "kxk regular conv expanding by t, optional SE, 1x1 linear project"

    def check_specific(self, block: Block) -> list[str]:
        if block.mid < 1:
            return [f"mid: expanded width must be >= 1, got {block.mid}"]
        return []

    def ops(self, block: Block) -> list[Op]:
        assert block.act is not None
        return [
            Conv("conv_exp", block.cin, block.mid, block.k, block.stride),
            BatchNorm("bn1", block.mid),
            Act("act1", block.act),
            *se_ops(block, block.mid),
            Conv("conv_pwl", block.mid, block.cout, 1),
            BatchNorm("bn2", block.cout),
        ]

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        out = []
        for t in choices.t:
            mid = expanded(cin, t, divisor)
            out += se_variants(
                self.name, choices, cin=cin, cout=cout, stride=stride, mid=mid, divisor=divisor, shortcut=shortcut
            )
        return out
