"""Zero-cost proxies: every proxy on every block type, seeded, finite, with clear errors."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

import searchspace as ss
from nas import proxies
from nas.errors import ProxyError
from nas.proxies import zero_cost
from nas.proxies.base import Candidate
from nas.proxies.ensemble import Reference, parse_members, rank_vote
from searchspace.cost import count_cost

REGISTERED = [p for p in proxies.list_proxies() if p != "default"]


def test_the_issue_s_proxies_are_registered() -> None:
    expected = {
        "synflow",
        "naswot",
        "jacob_cov",
        "grad_norm",
        "snip",
        "grasp",
        "fisher",
        "zen",
        "zico",
        "params",
        "macs",
    }
    assert expected <= set(REGISTERED)
    assert "default" in proxies.list_proxies()
    for name in REGISTERED:
        d = proxies.describe(name)
        assert d["paper"] and d["sign"] and d["summary"] and d["bn"] in ("train", "removed", "not used")


@pytest.mark.parametrize("name", REGISTERED)
def test_every_proxy_scores_every_block_type_finitely_and_reproducibly(
    name: str, all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    values = []
    for seed in range(3):
        arch = all_blocks.sample(seed)
        value = proxies.score(name, arch, batch, seed=seed)
        assert isinstance(value, float) and math.isfinite(value)
        assert proxies.score(name, arch, batch, seed=seed) == value  # same seed, same score
        values.append(value)
    assert len(set(values)) > 1  # the score depends on the net


def test_baselines_are_the_analytic_counts(all_blocks: ss.SearchSpace) -> None:
    arch = all_blocks.sample(5)
    cost = count_cost(arch)
    assert proxies.score("params", arch) == cost.params
    assert proxies.score("macs", arch) == cost.macs
    model = Candidate(arch).model()
    assert sum(p.numel() for p in model.parameters()) == cost.params


def test_data_proxies_use_the_given_batch(all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    arch = all_blocks.sample(1)
    x, y = batch
    assert proxies.score("snip", arch, (x, y)) != proxies.score("snip", arch, (x.flip(0), y))
    assert proxies.score("synflow", arch, (x, y)) == proxies.score("synflow", arch, (x.flip(0), y))  # data-free


def test_synflow_linearises_bounded_activations() -> None:
    """With ReLU6 left in, an all-ones input saturates every unit and only the classifier scores (NOTES.md)."""
    arch = ss.load_space("mobilenetv2-cifar").sample(0)
    model = zero_cost._linearised(Candidate(arch).model())
    kinds = {type(m) for m in model.modules()}
    assert not kinds & {nn.ReLU6, nn.ReLU, nn.Hardswish, nn.SiLU, nn.BatchNorm2d}
    value = proxies.score("synflow", arch)
    # the classifier alone: its weights' |w * dR/dw| = sum |w| * (pooled features) - much less than the whole net
    wider = arch.model_copy(update={"blocks": arch.blocks[:3]})
    assert value != proxies.score("synflow", wider)


def test_default_batch_is_fashion_mnist_and_classifier_follows_the_data() -> None:
    arch = ss.load_space("mobilenetv2").sample(0).model_copy(update={"resolution": 32})
    assert arch.head.classes == 1000
    x, y, classes = proxies.default_batch(arch)
    assert x.shape == (64, 3, 32, 32) and classes == 10 and int(y.max()) <= 9
    assert math.isfinite(proxies.score("naswot", arch))


def test_batch_shape_is_checked(all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    arch = all_blocks.sample(0)
    x, y = batch
    with pytest.raises(ProxyError, match=r"batch: inputs must be N x 3 x 16 x 16 for this net, got \(16, 3, 8, 8\)"):
        proxies.score("snip", arch, (x[:, :, :8, :8], y))
    with pytest.raises(ProxyError, match="batch: labels must be one per input"):
        proxies.score("snip", arch, (x, y[:3]))


def test_proxies_that_cannot_score_say_why(
    all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    arch = all_blocks.sample(0)
    x, y = batch
    same = x[:1].expand(8, -1, -1, -1).contiguous()
    with pytest.raises(ProxyError, match="naswot.*singular"):
        proxies.score("naswot", arch, (same, y[:8]))
    with pytest.raises(ProxyError, match="zico.*at least 4 inputs"):
        proxies.score("zico", arch, (x[:3], y[:3]))
    with pytest.raises(ProxyError, match="unknown proxy 'synflw'; expected one of .*synflow"):
        proxies.score("synflw", arch)
    with pytest.raises(ProxyError, match="needs a batch"):
        zero_cost.snip(Candidate(arch))


def test_ensemble_names() -> None:
    assert parse_members("ensemble:synflow+naswot") == ("synflow", "naswot")
    for bad, msg in [
        ("ensemble:synflow", "at least two members"),
        ("ensemble:a++b", "at least two members"),
        ("ensemble:snip+snip", "appears twice"),
    ]:
        with pytest.raises(ProxyError, match=msg):
            parse_members(bad)
    with pytest.raises(ProxyError, match="unknown proxy 'nope'"):
        proxies.resolve("ensemble:snip+nope")
    assert proxies.resolve("default") == proxies.resolve(proxies.default_proxy())


def test_rank_vote_and_reference() -> None:
    vote = rank_vote({"a": [1, 2, 3], "b": [10, 30, 20]})
    assert vote.tolist() == [1.0, 2.5, 2.5]
    with pytest.raises(ProxyError, match="different numbers of nets"):
        rank_vote({"a": [1, 2], "b": [1]})
    ref = Reference.fit({"a": [0.0, 1, 2, 3, 4], "b": [10.0, 20, 30, 40, 50]}, "test")
    assert ref.center == (2.0, 30.0)
    assert ref.combine({"a": 2.0, "b": 30.0}) == 0.0
    assert ref.combine({"a": 4.0, "b": 50.0}) > ref.combine({"a": 3.0, "b": 40.0}) > 0


def test_rank_mode_is_azNAS_log_rank_over_the_reference_sample() -> None:
    from nas.proxies.ensemble import TIE_BREAK

    a_ref, m_ref = [0.0, 1, 2, 3, 4, 5, 6, 7], [1e6 * 2**k for k in range(8)]  # MACs spread over 128x
    ref = Reference.fit({"a": a_ref, "macs": m_ref}, "test", "rank")
    n = 8
    # at the k-th smallest reference score a member's standing is k/(n+1): AZ-NAS's rank/n within the sample
    for k in range(1, n + 1):
        got = ref.combine({"a": a_ref[k - 1], "macs": m_ref[k - 1]})
        z = sum((v - c) / sd for v, c, sd in zip((a_ref[k - 1], m_ref[k - 1]), ref.center, ref.spread, strict=True))
        assert got == pytest.approx(2 * np.log(k / (n + 1)) + TIE_BREAK * z)
    # far below the sample on one member: bounded by log(1/(n+1)), not -z^2/2, so the other member still counts
    tiny_but_good = ref.combine({"a": 7.0, "macs": 1.0})
    assert tiny_but_good > np.log(1 / (n + 1)) + np.log(n / (n + 1)) - 1e-3
    assert tiny_but_good > ref.combine({"a": 0.0, "macs": 1.0})  # and beyond the range order is kept
    assert ref.combine({"a": 0.0, "macs": 0.5}) < ref.combine({"a": 0.0, "macs": 1.0})
    # rank-based: MACs or log-MACs stand alike at the sample's points and beyond its range
    logged = Reference.fit({"a": a_ref, "macs": list(np.log(m_ref))}, "test", "rank")
    for m in [*m_ref, 1.0, 1e12]:
        assert logged.percentile(1, np.log(m)) == pytest.approx(ref.percentile(1, m))


def test_ensemble_score_against_a_reference_space(
    all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    arch = all_blocks.sample(0)
    name = "ensemble:synflow+params"
    with pytest.raises(ProxyError, match="lies in no built-in space"):
        proxies.score(name, arch, batch)
    a = proxies.score(name, arch, batch, reference=all_blocks)
    assert a == proxies.score(name, arch, batch, reference=all_blocks)
    members = [proxies.score(m, arch, batch) for m in ("synflow", "params")]
    ref = proxies.reference_for(("synflow", "params"), all_blocks, 16, Candidate(arch, *batch))
    assert a == pytest.approx(np.mean([(v - c) / s for v, c, s in zip(members, ref.center, ref.spread, strict=True)]))


def test_scoring_never_imports_the_service() -> None:
    code = (
        "import sys, torch; torch.set_num_threads(1); from nas import proxies; import searchspace as ss;"
        "a = ss.load_space('fbnet-cifar').sample(0); proxies.score('synflow', a); proxies.score('naswot', a);"
        "bad = [m for m in sys.modules if m == 'service' or m.startswith('service.')]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_twice_differentiable_stand_ins_compute_the_same_function() -> None:
    x = torch.linspace(-5, 5, 101)
    assert torch.allclose(zero_cost._HardSigmoid()(x), nn.Hardsigmoid()(x))
    assert torch.allclose(zero_cost._HardSwish()(x), nn.Hardswish()(x))


@pytest.mark.parametrize("space", ss.list_spaces())
def test_every_builtin_space_scores_finitely(space: str) -> None:
    """Every proxy on a random net of each built-in space (ImageNet spaces at 32x32 to stay fast)."""
    sp = ss.load_space(space)
    for seed in (1,):
        arch = sp.sample(seed)
        if arch.resolution > 32:
            arch = arch.model_copy(update={"resolution": 32})
        x, y, classes = proxies.default_batch(arch, size=8, seed=seed)
        for name in REGISTERED:
            assert math.isfinite(proxies.score(name, arch, (x, y), seed=seed)), (space, name)


def test_synflow_does_not_overflow_on_the_largest_known_nets_at_full_size() -> None:
    for net in ("mobiledet_dsp", "mobilenet_v3_large", "mnasnet_b1"):
        assert math.isfinite(proxies.score("synflow", ss.known_architecture(net))), net


# ------------------------------------------------------------------ each paper's pitfalls, one test each
def _hswish_net() -> ss.Architecture:
    """A MobileNetV3-like net whose every activation is h-swish (squeeze-excite included)."""
    spec = {
        "name": "hswish-only",
        "resolutions": [32],
        "classes": 10,
        "se_gate": "hsigmoid",
        "stem": {"channels": 16, "act": "hswish"},
        "defaults": {"type": "ibn", "t": [3], "k": [3, 5], "se": [0.25], "act": "hswish"},
        "stages": [{"channels": 16, "depth": 2}, {"channels": 24, "stride": 2, "depth": 2}],
        "head": {"conv": 64, "act": "hswish"},
    }
    return ss.load_space(spec).sample(0)


def test_activation_proxies_see_every_activation_the_space_uses() -> None:
    """NASWOT and SWAP read the codes of ReLU6, h-swish and swish too, not only nn.ReLU modules."""
    arch = _hswish_net()
    model = Candidate(arch).model()
    seen = zero_cost.activations(model)
    assert seen and {type(m) for m in seen} <= {nn.Hardswish, nn.ReLU6, nn.SiLU, nn.ReLU}
    assert any(isinstance(m, nn.Hardswish) for m in seen)
    assert not any(isinstance(m, nn.ReLU) for m in seen)  # an nn.ReLU-only hook would see nothing here
    inside_se = [
        m for m in model.modules() if isinstance(m, nn.Hardswish | nn.ReLU6 | nn.SiLU | nn.ReLU) and m not in seen
    ]
    se = [m for m in model.modules() if isinstance(m, zero_cost.SEModule)]
    assert not inside_se or se  # only squeeze-excite's gates are left out
    x, y, _ = proxies.default_batch(arch, size=16)
    assert math.isfinite(proxies.score("naswot", arch, (x, y))) and proxies.score("swap", arch, (x, y)) > 1


def test_data_proxies_run_batch_norm_in_train_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    arch = ss.load_space("mobilenetv2-cifar").sample(3)
    x, y, _ = proxies.default_batch(arch, size=16)
    build = Candidate.model
    modes: list[bool] = []

    def model(self: Candidate) -> nn.Module:
        net = build(self)
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.register_forward_pre_hook(lambda mod, _i: modes.append(mod.training))
        return net

    monkeypatch.setattr(Candidate, "model", model)
    for name in REGISTERED:
        if proxies.get_proxy(name).bn != "train" or name == "zen":  # zen scores its own re-drawn features
            continue
        modes.clear()
        proxies.score(name, arch, (x, y))
        assert modes and all(modes), name


def test_every_candidate_gets_the_same_batch_and_seed() -> None:
    space = ss.load_space("mobilenetv2-cifar")
    a, b = space.sample(1), space.sample(2)
    xa, ya, _ = proxies.default_batch(a)
    xb, yb, _ = proxies.default_batch(b)
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # the same seed builds the same weights: the model a proxy scores is reproducible
    one, two = Candidate(a, seed=4).model(), Candidate(a, seed=4).model()
    assert all(torch.equal(p, q) for p, q in zip(one.parameters(), two.parameters(), strict=True))
    assert not all(
        torch.equal(p, q) for p, q in zip(one.parameters(), Candidate(a, seed=5).model().parameters(), strict=True)
    )


def test_a_score_does_not_depend_on_what_ran_before_in_the_process() -> None:
    """Heads have dropout and most proxies run the net in train mode: the candidate's seed decides the masks,
    so the same net scores the same in any process, and the caller's random state is left alone."""
    arch = ss.load_space("mobilenetv2-cifar").sample(3)
    arch = arch.model_copy(update={"head": arch.head.model_copy(update={"dropout": 0.5})})
    for name in ("grad_norm", "snip", "jacob_cov", "zico"):
        torch.manual_seed(1)
        first = proxies.score(name, arch)
        after = torch.rand(1)
        torch.manual_seed(2)  # the process's random state is elsewhere now
        assert proxies.score(name, arch) == first, name
        torch.manual_seed(1)
        proxies.score(name, arch)
        assert torch.equal(torch.rand(1), after), name  # untouched by scoring


