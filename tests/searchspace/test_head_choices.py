"""The head's activation choices follow the rule of every other choice: one value, or distinct values."""

from __future__ import annotations

import pytest

import searchspace as ss
from searchspace import SearchSpaceError


def test_a_repeated_head_activation_is_refused_not_counted_twice() -> None:
    data = ss.load_space("mobilenetv2-cifar").to_dict()
    once = ss.SearchSpace.from_dict({**data, "head": {**data["head"], "act": ["relu", "hswish"]}})
    assert (
        once.cardinality()
        == 2 * ss.SearchSpace.from_dict({**data, "head": {**data["head"], "act": "relu"}}).cardinality()
    )
    for field in ("act", "hidden_act"):
        with pytest.raises(SearchSpaceError, match=f"head.{field}: .*choices must not repeat"):
            ss.SearchSpace.from_dict({**data, "head": {**data["head"], field: ["relu", "relu"]}})
