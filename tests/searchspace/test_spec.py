"""Search-space specs: loading, validation messages, sampling, membership, exact size."""

from __future__ import annotations

import copy
import itertools
import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import searchspace as ss
from searchspace.architecture import Architecture, Block, Head
from searchspace.channels import make_divisible
from searchspace.spec import SearchSpace

BUILTIN = ss.list_spaces()


def test_builtin_spaces_are_the_documented_ones() -> None:
    assert set(BUILTIN) == {
        "mobilenetv2",
        "mobilenetv3",
        "mobiledet",
        "fbnet",
        "mobilenetv2-cifar",
        "mobilenetv3-cifar",
        "mobiledet-cifar",
        "fbnet-cifar",
    }
    for name in BUILTIN:
        space = ss.load_space(name)
        assert space.name == name
        if name.endswith("-cifar"):
            assert (space.resolution, space.classes, space.stem.stride) == (32, 10, 1)
        else:
            assert (space.resolution, space.classes) == (224, 1000)


def test_fbnet_has_22_layers_of_9_ops() -> None:
    space = ss.load_space("fbnet")
    assert [s.depth for s in space.stages] == [(1,), (4,), (4,), (4,), (4,), (4,), (1,)]
    assert [s.channels[0] for s in space.stages] == [16, 24, 32, 64, 112, 184, 352]
    # every layer whose input differs from its output still has 9 distinct ops
    assert len(space.layer_options(1, 1, 24, 24, 1)) == 9
    assert len(space.layer_options(1, 0, 16, 24, 2)) == 9
    per_alpha = 9**22
    assert space.cardinality() == per_alpha * len(space.width_multipliers)


