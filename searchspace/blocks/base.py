"""The contract every block type fulfils (one subclass per file)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from searchspace.channels import make_divisible
from searchspace.ops import Op

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.choices import LayerChoices

#: Fields of :class:`Block` that a type may use, with the neutral value a
#: block must carry when its type does not use the field.
NEUTRAL: dict[str, object] = {"k": 1, "mid": 0, "mid2": 0, "groups": 1, "se": 0, "act": None}


class BlockType(ABC):
    """One kind of block: how it is validated, enumerated, described and drawn.

    Subclasses set ``name``, ``uses`` (the optional Block fields they read;
    every other optional field must stay at its neutral value) and
    ``choice_fields``, and implement :meth:`ops` and :meth:`options` (and
    :meth:`check_specific` for rules of their own). Registering an instance
    with :func:`searchspace.blocks.register_block_type` is all it takes for the
    space loader, the string form, the builder, the cost counter, the
    exporters, the latency tables, the search and the tests (which are
    parametrized over the registry) to know it: everything that differs
    between types is read from these attributes, never from a type's name.
    """

    #: the type's name, which is also its token in the string form (``ibn_k3_...``) and in
    #: latency-table keys: a lowercase word of letters and digits
    name: ClassVar[str]
    uses: ClassVar[frozenset[str]]
    #: the LayerChoices fields :meth:`options` reads, in the order a search names them
    #: (``ibn t=6 k=3 ...``: the names are stored in Optuna studies, so the order is part of the format)
    choice_fields: ClassVar[tuple[str, ...]]
    #: is ``mid`` an expansion of the input (``mid = cin * t``)? Such a type writes ``e<t>`` in
    #: the string form and reports ``Block.t``; otherwise ``mid`` is written out as ``m<mid>``
    expands: ClassVar[bool] = False
    #: the group whose latencies calibration scales together (see latency_tables.calibration);
    #: the type's own name unless a subclass names another type's
    calibration_kind: ClassVar[str]
    #: may this type carry an identity shortcut (stride 1 and cin == cout)?
    residual: ClassVar[bool] = False
    #: one line for ``hwnas space show`` and the docs
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "calibration_kind" not in cls.__dict__:
            cls.calibration_kind = cls.name

    def is_identity(self, block: Block) -> bool:
        """Does ``block`` compute nothing (no layers, costs no time)?"""
        return False

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


def se_variants(
    name: str,
    choices: LayerChoices,
    *,
    cin: int,
    cout: int,
    stride: int,
    mid: int,
    divisor: int,
    shortcut: bool,
    **fields: int,
) -> list[Block]:
    """One ``name`` block per (kernel, SE ratio, activation) at the expanded width ``mid``, in that order (the
    order a space samples its options in): what the expanding types (ibn, fused) offer for each width."""
    from searchspace.architecture import Block

    out = []
    for k in choices.k:
        for ratio in choices.se:
            for act in choices.act:
                se = se_hidden(mid, ratio, divisor)
                out.append(
                    Block(
                        type=name,
                        cin=cin,
                        cout=cout,
                        stride=stride,
                        k=k,
                        mid=mid,
                        **fields,
                        se=se,
                        se_gate=choices.se_gate if se else None,
                        act=act,
                        residual=shortcut,
                    )
                )
    return out


def se_hidden(channels: int, ratio: float, divisor: int) -> int:
    """Width of the squeeze-excite bottleneck (0 when ratio is 0)."""
    return make_divisible(channels * ratio, divisor) if ratio > 0 else 0


def expanded(cin: int, t: float, divisor: int) -> int:
    """Expanded width for expansion ratio ``t`` (exactly ``cin`` when t == 1)."""
    return cin if t == 1 else make_divisible(cin * t, divisor)
