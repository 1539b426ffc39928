"""A search space as Optuna parameters, in one pure function.

:func:`decide` walks a space's decisions in order (resolution, width
multiplier, stem, each stage's depth / width / stride, each existing layer's
op, head) and asks a ``choose(name, options)`` callback for each one that has
more than one option. The same walk serves three purposes:

- in a search, ``choose`` is ``trial.suggest_categorical`` (define-by-run:
  a layer a shallower stage does not have asks nothing, so it has no
  parameter, as Optuna's conditional spaces expect);
- to rebuild a stored trial's net, ``choose`` reads its params;
- :func:`distributions` lists every parameter that can occur, with its
  fixed option list.

Option lists never depend on earlier choices (Optuna forbids a categorical
whose choices change between trials): widths are asked as base widths and
scaled by the width multiplier afterwards, and a layer's op is asked as a
channel-free *template* (``ibn k=5 t=6 se=0.25 act=hswish``) that becomes a
block once the layer's channels are known. Where a template cannot be built
at those channels (grouped convs need divisible widths), the layer takes the
nearest op that can, deterministically, so params -> net is a function.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import get_block_type
from searchspace.channels import make_divisible
from searchspace.spec import LayerChoices, SearchSpace

Choice = str | int | float
Choose = Callable[[str, Sequence[Choice]], Choice]


def _fields(type_name: str) -> tuple[str, ...]:
    """The LayerChoices fields a type's ops vary over, in the order its template names list them."""
    return get_block_type(type_name).choice_fields


