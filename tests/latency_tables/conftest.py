"""Shared fixtures: a tiny space, isolated table folder and measurement lock."""

from __future__ import annotations

from pathlib import Path

import pytest

import searchspace as ss
from tests.specs import TINY_SPEC


@pytest.fixture()
def tiny_space() -> ss.SearchSpace:
    return ss.load_space(TINY_SPEC)


@pytest.fixture(autouse=True)
def _isolated(isolated_tables: Path) -> None:
    """Every test here runs in its own latency-table world (see tests/conftest.py)."""
