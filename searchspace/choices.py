"""Choices as a space file writes them: one value or a list of distinct values.

``Choices[int]`` is the type of every such field (``depth: 2`` and
``depth: [2, 3]`` both load as a tuple); :class:`ChoiceSpec` is a level of
layer choices as written, :class:`LayerChoices` the merged result for one
layer position (see :meth:`searchspace.spec.SearchSpace.choices_for`).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, field_validator

from searchspace.blocks import block_type_names
from searchspace.ops import ActName, GateName

__all__ = ["ChoiceSpec", "Choices", "LayerChoices"]

T = TypeVar("T")

STRICT = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


def _distinct(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("must offer at least one choice")
    if len(set(values)) != len(values):
        raise ValueError(f"choices must not repeat, got {list(values)}")
    return values


#: a single value or a list of distinct values, loaded as a non-empty tuple
Choices = Annotated[tuple[T, ...], BeforeValidator(_one_or_many), AfterValidator(_distinct)]


class ChoiceSpec(BaseModel):
    """Layer choices as written in a file; unset fields inherit from the level above."""

    model_config = STRICT

    type: Choices[str] | None = None
    t: Choices[float] | None = None
    k: Choices[int] | None = None
    se: Choices[float] | None = None
    act: Choices[ActName] | None = None
    tucker_in: Choices[float] | None = None
    tucker_out: Choices[float] | None = None
    groups: Choices[int] | None = None

    @field_validator("type")
    @classmethod
    def _types(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for name in value or ():
            if name not in block_type_names():
                raise ValueError(f"unknown block type {name!r}; expected one of {', '.join(block_type_names())}")
        return value

    @field_validator("t")
    @classmethod
    def _t(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        for t in value or ():
            if not 1 <= t <= 16:
                raise ValueError(f"expansion ratio t must be between 1 and 16, got {t}")
        return value

    @field_validator("k")
    @classmethod
    def _k(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        for k in value or ():
            if k not in (1, 3, 5, 7, 9, 11):
                raise ValueError(f"kernel size must be one of 1, 3, 5, 7, 9, 11, got {k}")
        return value

    @field_validator("se")
    @classmethod
    def _se(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        for r in value or ():
            if not 0 <= r <= 1:
                raise ValueError(f"squeeze-excite ratio must be in [0, 1] (0 = no SE), got {r}")
        return value

    @field_validator("tucker_in", "tucker_out")
    @classmethod
    def _ratio(cls, value: tuple[float, ...] | None) -> tuple[float, ...] | None:
        for r in value or ():
            if not 0 < r <= 4:
                raise ValueError(f"Tucker ratio must be in (0, 4], got {r}")
        return value

    @field_validator("groups")
    @classmethod
    def _groups(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        for g in value or ():
            if not 1 <= g <= 16:
                raise ValueError(f"groups must be between 1 and 16, got {g}")
        return value


class LayerChoices(BaseModel):
    """Fully resolved choices for one layer position."""

    model_config = STRICT

    type: tuple[str, ...]
    t: tuple[float, ...] = (6.0,)
    k: tuple[int, ...] = (3,)
    se: tuple[float, ...] = (0.0,)
    act: tuple[ActName, ...]
    tucker_in: tuple[float, ...] = (0.25,)
    tucker_out: tuple[float, ...] = (0.75,)
    groups: tuple[int, ...] = (1,)
    se_gate: GateName = "hsigmoid"
