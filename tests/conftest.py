"""Fixtures shared across test packages."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture()
def isolated_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user tables, no shipped tables, a private measurement lock: a test's own latency-table world.

    Shipped tables must never be written by a test; and a test must neither
    wait behind nor share a lock with a real table build on the machine.
    """
    monkeypatch.setenv("HWNAS_LUT_DIR", str(tmp_path / "luts"))
    monkeypatch.setenv("HWNAS_MEASURE_LOCK", str(tmp_path / "measure.lock"))
    empty = tmp_path / "no-shipped-tables"
    empty.mkdir()
    monkeypatch.setattr("latency_tables.table.PACKAGE_DATA", empty)
    return tmp_path / "luts"
