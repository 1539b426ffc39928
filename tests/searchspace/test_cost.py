"""The analytic cost (searchspace.cost) against the built torch model, measured independently.

The measurement below uses only torch and the module structure of the built
net (``BlockModule.residual``, ``SEModule``); it never calls into
``searchspace.cost``. It follows the definitions of the ``searchspace.cost``
docstring:

- params: ``sum(p.numel() for p in model.parameters())``;
- MACs: forward hooks on every ``nn.Conv2d`` (k*k*cin/groups*cout*out_h*out_w,
  from the actual output tensor) and ``nn.Linear`` (in*out) at batch 1;
- activations: for every conv / linear layer, its input + its output + what is
  kept for later (a residual block's input, except while the block's first
  layer reads it as its own input; the feature map an SE gate will multiply,
  while the SE convs run); the peak over all layers.

Known nets are measured on the meta device (shapes only). The random samples
run a real forward on the CPU: in torch 2.13 a meta forward is 2-4x slower than
a real one for these small nets (batch norm and elementwise ops on meta go
through Python decompositions), which would push this file far past a minute.
For the samples the random weight init is skipped as well (it does not
change any shape or parameter count, and is a third of the run time).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

import searchspace.model as model_module
from searchspace import Architecture, count_cost, known_architectures, list_spaces, load_space
from searchspace.layers import BlockModule, SEModule
from searchspace.model import build_model

N_SEEDS = 200
CHUNK = 50  # seeds per test, so that xdist can spread the spaces over workers
KNOWN = known_architectures()


@dataclass
class LayerMeasure:
    params: int = 0
    macs: int = 0
    activations: int = 0
    input_size: int = 0
    output_size: int = 0


@dataclass
class Measure:
    params: int
    macs: int
    activations: int
    layers: dict[str, LayerMeasure] = field(default_factory=dict)


class _State:
    """What is alive besides a layer's own input and output, while the net runs."""

    def __init__(self) -> None:
        self.layer = ""  # top-level layer running: stem, blocks.i, head
        self.shortcut = 0  # elements of the running block's input, if it has a shortcut
        self.first = True  # no conv of the running block has run yet
        self.se_map = 0  # elements of the feature map waiting for an SE gate
        self.calls = 0  # conv / linear forwards seen