def test_synflow_scores_in_float64_without_bn_or_bounded_activations() -> None:
    arch = ss.known_architecture("mobilenet_v3_large")
    model = zero_cost._linearised(Candidate(arch).model()).double()
    assert all(p.dtype == torch.float64 for p in model.parameters())
    assert not any(isinstance(m, nn.BatchNorm2d | nn.Hardswish | nn.ReLU6) for m in model.modules())
    # in float32 the same flow overflows on this net; float64 keeps it finite
    assert math.isfinite(proxies.score("synflow", arch))


def test_zen_averages_several_draws_as_the_paper_does(all_blocks: ss.SearchSpace) -> None:
    arch = all_blocks.sample(2)
    one = [zero_cost.zen(Candidate(arch, seed=s), repeats=1) for s in range(4)]
    averaged = zero_cost.zen(Candidate(arch, seed=0))
    assert len(set(one)) > 1  # a single draw depends on the draw
    assert math.isfinite(averaged) and averaged != one[0]


def test_nan_scores_are_errors_that_name_the_proxy() -> None:
    with pytest.raises(ProxyError, match="proxy 'naswot': the score is nan"):
        zero_cost.finite("naswot", float("nan"))
    with pytest.raises(ProxyError, match="proxy 'x': the score is inf"):
        zero_cost.finite("x", math.inf)