def _fmt(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def template_name(type_name: str, values: dict[str, Any]) -> str:
    return " ".join([type_name, *(f"{k}={_fmt(v)}" for k, v in values.items())])


@lru_cache(maxsize=4096)
def _templates(space: SearchSpace, stage: int, layer: int) -> dict[str, LayerChoices]:
    """Channel-free ops a layer position offers: name -> single-valued LayerChoices."""
    out: dict[str, LayerChoices] = {}
    for alt in space.choices_for(stage, layer):
        for type_name in alt.type:
            fields = _fields(type_name)
            for combo in itertools.product(*(getattr(alt, f) for f in fields)):
                values = dict(zip(fields, combo, strict=True))
                single = alt.model_copy(update={"type": (type_name,), **{f: (v,) for f, v in values.items()}})
                out.setdefault(template_name(type_name, values), single)
    return dict(sorted(out.items()))


def _block(space: SearchSpace, stage: int, layer: int, template: str, cin: int, cout: int, stride: int) -> Block:
    """The block a template becomes at these channels, or the nearest op the layer allows there."""
    allowed = space.layer_options(stage, layer, cin, cout, stride)
    choices = _templates(space, stage, layer)[template]
    type_name = choices.type[0]
    spec = space.stages[stage]
    shortcut = stride == 1 and cin == cout and (layer > 0 or spec.first_residual)
    built = get_block_type(type_name).options(choices, cin, cout, stride, shortcut, space.channel_divisor)
    if built and built[0] in allowed:
        return built[0]
    # not buildable here (e.g. groups do not divide the widths): the allowed op differing in fewest fields
    want = dict(
        zip(
            ("type", *_fields(type_name)),
            (type_name, *(getattr(choices, f)[0] for f in _fields(type_name))),
            strict=True,
        )
    )
    ideal = built[0] if built else None

    def distance(b: Block) -> tuple[int, int]:
        if ideal is not None:
            diff = sum(getattr(b, f) != getattr(ideal, f) for f in ("type", "k", "mid", "mid2", "groups", "se", "act"))
        else:
            diff = int(b.type != want["type"]) + sum(int(getattr(b, f) != want[f]) for f in ("k", "act") if f in want)
        return diff, allowed.index(b)

    return min(allowed, key=distance)


def decide(space: SearchSpace, choose: Choose) -> Architecture:
    """The architecture ``choose`` picks in ``space`` (see the module docstring)."""

    def pick(name: str, options: Sequence[Choice]) -> Any:
        return options[0] if len(options) == 1 else choose(name, list(options))

    resolution = pick("resolution", sorted(space.resolutions))
    alpha = pick("alpha", sorted(space.width_multipliers))

    def scale(c: int) -> int:
        return make_divisible(c * alpha, space.channel_divisor)

    stem_out = scale(pick("stem.channels", sorted(space.stem.channels)))
    stem = Block(
        type="conv",
        cin=space.in_channels,
        cout=stem_out,
        stride=space.stem.stride,
        k=space.stem.k,
        act=pick("stem.act", sorted(space.stem.act)),
    )
    blocks: list[Block] = []
    c = stem_out
    for i, stage in enumerate(space.stages):
        depth = pick(f"s{i}.depth", sorted(stage.depth))
        if depth == 0:
            continue
        cout = scale(pick(f"s{i}.channels", sorted(stage.channels)))
        stride = pick(f"s{i}.stride", sorted(stage.stride))
        for j in range(depth):
            template = pick(f"s{i}.l{j}.op", list(_templates(space, i, j)))
            blocks.append(_block(space, i, j, template, c, cout, stride if j == 0 else 1))
            c = cout
    conv = pick("head.conv", sorted(space.head.conv))
    hidden = pick("head.hidden", sorted(space.head.hidden))
    if space.head.scale_with_width:
        conv, hidden = (scale(conv) if conv else 0), (scale(hidden) if hidden else 0)
    head = Head(
        conv=conv,
        act=pick("head.act", sorted(space.head.act)) if conv and space.head.act else None,
        hidden=hidden,
        hidden_act=pick("head.hidden_act", sorted(space.head.hidden_act)) if hidden and space.head.hidden_act else None,
        dropout=space.head.dropout,
        classes=space.classes,
    )
    return Architecture(
        resolution=resolution, in_channels=space.in_channels, stem=stem, blocks=tuple(blocks), head=head
    )


def distributions(space: SearchSpace) -> dict[str, list[Choice]]:
    """Every parameter a net of ``space`` can have, with its options (a layer's only exist at some depths)."""
    out: dict[str, list[Choice]] = {}

    def add(name: str, options: Sequence[Choice]) -> None:
        if len(options) > 1:
            out[name] = list(options)

    add("resolution", sorted(space.resolutions))
    add("alpha", sorted(space.width_multipliers))
    add("stem.channels", sorted(space.stem.channels))
    add("stem.act", sorted(space.stem.act))
    for i, stage in enumerate(space.stages):
        add(f"s{i}.depth", sorted(stage.depth))
        add(f"s{i}.channels", sorted(stage.channels))
        add(f"s{i}.stride", sorted(stage.stride))
        for j in range(max(stage.depth)):
            add(f"s{i}.l{j}.op", list(_templates(space, i, j)))
    add("head.conv", sorted(space.head.conv))
    add("head.hidden", sorted(space.head.hidden))
    if space.head.act:
        add("head.act", sorted(space.head.act))
    if space.head.hidden_act:
        add("head.hidden_act", sorted(space.head.hidden_act))
    return out


def from_params(space: SearchSpace, params: dict[str, Any]) -> Architecture:
    """Rebuild the net a trial's params describe (a param the walk needs but ``params`` lacks is an error)."""

    def read(name: str, options: Sequence[Choice]) -> Choice:
        if name not in params:
            raise KeyError(f"params: missing {name!r} (options {list(options)})")
        if params[name] not in options:
            raise KeyError(f"params: {name}={params[name]!r} is not one of {list(options)}")
        return params[name]

    return decide(space, read)


def to_params(space: SearchSpace, arch: Architecture) -> dict[str, Choice] | None:
    """Params that :func:`decide` turns into exactly ``arch``, or None if there are none (e.g. not in the space).

    Used to seed a search with known nets. Stage depths are found by
    backtracking (neighbouring stages may share a width), and the answer is
    checked by decoding it again.
    """
    if space.explain(arch) is not None:
        return None
    alphas = sorted(space.width_multipliers)
    for alpha in alphas:
        params: dict[str, Choice] = {}
        if len(space.resolutions) > 1:
            params["resolution"] = arch.resolution
        if len(alphas) > 1:
            params["alpha"] = alpha
        found = _match(space, arch, params, alpha)
        if found is not None and from_params(space, found) == arch:
            return found
    return None


def _match(space: SearchSpace, arch: Architecture, params: dict[str, Choice], alpha: float) -> dict[str, Choice] | None:
    def scale(c: int) -> int:
        return make_divisible(c * alpha, space.channel_divisor)

    def head_base(options: tuple[int, ...], value: int) -> list[int]:
        return [v for v in sorted(options) if (scale(v) if space.head.scale_with_width and v else v) == value]

    stems = [c for c in sorted(space.stem.channels) if scale(c) == arch.stem.cout]
    convs, hiddens = head_base(space.head.conv, arch.head.conv), head_base(space.head.hidden, arch.head.hidden)
    if not stems or not convs or not hiddens:
        return None
    fixed: list[tuple[str, Sequence[Any], Any]] = [
        ("stem.channels", space.stem.channels, stems[0]),
        ("stem.act", space.stem.act, arch.stem.act),
        ("head.conv", space.head.conv, convs[0]),
        ("head.hidden", space.head.hidden, hiddens[0]),
        ("head.act", space.head.act or (), arch.head.act),
        ("head.hidden_act", space.head.hidden_act or (), arch.head.hidden_act),
    ]
    for name, options, value in fixed:
        if len(options) > 1 and value is not None:
            params[name] = value
    blocks = list(arch.blocks)

    def stages_from(i: int, pos: int, c: int) -> dict[str, Choice] | None:
        if i == len(space.stages):
            return {} if pos == len(blocks) else None
        stage = space.stages[i]
        for depth in sorted(stage.depth, reverse=True):
            got: dict[str, Choice] = {}
            if len(stage.depth) > 1:
                got[f"s{i}.depth"] = depth
            if depth == 0:
                rest = stages_from(i + 1, pos, c)
                if rest is not None:
                    return {**got, **rest}
                continue
            seg = blocks[pos : pos + depth]
            if len(seg) < depth or any(b.cout != seg[0].cout for b in seg) or seg[0].stride not in stage.stride:
                continue
            widths = [w for w in sorted(stage.channels) if scale(w) == seg[0].cout]
            if not widths:
                continue
            if len(stage.channels) > 1:
                got[f"s{i}.channels"] = widths[0]
            if len(stage.stride) > 1:
                got[f"s{i}.stride"] = seg[0].stride
            cin, ok = c, True
            for j, b in enumerate(seg):
                names = list(_templates(space, i, j))
                match = [t for t in names if _block(space, i, j, t, cin, b.cout, b.stride) == b]
                if not match:
                    ok = False
                    break
                if len(names) > 1:
                    got[f"s{i}.l{j}.op"] = match[0]
                cin = b.cout
            if not ok:
                continue
            rest = stages_from(i + 1, pos + depth, seg[-1].cout)
            if rest is not None:
                return {**got, **rest}
        return None

    found = stages_from(0, 0, arch.stem.cout)
    return None if found is None else {**params, **found}
