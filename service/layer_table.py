"""The per-layer table of an architecture: the rows ``hwnas describe`` prints and the model card shows.

One row per layer (stem, blocks, head) with the columns layer, type, channels,
stride, k, t, SE, act, size, params, MACs, activations. The two readers differ
only in what the SE column holds and in how much the head row says, so both
are options here rather than two copies of the loop.
"""

from __future__ import annotations

from typing import Literal

from searchspace.architecture import Architecture
from searchspace.blocks import get_block_type
from searchspace.cost import LayerCost, count_cost

__all__ = ["layer_rows"]


def layer_rows(
    arch: Architecture, *, se: Literal["ratio", "hidden"] = "ratio", full_head: bool = False
) -> list[tuple[LayerCost, list[object]]]:
    """Each layer's cost and its table row (12 cells, numbers as text with thousands separators).

    ``se``: the SE column shows the squeeze ratio (``0.25``) or the hidden width
    (``16``); empty without SE. ``full_head``: the head row also names the
    classifier (``fc 10``) and its activation; otherwise its act cell is empty.
    """
    rows: list[tuple[LayerCost, list[object]]] = []
    for lc in count_cost(arch).layers:
        b = lc.block
        if b is None:
            h = arch.head
            desc = "pool" + (f", conv1x1 {h.conv}" if h.conv else "") + (f", fc {h.hidden}" if h.hidden else "")
            if full_head:
                desc += f", fc {h.classes}"
            act = (h.act or "") if full_head else ""
            cells: list[object] = [lc.name, "head", desc, "", "", "", "", act, f"{lc.input_size}->1"]
        else:
            kind = get_block_type(b.type)
            se_cell: object = (f"{b.se_ratio:g}" if se == "ratio" else b.se) if b.se else ""
            cells = [
                lc.name,
                b.type,
                f"{b.cin}->{b.cout}",
                b.stride,
                b.k if "k" in kind.uses else "",
                f"{b.t:.3g}" if kind.expands else "",
                se_cell,
                b.act or "",
                f"{lc.input_size}->{lc.output_size}",
            ]
        rows.append((lc, [*cells, f"{lc.params:,}", f"{lc.macs:,}", f"{lc.activations:,}"]))
    return rows
