"""Layer signatures: the keys of a latency table.

A key names one layer exactly as it runs at inference: its input size and
channels, then the block in the architecture string form, e.g.
``112x16:ibn_k3_s2_e6_c24_relu6`` or ``7x320:head_c1280_relu6_n1000`` (the
head without dropout, which inference does not run). Keys parse back into
the layer (:func:`parse_key`), so a table, a device kit or a missing-entry
message carries everything needed to measure the layer again.
"""

from __future__ import annotations

from dataclasses import dataclass

from latency_tables.errors import LatencyTableError
from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import get_block_type
from searchspace.channels import make_divisible
from searchspace.encoding import decode_block, decode_head, encode_block, encode_head
from searchspace.errors import ArchitectureError
from searchspace.ops import ActName, conv_out_size
from searchspace.spec import SearchSpace


@dataclass(frozen=True)
class Layer:
    """One measurable layer: a block (stem included) or the head, with its input."""

    key: str
    size: int
    cin: int
    block: Block | None = None
    head: Head | None = None

    @property
    def kind(self) -> str:
        """The block type's calibration kind, or 'head' (what calibration groups by; callers mark stems)."""
        return "head" if self.block is None else get_block_type(self.block.type).calibration_kind

    @property
    def is_identity(self) -> bool:
        return self.block is not None and self.block.is_identity


def block_key(block: Block, size: int) -> str:
    return f"{size}x{block.cin}:{encode_block(block)}"


def head_key(head: Head, channels: int, size: int) -> str:
    return f"{size}x{channels}:{encode_head(head, dropout=False)}"


def parse_key(key: str) -> Layer:
    """The layer a key names (raises LatencyTableError for a malformed key)."""
    try:
        shape, token = key.split(":", 1)
        size_text, cin_text = shape.split("x", 1)
        size, cin = int(size_text), int(cin_text)
        if token.startswith("head"):
            return Layer(key, size, cin, head=decode_head(token))
        return Layer(key, size, cin, block=decode_block(token, cin, "layer"))
    except (ValueError, ArchitectureError) as exc:
        raise LatencyTableError(
            f"{key!r} is not a layer key (expected '<size>x<cin>:<block>', e.g. '112x16:ibn_k3_s2_e6_c24_relu6'): {exc}"
        ) from None


def arch_layers(arch: Architecture) -> list[tuple[str, Layer]]:
    """(layer name, layer) for the stem, every block and the head, in order (identity skips included)."""
    out = []
    for name, block, size in arch.layers():
        out.append((name, Layer(block_key(block, size), size, block.cin, block=block)))
    channels = arch.blocks[-1].cout if arch.blocks else arch.stem.cout
    size = arch.final_size
    out.append(("head", Layer(head_key(arch.head, channels, size), size, channels, head=arch.head)))
    return out


def arch_keys(arch: Architecture) -> list[str]:
    """Keys of the layers that cost time (identity skips cost nothing and have no key)."""
    return [layer.key for _, layer in arch_layers(arch) if not layer.is_identity]


def space_layers(space: SearchSpace, resolution: int | None = None) -> dict[str, Layer]:
    """Every distinct layer any architecture of ``space`` can contain at ``resolution``.

    Walks the stages with the set of (channels, size) states reachable so far,
    so it is exact and fast (thousands of layers, not the space's 10^20 nets).
    """
    res = resolution or space.resolution
    if res not in space.resolutions:
        raise LatencyTableError(f"resolution {res} is not one of space {space.name}'s {list(space.resolutions)}")
    layers: dict[str, Layer] = {}
    d = space.channel_divisor
    for alpha in space.width_multipliers:
        stem_size = conv_out_size(res, space.stem.k, space.stem.stride)
        states: set[tuple[int, int]] = set()
        for c in space.stem.channels:
            width = make_divisible(c * alpha, d)
            for act in space.stem.act:
                stem = Block(
                    type="conv", cin=space.in_channels, cout=width, stride=space.stem.stride, k=space.stem.k, act=act
                )
                key = block_key(stem, res)
                layers.setdefault(key, Layer(key, res, space.in_channels, block=stem))
            states.add((width, stem_size))
        for i, stage in enumerate(space.stages):
            nxt: set[tuple[int, int]] = set()
            for cin, size in states:
                for depth in stage.depth:
                    if depth == 0:
                        nxt.add((cin, size))
                        continue
                    for ch in stage.channels:
                        width = make_divisible(ch * alpha, d)
                        for stride in stage.stride:
                            c, s = cin, size
                            for j in range(depth):
                                st = stride if j == 0 else 1
                                for block in space.layer_options(i, j, c, width, st):
                                    if not block.is_identity:
                                        key = block_key(block, s)
                                        layers.setdefault(key, Layer(key, s, c, block=block))
                                c, s = width, conv_out_size(s, 3, st)
                            nxt.add((width, s))
            states = nxt
        h = space.head
        for channels, size in states:
            for conv in h.conv:
                for hidden in h.hidden:
                    conv_w = make_divisible(conv * alpha, d) if conv and h.scale_with_width else conv
                    hid_w = make_divisible(hidden * alpha, d) if hidden and h.scale_with_width else hidden
                    acts: tuple[ActName | None, ...] = (h.act or (None,)) if conv_w else (None,)
                    hidden_acts: tuple[ActName | None, ...] = (h.hidden_act or (None,)) if hid_w else (None,)
                    for head_act in acts:
                        for hact in hidden_acts:
                            head = Head(conv=conv_w, act=head_act, hidden=hid_w, hidden_act=hact, classes=space.classes)
                            key = head_key(head, channels, size)
                            layers.setdefault(key, Layer(key, size, channels, head=head))
    return layers
