"""Every operation of the app's OpenAPI schema, fuzzed by schemathesis with a valid key: never a 5xx.

The app runs on a fresh database (SQLite, and PostgreSQL when the test server is configured) seeded with
one finished job from a tiny search, so the fuzzer's job and arch ids are sometimes real ones and the code
behind the 404s runs too. Bounded: ~25 derandomized examples per operation (a few for the slow ones).

The schema is loaded when the module is imported, from an app that touches no database (it is the same
code, so the same schema); each case is sent to the seeded app of its backend.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance

from service.api.main import create_app
from service.latency import forget_tables
from service.settings import Settings
from service.worker import Worker
from tests.service.conftest import fresh_postgres_database, make_keys, make_settings
from tests.service.test_api import job_config

SETTINGS: dict[str, Any] = dict(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
#: slow per example (an ONNX export, a stream): fuzzed lightly, in a test of their own
HEAVY = r"/download$|/events$"

schemathesis.serializer.alias("application/gzip", "application/octet-stream")  # table uploads: raw bytes
schema = schemathesis.openapi.from_asgi(
    "/openapi.json", create_app(Settings(database_url="sqlite://", host="127.0.0.1", auth="auto"), migrate=False)
)


@dataclass
class Seeded:
    app: Any
    headers: dict[str, str]
    job_id: str  # finished, with trials and nets
    cancelled_id: str  # what a DELETE gets, so the finished job stays for the other operations
    arch_id: str

    def real(self, case: Any) -> dict[str, str]:
        job = self.cancelled_id if case.method.upper() == "DELETE" else self.job_id
        return {"job_id": job, "arch_id": self.arch_id}


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'hwnas.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" in metafunc.fixturenames:
        metafunc.parametrize(
            "database",
            ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
            indirect=True,
            scope="module",
        )


@pytest.fixture(scope="module")
def seeded(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The app on its fresh database: alice's key, a finished job with nets, a cancelled job."""
    tmp = tmp_path_factory.mktemp("world")
    with pytest.MonkeyPatch.context() as mp:  # the `isolated_tables` of a module: no shipped or user tables
        mp.setenv("HWNAS_LUT_DIR", str(tmp / "luts"))
        mp.setenv("HWNAS_MEASURE_LOCK", str(tmp / "measure.lock"))
        (tmp / "no-shipped-tables").mkdir()
        mp.setattr("latency_tables.table.PACKAGE_DATA", tmp / "no-shipped-tables")
        forget_tables()  # cached per process: another test's tables must not leak in
        key = make_keys(database, "alice")["alice"]
        settings_ = make_settings(database, tmp)
        app = create_app(settings_)
        headers = {"Authorization": f"Bearer {key}"}
        with TestClient(app) as client:
            job = client.post(
                "/api/v1/jobs", headers=headers, json=job_config(budget={"trials": 4}, dataset={"name": "synthetic"})
            ).json()
            Worker(settings_, name="seed-worker").run(max_jobs=1, idle_exit=5)
            front = client.get(f"/api/v1/jobs/{job['id']}/pareto", headers=headers).json()["data"]
            spare = client.post("/api/v1/jobs", headers=headers, json=job_config()).json()
            assert client.post(f"/api/v1/jobs/{spare['id']}/cancel", headers=headers).status_code == 200
        assert front, "the seed job found no net"
        yield Seeded(app, headers, job["id"], spare["id"], front[0]["arch_id"])
    forget_tables()


def no_server_error(case: Any, seeded: Seeded) -> None:
    # half the cases (by a stable hash of what was generated) get the real ids instead
    if case.path_parameters and zlib.crc32(repr(sorted(case.path_parameters.items())).encode()) % 2:
        real = seeded.real(case)
        case.path_parameters = {k: real.get(k, v) for k, v in case.path_parameters.items()}
    response = case.call(app=seeded.app, headers=seeded.headers)
    where = (case.method, case.formatted_path, case.query, response.status_code, response.content[:300])
    assert response.status_code < 500, where
    if response.status_code >= 400:  # every error is problem details
        assert response.headers.get("content-type", [""])[0] == "application/problem+json", where
    # not_a_server_error and the conformance checks (status code, content type, headers, response schema
    # against the document), and that data the schema forbids is refused; not positive_data_acceptance: a
    # cursor the server never gave out, or a config the schema cannot express as wrong, is rightly a 422
    case.validate_response(
        response,
        headers=seeded.headers,
        additional_checks=[not_a_server_error],
        excluded_checks=[positive_data_acceptance],
    )


@settings(max_examples=25, **SETTINGS)
@schema.exclude(path_regex=HEAVY).parametrize()
def test_no_operation_answers_5xx(case: Any, seeded: Seeded) -> None:
    no_server_error(case, seeded)


@settings(max_examples=6, **SETTINGS)
@schema.include(path_regex=HEAVY).parametrize()
def test_no_download_or_stream_answers_5xx(case: Any, seeded: Seeded) -> None:
    no_server_error(case, seeded)
