"""Architecture: one fully concrete net, the object that crosses every layer.

It is pure data (no torch). Widths are stored as integers, never as ratios,
so that every known net (torchvision's MobileNet v3 expands 24 -> 88, t=3.67)
is exact and the canonical JSON holds no float that could print differently
on another machine. ``arch_id`` hashes the canonical JSON.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from searchspace.blocks import block_type_names, get_block_type
from searchspace.errors import ArchitectureError
from searchspace.ops import ActName, GateName, conv_out_size
from searchspace.validation import validate_model

ARCH_FORMAT = "hwnas.architecture"
ARCH_VERSION = 1


class Block(BaseModel):
    """One layer of a net. Fields a type does not use stay at their neutral value.

    ``mid`` is the expanded width (ibn, fused; == cin for an ibn without
    expansion) or the compressed width (tucker); ``mid2`` the Tucker kxk
    output; ``se`` the squeeze-excite hidden width (0 = no SE).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    cin: int = Field(ge=1, le=16384)
    cout: int = Field(ge=1, le=16384)
    stride: Literal[1, 2] = 1
    k: int = Field(default=1, ge=1, le=11)
    mid: int = Field(default=0, ge=0, le=65536)
    mid2: int = Field(default=0, ge=0, le=65536)
    groups: int = Field(default=1, ge=1, le=64)
    se: int = Field(default=0, ge=0, le=65536)
    se_gate: GateName | None = None
    act: ActName | None = None
    residual: bool = False

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in block_type_names():
            raise ValueError(f"unknown block type {value!r}; expected one of {', '.join(block_type_names())}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Block:
        problems = get_block_type(self.type).check(self)
        if self.se and self.se_gate is None:
            problems.append("se_gate: a block with squeeze-excite needs se_gate 'sigmoid' or 'hsigmoid'")
        if not self.se and self.se_gate is not None:
            problems.append("se_gate: only blocks with squeeze-excite (se > 0) take se_gate")
        if problems:
            raise ValueError("\n".join(problems))
        return self

    @property
    def t(self) -> float:
        """Expansion ratio mid / cin for types that expand (ibn, fused); 0 for the others."""
        return self.mid / self.cin if get_block_type(self.type).expands else 0.0

    @property
    def se_ratio(self) -> float:
        return self.se / self.mid if self.se and self.mid else 0.0

    @property
    def is_identity(self) -> bool:
        return get_block_type(self.type).is_identity(self)


class Head(BaseModel):
    """Optional 1x1 conv (BN, act), global average pool, optional hidden linear
    with activation (MobileNet v3), dropout, classifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conv: int = Field(default=0, ge=0, le=16384)
    act: ActName | None = None
    hidden: int = Field(default=0, ge=0, le=16384)
    hidden_act: ActName | None = None
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)
    classes: int = Field(ge=1, le=100000)

    @model_validator(mode="after")
    def _consistent(self) -> Head:
        problems = []
        if self.conv and self.act is None:
            problems.append("act: a head conv needs an activation")
        if not self.conv and self.act is not None:
            problems.append("act: only given with a head conv (conv > 0)")
        if self.hidden and self.hidden_act is None:
            problems.append("hidden_act: a hidden linear layer needs an activation")
        if not self.hidden and self.hidden_act is not None:
            problems.append("hidden_act: only given with a hidden layer (hidden > 0)")
        if problems:
            raise ValueError("\n".join(problems))
        return self


class Architecture(BaseModel):
    """A concrete net: input, stem conv, blocks, head. See module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["hwnas.architecture"] = "hwnas.architecture"
    version: int = ARCH_VERSION
    resolution: int = Field(ge=8, le=4096)
    in_channels: int = Field(default=3, ge=1, le=64)
    stem: Block
    blocks: tuple[Block, ...]
    head: Head

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value != ARCH_VERSION:
            hint = (
                "it was written by a newer hwnas; upgrade hwnas to read it"
                if value > ARCH_VERSION
                else "re-export it with this hwnas"
            )
            raise ValueError(
                f"architecture format version {value} is not supported (this hwnas reads {ARCH_VERSION}); {hint}"
            )
        return value

    @model_validator(mode="after")
    def _chain(self) -> Architecture:
        problems = []
        if self.stem.type != "conv":
            problems.append(f"stem.type: the stem must be a 'conv' block, got {self.stem.type!r}")
        if self.stem.cin != self.in_channels:
            problems.append(f"stem.cin: must equal in_channels={self.in_channels}, got {self.stem.cin}")
        if self.stem.residual:
            problems.append("stem.residual: the stem has no shortcut")
        prev = self.stem.cout
        for i, block in enumerate(self.blocks):
            if block.cin != prev:
                problems.append(
                    f"blocks[{i}].cin: must equal the previous layer's output channels {prev}, got {block.cin}"
                )
            prev = block.cout
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # ----------------------------------------------------------------- reading
    @classmethod
    def from_dict(cls, data: Any) -> Architecture:
        if not isinstance(data, dict):
            raise ArchitectureError(f"an architecture must be a JSON object, got {type(data).__name__}")
        fmt = data.get("format", ARCH_FORMAT)
        if fmt != ARCH_FORMAT:
            raise ArchitectureError(f"format: expected {ARCH_FORMAT!r}, got {fmt!r} (is this an architecture file?)")
        return validate_model(cls, data, ArchitectureError, "invalid architecture")

    @classmethod
    def from_json(cls, text: str | bytes) -> Architecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ArchitectureError(f"not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Architecture:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ArchitectureError(f"cannot read architecture file {path}: {exc.strerror}") from None
        try:
            return cls.from_json(text)
        except ArchitectureError as exc:
            raise ArchitectureError(f"{path}: {exc}") from None

    @classmethod
    def decode(cls, text: str) -> Architecture:
        """Parse the string form (grammar in :mod:`searchspace.encoding`)."""
        from searchspace.encoding import decode

        return decode(text)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Architecture:
        """A validated copy with ``update`` applied (and its own, fresh ``arch_id``).

        Pydantic's copy would skip validation and carry over the cached id.
        """
        data: dict[str, Any] = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(update or {})
        return validate_model(type(self), data, ArchitectureError, "invalid architecture")

    # ----------------------------------------------------------------- writing
    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_json(self, indent: int | None = None) -> str:
        """Canonical JSON (sorted keys, no spaces) unless ``indent`` is given."""
        if indent is None:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json(indent=2) + "\n", encoding="utf-8")

    def encode(self) -> str:
        """The short string form (grammar in :mod:`searchspace.encoding`)."""
        from searchspace.encoding import encode

        return encode(self)

    @cached_property
    def arch_id(self) -> str:
        """First 16 hex digits of the SHA-256 of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()[:16]

    # ----------------------------------------------------------------- shapes
    def layers(self) -> list[tuple[str, Block, int]]:
        """(name, block, input spatial size) for the stem and every block."""
        size = self.resolution
        out = [("stem", self.stem, size)]
        size = conv_out_size(size, self.stem.k, self.stem.stride)
        for i, block in enumerate(self.blocks):
            out.append((f"blocks.{i}", block, size))
            size = conv_out_size(size, block.k, block.stride)
        return out

    @property
    def final_size(self) -> int:
        size = conv_out_size(self.resolution, self.stem.k, self.stem.stride)
        for block in self.blocks:
            size = conv_out_size(size, block.k, block.stride)
        return size

    @property
    def features(self) -> int:
        """Channels entering the pooling (after the head conv if any)."""
        return self.head.conv or (self.blocks[-1].cout if self.blocks else self.stem.cout)

    def __str__(self) -> str:
        return self.encode()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Architecture):
            return NotImplemented
        return self.to_json() == other.to_json()
