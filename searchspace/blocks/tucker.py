"""``tucker``: MobileDets Tucker (generalized bottleneck) block.

1x1 conv compressing to ``mid`` = round8(cin * r_in), regular kxk conv to
``mid2`` = round8(cout * r_out) with the stride, 1x1 conv to cout with no
activation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from searchspace.blocks.base import BlockType
from searchspace.channels import make_divisible
from searchspace.ops import Act, BatchNorm, Conv, Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices


class Tucker(BlockType):
    name = "tucker"
    uses = frozenset({"k", "mid", "mid2", "act"})
    choice_fields = ("tucker_in", "tucker_out", "k", "act")
    residual = True
    summary = "1x1 compress (r_in), kxk regular conv (r_out), 1x1 linear project"

    def check_specific(self, block: Block) -> list[str]:
        return [
            f"{field}: Tucker width must be >= 1, got {getattr(block, field)}"
            for field in ("mid", "mid2")
            if getattr(block, field) < 1
        ]

    def ops(self, block: Block) -> list[Op]:
        assert block.act is not None
        return [
            Conv("conv_pw", block.cin, block.mid, 1),
            BatchNorm("bn1", block.mid),
            Act("act1", block.act),
            Conv("conv_kxk", block.mid, block.mid2, block.k, block.stride),
            BatchNorm("bn2", block.mid2),
            Act("act2", block.act),
            Conv("conv_pwl", block.mid2, block.cout, 1),
            BatchNorm("bn3", block.cout),
        ]

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        from searchspace.architecture import Block

        return [
            Block(
                type=self.name,
                cin=cin,
                cout=cout,
                stride=stride,
                k=k,
                mid=make_divisible(cin * r_in, divisor),
                mid2=make_divisible(cout * r_out, divisor),
                act=act,
                residual=shortcut,
            )
            for r_in in choices.tucker_in
            for r_out in choices.tucker_out
            for k in choices.k
            for act in choices.act
        ]
