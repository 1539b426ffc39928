"""The architectures a space holds: draw one, test one, count them.

:class:`~searchspace.spec.SearchSpace` keeps thin methods (``sample``,
``contains``, ``explain``, ``cardinality``) that call these; the space's
per-position block options (``layer_options``) are what all three walk.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import TYPE_CHECKING

from searchspace.architecture import Architecture, Block, Head
from searchspace.channels import make_divisible

if TYPE_CHECKING:
    from searchspace.spec import SearchSpace, StageSpec

__all__ = ["count_architectures", "explain_membership", "sample_architecture"]


def _width(space: SearchSpace, channels: int, alpha: float) -> int:
    return make_divisible(channels * alpha, space.channel_divisor)


def _head_widths(space: SearchSpace, values: tuple[int, ...], alpha: float) -> set[int]:
    if not space.head.scale_with_width:
        return set(values)
    return {_width(space, v, alpha) if v else 0 for v in values}


# -------------------------------------------------------------------- sampling
def sample_architecture(space: SearchSpace, rng: random.Random | int | None = None) -> Architecture:
    """A random architecture of ``space`` (each choice uniform at its level)."""
    if not isinstance(rng, random.Random):
        rng = random.Random(rng)
    alpha = rng.choice(space.width_multipliers)
    cin = space.in_channels
    stem_out = _width(space, rng.choice(space.stem.channels), alpha)
    stem = Block(
        type="conv",
        cin=cin,
        cout=stem_out,
        stride=space.stem.stride,
        k=space.stem.k,
        act=rng.choice(space.stem.act),
    )
    blocks: list[Block] = []
    c = stem_out
    for i, stage in enumerate(space.stages):
        depth = rng.choice(stage.depth)
        if depth == 0:
            continue
        cout = _width(space, rng.choice(stage.channels), alpha)
        stride = rng.choice(stage.stride)
        for j in range(depth):
            options = space.layer_options(i, j, c, cout, stride if j == 0 else 1)
            blocks.append(rng.choice(options))
            c = cout
    h = space.head
    conv = rng.choice(sorted(_head_widths(space, h.conv, alpha)))
    hidden = rng.choice(sorted(_head_widths(space, h.hidden, alpha)))
    head = Head(
        conv=conv,
        act=rng.choice(h.act) if conv and h.act else None,
        hidden=hidden,
        hidden_act=rng.choice(h.hidden_act) if hidden and h.hidden_act else None,
        dropout=h.dropout,
        classes=space.classes,
    )
    return Architecture(
        resolution=rng.choice(space.resolutions),
        in_channels=space.in_channels,
        stem=stem,
        blocks=tuple(blocks),
        head=head,
    )


# ------------------------------------------------------------------ membership
def explain_membership(space: SearchSpace, arch: Architecture) -> str | None:
    """None if ``arch`` lies in ``space``, else the first reason it does not."""
    if arch.resolution not in space.resolutions:
        return f"resolution {arch.resolution} is not one of {list(space.resolutions)}"
    if arch.in_channels != space.in_channels:
        return f"in_channels {arch.in_channels} != {space.in_channels}"
    if arch.head.classes != space.classes:
        return f"classes {arch.head.classes} != {space.classes}"
    s = arch.stem
    if (s.k, s.stride) != (space.stem.k, space.stem.stride) or s.act not in space.stem.act:
        return f"stem {s.k}x{s.k}/s{s.stride} {s.act} does not match the space's stem"
    reasons: list[str] = []
    for alpha in space.width_multipliers:
        if s.cout not in {_width(space, c, alpha) for c in space.stem.channels}:
            reasons.append(f"alpha={alpha}: stem width {s.cout} is not a choice")
            continue
        why = _match(space, arch, alpha, 0, 0)
        if why is None:
            return None
        reasons.append(f"alpha={alpha}: {why}")
    return "; ".join(reasons)


def _match(space: SearchSpace, arch: Architecture, alpha: float, stage: int, pos: int) -> str | None:
    """Whether ``arch.blocks[pos:]`` and its head fit ``space.stages[stage:]`` (tries every depth)."""
    blocks = arch.blocks
    if stage == len(space.stages):
        if pos != len(blocks):
            return f"{len(blocks) - pos} blocks left over after the last stage"
        return _match_head(space, arch.head, alpha)
    spec = space.stages[stage]
    widths = {_width(space, c, alpha) for c in spec.channels}
    why = f"stages[{stage}] does not match at blocks[{pos}]"
    for depth in spec.depth:
        if depth == 0:
            sub = _match(space, arch, alpha, stage + 1, pos)
        elif pos + depth > len(blocks):
            continue
        else:
            sub = _match_stage(space, blocks[pos : pos + depth], stage, widths, spec)
            if sub is None:
                sub = _match(space, arch, alpha, stage + 1, pos + depth)
        if sub is None:
            return None
        why = sub
    return why


def _match_stage(
    space: SearchSpace, run: tuple[Block, ...], stage: int, widths: set[int], spec: StageSpec
) -> str | None:
    cout = run[0].cout
    if cout not in widths:
        return f"stages[{stage}]: width {cout} is not one of {sorted(widths)}"
    if run[0].stride not in spec.stride:
        return f"stages[{stage}]: stride {run[0].stride} is not one of {list(spec.stride)}"
    for j, block in enumerate(run):
        stride = run[0].stride if j == 0 else 1
        if block.cout != cout or block.stride != stride:
            return f"stages[{stage}].layers[{j}]: shape differs from the stage's"
        if block not in space.layer_options(stage, j, block.cin, cout, stride):
            return f"stages[{stage}].layers[{j}]: {block.type} block is not among the layer's choices"
    return None


def _match_head(space: SearchSpace, head: Head, alpha: float) -> str | None:
    h = space.head
    if head.conv not in _head_widths(space, h.conv, alpha):
        return f"head conv width {head.conv} is not a choice"
    if head.conv and head.act not in (h.act or ()):
        return f"head activation {head.act} is not a choice"
    if head.hidden not in _head_widths(space, h.hidden, alpha):
        return f"head hidden width {head.hidden} is not a choice"
    if head.hidden and head.hidden_act not in (h.hidden_act or ()):
        return f"head hidden activation {head.hidden_act} is not a choice"
    if head.dropout != h.dropout:
        return f"head dropout {head.dropout} != {h.dropout}"
    return None


# -------------------------------------------------------------------- counting
def count_architectures(space: SearchSpace) -> int:
    """The exact number of distinct architectures in ``space``.

    Dynamic programming over stages. The state is (current width, set of
    width multipliers that could have produced every width so far), so a
    net that two multipliers both produce is counted once, and a stage of
    depth 0 does not multiply by its unused width choices.
    """
    alphas = space.width_multipliers
    stem_widths = space.stem.channels
    state: dict[tuple[int, frozenset[float]], int] = defaultdict(int)
    for width in {_width(space, c, a) for c in stem_widths for a in alphas}:
        ok = frozenset(a for a in alphas if width in {_width(space, c, a) for c in stem_widths})
        state[(width, ok)] += len(space.stem.act)
    for i, spec in enumerate(space.stages):
        nxt: dict[tuple[int, frozenset[float]], int] = defaultdict(int)
        for (cin, ok), weight in state.items():
            for depth in spec.depth:
                if depth == 0:
                    nxt[(cin, ok)] += weight
                    continue
                for width in {_width(space, c, a) for c in spec.channels for a in ok}:
                    still = frozenset(a for a in ok if width in {_width(space, c, a) for c in spec.channels})
                    inner = 1
                    for j in range(1, depth):
                        inner *= len(space.layer_options(i, j, width, width, 1))
                    first = sum(len(space.layer_options(i, 0, cin, width, s)) for s in spec.stride)
                    nxt[(width, still)] += weight * first * inner
        state = nxt
    h = space.head
    total = 0
    for (_cin, ok), weight in state.items():
        heads: set[tuple[int, int]] = set()
        for a in ok:
            heads |= {(c, n) for c in _head_widths(space, h.conv, a) for n in _head_widths(space, h.hidden, a)}
        n_heads = sum((len(h.act or ()) if c else 1) * (len(h.hidden_act or ()) if n else 1) for c, n in heads)
        total += weight * n_heads
    return total * len(space.resolutions)
