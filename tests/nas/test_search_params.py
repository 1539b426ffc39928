"""A space as Optuna parameters: decide / from_params / to_params agree, option lists never change."""

from __future__ import annotations

import random

import pytest

import searchspace as ss
from nas import search_params


@pytest.mark.parametrize("name", ss.list_spaces())
def test_params_and_architectures_round_trip(name: str) -> None:
    space = ss.load_space(name)
    dists = search_params.distributions(space)
    rng = random.Random(name)
    for _ in range(15):
        params: dict[str, object] = {}
        arch = search_params.decide(space, lambda n, opts, params=params: params.setdefault(n, rng.choice(opts)))
        assert space.contains(arch), space.explain(arch)
        # every asked parameter is one of distributions(), with exactly its option list
        assert all(n in dists for n in params)
        assert search_params.from_params(space, params) == arch  # type: ignore[arg-type]
        back = search_params.to_params(space, arch)
        assert back is not None and search_params.from_params(space, back) == arch


def test_options_do_not_depend_on_earlier_choices() -> None:
    """Optuna forbids a categorical whose choices change: every ask of a name must offer the same list."""
    space = ss.load_space("fbnet-cifar")
    seen: dict[str, list[object]] = {}
    rng = random.Random(0)

    def choose(name: str, opts: list[object]) -> object:
        assert seen.setdefault(name, opts) == opts, name
        return rng.choice(opts)

    for _ in range(50):
        search_params.decide(space, choose)  # type: ignore[arg-type]
    assert set(seen) <= set(search_params.distributions(space))


def test_absent_layers_have_no_parameters() -> None:
    space = ss.load_space("mobilenetv2-cifar")
    shallow: dict[str, object] = {}

    def choose(name: str, opts: list[object]) -> object:
        shallow[name] = min(opts, key=lambda o: (not isinstance(o, int), o)) if name.endswith("depth") else opts[0]
        return shallow[name]

    arch = search_params.decide(space, choose)  # type: ignore[arg-type]
    for i, stage in enumerate(space.stages):
        depth = shallow.get(f"s{i}.depth", stage.depth[0])
        assert not any(k.startswith(f"s{i}.l{j}.") for k in shallow for j in range(int(depth), max(stage.depth)))
    assert len(arch.blocks) == sum(int(shallow.get(f"s{i}.depth", s.depth[0])) for i, s in enumerate(space.stages))


def test_known_nets_map_to_params_in_their_spaces() -> None:
    for net, space in [
        ("mobilenet_v2", "mobilenetv2"),
        ("mobilenet_v3_large", "mobilenetv3"),
        ("mobilenet_v3_small", "mobilenetv3"),
        ("mobiledet_cpu", "mobiledet"),
        ("mobiledet_dsp", "mobiledet"),
        ("mobiledet_edgetpu", "mobiledet"),
    ]:
        sp, arch = ss.load_space(space), ss.known_architecture(net)
        params = search_params.to_params(sp, arch)
        assert params is not None and search_params.from_params(sp, params) == arch, net
    assert search_params.to_params(ss.load_space("mobilenetv2-cifar"), ss.known_architecture("mobilenet_v2")) is None


def test_missing_or_foreign_params_are_named() -> None:
    space = ss.load_space("mobilenetv2-cifar")
    with pytest.raises(KeyError, match="params: missing 'alpha'"):
        search_params.from_params(space, {})
    with pytest.raises(KeyError, match=r"params: alpha=0\.3 is not one of"):
        search_params.from_params(space, {"alpha": 0.3})
