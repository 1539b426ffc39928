"""SearchSpace: what a net can be, as data (YAML or JSON), never code.

A space file looks like this (every key is checked; unknown keys are errors)::

    name: mobilenetv2
    version: 1
    resolutions: [224]            # input sizes to choose from
    in_channels: 3
    classes: 1000
    width_multipliers: [1.0]      # alpha: channels -> make_divisible(c * alpha, divisor)
    channel_divisor: 8
    se_gate: hsigmoid             # gate of every squeeze-excite: sigmoid | hsigmoid
    stem: {channels: 32, k: 3, stride: 2, act: relu6}
    defaults:                     # layer choices, overridable per stage and per layer
      type: [ibn]
      t: [3, 6]
      k: [3, 5, 7]
      act: [relu6]
    stages:
      - {channels: 16, stride: 1, depth: 1, choices: {t: [1], k: [3]}}
      - channels: 24              # base width (a list = a choice)
        stride: 2                 # stride of the first layer (a list = a choice)
        depth: [2, 3, 4]          # 0 allowed: the stage may vanish
        layers:                   # per-layer overrides, by position
          - {type: [ibn]}         # e.g. no 'skip' in a stage's first layer
    head: {conv: 1280, act: relu6, dropout: 0.2}

Any value written as a list is a choice; a single value is the only choice.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, PrivateAttr, field_validator, model_validator

from searchspace.architecture import Architecture, Block
from searchspace.blocks import get_block_type
from searchspace.choices import STRICT, Choices, ChoiceSpec, LayerChoices
from searchspace.errors import SpecError, UnknownNameError
from searchspace.members import count_architectures, explain_membership, sample_architecture
from searchspace.ops import ActName, GateName
from searchspace.validation import validate_model

__all__ = [
    "SPACE_VERSION",
    "ChoiceSpec",
    "HeadSpec",
    "LayerChoices",
    "SearchSpace",
    "StageSpec",
    "StemSpec",
    "list_spaces",
    "load_space",
]

SPACE_VERSION = 1


class StemSpec(BaseModel):
    model_config = STRICT

    channels: Choices[int]
    k: int = 3
    stride: Literal[1, 2] = 2
    act: Choices[ActName]

    @field_validator("channels")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 1 for c in value):
            raise ValueError(f"channels must be >= 1, got {list(value)}")
        return value

    @field_validator("k")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value < 1 or value % 2 == 0:
            raise ValueError(f"kernel size must be odd and positive, got {value}")
        return value


class StageSpec(BaseModel):
    model_config = STRICT

    channels: Choices[int]
    stride: Choices[Literal[1, 2]] = (1,)
    depth: Choices[int]
    first_residual: bool = True
    #: alternatives whose options are unioned (a single mapping is one alternative)
    choices: tuple[ChoiceSpec, ...] = (ChoiceSpec(),)
    layers: tuple[tuple[ChoiceSpec, ...], ...] = ()

    @field_validator("choices", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @field_validator("layers", mode="before")
    @classmethod
    def _layers_one_or_many(cls, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return [[item] if isinstance(item, dict) else item for item in value]
        return value

    @field_validator("choices")
    @classmethod
    def _some(cls, value: tuple[ChoiceSpec, ...]) -> tuple[ChoiceSpec, ...]:
        if not value:
            raise ValueError("must offer at least one alternative (a mapping, or a list of mappings)")
        return value

    @field_validator("layers")
    @classmethod
    def _some_each(cls, value: tuple[tuple[ChoiceSpec, ...], ...]) -> tuple[tuple[ChoiceSpec, ...], ...]:
        for i, alts in enumerate(value):
            if not alts:
                raise ValueError(f"layers[{i}] must offer at least one alternative")
        return value

    @field_validator("channels")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= c <= 8192 for c in value):
            raise ValueError(f"channels must be between 1 and 8192, got {list(value)}")
        return value

    @field_validator("depth")
    @classmethod
    def _depth(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= d <= 32 for d in value):
            raise ValueError(f"depth must be between 0 and 32, got {list(value)}")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _layers_fit(self) -> StageSpec:
        if len(self.layers) > max(self.depth):
            raise ValueError(
                f"layers: {len(self.layers)} per-layer entries but the stage has at most {max(self.depth)} layers"
            )
        return self


class HeadSpec(BaseModel):
    model_config = STRICT

    conv: Choices[int] = (0,)
    act: Choices[ActName] | None = None  # a repeated choice would count every net twice
    hidden: Choices[int] = (0,)
    hidden_act: Choices[ActName] | None = None
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    scale_with_width: bool = False

    @field_validator("conv", "hidden")
    @classmethod
    def _widths(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(c < 0 for c in value):
            raise ValueError(f"widths must be >= 0 (0 = none), got {list(value)}")
        return value

    @model_validator(mode="after")
    def _acts(self) -> HeadSpec:
        if any(self.conv) and not self.act:
            raise ValueError("act: a head conv needs its activation choices")
        if any(self.hidden) and not self.hidden_act:
            raise ValueError("hidden_act: a hidden linear layer needs its activation choices")
        return self


class SearchSpace(BaseModel):
    """A search space; see the module docstring for the file format."""

    model_config = STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)
    version: int = SPACE_VERSION
    description: str = ""
    resolutions: Choices[int]
    default_resolution: int | None = None
    in_channels: int = Field(default=3, ge=1, le=64)
    classes: int = Field(ge=1, le=100000)
    width_multipliers: Choices[float] = (1.0,)
    channel_divisor: int = Field(default=8, ge=1, le=64)
    se_gate: GateName = "hsigmoid"
    stem: StemSpec
    defaults: ChoiceSpec
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=32)
    head: HeadSpec

    _cache: dict[Any, Any] = PrivateAttr(default_factory=dict)

    @field_validator("resolutions")
    @classmethod
    def _res(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 8 <= r <= 4096 for r in value):
            raise ValueError(f"resolutions must be between 8 and 4096, got {list(value)}")
        return value

    @field_validator("width_multipliers")
    @classmethod
    def _alpha(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < a <= 4 for a in value):
            raise ValueError(f"width multipliers must be in (0, 4], got {list(value)}")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: int) -> int:
        if value != SPACE_VERSION:
            raise ValueError(
                f"space format version {value} is not supported (this hwnas reads {SPACE_VERSION}); "
                + ("upgrade hwnas" if value > SPACE_VERSION else "rewrite the file for version 1")
            )
        return value

    @model_validator(mode="after")
    def _check(self) -> SearchSpace:
        if self.default_resolution is not None and self.default_resolution not in self.resolutions:
            raise ValueError(
                f"default_resolution: must be one of resolutions {list(self.resolutions)}, "
                f"got {self.default_resolution}"
            )
        if self.defaults.type is None:
            raise ValueError("defaults.type: the space must name its default block types, e.g. [ibn]")
        if self.defaults.act is None:
            raise ValueError("defaults.act: the space must name its default activations, e.g. [relu6]")
        if all(0 in s.depth for s in self.stages):
            raise ValueError("stages: at least one stage must have a depth that cannot be 0")
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> SearchSpace:
        """A copy with a fresh cache (cached options and sizes belong to the original)."""
        copy = super().model_copy(update=update, deep=deep)
        copy._cache = {}
        return copy

    def __eq__(self, other: object) -> bool:
        """Equal specs are equal spaces, whatever each has cached."""
        if not isinstance(other, SearchSpace):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    def __hash__(self) -> int:
        return hash(self.model_dump_json())

    # ------------------------------------------------------------------ basics
    @property
    def resolution(self) -> int:
        """The default input size (the largest unless ``default_resolution`` says otherwise)."""
        return self.default_resolution or max(self.resolutions)

    def choices_for(self, stage: int, layer: int) -> tuple[LayerChoices, ...]:
        """The resolved alternatives for one layer position.

        Levels (space defaults, stage choices, per-layer entry) are merged field
        by field, the lower level winning. A level written as a list is a union
        of alternatives (FBNet's ops are one: g2 only with t=1), so the result
        is one LayerChoices per combination of alternatives.
        """
        key = ("choices", stage, layer)
        if key not in self._cache:
            spec = self.stages[stage]
            levels: list[tuple[ChoiceSpec, ...]] = [(self.defaults,), spec.choices]
            if layer < len(spec.layers):
                levels.append(spec.layers[layer])
            merged_all: list[dict[str, Any]] = [{"se_gate": self.se_gate}]
            for level in levels:
                merged_all = [
                    {**m, **{k: v for k, v in alt.model_dump().items() if v is not None}}
                    for m in merged_all
                    for alt in level
                ]
            self._cache[key] = tuple(LayerChoices(**m) for m in merged_all)
        return self._cache[key]

    def layer_options(self, stage: int, layer: int, cin: int, cout: int, stride: int) -> tuple[Block, ...]:
        """Every distinct concrete block the space allows at this position."""
        key = ("options", stage, layer, cin, cout, stride)
        if key not in self._cache:
            spec = self.stages[stage]
            shortcut = stride == 1 and cin == cout and (layer > 0 or spec.first_residual)
            seen: dict[Block, None] = {}
            for choices in self.choices_for(stage, layer):
                for name in choices.type:
                    for block in get_block_type(name).options(
                        choices, cin, cout, stride, shortcut, self.channel_divisor
                    ):
                        seen.setdefault(block, None)
            if not seen:
                raise SpecError(
                    f"stages[{stage}].layers[{layer}]: no valid block for cin={cin}, cout={cout}, "
                    f"stride={stride} (check groups against the channel counts)"
                )
            self._cache[key] = tuple(seen)
        return self._cache[key]

    # ---------------------------------------------- members (searchspace.members)
    def sample(self, rng: random.Random | int | None = None) -> Architecture:
        """A random architecture of this space (each choice uniform at its level)."""
        return sample_architecture(self, rng)

    def contains(self, arch: Architecture) -> bool:
        return self.explain(arch) is None

    def explain(self, arch: Architecture) -> str | None:
        """None if ``arch`` lies in this space, else the first reason it does not."""
        return explain_membership(self, arch)

    def cardinality(self) -> int:
        """The exact number of distinct architectures in the space (computed once)."""
        if "cardinality" not in self._cache:
            self._cache["cardinality"] = count_architectures(self)
        return self._cache["cardinality"]

    # ------------------------------------------------------------ io helpers
    @classmethod
    def from_dict(cls, data: Any, source: str = "space") -> SearchSpace:
        if not isinstance(data, dict):
            raise SpecError(f"{source}: a space must be a mapping of keys to values, got {type(data).__name__}")
        return validate_model(cls, data, SpecError, f"invalid search space ({source})")

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _space_files() -> dict[str, Any]:
    folder = resources.files("searchspace") / "spaces"
    return {p.name.removesuffix(".yaml"): p for p in folder.iterdir() if p.name.endswith(".yaml")}


def list_spaces() -> list[str]:
    """Names of the built-in spaces."""
    return sorted(_space_files())


def _parse_text(text: str, source: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{source}: not valid YAML/JSON{where}: {getattr(exc, 'problem', exc)}") from None


@lru_cache(maxsize=64)
def _load_builtin(name: str) -> SearchSpace:
    path = _space_files()[name]
    return SearchSpace.from_dict(_parse_text(path.read_text(encoding="utf-8"), f"built-in space {name}"), name)


def load_space(name_or_path: str | Path | dict[str, Any]) -> SearchSpace:
    """A built-in space by name, a YAML/JSON file, or an inline spec (a dict)."""
    if isinstance(name_or_path, dict):
        return SearchSpace.from_dict(name_or_path, "inline spec")
    ref = str(name_or_path)
    if ref in _space_files():
        return _load_builtin(ref)
    path = Path(ref)
    if path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists():
        if not path.is_file():
            raise SpecError(f"space file {ref} does not exist")
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SpecError(f"cannot read space file {ref}: {exc.strerror}") from None
        return SearchSpace.from_dict(_parse_text(text, ref), ref)
    raise UnknownNameError(
        f"unknown search space {ref!r}; built-in spaces: {', '.join(list_spaces())} (or give a .yaml/.json path)"
    )
