"""Named reference architectures, exact to their published definitions.

Sources (tables transcribed by hand; no code was copied):

- ``mobilenet_v1``: Howard et al. 2017, Table 1 (3x3 s2 stem to 32, 13
  depthwise-separable layers, average pool, linear 1024 -> classes).
- ``mobilenet_v2``: torchvision ``mobilenet_v2`` (Sandler et al. 2018, Table 2;
  expanded width = round(cin * t)).
- ``mobilenet_v3_large`` / ``_small``: torchvision ``mobilenet_v3_*``
  (Howard et al. 2019, Tables 1-2): explicit expanded widths, SE hidden =
  make_divisible(expanded / 4, 8) with ReLU and hard-sigmoid, head 1x1 conv to
  6x the last block, then linear 1280 (large) / 1024 (small) with h-swish.
- ``mnasnet_b1`` / ``mnasnet_b1_0.5``: torchvision ``mnasnet1_0`` /
  ``mnasnet0_5`` (Tan et al. 2019): stem conv, a depthwise-separable layer
  with no final activation (an ``ibn`` with t=1), six stacks of inverted
  residuals, 1x1 conv to 1280.
- ``mobiledet_cpu`` / ``_dsp`` / ``_edgetpu``: the classification backbones of
  MobileDets (Xiong et al. 2021) as released in the TensorFlow Object
  Detection API's SSD MobileDet feature extractors (the block sequences of
  ``ssd_mobiledet_feature_extractor.py``'s ``mobiledet_*_backbone``
  functions), plus a 1x1 conv to 1280 with BN and the backbone's
  activation, global pooling and a linear classifier.
"""

from __future__ import annotations

from collections.abc import Callable

from searchspace.architecture import Architecture, Block, Head
from searchspace.channels import make_divisible
from searchspace.errors import UnknownNameError
from searchspace.ops import ActName, GateName


class _Chain:
    """Tracks the running channel count while a net is written down."""

    def __init__(self, stem: int, act: ActName, in_channels: int = 3, resolution: int = 224) -> None:
        self.resolution = resolution
        self.in_channels = in_channels
        self.stem = Block(type="conv", cin=in_channels, cout=stem, stride=2, k=3, act=act)
        self.blocks: list[Block] = []
        self.c = stem

    def _add(self, **fields: object) -> _Chain:
        block = Block(cin=self.c, **fields)
        self.blocks.append(block)
        self.c = block.cout
        return self

    @staticmethod
    def _res(cin: int, cout: int, s: int, nr: bool) -> bool:
        return s == 1 and cin == cout and not nr

    def ibn(
        self,
        cout: int,
        *,
        t: float | None = None,
        mid: int | None = None,
        k: int = 3,
        s: int = 1,
        se: float = 0.0,
        act: ActName,
        gate: GateName = "hsigmoid",
        nr: bool = False,
    ) -> _Chain:
        width = mid if mid is not None else int(round(self.c * (t or 1)))
        hidden = make_divisible(width * se, 8) if se else 0
        return self._add(
            type="ibn",
            cout=cout,
            stride=s,
            k=k,
            mid=width,
            se=hidden,
            se_gate=gate if hidden else None,
            act=act,
            residual=self._res(self.c, cout, s, nr),
        )

    def fused(self, cout: int, *, t: float, k: int = 3, s: int = 1, act: ActName, nr: bool = False) -> _Chain:
        return self._add(
            type="fused",
            cout=cout,
            stride=s,
            k=k,
            mid=int(self.c * t),
            act=act,
            residual=self._res(self.c, cout, s, nr),
        )

    def tucker(
        self,
        cout: int,
        *,
        r_in: float,
        r_out: float,
        k: int = 3,
        s: int = 1,
        act: ActName,
        nr: bool = False,
    ) -> _Chain:
        return self._add(
            type="tucker",
            cout=cout,
            stride=s,
            k=k,
            mid=_round_half_up8(self.c * r_in),
            mid2=_round_half_up8(cout * r_out),
            act=act,
            residual=self._res(self.c, cout, s, nr),
        )

    def dsconv(self, cout: int, *, s: int = 1, act: ActName) -> _Chain:
        return self._add(type="dsconv", cout=cout, stride=s, k=3, act=act)

    def build(self, head: Head) -> Architecture:
        return Architecture(
            resolution=self.resolution,
            in_channels=self.in_channels,
            stem=self.stem,
            blocks=tuple(self.blocks),
            head=head,
        )


