"""A new block type is one class plus one registration (issue 15).

``DepthwiseFFN`` below exists only in this file: registered through the
public registry API by a fixture and unregistered when the test ends. Every
layer must then know it from the registry alone: the space loader and the
sampler, the string form, the builder, the cost counter, the ONNX exporter,
the latency tables (keys, measurement, calibration kinds), the search
encoding and the search loop.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

import searchspace as ss
from latency_tables import calibration
from latency_tables.predictor import LatencyPredictor
from latency_tables.profiler import build_table
from latency_tables.profiles import DeviceProfile, HostInfo
from latency_tables.signatures import arch_keys, parse_key, space_layers
from latency_tables.table import LatencyTable
from searchspace.blocks import (
    BlockType,
    block_type_names,
    get_block_type,
    register_block_type,
    unregister_block_type,
)
from searchspace.blocks.base import expanded
from searchspace.errors import UnknownNameError
from searchspace.ops import Act, BatchNorm, Conv, Op
from tests.searchspace.test_cost import mismatches
from tests.searchspace.test_export import export_and_compare, tiny_arch

if TYPE_CHECKING:
    from searchspace.architecture import Block
    from searchspace.spec import LayerChoices

NAME = "dwffn"
BUILT_IN_KINDS = ("stem", "ibn", "fused", "tucker", "dsconv", "conv", "skip", "head")


class DepthwiseFFN(BlockType):
    """kxk depthwise with the stride + BN, then 1x1 expand by t + BN + act, 1x1 linear project + BN (ConvNeXt-like)."""

    name = NAME
    uses = frozenset({"k", "mid", "act"})
    choice_fields = ("t", "k", "act")
    expands = True
    residual = True
    summary = "kxk depthwise, 1x1 expand (t), 1x1 linear project"

    def check_specific(self, block: Block) -> list[str]:
        return [] if block.mid >= 1 else [f"mid: expanded width must be >= 1, got {block.mid}"]

    def ops(self, block: Block) -> list[Op]:
        assert block.act is not None
        return [
            Conv("conv_dw", block.cin, block.cin, block.k, block.stride, block.cin),
            BatchNorm("bn1", block.cin),
            Conv("conv_exp", block.cin, block.mid, 1),
            BatchNorm("bn2", block.mid),
            Act("act", block.act),
            Conv("conv_pwl", block.mid, block.cout, 1),
            BatchNorm("bn3", block.cout),
        ]

    def options(
        self, choices: LayerChoices, cin: int, cout: int, stride: int, shortcut: bool, divisor: int
    ) -> list[Block]:
        from searchspace.architecture import Block

        return [
            Block(
                type=self.name,
                cin=cin,
                cout=cout,
                stride=stride,
                k=k,
                mid=expanded(cin, t, divisor),
                act=act,
                residual=shortcut,
            )
            for t in choices.t
            for k in choices.k
            for act in choices.act
        ]


SPEC: dict[str, Any] = {
    "name": "with-dwffn",
    "resolutions": [16],
    "classes": 5,
    "stem": {"channels": 8, "act": "relu"},
    "defaults": {"type": [NAME, "ibn"], "t": [2, 3], "k": [3, 5], "act": ["relu", "hswish"]},
    "stages": [
        {"channels": 8, "depth": [1, 2]},
        {"channels": 16, "stride": 2, "depth": [1, 2], "choices": {"type": [NAME]}},
        {"channels": 24, "stride": 2, "depth": 1, "choices": {"type": [NAME, "skip"], "t": 2}},
    ],
    "head": {"conv": 32, "act": "relu"},
}


@pytest.fixture
def registered() -> Iterator[BlockType]:
    block_type = register_block_type(DepthwiseFFN())
    try:
        yield block_type
    finally:
        unregister_block_type(NAME)


@pytest.fixture
def space(registered: BlockType) -> ss.SearchSpace:
    return ss.load_space(SPEC)


def _with_type(space: ss.SearchSpace, n: int = 40) -> list[ss.Architecture]:
    archs = [space.sample(seed) for seed in range(n)]
    return [a for a in archs if any(b.type == NAME for b in a.blocks)]


def test_registering_and_unregistering() -> None:
    assert NAME not in block_type_names()
    with pytest.raises(ss.SearchSpaceError, match=f"unknown block type '{NAME}'"):
        ss.load_space(SPEC)
    register_block_type(DepthwiseFFN())
    try:
        assert get_block_type(NAME).calibration_kind == NAME
        # a new kind comes after the built-in ones, so theirs keep their columns
        assert calibration.kinds() == (*BUILT_IN_KINDS[:-1], NAME, "head")
        with pytest.raises(ValueError, match=f"block type '{NAME}' is registered twice"):
            register_block_type(DepthwiseFFN())
    finally:
        unregister_block_type(NAME)
    assert NAME not in block_type_names() and calibration.kinds() == BUILT_IN_KINDS
    with pytest.raises(UnknownNameError, match=f"unknown block type '{NAME}'"):
        get_block_type(NAME)


def test_sampled_and_round_trips_the_string_form(space: ss.SearchSpace) -> None:
    archs = _with_type(space)
    assert len(archs) >= 10  # one stage allows only the new type
    for arch in archs:
        text = arch.encode()
        assert f"|{NAME}_k" in text and ("_e2_" in text or "_e3_" in text)  # an expanding type writes e<t>
        back = ss.Architecture.decode(text)
        assert back == arch and back.arch_id == arch.arch_id
        assert ss.Architecture.from_json(arch.to_json()) == arch
        assert space.contains(arch)
    block = next(b for b in archs[0].blocks if b.type == NAME)
    assert block.t == block.mid / block.cin and block.t in (2, 3)


def test_builds_and_counts_like_torch(registered: BlockType) -> None:
    arch = tiny_arch(NAME)
    assert sum(b.type == NAME for b in arch.blocks) >= 5
    model = ss.build_model(arch).eval()
    with torch.no_grad():
        out = model(torch.randn(2, arch.in_channels, arch.resolution, arch.resolution))
    assert tuple(out.shape) == (2, arch.head.classes)
    problems = mismatches(arch, "cpu")
    assert not problems, "\n".join(problems)


def test_exports_to_onnx(registered: BlockType, tmp_path: Path) -> None:
    export_and_compare(tiny_arch(NAME), tmp_path / "dwffn.onnx")


def test_keyed_measured_and_calibrated_in_a_latency_table(
    space: ss.SearchSpace, isolated_tables: Path, tmp_path: Path
) -> None:
    layers = space_layers(space)
    ours = {k: layer for k, layer in layers.items() if layer.block is not None and layer.block.type == NAME}
    assert ours
    for key, layer in ours.items():
        assert key.split(":", 1)[1].startswith(f"{NAME}_")
        assert parse_key(key) == layer and layer.kind == NAME
    arch = next(a for a in _with_type(space) if sum(b.type == NAME for b in a.blocks) >= 2)
    table = LatencyTable(profile=DeviceProfile.parse("ort-cpu-fp32-t1"), host=HostInfo.current())
    path = tmp_path / "t.json.gz"
    wanted = set(arch_keys(arch))
    assert build_table(table, [lyr for k, lyr in layers.items() if k in wanted], path, passes=1) == len(wanted)
    predictor = LatencyPredictor(table, path, missing="error")
    prediction = predictor.predict(arch)
    assert prediction.total_ms > 0
    assert [lyr.kind for lyr in prediction.layers[1:-1]] == [b.type for b in arch.blocks]
    _, _, sums = predictor.features([arch])
    assert sums.shape == (1, len(BUILT_IN_KINDS) + 1) and sums[0, calibration.kinds().index(NAME)] > 0


def test_searched(space: ss.SearchSpace, tmp_path: Path) -> None:
    from nas.config import SearchConfig
    from nas.executors import SerialExecutor
    from nas.search import Search
    from nas.search_params import distributions

    ops = distributions(space)["s1.l0.op"]
    assert f"{NAME} t=2 k=3 act=hswish" in ops and len(ops) == 2 * 2 * 2  # t x k x act
    cfg = SearchConfig.parse(
        {
            "name": "new-block-type",
            "space": SPEC,
            "objectives": [{"metric": "params", "direction": "minimize"}, {"metric": "macs", "direction": "minimize"}],
            "strategy": {"name": "random"},
            "budget": {"trials": 6},
            "workers": 1,
            "seed": 0,
        }
    )
    result = Search(cfg, f"sqlite:///{tmp_path / 's.db'}", executor=SerialExecutor()).run()
    assert len(result.trials) == 6 and all(t.state == "COMPLETE" for t in result.trials)
    for t in result.trials:
        assert t.arch is not None
        arch = ss.Architecture.decode(t.arch)
        assert any(b.type == NAME for b in arch.blocks)
        assert t.metrics["params"] == ss.count_cost(arch).params
