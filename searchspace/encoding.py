"""The short string form of an architecture.

One line of ``|``-separated parts, in the spirit of timm's block strings::

    r224_i3|conv_k3_s2_c32_relu6|ibn_k3_e1_c16_relu6|ibn_k3_s2_e6_c24_relu6|...|head_c1280_relu6_d0.2_n1000

Parts, in order:

- header ``r<resolution>_i<in channels>``.
- stem: a ``conv`` block.
- one block per layer: ``<type>`` (the registered block type's name) then
  tokens joined by ``_``; which tokens a type writes follows from its
  ``uses`` and ``expands`` (:class:`searchspace.blocks.BlockType`):

  ====================  ======================================================
  ``k<k>``              kernel size (types that use k: all but ``skip``)
  ``s2``                stride 2 (stride 1 is the default and not written)
  ``e<t>``              expansion ratio: ``mid = round(cin * t)`` (types that
                        expand, e.g. ibn, fused)
  ``m<mid>``            the expanded / compressed width written out, where
                        no short ratio reproduces it exactly (and for the
                        other types that use ``mid``, e.g. tucker)
  ``n<mid2>``           Tucker kxk output width
  ``g<groups>``         grouped 1x1 convs with channel shuffle (ibn)
  ``se<ratio>``         squeeze-excite, hidden = make_divisible(mid * ratio, 8)
  ``q<hidden>``         squeeze-excite hidden width written out
  ``sg``                SE gate is sigmoid (default: hard-sigmoid)
  ``c<cout>``           output channels
  ``relu`` ...          activation: relu, relu6, hswish, swish
  ``nr``                no shortcut although one is possible (stride 1,
                        cin == cout, a type with shortcuts); a shortcut is
                        the default wherever possible
  ====================  ======================================================

- head ``head[_c<conv>_<act>][_h<hidden>_<act>][_d<dropout>]_n<classes>``.

Examples: ``ibn_k5_s2_e6_se0.25_c40_hswish`` (MobileNet v3 style),
``fused_k3_e8_c16_relu6_nr`` (MobileDets), ``tucker_k3_m8_n24_c32_relu6``,
``skip_c24`` (identity), ``dsconv_k3_s2_c128_relu``.

``decode(encode(a)) == a`` holds for every valid architecture.
"""

from __future__ import annotations

import re

from searchspace.architecture import Architecture, Block, Head
from searchspace.blocks import block_type_names, get_block_type
from searchspace.channels import make_divisible
from searchspace.errors import ArchitectureError
from searchspace.validation import validate_model

ACTS = ("relu6", "relu", "hswish", "swish")
_NUM = r"(\d+(?:\.\d+)?)"


def _fmt(x: float) -> str:
    text = f"{x:.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _ratio_mid(cin: int, t: float) -> int:
    return int(cin * t + 0.5)


def _default_residual(block: Block) -> bool:
    return get_block_type(block.type).residual and block.stride == 1 and block.cin == block.cout


def encode_block(block: Block) -> str:
    tokens = [block.type]
    kind = get_block_type(block.type)
    if "k" in kind.uses:
        tokens.append(f"k{block.k}")
    if block.stride != 1:
        tokens.append(f"s{block.stride}")
    if kind.expands:
        t = _fmt(block.mid / block.cin)
        tokens.append(f"e{t}" if _ratio_mid(block.cin, float(t)) == block.mid else f"m{block.mid}")
    elif "mid" in kind.uses:
        tokens.append(f"m{block.mid}")
    if "mid2" in kind.uses:
        tokens.append(f"n{block.mid2}")
    if block.groups != 1:
        tokens.append(f"g{block.groups}")
    if block.se:
        for ratio in (0.25, 0.125, 0.5, block.se / block.mid):
            r = _fmt(ratio)
            if make_divisible(block.mid * float(r), 8) == block.se:
                tokens.append(f"se{r}")
                break
        else:
            tokens.append(f"q{block.se}")
        if block.se_gate == "sigmoid":
            tokens.append("sg")
    tokens.append(f"c{block.cout}")
    if block.act:
        tokens.append(block.act)
    if _default_residual(block) and not block.residual:
        tokens.append("nr")
    return "_".join(tokens)


def encode(arch: Architecture) -> str:
    parts = [f"r{arch.resolution}_i{arch.in_channels}", encode_block(arch.stem)]
    parts += [encode_block(b) for b in arch.blocks]
    parts.append(encode_head(arch.head))
    return "|".join(parts)


def encode_head(h: Head, dropout: bool = True) -> str:
    """``head_c1280_relu6_d0.2_n1000``; ``dropout=False`` leaves out what inference does not run."""
    head = ["head"]
    if h.conv:
        head += [f"c{h.conv}", str(h.act)]
    if h.hidden:
        head += [f"h{h.hidden}", str(h.hidden_act)]
    if h.dropout and dropout:
        head.append(f"d{_fmt(h.dropout)}")
    head.append(f"n{h.classes}")
    return "_".join(head)


_TOKEN = re.compile(r"^(k|s|e|m|n|g|se|q|c)" + _NUM + "$")