def test_swap_counts_distinct_patterns_below_its_ceiling(
    all_blocks: ss.SearchSpace, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    arch = all_blocks.sample(0)
    units = 0
    model = Candidate(arch).model()

    def count(_m: nn.Module, i: tuple[torch.Tensor, ...], _o: torch.Tensor) -> None:
        nonlocal units
        units += i[0][0].numel()

    hooks = [m.register_forward_hook(count) for m in zero_cost.activations(model)]
    with torch.no_grad():
        model.train()(batch[0][:1].expand(2, -1, -1, -1))
    for h in hooks:
        h.remove()
    full = proxies.score("swap", arch, batch)
    assert 1 < full <= units
    few = zero_cost.swap(Candidate(arch, *batch), samples=8)
    assert few <= 2**8 and few < full  # 8 samples saturate: why 64 are used
    with pytest.raises(ProxyError, match="at least 8 inputs"):
        proxies.score("swap", arch, (batch[0][:4], batch[1][:4]))


def test_meco_opt_is_meco_where_no_map_has_more_than_8_channels() -> None:
    narrow = {
        "name": "narrow",
        "resolutions": [16],
        "classes": 5,
        "stem": {"channels": 8, "act": "relu"},
        "defaults": {"type": "ibn", "t": [1], "k": [3], "se": 0, "act": "relu"},
        "stages": [{"channels": 8, "depth": 2}],
        "head": {"conv": 0},
    }
    arch = ss.load_space(narrow).sample(0)
    x = torch.randn(8, 3, 16, 16)
    y = torch.zeros(8, dtype=torch.long)
    assert proxies.score("meco_opt", arch, (x, y)) == pytest.approx(proxies.score("meco", arch, (x, y)))
    wide = ss.load_space("mobilenetv2-cifar").sample(0)
    xw, yw, _ = proxies.default_batch(wide, size=8)
    assert proxies.score("meco_opt", wide, (xw, yw)) != proxies.score("meco", wide, (xw, yw))
