"""Fixtures shared across test packages."""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

# nothing a test does lands in the user's own folders (tables built on first use, host-check verdicts, fitted
# predictors): a private data home for this test process, whatever the environment says, removed at exit
_DATA_HOME = tempfile.mkdtemp(prefix="hwnas-tests-")
atexit.register(shutil.rmtree, _DATA_HOME, True)
os.environ["XDG_DATA_HOME"] = _DATA_HOME
os.environ["HWNAS_LUT_DIR"] = os.path.join(_DATA_HOME, "hwnas", "latency_tables")
os.environ.pop("HWNAS_PREDICTORS", None)
# measurements and computations take turns under a lock of this checkout's test run: its test processes wait for
# one another, not for a benchmark's training runs or a service measuring on the same machine (minutes each)
os.environ["HWNAS_MEASURE_LOCK"] = os.path.join(
    tempfile.gettempdir(), f"hwnas-tests-{hashlib.sha1(str(Path(__file__).resolve()).encode()).hexdigest()[:10]}.lock"
)

PG_URL = os.environ.get("HWNAS_TEST_POSTGRES_URL")
# apps that tests make (some at collection, like the schemathesis module's) do not time their latency tables
# at start; the test of that turns it on in its settings
os.environ["HWNAS_CHECK_TABLES"] = "0"
REQUIRE_PG = os.environ.get("HWNAS_REQUIRE_POSTGRES") == "1"


def postgres_or_skip() -> str:
    """The PostgreSQL test server's URL; skipped without one, failed when CI requires it (HWNAS_REQUIRE_POSTGRES)."""
    if not PG_URL:
        if REQUIRE_PG:
            pytest.fail("HWNAS_REQUIRE_POSTGRES=1 but HWNAS_TEST_POSTGRES_URL is not set")
        pytest.skip("HWNAS_TEST_POSTGRES_URL not set")
    return PG_URL


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
    monkeypatch.setattr("latency_tables.host._MEMORY", {})  # host checks made by earlier tests
    return tmp_path / "luts"
