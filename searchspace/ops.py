"""Pure descriptions of the layers a block is made of.

A block type turns a concrete :class:`~searchspace.architecture.Block` into a
list of these ops. The same list is what :mod:`searchspace.model` builds into
torch modules and what :mod:`searchspace.cost` counts, so the analytic cost
and the built model cannot drift apart silently (tests compare both with
torch's own parameter count and a forward-hook MAC count).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ActName = Literal["relu", "relu6", "hswish", "swish"]
GateName = Literal["sigmoid", "hsigmoid"]


def conv_out_size(size: int, kernel: int, stride: int) -> int:
    """Spatial output size of a conv with 'same' padding ``kernel // 2``."""
    pad = kernel // 2
    return (size + 2 * pad - kernel) // stride + 1


@dataclass(frozen=True)
class Conv:
    name: str
    cin: int
    cout: int
    k: int = 1
    stride: int = 1
    groups: int = 1
    bias: bool = False


@dataclass(frozen=True)
class BatchNorm:
    name: str
    channels: int


@dataclass(frozen=True)
class Act:
    name: str
    kind: ActName


@dataclass(frozen=True)
class SqueezeExcite:
    """Global pool, 1x1 conv to ``hidden`` (bias), ReLU, 1x1 conv back (bias), gate."""

    name: str
    channels: int
    hidden: int
    gate: GateName


@dataclass(frozen=True)
class ChannelShuffle:
    name: str
    groups: int


Op = Conv | BatchNorm | Act | SqueezeExcite | ChannelShuffle
