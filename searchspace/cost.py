"""Analytic cost of an architecture: params, MACs, peak activation memory.

Counted from the same op lists the builder uses, without torch. Definitions
(the tests hold the built model to them):

- ``params``: trainable parameters (conv weights and biases, BN weight and
  bias, linear weight and bias), i.e. ``sum(p.numel() for p in model.parameters())``.
- ``macs``: multiply-accumulates of every conv and linear layer at batch 1
  (SE convs included; BN, activations, pooling, the SE multiply and residual
  adds are not MACs).
- ``activations``: peak number of activation elements alive at batch 1 when
  the net runs layer by layer: for each conv or linear layer, its input plus
  its output plus the tensors kept for later (a residual block's input; the
  feature map an SE gate will multiply). ``activation_bytes`` is that times
  4 (fp32).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import get_block_type
from searchspace.ops import BatchNorm, Conv, SqueezeExcite, conv_out_size


@dataclass(frozen=True)
class LayerCost:
    name: str
    block: Block | None
    input_size: int
    output_size: int
    params: int
    macs: int
    activations: int


@dataclass(frozen=True)
class Cost:
    params: int
    macs: int
    activations: int
    layers: tuple[LayerCost, ...] = field(default=(), compare=False, repr=False)

    @property
    def activation_bytes(self) -> int:
        return self.activations * 4

    def as_dict(self) -> dict[str, int]:
        return {"params": self.params, "macs": self.macs, "activations": self.activations}


@lru_cache(maxsize=1 << 16)
def block_cost(block: Block, size: int) -> tuple[int, int, int, int]:
    """(params, macs, peak activations, output size) of one block at input ``size``."""
    params = macs = peak = 0
    c, s = block.cin, size
    kept = block.cin * size * size if block.residual else 0
    first = True  # the first layer reads the block input itself: nothing extra is kept
    for op in get_block_type(block.type).ops(block):
        if isinstance(op, Conv):
            out = conv_out_size(s, op.k, op.stride)
            params += op.k * op.k * (op.cin // op.groups) * op.cout + (op.cout if op.bias else 0)
            macs += op.k * op.k * (op.cin // op.groups) * op.cout * out * out
            peak = max(peak, c * s * s + op.cout * out * out + (0 if first else kept))
            c, s, first = op.cout, out, False
        elif isinstance(op, BatchNorm):
            params += 2 * op.channels
        elif isinstance(op, SqueezeExcite):
            params += 2 * op.channels * op.hidden + op.hidden + op.channels
            macs += 2 * op.channels * op.hidden
            # both SE convs run on pooled vectors while the feature map waits for the gate
            peak = max(peak, op.channels * s * s + op.channels + op.hidden + kept)
    return params, macs, peak, s


def head_cost(h: Head, chans: int, size: int) -> tuple[int, int, int]:
    """(params, macs, peak activations) of the head on a ``chans x size x size`` input."""
    p = m = a = 0
    if h.conv:
        p += chans * h.conv + 2 * h.conv
        m += chans * h.conv * size * size
        a = max(a, chans * size * size + h.conv * size * size)
        chans = h.conv
    feats = chans
    if h.hidden:
        p += feats * h.hidden + h.hidden
        m += feats * h.hidden
        a = max(a, feats + h.hidden)
        feats = h.hidden
    p += feats * h.classes + h.classes
    m += feats * h.classes
    a = max(a, feats + h.classes)
    return p, m, a


def count_cost(arch: Architecture) -> Cost:
    """Params, MACs and peak activations of ``arch`` (see module docstring)."""
    layers = []
    for name, block, size in arch.layers():
        p, m, a, out = block_cost(block, size)
        layers.append(LayerCost(name, block, size, out, p, m, a))
    size = arch.final_size
    chans = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
    p, m, a = head_cost(arch.head, chans, size)
    layers.append(LayerCost("head", None, size, 1, p, m, a))
    return Cost(
        params=sum(lc.params for lc in layers),
        macs=sum(lc.macs for lc in layers),
        activations=max(lc.activations for lc in layers),
        layers=tuple(layers),
    )
