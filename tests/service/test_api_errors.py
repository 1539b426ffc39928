"""Bad input at the HTTP boundary, one row per mistake: its status, a problem+json body whose detail names the
field and what was expected, and nothing written. On SQLite and on PostgreSQL (the `world` fixture)."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select, update

from searchspace import list_spaces
from service.db import session_scope
from service.models import ApiKey, Architecture, Job, Trial
from tests.service.conftest import World
from tests.service.test_api import job_config
from tests.specs import ALL_BLOCKS

JSON = {"Content-Type": "application/json"}
ALICE = "alice"
UNKNOWN_JOB = uuid.uuid4().hex  # well-formed, but nobody's
UNKNOWN_ARCH = "0123456789abcdef"


@dataclass
class Case:
    method: str
    url: str
    status: int
    must: list[str]  # all in the detail: the field it names, what was expected (and the value, where useful)
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    auth: str | None = ALICE  # a user name, or None for no Authorization header
    errors_field: str | None = None  # a field that must appear in the problem's `errors` list


def body(content: bytes | str, content_type: str = "application/json") -> dict[str, Any]:
    return {
        "content": content.encode() if isinstance(content, str) else content,
        "headers": {"Content-Type": content_type},
    }


def _deep_error_space() -> dict[str, Any]:
    space = copy.deepcopy(ALL_BLOCKS)
    space["stages"][1]["depth"] = -2
    return space


def _space(**over: Any) -> dict[str, Any]:
    space = copy.deepcopy(ALL_BLOCKS)
    space.update(over)
    return space


def _no_block_space() -> dict[str, Any]:
    space = copy.deepcopy(ALL_BLOCKS)
    space["stages"][0]["choices"]["groups"] = [3]  # 8 channels cannot be split in 3 groups
    return space


def _nested(levels: int) -> bytes:
    return json.dumps(job_config()).encode()[:-1] + b', "x": ' + b"[" * levels + b"]" * levels + b"}"


def post_job(status: int, must: list[str], errors_field: str | None = None, **over: Any) -> Case:
    return Case("POST", "/api/v1/jobs", status, must, json=job_config(**over), errors_field=errors_field)


CASES: dict[str, Case] = {
    # ------------------------------------------------------------ the body itself
    "malformed-json": Case("POST", "/api/v1/jobs", 400, ["body: not valid JSON"], **body('{"space": ')),
    "body-is-a-list": Case("POST", "/api/v1/jobs", 422, ["body: expected a mapping", "got list"], json=[job_config()]),
    "body-is-null": Case("POST", "/api/v1/jobs", 422, ["body: expected a mapping"], **body("null")),
    "text-plain": Case(
        "POST",
        "/api/v1/jobs",
        415,
        ["Content-Type: expected application/json", "text/plain"],
        **body(json.dumps(job_config()), "text/plain"),
    ),
    "text-yaml": Case(
        "POST",
        "/api/v1/jobs",
        415,
        ["Content-Type: expected application/json", "text/yaml"],
        **body("space: mobilenetv2-cifar\n", "text/yaml"),
    ),
    "no-content-type": Case("POST", "/api/v1/jobs", 415, ["Content-Type: expected application/json", "got none"]),
    "missing-body": Case("POST", "/api/v1/jobs", 400, ["body: missing", "expected a search config"], headers=JSON),
    "not-utf8": Case("POST", "/api/v1/jobs", 400, ["body: not valid JSON"], **body(b'{"name": "\xff"}')),
    "nested-too-deeply": Case(
        "POST", "/api/v1/jobs", 400, ["body: nested too deeply", "expected a search config"], **body(_nested(100_000))
    ),
    "nested-deep-but-parsable": Case(
        "POST", "/api/v1/jobs", 422, ["x[0][0]", "nested more than 32 levels"], **body(_nested(500))
    ),
    "nan-is-not-json": Case(
        "POST",
        "/api/v1/jobs",
        400,
        ["body: not valid JSON", "NaN is not a JSON number", "expected a finite number"],
        **body(json.dumps(job_config())[:-1] + ', "hv_reference": [NaN, NaN]}'),
    ),
    "body-too-large": Case(
        "POST",
        "/api/v1/jobs",
        413,
        ["body: larger than", "1,000,000 bytes", "HWNAS_MAX_BODY_BYTES"],
        **body(b'{"name": "' + b"x" * 1_200_000 + b'"}'),
        errors_field="body",
    ),
    # ------------------------------------------------------------ the search config
    "unknown-top-level-key": post_job(422, ["colour: unknown key", "check the spelling"], "colour", colour="red"),
    "missing-objectives": Case(
        "POST",
        "/api/v1/jobs",
        422,
        ["objectives: required field is missing"],
        json={k: v for k, v in job_config().items() if k != "objectives"},
        errors_field="objectives",
    ),
    "no-objectives": post_job(422, ["objectives: List should have at least 1 item"], "objectives", objectives=[]),
    "unknown-space-name": post_job(
        422,
        ["space: unknown built-in space 'imagenet-giant'", "expected one of", *list_spaces()],
        "space",
        space="imagenet-giant",
    ),
    "space-of-the-wrong-type": post_job(422, ["space", "valid string", "valid dictionary"], space=5),
    "space-spec-error-deep-inside": post_job(
        422,
        ["space", "stages[1].depth: depth must be between 0 and 32", "got [-2]"],
        "space.stages[1].depth",
        space=_deep_error_space(),
    ),
    "space-beyond-block-limits": post_job(
        422,
        ["space: its nets would have layers no block may have", "16384", "expected fewer channels"],
        "space",
        space=_space(stem={"channels": 10**9, "act": ["relu"]}),
    ),
    "space-without-a-valid-block": post_job(
        422, ["space: stages[0]", "no valid block for cin=8"], "space", space=_no_block_space()
    ),
    "unknown-metric": post_job(
        422,
        ["objectives[0].metric", "'accuracy'", "expected params, macs"],
        "objectives[0].metric",
        objectives=[{"metric": "accuracy", "direction": "maximize"}],
    ),
    "unknown-proxy": post_job(
        422,
        ["objectives[0].metric: unknown proxy 'oracle'", "expected one of", "synflow"],
        "objectives[0].metric",
        objectives=[{"metric": "proxy:oracle", "direction": "maximize"}],
    ),
    "unknown-latency-profile": post_job(
        422,
        ["objectives[1].metric", "'phone' is not a profile id", "e.g. ort-cpu-fp32-t1"],
        "objectives[1].metric",
        objectives=[
            {"metric": "params", "direction": "minimize"},
            {"metric": "latency:phone", "direction": "minimize"},
        ],
    ),
    "unknown-direction": post_job(
        422,
        ["objectives[0].direction", "'minimize' or 'maximize'"],
        "objectives[0].direction",
        objectives=[{"metric": "params", "direction": "down"}],
    ),
    "unknown-strategy": post_job(
        422,
        ["strategy.name: unknown strategy 'annealing'", "expected one of", "tpe"],
        "strategy.name",
        strategy={"name": "annealing"},
    ),
    "unknown-strategy-option": post_job(
        422,
        ["strategy.options: population not understood by 'random'"],
        "strategy.options",
        strategy={"name": "random", "options": {"population": 8}},
    ),
    "duplicate-objective": post_job(
        422,
        ["objectives: params appears twice"],
        "objectives",
        objectives=[{"metric": "params", "direction": "minimize"}] * 2,
    ),
    "negative-trials": post_job(
        422, ["budget.trials", "greater than or equal to 1"], "budget.trials", budget={"trials": -3}
    ),
    "zero-workers": post_job(422, ["workers", "greater than or equal to 1"], "workers", workers=0),
    "budget-without-trials-or-seconds": post_job(422, ["budget: give trials and/or seconds"], "budget", budget={}),
    "constraint-min-above-max": post_job(
        422,
        ["constraints[0]: min (10.0) is above max (1.0)"],
        "constraints[0]",
        constraints=[{"metric": "params", "min": 10, "max": 1}],
    ),
    "constraint-without-bounds": post_job(
        422, ["constraints[0]: give max and/or min"], "constraints[0]", constraints=[{"metric": "params"}]
    ),
    "hv-reference-wrong-length": post_job(
        422, ["hv_reference: one value per objective (2), got 3"], "hv_reference", hv_reference=[1.0, 2.0, 3.0]
    ),
    "seed-out-of-range": post_job(422, ["seed", "less than or equal to 2147483647"], "seed", seed=2**40),
    "nul-in-name": post_job(422, ["name: contains a NUL character", "expected text without it"], "name", name="a\x00b"),
    "ray-address-from-a-client": post_job(
        422, ["ray_address: set by the server", "HWNAS_RAY_ADDRESS"], "ray_address", ray_address="ray://10.0.0.1:10001"
    ),
    "dataset-path-outside-data-dir": post_job(
        422, ["dataset.path", "only read datasets under"], "dataset.path", dataset={"name": "folder", "path": "/etc"}
    ),
    "unknown-dataset": post_job(
        422,
        ["dataset.name: unknown dataset 'imagenet'", "expected one of", "fashion-mnist"],
        "dataset.name",
        dataset={"name": "imagenet"},
    ),
    "unknown-dataset-option": post_job(
        422,
        ["dataset.options: colour not understood by 'synthetic'", "expected", "classes"],
        "dataset.options",
        dataset={"name": "synthetic", "options": {"colour": 1}},
    ),
    "dataset-without-its-path": post_job(
        422, ["dataset.path: dataset 'folder' needs a path"], "dataset.path", dataset={"name": "folder"}
    ),
    "over-max-trials": post_job(
        422,
        ["budget.trials: 200000 is over", "limit of 100000", "HWNAS_MAX_TRIALS"],
        "budget.trials",
        budget={"trials": 200_000},
    ),
    "over-max-seconds": post_job(
        422, ["budget.seconds", "HWNAS_MAX_SECONDS"], "budget.seconds", budget={"seconds": 10 * 86400}
    ),
    "over-max-workers": post_job(
        422, ["workers: 100 is over", "limit of 64", "HWNAS_MAX_WORKERS"], "workers", workers=100
    ),
    # ------------------------------------------------------------ jobs that are not there
    "get-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}", 404, ["job_id: no job", UNKNOWN_JOB]),
    "cancel-unknown-job": Case("POST", f"/api/v1/jobs/{UNKNOWN_JOB}/cancel", 404, ["job_id: no job"]),
    "delete-unknown-job": Case("DELETE", f"/api/v1/jobs/{UNKNOWN_JOB}", 404, ["job_id: no job"]),
    "trials-of-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}/trials", 404, ["job_id: no job"]),
    "pareto-of-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}/pareto", 404, ["job_id: no job"]),
    "hypervolume-of-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}/hypervolume", 404, ["job_id: no job"]),
    "events-of-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}/events", 404, ["job_id: no job"]),
    "another-users-job": Case("GET", "/api/v1/jobs/{queued}", 404, ["job_id: no job"], auth="bob"),
    "job-id-of-5000-chars": Case(
        "GET",
        "/api/v1/jobs/" + "7" * 5000,
        404,
        ["job_id:", "is not a job id", "expected 32 hex digits", "(5,000 characters)"],
        errors_field="job_id",
    ),
    "job-id-with-nul": Case("GET", "/api/v1/jobs/%00abc", 404, ["job_id:", "expected 32 hex digits"]),
    "job-id-climbing-out": Case("GET", "/api/v1/jobs/..%2F..%2Fhealthz", 404, ["no such endpoint"]),
    "job-id-with-dot-dot": Case("GET", "/api/v1/jobs/{queued}..", 404, ["job_id:", "expected 32 hex digits"]),
    # ------------------------------------------------------------ lists, pages, filters, formats
    "bad-cursor": Case(
        "GET",
        "/api/v1/jobs?cursor=not-a-cursor",
        422,
        ["cursor: not a cursor this server gave out", "use next_cursor"],
        errors_field="cursor",
    ),
    "forged-cursor": Case("GET", "/api/v1/jobs?cursor=WyIyMDI1LTAxLTAxIiwgNV0", 422, ["cursor: not a cursor"]),
    "bad-trials-cursor": Case(
        "GET",
        "/api/v1/jobs/{queued}/trials?cursor=WyJhYmMiXQ",
        422,
        ["cursor: not a cursor this server gave out"],
        errors_field="cursor",
    ),
    "limit-zero": Case(
        "GET", "/api/v1/jobs?limit=0", 422, ["limit", "greater than or equal to 1"], errors_field="limit"
    ),
    "limit-100000": Case(
        "GET", "/api/v1/jobs?limit=100000", 422, ["limit", "less than or equal to 1000"], errors_field="limit"
    ),
    "limit-not-a-number": Case("GET", "/api/v1/jobs/{queued}/trials?limit=ten", 422, ["limit", "valid integer"]),
    "bad-status-filter": Case(
        "GET", "/api/v1/jobs?status=done", 422, ["status", "'queued'", "'succeeded'"], errors_field="status"
    ),
    "sort-by-unknown-metric": Case(
        "GET",
        "/api/v1/jobs/{queued}/trials?sort=accuracy",
        422,
        ["sort: unknown metric 'accuracy'", "expected number, seconds or one of", "proxy:synflow"],
        errors_field="sort",
    ),
    "bad-trials-order": Case("GET", "/api/v1/jobs/{queued}/trials?order=up", 422, ["order", "'asc' or 'desc'"]),
    "bad-trials-format": Case(
        "GET", "/api/v1/jobs/{queued}/trials?format=xlsx", 422, ["format", "'json' or 'csv'"], errors_field="format"
    ),
    "bad-download-format": Case(
        "GET",
        f"/api/v1/architectures/{UNKNOWN_ARCH}/download?format=tflite",
        422,
        ["format", "'onnx'", "'pytorch'"],
        errors_field="format",
    ),
    "unknown-arch-id": Case("GET", f"/api/v1/architectures/{UNKNOWN_ARCH}", 404, ["arch_id: no net", UNKNOWN_ARCH]),
    "download-unknown-arch": Case(
        "GET", f"/api/v1/architectures/{UNKNOWN_ARCH}/download?format=json", 404, ["arch_id: no net"]
    ),
    "malformed-arch-id": Case(
        "GET",
        "/api/v1/architectures/" + "z" * 300,
        404,
        ["arch_id:", "is not an architecture id", "expected 16 hex digits"],
    ),
    "unknown-space": Case(
        "GET", "/api/v1/spaces/imagenet-giant", 404, ["name: unknown search space", "mobilenetv2-cifar"]
    ),
    "describe-bad-json": Case("GET", "/api/v1/architectures/describe?arch=%7Bnope", 422, ["arch: not valid JSON"]),
    "describe-json-nested-too-deeply": Case(
        "GET",
        "/api/v1/architectures/describe?arch=" + "%7B%22a%22:" + "%5B" * 5000,
        422,
        ["arch: JSON nested too deeply"],
    ),
    "validate-space-not-an-object": Case(
        "POST", "/api/v1/spaces/validate", 422, ["body", "valid dictionary"], json=["stages"]
    ),
    "upload-empty-table": Case("POST", "/api/v1/devices/tables", 422, ["body: expected a latency table"], headers=JSON),
    "upload-not-a-table": Case(
        "POST", "/api/v1/devices/tables", 422, ["body: not a latency table"], json={"format": "csv"}
    ),
    # ------------------------------------------------------------ state conflicts
    "cancel-a-finished-job": Case(
        "POST",
        "/api/v1/jobs/{succeeded}/cancel",
        409,
        ["is already succeeded", "only a queued or running job can be cancelled"],
    ),
    "delete-a-queued-job": Case("DELETE", "/api/v1/jobs/{queued}", 409, ["is queued", "cancel it first"]),
    "delete-a-running-job": Case("DELETE", "/api/v1/jobs/{running}", 409, ["is running", "cancel it first"]),
    # ------------------------------------------------------------ who you are
    "no-authorization": Case("GET", "/api/v1/jobs", 401, ["Authorization:", "needs an API key", "Bearer"], auth=None),
    "invalid-key": Case(
        "GET",
        "/api/v1/jobs",
        401,
        ["Authorization: this API key is not valid"],
        auth=None,
        headers={"Authorization": "Bearer hwnas_abcdefgh_" + "x" * 40},
    ),
    "malformed-authorization": Case(
        "GET",
        "/api/v1/jobs",
        401,
        ["Authorization: expected 'Bearer hwnas_"],
        auth=None,
        headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    ),
    "bearer-without-key": Case(
        "GET",
        "/api/v1/jobs",
        401,
        ["Authorization: expected 'Bearer hwnas_"],
        auth=None,
        headers={"Authorization": "Bearer"},
    ),
    "key-of-the-wrong-shape": Case(
        "POST",
        "/api/v1/jobs",
        401,
        ["Authorization: expected 'Bearer hwnas_"],
        auth=None,
        headers={"Authorization": "Bearer sk-1234"},
        json=job_config(),
    ),
    "no-key-for-an-unknown-job": Case("GET", f"/api/v1/jobs/{UNKNOWN_JOB}", 401, ["Authorization:"], auth=None),
    # ------------------------------------------------------------ the wrong door
    "unknown-route": Case("GET", "/api/v1/models", 404, ["no such endpoint: GET /api/v1/models"]),
    "wrong-method": Case("PUT", "/api/v1/jobs", 405, ["PUT is not allowed on /api/v1/jobs"]),
    "wrong-method-on-a-job": Case(
        "PATCH", "/api/v1/jobs/{queued}", 405, ["PATCH is not allowed", "expected one of DELETE, GET"]
    ),
}


def _make_jobs(world: World, url: str) -> dict[str, str]:
    """The jobs a case's URL names ({queued}, {running}, {succeeded}), alice's; states set directly."""
    ids: dict[str, str] = {}
    for state in ("queued", "running", "succeeded"):
        if "{" + state + "}" not in url:
            continue
        r = world.client.post("/api/v1/jobs", json=job_config(), headers=world.as_user(ALICE))
        assert r.status_code == 201, r.text
        ids[state] = r.json()["id"]
        if state != "queued":
            with session_scope(world.settings.database_url) as session:
                session.execute(update(Job).where(Job.id == ids[state]).values(status=state))
    return ids


def _snapshot(world: World) -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    with session_scope(world.settings.database_url) as session:
        jobs = sorted(session.execute(select(Job.id, Job.status, Job.cancel_requested, Job.name)).all())
        counts = [session.scalar(select(func.count()).select_from(t)) for t in (Trial, Architecture, ApiKey)]
        revoked = session.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.revoked.is_not(None)))
    return tuple(jobs), tuple(counts), revoked


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_a_problem_naming_the_field(world: World, name: str) -> None:
    case = CASES[name]
    ids = _make_jobs(world, case.url)
    url = case.url.format(**ids) if ids else case.url
    headers = {**(world.as_user(case.auth) if case.auth else {}), **case.headers}
    before = _snapshot(world)

    r = world.client.request(case.method, url, headers=headers, json=case.json, content=case.content)

    assert r.status_code == case.status, (name, r.status_code, r.text[:500])
    assert r.headers["content-type"] == "application/problem+json", r.headers["content-type"]
    problem = r.json()
    assert {"type", "title", "status", "detail"} <= set(problem), problem
    assert problem["status"] == case.status and problem["title"] and problem["type"] == "about:blank"
    detail = problem["detail"]
    for text in case.must:
        assert text in detail, (name, text, detail)
    assert "Traceback" not in r.text and "internal error" not in detail
    assert len(detail) < 1000, "a detail echoes at most a short piece of what it was sent"
    if case.errors_field is not None:
        fields = [e["field"] for e in problem.get("errors", [])]
        assert case.errors_field in fields, (name, problem.get("errors"))
    for error in problem.get("errors", []):
        assert set(error) == {"field", "message"} and error["message"], error
    if case.status == 401:
        assert r.headers.get("www-authenticate") == "Bearer"
    assert _snapshot(world) == before, "a refused request wrote something"


def test_the_table_is_big_and_distinct() -> None:
    assert len(CASES) >= 25
    shapes = {
        (c.method, c.url, json.dumps(c.json, sort_keys=True, default=str), c.content, str(c.headers), c.auth)
        for c in CASES.values()
    }
    assert len(shapes) == len(CASES), "two rows send the same request"


def test_a_refused_submit_then_a_good_one(world: World) -> None:
    """Refusals leave no trace, and the next good request goes through as if none had come before."""
    alice = world.as_user(ALICE)
    for case in CASES.values():
        if case.method == "POST" and case.url == "/api/v1/jobs" and case.auth == ALICE and case.status != 413:
            world.client.post("/api/v1/jobs", headers={**alice, **case.headers}, json=case.json, content=case.content)
    assert world.client.get("/api/v1/jobs", headers=alice).json()["count"] == 0
    r = world.client.post("/api/v1/jobs", json=job_config(), headers=alice)
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert world.client.get("/api/v1/jobs", headers=alice).json()["count"] == 1


def test_a_table_upload_may_be_larger_than_other_bodies(world: World) -> None:
    """Tables have their own limit (HWNAS_MAX_TABLE_BYTES): a 1.2 MB one is read and judged, not cut off."""
    big = b'{"format": "csv", "pad": "' + b"x" * 1_200_000 + b'"}'
    r = world.client.post("/api/v1/devices/tables", content=big, headers={**world.as_user(ALICE), **JSON})
    assert r.status_code == 422 and "not a latency table" in r.json()["detail"]


def test_a_chunked_body_over_the_limit_is_refused_as_it_streams(world: World) -> None:
    def chunks() -> Any:
        yield b'{"name": "'
        for _ in range(12):
            yield b"x" * 100_000
        yield b'"}'

    r = world.client.post("/api/v1/jobs", content=chunks(), headers={**world.as_user(ALICE), **JSON})
    assert r.status_code == 413 and r.headers["content-type"] == "application/problem+json"
    assert "HWNAS_MAX_BODY_BYTES" in r.json()["detail"]
    assert world.client.get("/api/v1/jobs", headers=world.as_user(ALICE)).json()["count"] == 0


def test_405_names_every_method_of_the_resource(world: World) -> None:
    """Allow lists all the routes' methods at that path (GET and DELETE of a job), and only of that resource."""
    r = world.client.patch(f"/api/v1/jobs/{UNKNOWN_JOB}", headers=world.as_user(ALICE))
    assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"DELETE", "GET"}
    r = world.client.options("/api/v1/spaces/validate", headers=world.as_user(ALICE))
    assert r.status_code == 405 and r.headers["allow"] == "POST"  # not the GET of /spaces/{name}


def test_a_space_beyond_block_limits_is_judged_not_a_crash(world: World) -> None:
    r = world.client.post(
        "/api/v1/spaces/validate", json=_space(stem={"channels": 10**9, "act": ["relu"]}), headers=world.as_user(ALICE)
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["valid"] is False and any("16384" in e["message"] for e in answer["errors"])


def test_the_documented_errors_are_problem_details(world: World) -> None:
    """The OpenAPI document says what the errors are: problem+json with the Problem schema, never FastAPI's
    HTTPValidationError; and the job body's schema has no dangling $defs references."""
    doc = world.client.get("/openapi.json").json()
    assert "Problem" in doc["components"]["schemas"] and "HTTPValidationError" not in doc["components"]["schemas"]
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith("4"):
                    assert list(response["content"]) == ["application/problem+json"], (method, path, status)
    body = json.dumps(doc["paths"]["/api/v1/jobs"]["post"]["requestBody"])
    assert "$defs" not in body and "ray_address" not in body
    assert set(doc["paths"]["/api/v1/jobs/{job_id}"]["delete"]["responses"]) >= {"204", "401", "404", "409"}