def test_spec_work_does_not_import_torch() -> None:
    code = (
        "import sys, searchspace as ss\n"
        "s = ss.load_space('mobilenetv3'); a = s.sample(0); ss.count_cost(a); a.encode(); s.cardinality()\n"
        "ss.known_architectures()\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


@pytest.mark.parametrize("name", BUILTIN)
def test_samples_are_valid_deterministic_and_contained(name: str) -> None:
    space = ss.load_space(name)
    rng = random.Random(7)
    samples = [space.sample(rng) for _ in range(200)]
    assert all(space.contains(a) for a in samples)
    assert len({a.arch_id for a in samples}) > 150  # the sampler explores
    again = random.Random(7)
    assert [space.sample(again).arch_id for _ in range(200)] == [a.arch_id for a in samples]
    assert space.sample(3) == space.sample(3)


def test_contains_rejects_and_explains() -> None:
    space = ss.load_space("mobilenetv2")
    v2 = ss.known_architecture("mobilenet_v2")
    assert space.contains(v2)
    bad_k = v2.model_copy(update={"blocks": (v2.blocks[0].model_copy(update={"k": 9}),) + v2.blocks[1:]})
    assert not space.contains(bad_k)
    assert "stages[0].layers[0]" in (space.explain(bad_k) or "")
    assert "resolution 96" in (space.explain(v2.model_copy(update={"resolution": 96})) or "")
    assert not space.contains(ss.known_architecture("mobilenet_v1"))
    assert not ss.load_space("mobilenetv2-cifar").contains(v2)


# ------------------------------------------------------- exact cardinality
def brute_force(space: SearchSpace) -> set[str]:
    """Every architecture of a tiny space, by enumerating every raw choice."""
    found: set[str] = set()
    d = space.channel_divisor
    for res, alpha, stem_c, stem_act in itertools.product(
        space.resolutions, space.width_multipliers, space.stem.channels, space.stem.act
    ):
        stem_w = make_divisible(stem_c * alpha, d)
        stem = Block(
            type="conv", cin=space.in_channels, cout=stem_w, stride=space.stem.stride, k=space.stem.k, act=stem_act
        )
        per_stage = [list(itertools.product(s.depth, s.channels, s.stride)) for s in space.stages]
        for plan in itertools.product(*per_stage):
            partials: list[tuple[int, tuple[Block, ...]]] = [(stem_w, ())]
            for i, (depth, ch, stride) in enumerate(plan):
                width = make_divisible(ch * alpha, d)
                for j in range(depth):
                    partials = [
                        (width, blocks + (opt,))
                        for c, blocks in partials
                        for opt in space.layer_options(i, j, c, width, stride if j == 0 else 1)
                    ]
            h = space.head

            def scaled(v: int, alpha: float = alpha, h: Any = h) -> int:
                return make_divisible(v * alpha, d) if v and h.scale_with_width else v

            heads = [
                Head(
                    conv=scaled(c),
                    act=a if c else None,
                    hidden=scaled(hd),
                    hidden_act=ha if hd else None,
                    dropout=h.dropout,
                    classes=space.classes,
                )
                for c in h.conv
                for a in (h.act or [None])
                for hd in h.hidden
                for ha in (h.hidden_act or [None])
            ]
            for _, blocks in partials:
                for head in heads:
                    arch = Architecture(
                        resolution=res, in_channels=space.in_channels, stem=stem, blocks=blocks, head=head
                    )
                    found.add(arch.to_json())
    return found


TINY: dict[str, dict[str, Any]] = {
    # two width multipliers that round to the same widths -> nets counted once
    "alpha-collisions": {
        "width_multipliers": [0.25, 0.35, 1.0],
        "stem": {"channels": [16, 24], "act": "relu"},
        "stages": [
            {"channels": [16, 24], "stride": 2, "depth": [1, 2], "choices": {"t": [1, 3]}},
            {"channels": 24, "stride": 2, "depth": 1, "choices": {"type": ["ibn", "skip"], "t": 2}},
        ],
        "head": {"conv": [0, 16], "act": "relu", "scale_with_width": True},
    },
    # a stage that may vanish must not multiply by its width choices
    "vanishing-stage": {
        "width_multipliers": [0.5, 1.0],
        "stem": {"channels": 16, "act": ["relu", "hswish"]},
        "stages": [
            {"channels": 16, "depth": 1, "choices": {"t": 1}},
            {"channels": [24, 32, 40], "stride": [1, 2], "depth": [0, 1, 2], "choices": {"t": [2.3, 2.5]}},
            {"channels": 48, "stride": 2, "depth": [1, 2], "first_residual": False},
        ],
        "head": {"conv": 96, "act": "relu", "hidden": [0, 128], "hidden_act": ["relu", "swish"]},
    },
    # Tucker ratios that round to one width, unions of alternatives, SE, per-layer overrides
    "mobiledet-like": {
        "se_gate": "sigmoid",
        "stem": {"channels": 16, "act": "relu6"},
        "defaults": {
            "type": ["ibn", "fused", "tucker"],
            "t": [4],
            "k": [3],
            "se": [0, 0.25],
            "act": "relu6",
            "tucker_in": [0.25, 0.75],
            "tucker_out": [0.25, 0.75],
        },
        "stages": [
            {"channels": 8, "depth": 1, "choices": [{"type": "tucker"}, {"type": "ibn", "t": 1}]},
            {"channels": 16, "stride": 2, "depth": [1, 2], "layers": [{"type": ["fused", "dsconv", "conv"]}]},
        ],
        "head": {"conv": 32, "act": "relu6"},
    },
}


def tiny_space(name: str) -> SearchSpace:
    spec = {
        "name": name,
        "resolutions": [8, 16],
        "classes": 3,
        "defaults": {"type": "ibn", "k": [3, 5], "act": "relu"},
        **TINY[name],
    }
    return ss.load_space(spec)


@pytest.mark.parametrize("name", sorted(TINY))
def test_cardinality_equals_brute_force_enumeration(name: str) -> None:
    space = tiny_space(name)
    every = brute_force(space)
    assert space.cardinality() == len(every)
    for text in list(every)[:300]:
        assert space.contains(Architecture.from_json(text))


def test_cardinality_dedups_where_a_naive_product_would_not() -> None:
    space = tiny_space("alpha-collisions")
    # alpha 0.25 and 0.35 give identical widths here: the union is smaller than the sum
    per_alpha = [
        len(brute_force(space.model_copy(update={"width_multipliers": (a,)}))) for a in space.width_multipliers
    ]
    assert space.cardinality() < sum(per_alpha)


# ------------------------------------------------------------ bad input
BASE = ss.load_space("mobilenetv2-cifar").to_dict()


def _set(path: str, value: Any) -> Any:
    def apply(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = d
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is _DELETE:
            del node[last]
        else:
            node[int(last) if last.isdigit() else last] = value

    return apply


_DELETE = object()

BAD_SPECS = [
    (_set("colour", "red"), r"colour: unknown key"),
    (_set("stages.1.depht", 3), r"stages\[1\]\.depht: unknown key"),
    (
        _set("stages.1.choices", {"type": ["ibx"]}),
        r"stages\[1\]\.choices\[0\]\.type: unknown block type 'ibx'; expected one of conv, dsconv",
    ),
    (
        _set("stages.1.choices", [{"k": 3}, {"k": 4}]),
        r"stages\[1\]\.choices\[1\]\.k: kernel size must be one of 1, 3, 5",
    ),
    (
        _set("stages.2.choices", {"t": 0.5}),
        r"stages\[2\]\.choices\[0\]\.t: expansion ratio t must be between 1 and 16, got 0.5",
    ),
    (_set("stages.2.choices", {"se": 1.5}), r"se: squeeze-excite ratio must be in \[0, 1\]"),
    (_set("stages.2.depth", [-1]), r"stages\[2\]\.depth: depth must be between 0 and 32"),
    (_set("stages.2.depth", []), r"stages\[2\]\.depth: must offer at least one choice"),
    (_set("stages.2.channels", [16, 16]), r"stages\[2\]\.channels: choices must not repeat"),
    (_set("stages.2.stride", 3), r"stages\[2\]\.stride\[0\]: Input should be 1 or 2, got 3"),
    (_set("stages.2.choices", []), r"stages\[2\]\.choices: must offer at least one alternative"),
    (_set("stages.0.layers", [{}, {}]), r"stages\[0\]\.layers: 2 per-layer entries but the stage has at most 1"),
    (_set("default_resolution", 64), r"default_resolution: must be one of resolutions \[32\], got 64"),
    (_set("classes", _DELETE), r"classes: required field is missing"),
    (_set("version", 2), r"version: space format version 2 is not supported .*upgrade hwnas"),
    (_set("head.act", _DELETE), r"head\.act: a head conv needs its activation choices"),
    (_set("width_multipliers", [0]), r"width_multipliers: width multipliers must be in \(0, 4\]"),
    (
        _set("defaults.act", ["gelu"]),
        r"defaults\.act\[0\]: Input should be 'relu', 'relu6', 'hswish' or 'swish', got 'gelu'",
    ),
    (_set("stem.k", 4), r"stem\.k: kernel size must be odd"),
    (_set("name", "has space"), r"name: String should match pattern"),
]


@pytest.mark.parametrize(("mutate", "message"), BAD_SPECS, ids=[m for _, m in BAD_SPECS])
def test_invalid_spec_names_the_field(mutate: Any, message: str) -> None:
    data = copy.deepcopy(BASE)
    mutate(data)
    with pytest.raises(ss.SpecError, match=message):
        ss.load_space(data)


def test_every_stage_vanishing_is_rejected() -> None:
    data = copy.deepcopy(BASE)
    for stage in data["stages"]:
        stage["depth"] = [0, 1]
    with pytest.raises(ss.SpecError, match="at least one stage must have a depth that cannot be 0"):
        ss.load_space(data)


def test_groups_that_cannot_divide_are_reported_when_used() -> None:
    data = copy.deepcopy(BASE)
    data["stages"][1]["choices"] = {"t": 1, "groups": 3}
    space = ss.load_space(data)
    with pytest.raises(ss.SpecError, match=r"stages\[1\]\.layers\[0\]: no valid block .*check groups"):
        space.cardinality()


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ss.UnknownNameError, match="unknown search space 'mobilenetv9'; built-in spaces: fbnet"):
        ss.load_space("mobilenetv9")
    with pytest.raises(ss.SpecError, match="does not exist"):
        ss.load_space(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstages: [\n")
    with pytest.raises(ss.SpecError, match=r"not valid YAML/JSON at line \d+"):
        ss.load_space(bad)
    listy = tmp_path / "list.json"
    listy.write_text("[1, 2]")
    with pytest.raises(ss.SpecError, match="a space must be a mapping"):
        ss.load_space(listy)


def test_space_files_round_trip_through_json(tmp_path: Path) -> None:
    for name in BUILTIN:
        space = ss.load_space(name)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(space.to_dict()))
        again = ss.load_space(path)
        assert again == space
        assert again.cardinality() == space.cardinality()
