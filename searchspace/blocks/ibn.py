"""``ibn``: MobileNet v2/v3 inverted bottleneck with linear projection.

1x1 expand to ``mid`` (omitted when mid == cin, i.e. t == 1), kxk depthwise
with the stride, optional squeeze-excite, 1x1 project with no activation.
``groups`` > 1 makes both 1x1 convs grouped with a channel shuffle after the
expansion (FBNet's ``_g2`` ops).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType, expanded, se_variants
from searchspace.ops import Act, BatchNorm, ChannelShuffle, Conv, Op, SqueezeExcite

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


def se_ops(block: Block, channels: int) -> list[Op]:
    if block.se == 0:
        return []
    assert block.se_gate is not None  # guaranteed by Block validation
    return [SqueezeExcite("se", channels, block.se, block.se_gate)]


class InvertedBottleneck(BlockType):
    name = "ibn"
    uses = frozenset({"k", "mid", "groups", "se", "act"})
    choice_fields = ("t", "k", "se", "act", "groups")
    expands = True
    residual = True
    summary = "1x1 expand (t), kxk depthwise, optional SE, 1x1 linear project"

    def check_specific(self, block: Block) -> list[str]:
        problems = []
        if block.mid < block.cin:
            problems.append(f"mid: expanded width must be >= cin={block.cin}, got {block.mid}")
        for field in ("cin", "mid", "cout"):
            if getattr(block, field) % block.groups:
                problems.append(f"groups: {field}={getattr(block, field)} is not divisible by groups={block.groups}")
        return problems

    def ops(self, block: Block) -> list[Op]:
        act = block.act
        assert act is not None
        ops: list[Op] = []
        if block.mid != block.cin:
            ops += [
                Conv("conv_pw", block.cin, block.mid, 1, 1, block.groups),
                BatchNorm("bn1", block.mid),
                Act("act1", act),
            ]
            if block.groups > 1:
                ops.append(ChannelShuffle("shuffle", block.groups))
        ops += [
            Conv("conv_dw", block.mid, block.mid, block.k, block.stride, block.mid),
            BatchNorm("bn2", block.mid),
            Act("act2", act),
            *se_ops(block, block.mid),
            Conv("conv_pwl", block.mid, block.cout, 1, 1, block.groups),
            BatchNorm("bn3", block.cout),
        ]
        return ops

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        out = []
        for t in choices.t:
            mid = expanded(cin, t, divisor)
            for groups in choices.groups:
                if cin % groups or mid % groups or cout % groups:
                    continue
                out += se_variants(
                    self.name,
                    choices,
                    cin=cin,
                    cout=cout,
                    stride=stride,
                    mid=mid,
                    divisor=divisor,
                    shortcut=shortcut,
                    groups=groups,
                )
        return out
