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
from collections import defaultdict
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import block_type_names, get_block_type
from searchspace.channels import make_divisible
from searchspace.errors import SpecError, UnknownNameError
from searchspace.ops import ActName, GateName
from searchspace.validation import validate_model

SPACE_VERSION = 1
_STRICT = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    return value if isinstance(value, list | tuple) else [value]


def _unique(values: tuple[Any, ...]) -> tuple[Any, ...]:
    if not values:
        raise ValueError("must offer at least one choice")
    if len(set(values)) != len(values):
        raise ValueError(f"choices must not repeat, got {list(values)}")
    return values


class ChoiceSpec(BaseModel):
    """Layer choices as written in a file; unset fields inherit from the level above."""

    model_config = _STRICT

    type: tuple[str, ...] | None = None
    t: tuple[float, ...] | None = None
    k: tuple[int, ...] | None = None
    se: tuple[float, ...] | None = None
    act: tuple[ActName, ...] | None = None
    tucker_in: tuple[float, ...] | None = None
    tucker_out: tuple[float, ...] | None = None
    groups: tuple[int, ...] | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return None if value is None else _as_list(value)

    @field_validator("*", mode="after")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        return None if value is None else _unique(value)

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

    model_config = _STRICT

    type: tuple[str, ...]
    t: tuple[float, ...] = (6.0,)
    k: tuple[int, ...] = (3,)
    se: tuple[float, ...] = (0.0,)
    act: tuple[ActName, ...]
    tucker_in: tuple[float, ...] = (0.25,)
    tucker_out: tuple[float, ...] = (0.75,)
    groups: tuple[int, ...] = (1,)
    se_gate: GateName = "hsigmoid"