def decode_block(text: str, cin: int, where: str) -> Block:
    tokens = text.strip().split("_")
    btype = tokens[0]
    if btype not in block_type_names():
        raise ArchitectureError(
            f"{where}: unknown block type {btype!r} in {text!r}; expected one of {', '.join(block_type_names())}"
        )
    fields: dict[str, object] = {"type": btype, "cin": cin}
    ratio_t: float | None = None
    ratio_se: float | None = None
    no_residual = False
    gate = "hsigmoid"
    for tok in tokens[1:]:
        if tok in ACTS:
            fields["act"] = tok
            continue
        if tok == "nr":
            no_residual = True
            continue
        if tok == "sg":
            gate = "sigmoid"
            continue
        m = _TOKEN.match(tok)
        if not m:
            raise ArchitectureError(
                f"{where}: cannot read token {tok!r} in {text!r} "
                "(expected k<k>, s<stride>, e<t>, m<mid>, n<mid2>, g<groups>, se<ratio>, q<se>, sg, "
                f"c<cout>, an activation ({', '.join(ACTS)}) or nr)"
            )
        key, value = m.group(1), m.group(2)
        if key in ("e", "se"):
            if key == "e":
                ratio_t = float(value)
            else:
                ratio_se = float(value)
            continue
        if "." in value:
            raise ArchitectureError(f"{where}: token {tok!r} in {text!r} needs a whole number")
        name = {"k": "k", "s": "stride", "m": "mid", "n": "mid2", "g": "groups", "q": "se", "c": "cout"}[key]
        fields[name] = int(value)
    if "cout" not in fields:
        raise ArchitectureError(f"{where}: block {text!r} has no output channels (c<cout>)")
    if ratio_t is not None:
        fields["mid"] = _ratio_mid(cin, ratio_t)
    if ratio_se is not None:
        # mypy: fields is dict[str, object] parsed from the string form; int() validates
        mid = int(fields.get("mid", 0))  # type: ignore[call-overload]
        fields["se"] = make_divisible(mid * ratio_se, 8)
    if fields.get("se"):
        fields["se_gate"] = gate
    provisional = dict(fields)
    provisional.setdefault("stride", 1)
    kind = get_block_type(btype)
    fields["residual"] = kind.residual and provisional["stride"] == 1 and provisional["cout"] == cin and not no_residual
    return validate_model(Block, fields, ArchitectureError, f"invalid block {text!r}", root=where)


def decode(text: str) -> Architecture:
    if not isinstance(text, str) or "|" not in text:
        raise ArchitectureError(
            "an architecture string has '|'-separated parts, e.g. "
            "'r224_i3|conv_k3_s2_c32_relu6|ibn_k3_e1_c16_relu6|head_c1280_relu6_n1000'"
        )
    parts = [p.strip() for p in text.strip().split("|")]
    if len(parts) < 3:
        raise ArchitectureError("an architecture string needs a header, a stem and a head")
    m = re.fullmatch(r"r(\d+)_i(\d+)", parts[0])
    if not m:
        raise ArchitectureError(f"header: expected 'r<resolution>_i<in channels>', got {parts[0]!r}")
    resolution, in_ch = int(m.group(1)), int(m.group(2))
    stem = decode_block(parts[1], in_ch, "stem")
    blocks = []
    prev = stem.cout
    for i, part in enumerate(parts[2:-1]):
        block = decode_block(part, prev, f"blocks[{i}]")
        blocks.append(block)
        prev = block.cout
    head = decode_head(parts[-1])
    data = {"resolution": resolution, "in_channels": in_ch, "stem": stem, "blocks": tuple(blocks), "head": head}
    return validate_model(Architecture, data, ArchitectureError, "invalid architecture")


def decode_head(text: str) -> Head:
    tokens = text.split("_")
    if tokens[0] != "head":
        raise ArchitectureError(f"head: the last part must start with 'head', got {text!r}")
    fields: dict[str, object] = {}
    last: str | None = None
    for tok in tokens[1:]:
        if tok in ACTS:
            if last == "conv":
                fields["act"] = tok
            elif last == "hidden":
                fields["hidden_act"] = tok
            else:
                raise ArchitectureError(f"head: activation {tok!r} must follow c<conv> or h<hidden>")
            continue
        m = re.fullmatch(r"(c|h|d|n)" + _NUM, tok)
        if not m:
            raise ArchitectureError(
                f"head: cannot read token {tok!r} in {text!r} "
                "(expected c<conv>, h<hidden>, d<dropout>, n<classes>, activations)"
            )
        key, value = m.groups()
        if key == "d":
            fields["dropout"] = float(value)
        else:
            if "." in value:
                raise ArchitectureError(f"head: token {tok!r} needs a whole number")
            name = {"c": "conv", "h": "hidden", "n": "classes"}[key]
            fields[name] = int(value)
            last = name
    if "classes" not in fields:
        raise ArchitectureError(f"head: {text!r} has no number of classes (n<classes>)")
    return validate_model(Head, fields, ArchitectureError, f"invalid head {text!r}", root="head")
