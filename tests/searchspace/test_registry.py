"""The registry every extension point uses."""

from __future__ import annotations

import pytest

from latency_tables.errors import LatencyTableError
from latency_tables.runtimes import get_runtime
from searchspace.architecture import Block
from searchspace.blocks import block_type_names, block_types, get_block_type, register_block_type
from searchspace.errors import UnknownNameError
from searchspace.registry import Registry
from searchspace.spec import LayerChoices


def test_registry_rules() -> None:
    reg: Registry[int] = Registry("widget", KeyError)
    reg.register("b", 2)
    reg.register("a", 1)
    assert reg.names() == ["a", "b"] and reg.get("a") == 1 and "b" in reg
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        reg.register("a", 3)
    with pytest.raises(KeyError, match="unknown widget 'c'; expected one of a, b"):
        reg.get("c")


def test_unknown_names_raise_the_owning_packages_errors() -> None:
    with pytest.raises(UnknownNameError, match="unknown block type 'mbconv'; expected one of conv, dsconv"):
        get_block_type("mbconv")
    with pytest.raises(LatencyTableError, match="unknown runtime 'tflite'; expected one of ort, torch"):
        get_runtime("tflite")


def test_unregister_and_registration_order() -> None:
    reg: Registry[int] = Registry("widget", KeyError)
    for name, value in (("b", 2), ("c", 3), ("a", 1)):
        reg.register(name, value)
    assert reg.entries() == [2, 3, 1] and reg.names() == ["a", "b", "c"]
    assert reg.unregister("c") == 3 and "c" not in reg and reg.entries() == [2, 1]
    with pytest.raises(KeyError, match="unknown widget 'c'"):
        reg.unregister("c")


@pytest.mark.parametrize("name", ["my_block", "Ibn2", "2conv", "head2", "stem", "", "a|b"])
def test_block_type_names_must_fit_the_string_form(name: str) -> None:
    conv = type(get_block_type("conv"))
    bad = type("Bad", (conv,), {"name": name})
    with pytest.raises(ValueError, match="block type name"):
        register_block_type(bad())
    assert name not in block_type_names()


@pytest.mark.parametrize("name", block_type_names())
def test_choice_fields_are_what_options_vary_over(name: str) -> None:
    """A type's options differ exactly in its choice_fields: the search asks those and nothing else."""
    block_type = get_block_type(name)
    assert set(block_type.choice_fields) <= set(LayerChoices.model_fields) - {"type", "se_gate"}
    wide = LayerChoices(
        type=(name,),
        t=(1.0, 4.0),
        k=(3, 5),
        se=(0.0, 0.25),
        act=("relu", "hswish"),
        tucker_in=(0.25, 1.0),
        tucker_out=(0.5, 0.75),
        groups=(1, 2),
    )
    n = len(block_type.options(wide, 16, 32, 1, False, 8))
    expected = 1
    for field in block_type.choice_fields:
        expected *= len(getattr(wide, field))
    assert n == expected
    for field in set(LayerChoices.model_fields) - {"type", "se_gate", *block_type.choice_fields}:
        narrow = wide.model_copy(update={field: getattr(wide, field)[:1]})
        assert len(block_type.options(narrow, 16, 32, 1, False, 8)) == n, f"{name} varies over {field}"


def test_built_in_block_types_say_what_they_are() -> None:
    """What used to be spelled out by type name elsewhere (expansion ratio, Tucker's ratios, identity, kinds)."""
    assert [t.name for t in block_types()] == ["ibn", "fused", "tucker", "dsconv", "conv", "skip"]
    assert {t.name for t in block_types() if t.expands} == {"ibn", "fused"}
    assert {t.name: t.choice_fields for t in block_types()} == {
        "ibn": ("t", "k", "se", "act", "groups"),
        "fused": ("t", "k", "se", "act"),
        "tucker": ("tucker_in", "tucker_out", "k", "act"),
        "dsconv": ("k", "act"),
        "conv": ("k", "act"),
        "skip": (),
    }
    assert all(t.calibration_kind == t.name for t in block_types())
    skip = get_block_type("skip")
    assert skip.is_identity(Block(type="skip", cin=8, cout=8)) and not skip.is_identity(
        Block(type="skip", cin=8, cout=16)
    )