def measure(arch: Architecture, device: str) -> Measure:
    if device == "meta":
        with torch.device("meta"):
            model = build_model(arch)
    else:
        model = build_model(arch)
    model.eval()

    tops: dict[str, nn.Module] = {"stem": model.stem}
    tops.update({f"blocks.{i}": block for i, block in enumerate(model.blocks)})
    tops["head"] = model.head
    layers = {name: LayerMeasure(params=sum(p.numel() for p in m.parameters())) for name, m in tops.items()}
    state = _State()
    handles = []

    def enter_top(name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            state.layer = name
            state.shortcut = 0
            state.first = True
            state.se_map = 0
            layers[name].input_size = args[0].shape[-1]

        return hook

    def leave_top(name: str):
        def hook(module: nn.Module, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            layers[name].output_size = out.shape[-1] if out.dim() == 4 else 1

        return hook

    def enter_block(module: BlockModule, args: tuple[torch.Tensor, ...]) -> None:
        state.shortcut = args[0].numel() if module.residual else 0
        state.first = True

    def enter_se(module: SEModule, args: tuple[torch.Tensor, ...]) -> None:
        state.se_map = args[0].numel()

    def leave_se(module: SEModule, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        state.se_map = 0

    def count(macs: int, live: int) -> None:
        state.calls += 1
        lm = layers[state.layer]
        lm.macs += macs
        lm.activations = max(lm.activations, live)

    def on_conv(module: nn.Conv2d, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        kh, kw = module.kernel_size
        macs = kh * kw * (module.in_channels // module.groups) * module.out_channels * out.shape[2] * out.shape[3]
        kept = state.se_map + (0 if state.first else state.shortcut)
        state.first = False
        count(macs * out.shape[0], args[0].numel() + out.numel() + kept)

    def on_linear(module: nn.Linear, args: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        rows = out.numel() // module.out_features
        count(module.in_features * module.out_features * rows, args[0].numel() + out.numel())

    for name, top in tops.items():
        handles.append(top.register_forward_pre_hook(enter_top(name)))
        handles.append(top.register_forward_hook(leave_top(name)))
    for module in model.modules():
        if isinstance(module, BlockModule):
            handles.append(module.register_forward_pre_hook(enter_block))
        elif isinstance(module, SEModule):
            handles.append(module.register_forward_pre_hook(enter_se))
            handles.append(module.register_forward_hook(leave_se))
        elif isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(on_conv))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(on_linear))

    x = torch.zeros(1, arch.in_channels, arch.resolution, arch.resolution, device=device)
    try:
        with torch.no_grad():
            out = model(x)
    finally:
        for h in handles:
            h.remove()
    assert tuple(out.shape) == (1, arch.head.classes)
    # every conv and linear layer ran exactly once, so none escaped the count
    assert state.calls == sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
    return Measure(
        params=sum(p.numel() for p in model.parameters()),
        macs=sum(lm.macs for lm in layers.values()),
        activations=max(lm.activations for lm in layers.values()),
        layers=layers,
    )


def mismatches(arch: Architecture, device: str) -> list[str]:
    """Every difference between count_cost(arch) and the measured model, as readable lines."""
    cost = count_cost(arch)
    got = measure(arch, device)
    out = [
        f"{what}: analytic {a} != measured {m}"
        for what, a, m in [
            ("params", cost.params, got.params),
            ("macs", cost.macs, got.macs),
            ("activations", cost.activations, got.activations),
        ]
        if a != m
    ]
    names = [lc.name for lc in cost.layers]
    if names != list(got.layers):
        out.append(f"layer names: analytic {names} != model {list(got.layers)}")
        return out
    for lc in cost.layers:
        lm = got.layers[lc.name]
        for what in ("params", "macs", "activations", "input_size", "output_size"):
            a, m = getattr(lc, what), getattr(lm, what)
            if a != m:
                block = lc.block.model_dump(exclude_defaults=True) if lc.block else "head"
                out.append(f"{lc.name}.{what}: analytic {a} != measured {m} ({block})")
    return out


def _zero_init(module: nn.Module) -> None:
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            p.zero_()


@pytest.fixture
def fast_build(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Speed only: no random weight init (neither torch's default nor the reference one; a
    third of the run otherwise), and one thread per xdist worker. Shapes and parameter
    counts do not depend on either."""
    monkeypatch.setattr(model_module, "init_weights", lambda model: None)
    monkeypatch.setattr(nn.modules.conv._ConvNd, "reset_parameters", _zero_init)
    monkeypatch.setattr(nn.Linear, "reset_parameters", _zero_init)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(KNOWN))
def test_known_net_cost_matches_built_model_on_meta(name: str) -> None:
    problems = mismatches(KNOWN[name], "meta")
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", ["mobilenet_v2", "mobilenet_v3_small", "mobiledet_dsp"])
def test_known_net_cost_matches_built_model_on_cpu(name: str) -> None:
    # the same measurement on real tensors (what the random samples below use)
    problems = mismatches(KNOWN[name], "cpu")
    assert not problems, f"{name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("start", range(0, N_SEEDS, CHUNK))
@pytest.mark.parametrize("space_name", list_spaces())
def test_sampled_cost_matches_built_model(space_name: str, start: int, fast_build: None) -> None:
    space = load_space(space_name)
    failures = []
    for seed in range(start, start + CHUNK):
        arch = space.sample(seed)
        problems = mismatches(arch, "cpu")
        if problems:
            failures.append(f"seed {seed}: {arch.encode()}\n  " + "\n  ".join(problems))
    assert not failures, f"{len(failures)} of {CHUNK} samples of {space_name} differ:\n" + "\n".join(failures[:5])


def _all_archs() -> list[tuple[str, Architecture]]:
    archs = list(KNOWN.items())
    for space_name in list_spaces():
        space = load_space(space_name)
        archs += [(f"{space_name}#{seed}", space.sample(seed)) for seed in range(N_SEEDS)]
    return archs


def test_layer_costs_sum_to_totals() -> None:
    for label, arch in _all_archs():
        cost = count_cost(arch)
        names = [lc.name for lc in cost.layers]
        assert names == ["stem", *[f"blocks.{i}" for i in range(len(arch.blocks))], "head"], label
        assert sum(lc.params for lc in cost.layers) == cost.params, label
        assert sum(lc.macs for lc in cost.layers) == cost.macs, label
        assert max(lc.activations for lc in cost.layers) == cost.activations, label
        assert all(lc.params >= 0 and lc.macs >= 0 and lc.activations >= 0 for lc in cost.layers), label
        assert cost.activation_bytes == 4 * cost.activations
        assert cost.as_dict() == {"params": cost.params, "macs": cost.macs, "activations": cost.activations}


def test_layer_sizes_chain() -> None:
    for label, arch in _all_archs():
        layers = count_cost(arch).layers
        assert layers[0].input_size == arch.resolution, label
        for prev, nxt in zip(layers, layers[1:], strict=False):
            assert nxt.input_size == prev.output_size, (label, prev.name, nxt.name)
        assert layers[-1].input_size == arch.final_size, label


def test_worked_example_by_hand() -> None:
    """A net small enough to count on paper: 8x8 input, stem, one residual ibn with SE, classifier."""
    arch = Architecture.decode("r8_i3|conv_k3_c8_relu|ibn_k3_e2_se0.25_sg_c8_relu|head_n2")
    hw = 8 * 8
    # stem 3x3 conv 3->8 + BN; live: input 3 maps + output 8 maps
    stem = (3 * 3 * 3 * 8 + 2 * 8, 3 * 3 * 3 * 8 * hw, (3 + 8) * hw)
    # ibn: 1x1 8->16, 3x3 depthwise 16, SE 16->8->16 (biases), 1x1 16->8; shortcut keeps the 8-map input
    params = (8 * 16 + 2 * 16) + (9 * 16 + 2 * 16) + (16 * 8 + 8 + 8 * 16 + 16) + (16 * 8 + 2 * 8)
    macs = 8 * 16 * hw + 9 * 16 * hw + 2 * 16 * 8 + 16 * 8 * hw
    live = max(
        (8 + 16) * hw,  # expand: reads the block input itself, nothing extra kept
        (16 + 16 + 8) * hw,  # depthwise + kept block input
        16 * hw + 16 + 8 + 8 * hw,  # SE convs: waiting map, pooled 16, hidden 8, kept block input
        (16 + 8 + 8) * hw,  # project + kept block input
    )
    head = (8 * 2 + 2, 8 * 2, 8 + 2)
    cost = count_cost(arch)
    assert [(lc.params, lc.macs, lc.activations) for lc in cost.layers] == [stem, (params, macs, live), head]
    assert (cost.params, cost.macs, cost.activations) == (1010, 39696, 2560)
    got = measure(arch, "cpu")
    assert (got.params, got.macs, got.activations) == (1010, 39696, 2560)
