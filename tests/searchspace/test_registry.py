"""The registry every extension point uses."""

from __future__ import annotations

import pytest

from latency_tables.errors import LatencyTableError
from latency_tables.runtimes import get_runtime
from searchspace.blocks import get_block_type
from searchspace.errors import UnknownNameError
from searchspace.registry import Registry


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
