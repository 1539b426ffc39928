"""The contract every block type fulfils (one subclass per file)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from searchspace.channels import make_divisible
from searchspace.ops import Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.spec import LayerChoices

#: Fields of :class:`Block` that a type may use, with the neutral value a
#: block must carry when its type does not use the field.
NEUTRAL: dict[str, object] = {"k": 1, "mid": 0, "mid2": 0, "groups": 1, "se": 0, "act": None}


class BlockType(ABC):
    """One kind of block: how it is validated, enumerated, described and drawn.

    Subclasses set ``name`` and ``uses`` (the optional Block fields they read;
    every other optional field must stay at its neutral value), and implement
    :meth:`check`, :meth:`ops` and :meth:`options`. Registering the subclass
    with :func:`searchspace.blocks.register` is all it takes for the space
    loader, the builder, the cost counter, the exporters and the tests
    (which are parametrized over the registry) to know it.
    """

    name: ClassVar[str]
    uses: ClassVar[frozenset[str]]
    #: may this type carry an identity shortcut (stride 1 and cin == cout)?
    residual: ClassVar[bool] = False
    #: one line for ``hwnas space show`` and the docs
    summary: ClassVar[str] = ""

    def check(self, block: Block) -> list[str]:
        """Return problems with ``block`` as 'field: message' strings (empty = valid)."""
        problems = []
        for field, neutral in NEUTRAL.items():
            if field not in self.uses and getattr(block, field) != neutral:
                problems.append(
                    f"{field}: block type '{self.name}' does not use '{field}'; "
                    f"leave it out (got {getattr(block, field)!r})"
                )
        if "act" in self.uses and block.act is None:
            problems.append(f"act: block type '{self.name}' needs an activation")
        if block.residual:
            if not self.residual:
                problems.append(f"residual: block type '{self.name}' has no shortcut")
            elif block.stride != 1 or block.cin != block.cout:
                problems.append(
                    "residual: a shortcut needs stride 1 and cin == cout, "
                    f"got stride={block.stride}, cin={block.cin}, cout={block.cout}"
                )
        if "k" in self.uses and block.k % 2 == 0:
            problems.append(f"k: kernel size must be odd, got {block.k}")
        return problems + self.check_specific(block)

    def check_specific(self, block: Block) -> list[str]:
        return []

    @abstractmethod
    def ops(self, block: Block) -> list[Op]:
        """The layers of ``block`` in execution order (residual add excluded)."""

    @abstractmethod
    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        """Every distinct concrete block the layer choices allow at this position.

        ``shortcut`` says whether the space allows a residual here (stride 1,
        cin == cout, and not a stage's first layer when the stage forbids it).
        """


def se_hidden(channels: int, ratio: float, divisor: int) -> int:
    """Width of the squeeze-excite bottleneck (0 when ratio is 0)."""
    return make_divisible(channels * ratio, divisor) if ratio > 0 else 0


def expanded(cin: int, t: float, divisor: int) -> int:
    """Expanded width for expansion ratio ``t`` (exactly ``cin`` when t == 1)."""
    return cin if t == 1 else make_divisible(cin * t, divisor)