def _round_half_up8(value: float) -> int:
    """MobileDets' channel rounding: nearest multiple of 8, ties up, at least 8."""
    return max(8, int(value / 8 + 0.5) * 8)


def mobilenet_v1(classes: int = 1000) -> Architecture:
    n = _Chain(32, "relu")
    plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
    for cout, s in plan:
        n.dsconv(cout, s=s, act="relu")
    return n.build(Head(dropout=0.001, classes=classes))


def mobilenet_v2(classes: int = 1000) -> Architecture:
    n = _Chain(32, "relu6")
    # (t, channels, repeats, first stride), Sandler et al. Table 2
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    for t, c, reps, s in settings:
        for i in range(reps):
            n.ibn(c, t=t, s=s if i == 0 else 1, act="relu6")
    return n.build(Head(conv=1280, act="relu6", dropout=0.2, classes=classes))


# (kernel, expanded, out, SE, activation, stride) as in torchvision's tables
_V3_LARGE = [
    (3, 16, 16, False, "relu", 1),
    (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1),
    (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1),
    (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hswish", 2),
    (3, 200, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 184, 80, False, "hswish", 1),
    (3, 480, 112, True, "hswish", 1),
    (3, 672, 112, True, "hswish", 1),
    (5, 672, 160, True, "hswish", 2),
    (5, 960, 160, True, "hswish", 1),
    (5, 960, 160, True, "hswish", 1),
]
_V3_SMALL = [
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
    (5, 288, 96, True, "hswish", 2),
    (5, 576, 96, True, "hswish", 1),
    (5, 576, 96, True, "hswish", 1),
]


def _mobilenet_v3(table: list[tuple[int, int, int, bool, str, int]], hidden: int, classes: int) -> Architecture:
    n = _Chain(16, "hswish")
    for k, mid, cout, se, act, s in table:
        # mypy: act comes from the net's table as str; Block validates it against the Literal
        n.ibn(cout, mid=mid, k=k, s=s, se=0.25 if se else 0.0, act=act, gate="hsigmoid")  # type: ignore[arg-type]
    return n.build(Head(conv=6 * n.c, act="hswish", hidden=hidden, hidden_act="hswish", dropout=0.2, classes=classes))


def mobilenet_v3_large(classes: int = 1000) -> Architecture:
    return _mobilenet_v3(_V3_LARGE, 1280, classes)


def mobilenet_v3_small(classes: int = 1000) -> Architecture:
    return _mobilenet_v3(_V3_SMALL, 1024, classes)


def _mnasnet(alpha: float, classes: int) -> Architecture:
    d = [make_divisible(c * alpha, 8) for c in (32, 16, 24, 40, 80, 96, 192, 320)]
    n = _Chain(d[0], "relu")
    n.ibn(d[1], t=1, act="relu")
    stacks = [
        (d[2], 3, 2, 3, 3),
        (d[3], 5, 2, 3, 3),
        (d[4], 5, 2, 6, 3),
        (d[5], 3, 1, 6, 2),
        (d[6], 5, 2, 6, 4),
        (d[7], 3, 1, 6, 1),
    ]
    for cout, k, s, t, reps in stacks:
        for i in range(reps):
            n.ibn(cout, t=t, k=k, s=s if i == 0 else 1, act="relu")
    return n.build(Head(conv=1280, act="relu", dropout=0.2, classes=classes))


def mnasnet_b1(classes: int = 1000) -> Architecture:
    return _mnasnet(1.0, classes)


def mnasnet_b1_05(classes: int = 1000) -> Architecture:
    return _mnasnet(0.5, classes)


def mobiledet_cpu(classes: int = 1000) -> Architecture:
    a: ActName = "hswish"
    n = _Chain(16, a)
    # (cout, t, k, stride, no-residual) per block; every block has SE with a sigmoid gate
    plan = (
        [(8, 1, 3, 1, False), (16, 4, 3, 2, False), (32, 8, 3, 2, False)]
        + [(32, 4, 3, 1, False)] * 3
        + [(72, 8, 5, 2, False), (72, 8, 3, 1, False), (72, 4, 5, 1, False), (72, 4, 3, 1, False)]
        + [(72, 8, 3, 1, True)]
        + [(72, 8, 3, 1, False)] * 3
        + [(104, 8, 5, 2, False), (104, 4, 5, 1, False), (104, 4, 5, 1, False), (104, 4, 3, 1, False)]
        + [(144, 8, 3, 1, True)]
    )
    for cout, t, k, s, nr in plan:
        n.ibn(cout, t=t, k=k, s=s, se=0.25, act=a, gate="sigmoid", nr=nr)
    return n.build(Head(conv=1280, act=a, dropout=0.2, classes=classes))


def mobiledet_dsp(classes: int = 1000) -> Architecture:
    a: ActName = "relu6"
    n = _Chain(32, a)
    n.ibn(24, t=1, act=a)
    n.fused(32, t=4, s=2, act=a).fused(32, t=4, act=a).ibn(32, t=4, act=a).tucker(32, r_in=0.25, r_out=0.75, act=a)
    n.fused(64, t=8, s=2, act=a).ibn(64, t=4, act=a).fused(64, t=4, act=a).fused(64, t=4, act=a)
    n.fused(120, t=8, s=2, act=a).ibn(120, t=4, act=a).ibn(120, t=8, act=a).ibn(120, t=8, act=a)
    n.fused(144, t=8, act=a, nr=True).ibn(144, t=8, act=a).ibn(144, t=8, act=a).ibn(144, t=8, act=a)
    n.ibn(160, t=4, s=2, act=a).ibn(160, t=4, act=a).fused(160, t=4, act=a).tucker(160, r_in=0.75, r_out=0.75, act=a)
    n.ibn(240, t=8, act=a, nr=True)
    return n.build(Head(conv=1280, act=a, dropout=0.2, classes=classes))


def mobiledet_edgetpu(classes: int = 1000) -> Architecture:
    a: ActName = "relu6"
    n = _Chain(32, a)
    n.tucker(16, r_in=0.25, r_out=0.75, act=a, nr=True)
    n.fused(16, t=8, s=2, act=a).fused(16, t=4, act=a).fused(16, t=8, act=a).fused(16, t=4, act=a)
    n.fused(40, t=8, k=5, s=2, act=a).fused(40, t=4, act=a).fused(40, t=4, act=a).fused(40, t=4, act=a)
    n.ibn(72, t=8, s=2, act=a).ibn(72, t=8, act=a).fused(72, t=4, act=a).fused(72, t=4, act=a)
    n.ibn(96, t=8, k=5, act=a, nr=True).ibn(96, t=8, k=5, act=a).ibn(96, t=8, act=a).ibn(96, t=8, act=a)
    n.ibn(120, t=8, k=5, s=2, act=a).ibn(120, t=8, act=a).ibn(120, t=4, k=5, act=a).ibn(120, t=8, act=a)
    n.ibn(384, t=8, k=5, act=a, nr=True)
    return n.build(Head(conv=1280, act=a, dropout=0.2, classes=classes))


KNOWN: dict[str, Callable[[int], Architecture]] = {
    "mobilenet_v1": mobilenet_v1,
    "mobilenet_v2": mobilenet_v2,
    "mobilenet_v3_large": mobilenet_v3_large,
    "mobilenet_v3_small": mobilenet_v3_small,
    "mnasnet_b1": mnasnet_b1,
    "mnasnet_b1_0.5": mnasnet_b1_05,
    "mobiledet_cpu": mobiledet_cpu,
    "mobiledet_dsp": mobiledet_dsp,
    "mobiledet_edgetpu": mobiledet_edgetpu,
}


def known_architectures() -> dict[str, Architecture]:
    """Every named reference net at 224x224 with 1000 classes."""
    return {name: make(1000) for name, make in KNOWN.items()}


def known_architecture(name: str, classes: int = 1000) -> Architecture:
    try:
        make = KNOWN[name]
    except KeyError:
        raise UnknownNameError(f"unknown architecture name {name!r}; known nets: {', '.join(KNOWN)}") from None
    return make(classes)
