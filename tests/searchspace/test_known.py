"""The named reference nets: exact sizes, published MACs, stable ids, membership of their spaces."""

from __future__ import annotations

import re

import pytest
import torch

from searchspace import Architecture, count_cost, known_architecture, known_architectures, load_space
from searchspace.errors import UnknownNameError
from searchspace.model import build_model

KNOWN = known_architectures()

# torchvision's parameter counts (mobilenet_v1: the paper's 4.2M, with BN)
PARAMS = {
    "mobilenet_v2": 3_504_872,
    "mobilenet_v3_large": 5_483_032,
    "mobilenet_v3_small": 2_542_856,
    "mnasnet_b1": 4_383_312,
    "mnasnet_b1_0.5": 2_218_512,
    "mobilenet_v1": 4_231_976,
}

# multiply-adds at 224x224 as published (papers / torchvision docs)
PUBLISHED_MACS = {
    "mobilenet_v2": 300e6,
    "mobilenet_v3_large": 217e6,
    "mobilenet_v3_small": 57e6,
    "mnasnet_b1": 314e6,
    "mobilenet_v1": 569e6,
}

# arch_id of every known net, computed once: a change here means the canonical
# JSON (field names, defaults, number formatting) or a known net changed, which
# invalidates every stored id (latency tables, search results, caches).
GOLDEN_IDS = {
    "mobilenet_v1": "8f8bf3c3c56d6350",
    "mobilenet_v2": "a451a0d3e487425f",
    "mobilenet_v3_large": "2404c4dee2b46a1e",
    "mobilenet_v3_small": "664f12c33777c91b",
    "mnasnet_b1": "dfd1c42db57f67ec",
    "mnasnet_b1_0.5": "8893114cf37c6acc",
    "mobiledet_cpu": "b62da94333db2294",
    "mobiledet_dsp": "ac9e6b29df9bdd68",
    "mobiledet_edgetpu": "4eacdc7c07230a23",
}

IN_SPACE = [
    ("mobilenet_v2", "mobilenetv2"),
    ("mobilenet_v3_large", "mobilenetv3"),
    ("mobilenet_v3_small", "mobilenetv3"),
    ("mobiledet_cpu", "mobiledet"),
    ("mobiledet_dsp", "mobiledet"),
    ("mobiledet_edgetpu", "mobiledet"),
]


def test_the_nine_known_nets() -> None:
    assert sorted(KNOWN) == sorted(GOLDEN_IDS)
    for name, arch in KNOWN.items():
        assert arch.resolution == 224, name
        assert arch.in_channels == 3, name
        assert arch.head.classes == 1000, name


@pytest.mark.parametrize("name", list(PARAMS))
def test_analytic_param_count_is_exact(name: str) -> None:
    assert count_cost(KNOWN[name]).params == PARAMS[name]


@pytest.mark.parametrize("name", list(PARAMS))
def test_built_model_param_count_is_exact(name: str) -> None:
    with torch.device("meta"):
        model = build_model(KNOWN[name])
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", list(PUBLISHED_MACS))
def test_macs_within_one_percent_of_published(name: str) -> None:
    macs = count_cost(KNOWN[name]).macs
    published = PUBLISHED_MACS[name]
    assert abs(macs - published) <= 0.01 * published, (
        f"{name}: {macs / 1e6:.2f}M MACs vs published {published / 1e6:.0f}M"
    )


@pytest.mark.parametrize("name", list(GOLDEN_IDS))
def test_golden_arch_id(name: str) -> None:
    assert KNOWN[name].arch_id == GOLDEN_IDS[name]


def test_arch_ids_are_16_lowercase_hex_and_distinct() -> None:
    for name, arch in KNOWN.items():
        assert re.fullmatch(r"[0-9a-f]{16}", arch.arch_id), (name, arch.arch_id)
    assert len({arch.arch_id for arch in KNOWN.values()}) == len(KNOWN)


def test_arch_id_does_not_depend_on_how_the_net_was_made() -> None:
    for name, arch in KNOWN.items():
        assert known_architecture(name).arch_id == arch.arch_id, name
        assert Architecture.from_json(arch.to_json(indent=2)).arch_id == arch.arch_id, name
        assert Architecture.decode(arch.encode()).arch_id == arch.arch_id, name


def _changed(arch: Architecture, edit) -> Architecture:
    data = arch.to_dict()
    edit(data)
    return Architecture.from_dict(data)


EDITS = {
    "resolution": lambda d: d.update(resolution=192),
    "head.classes": lambda d: d["head"].update(classes=10),
    "head.dropout": lambda d: d["head"].update(dropout=0.25),
    "stem.act": lambda d: d["stem"].update(act="swish" if d["stem"]["act"] != "swish" else "relu"),
    "blocks[-1].k": lambda d: d["blocks"][-1].update(k=d["blocks"][-1]["k"] + 2),
}


@pytest.mark.parametrize("field", list(EDITS))
@pytest.mark.parametrize("name", list(KNOWN))
def test_changing_one_field_changes_the_arch_id(name: str, field: str) -> None:
    arch = KNOWN[name]
    other = _changed(arch, EDITS[field])
    assert other != arch
    assert other.arch_id != arch.arch_id


@pytest.mark.parametrize(("name", "space_name"), IN_SPACE)
def test_known_net_lies_in_its_space(name: str, space_name: str) -> None:
    space = load_space(space_name)
    assert space.explain(KNOWN[name]) is None
    assert space.contains(KNOWN[name])


@pytest.mark.parametrize(
    ("name", "space_name", "reason"),
    [
        ("mobilenet_v1", "mobilenetv2", "stem"),  # relu stem and dsconv blocks
        ("mobilenet_v3_large", "mobilenetv2", "stem"),  # 16-wide h-swish stem
        ("mobilenet_v2", "mobilenetv3", "stem"),
        ("mobiledet_cpu", "mobiledet-cifar", "resolution 224"),
    ],
)
def test_known_net_outside_a_space_is_explained(name: str, space_name: str, reason: str) -> None:
    space = load_space(space_name)
    why = space.explain(KNOWN[name])
    assert not space.contains(KNOWN[name])
    assert isinstance(why, str) and why
    assert reason in why


def test_a_changed_known_net_leaves_its_space() -> None:
    space = load_space("mobilenetv2")
    arch = _changed(KNOWN["mobilenet_v2"], lambda d: d["blocks"][3].update(k=9))
    why = space.explain(arch)
    assert why is not None
    assert "stages[" in why


def test_known_architecture_takes_classes_and_rejects_unknown_names() -> None:
    arch = known_architecture("mobilenet_v2", classes=10)
    assert arch.head.classes == 10
    assert arch.blocks == KNOWN["mobilenet_v2"].blocks
    with pytest.raises(UnknownNameError, match=r"unknown architecture name 'resnet50'; known nets: mobilenet_v1"):
        known_architecture("resnet50")
