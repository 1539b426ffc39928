"""Shared fixtures: a tiny space, isolated table folder and measurement lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import searchspace as ss

TINY_SPEC: dict[str, Any] = {
    "name": "tiny",
    "resolutions": [16],
    "classes": 4,
    "se_gate": "sigmoid",
    "stem": {"channels": 8, "act": "relu6"},
    "defaults": {"type": ["ibn", "fused"], "t": [1, 2], "k": [3], "se": [0, 0.25], "act": "relu6"},
    "stages": [
        {"channels": 8, "depth": [1, 2]},
        {"channels": 16, "stride": 2, "depth": 1, "choices": {"type": ["tucker", "dsconv", "skip"], "act": "hswish"}},
    ],
    "head": {"conv": 32, "act": "relu6"},
}


@pytest.fixture()
def tiny_space() -> ss.SearchSpace:
    return ss.load_space(TINY_SPEC)


@pytest.fixture(autouse=True)
def _isolated(isolated_tables: Path) -> None:
    """Every test here runs in its own latency-table world (see tests/conftest.py)."""