class StemSpec(BaseModel):
    model_config = _STRICT

    channels: tuple[int, ...]
    k: int = 3
    stride: Literal[1, 2] = 2
    act: tuple[ActName, ...]

    @field_validator("channels", "act", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("channels", "act")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        return _unique(value)

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
    model_config = _STRICT

    channels: tuple[int, ...]
    stride: tuple[Literal[1, 2], ...] = (1,)
    depth: tuple[int, ...]
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

    @field_validator("channels", "stride", "depth", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("channels", "stride", "depth")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        return _unique(value)

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
    model_config = _STRICT

    conv: tuple[int, ...] = (0,)
    act: tuple[ActName, ...] | None = None
    hidden: tuple[int, ...] = (0,)
    hidden_act: tuple[ActName, ...] | None = None
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    scale_with_width: bool = False

    @field_validator("conv", "hidden", "act", "hidden_act", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return None if value is None else _as_list(value)

    @field_validator("conv", "hidden")
    @classmethod
    def _widths(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        _unique(value)
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

    model_config = _STRICT

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)
    version: int = SPACE_VERSION
    description: str = ""
    resolutions: tuple[int, ...]
    default_resolution: int | None = None
    in_channels: int = Field(default=3, ge=1, le=64)
    classes: int = Field(ge=1, le=100000)
    width_multipliers: tuple[float, ...] = (1.0,)
    channel_divisor: int = Field(default=8, ge=1, le=64)
    se_gate: GateName = "hsigmoid"
    stem: StemSpec
    defaults: ChoiceSpec
    stages: tuple[StageSpec, ...] = Field(min_length=1, max_length=32)
    head: HeadSpec

    _cache: dict[Any, Any] = PrivateAttr(default_factory=dict)

    @field_validator("resolutions", "width_multipliers", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return _as_list(value)

    @field_validator("resolutions", "width_multipliers")
    @classmethod
    def _nonempty(cls, value: Any) -> Any:
        return _unique(value)

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
        return self._cache[key]  # type: ignore[no-any-return]

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
        return self._cache[key]  # type: ignore[no-any-return]

    def _scale(self, channels: int, alpha: float) -> int:
        return make_divisible(channels * alpha, self.channel_divisor)

    def _head_widths(self, values: tuple[int, ...], alpha: float) -> set[int]:
        if not self.head.scale_with_width:
            return set(values)
        return {self._scale(v, alpha) if v else 0 for v in values}

    # ---------------------------------------------------------------- sampling
    def sample(self, rng: random.Random | int | None = None) -> Architecture:
        """A random architecture of this space (each choice uniform at its level)."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        alpha = rng.choice(self.width_multipliers)
        cin = self.in_channels
        stem_out = self._scale(rng.choice(self.stem.channels), alpha)
        stem = Block(
            type="conv", cin=cin, cout=stem_out, stride=self.stem.stride, k=self.stem.k,
            act=rng.choice(self.stem.act),
        )
        blocks: list[Block] = []
        c = stem_out
        for i, stage in enumerate(self.stages):
            depth = rng.choice(stage.depth)
            if depth == 0:
                continue
            cout = self._scale(rng.choice(stage.channels), alpha)
            stride = rng.choice(stage.stride)
            for j in range(depth):
                options = self.layer_options(i, j, c, cout, stride if j == 0 else 1)
                blocks.append(rng.choice(options))
                c = cout
        conv = rng.choice(sorted(self._head_widths(self.head.conv, alpha)))
        hidden = rng.choice(sorted(self._head_widths(self.head.hidden, alpha)))
        head = Head(
            conv=conv, act=rng.choice(self.head.act) if conv and self.head.act else None,
            hidden=hidden, hidden_act=rng.choice(self.head.hidden_act) if hidden and self.head.hidden_act else None,
            dropout=self.head.dropout, classes=self.classes,
        )
        return Architecture(
            resolution=rng.choice(self.resolutions), in_channels=self.in_channels, stem=stem,
            blocks=tuple(blocks), head=head,
        )

    # ----------------------------------------------------------- membership
    def contains(self, arch: Architecture) -> bool:
        return self.explain(arch) is None

    def explain(self, arch: Architecture) -> str | None:
        """None if ``arch`` lies in this space, else the first reason it does not."""
        if arch.resolution not in self.resolutions:
            return f"resolution {arch.resolution} is not one of {list(self.resolutions)}"
        if arch.in_channels != self.in_channels:
            return f"in_channels {arch.in_channels} != {self.in_channels}"
        if arch.head.classes != self.classes:
            return f"classes {arch.head.classes} != {self.classes}"
        s = arch.stem
        if (s.k, s.stride) != (self.stem.k, self.stem.stride) or s.act not in self.stem.act:
            return f"stem {s.k}x{s.k}/s{s.stride} {s.act} does not match the space's stem"
        reasons: list[str] = []
        for alpha in self.width_multipliers:
            if s.cout not in {self._scale(c, alpha) for c in self.stem.channels}:
                reasons.append(f"alpha={alpha}: stem width {s.cout} is not a choice")
                continue
            why = self._match(arch, alpha, 0, 0)
            if why is None:
                return None
            reasons.append(f"alpha={alpha}: {why}")
        return "; ".join(reasons)

    def _match(self, arch: Architecture, alpha: float, stage: int, pos: int) -> str | None:
        blocks = arch.blocks
        if stage == len(self.stages):
            if pos != len(blocks):
                return f"{len(blocks) - pos} blocks left over after the last stage"
            return self._match_head(arch.head, alpha)
        spec = self.stages[stage]
        widths = {self._scale(c, alpha) for c in spec.channels}
        why = f"stages[{stage}] does not match at blocks[{pos}]"
        for depth in spec.depth:
            if depth == 0:
                sub = self._match(arch, alpha, stage + 1, pos)
            elif pos + depth > len(blocks):
                continue
            else:
                sub = self._match_stage(blocks[pos : pos + depth], stage, widths, spec)
                if sub is None:
                    sub = self._match(arch, alpha, stage + 1, pos + depth)
            if sub is None:
                return None
            why = sub
        return why

    def _match_stage(self, run: tuple[Block, ...], stage: int, widths: set[int], spec: StageSpec) -> str | None:
        cout = run[0].cout
        if cout not in widths:
            return f"stages[{stage}]: width {cout} is not one of {sorted(widths)}"
        if run[0].stride not in spec.stride:
            return f"stages[{stage}]: stride {run[0].stride} is not one of {list(spec.stride)}"
        for j, block in enumerate(run):
            stride = run[0].stride if j == 0 else 1
            if block.cout != cout or block.stride != stride:
                return f"stages[{stage}].layers[{j}]: shape differs from the stage's"
            if block not in self.layer_options(stage, j, block.cin, cout, stride):
                return f"stages[{stage}].layers[{j}]: {block.type} block is not among the layer's choices"
        return None

    def _match_head(self, head: Head, alpha: float) -> str | None:
        h = self.head
        if head.conv not in self._head_widths(h.conv, alpha):
            return f"head conv width {head.conv} is not a choice"
        if head.conv and head.act not in (h.act or ()):
            return f"head activation {head.act} is not a choice"
        if head.hidden not in self._head_widths(h.hidden, alpha):
            return f"head hidden width {head.hidden} is not a choice"
        if head.hidden and head.hidden_act not in (h.hidden_act or ()):
            return f"head hidden activation {head.hidden_act} is not a choice"
        if head.dropout != h.dropout:
            return f"head dropout {head.dropout} != {h.dropout}"
        return None

    # ------------------------------------------------------------- counting
    def cardinality(self) -> int:
        """The exact number of distinct architectures in the space.

        Dynamic programming over stages. The state is (current width, set of
        width multipliers that could have produced every width so far), so a
        net that two multipliers both produce is counted once, and a stage of
        depth 0 does not multiply by its unused width choices.
        """
        if "cardinality" in self._cache:
            return self._cache["cardinality"]  # type: ignore[no-any-return]
        alphas = self.width_multipliers
        state: dict[tuple[int, frozenset[float]], int] = defaultdict(int)
        for width in {self._scale(c, a) for c in self.stem.channels for a in alphas}:
            ok = frozenset(a for a in alphas if width in {self._scale(c, a) for c in self.stem.channels})
            state[(width, ok)] += len(self.stem.act)
        for i, spec in enumerate(self.stages):
            nxt: dict[tuple[int, frozenset[float]], int] = defaultdict(int)
            for (cin, ok), weight in state.items():
                for depth in spec.depth:
                    if depth == 0:
                        nxt[(cin, ok)] += weight
                        continue
                    for width in {self._scale(c, a) for c in spec.channels for a in ok}:
                        still = frozenset(a for a in ok if width in {self._scale(c, a) for c in spec.channels})
                        inner = 1
                        for j in range(1, depth):
                            inner *= len(self.layer_options(i, j, width, width, 1))
                        first = sum(len(self.layer_options(i, 0, cin, width, s)) for s in spec.stride)
                        nxt[(width, still)] += weight * first * inner
            state = nxt
        total = 0
        for (_cin, ok), weight in state.items():
            heads: set[tuple[int, int]] = set()
            for a in ok:
                convs, hiddens = self._head_widths(self.head.conv, a), self._head_widths(self.head.hidden, a)
                heads |= {(c, h) for c in convs for h in hiddens}
            n_heads = sum(
                (len(self.head.act or ()) if c else 1) * (len(self.head.hidden_act or ()) if h else 1) for c, h in heads
            )
            total += weight * n_heads
        total *= len(self.resolutions)
        self._cache["cardinality"] = total
        return total

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
