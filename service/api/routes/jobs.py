"""/api/v1/jobs: submit, list, read, cancel, delete; trials, Pareto front, hypervolume, live progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent

from nas.config import SearchConfig
from service import configs, jobs, schemas, trials
from service.api.deps import SessionDep, SettingsDep, UserDep
from service.api.problems import errors
from service.db import session_scope
from service.errors import NotFoundError, ServiceError
from service.models import FINISHED_STATES, Job, User

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"], responses=errors(401))

JOB_EXAMPLE = {
    "space": "mobilenetv2-cifar",
    "objectives": [
        {"metric": "proxy:default", "direction": "maximize"},
        {"metric": "latency:ort-cpu-fp32-t1", "direction": "minimize"},
    ],
    "constraints": [{"metric": "params", "max": 2000000}],
    "strategy": {"name": "tpe"},
    "budget": {"trials": 40},
    "workers": 1,
    "seed": 0,
}
Limit = Annotated[int, Query(ge=1, le=jobs.MAX_PAGE, description="items per page")]


def config_schema() -> dict[str, Any]:
    """SearchConfig's JSON schema with its ``$defs`` inlined: in an OpenAPI document ``#/$defs/X`` would point
    at the document's root, where there is none. ``ray_address`` is left out: the server sets it."""
    raw = SearchConfig.model_json_schema()
    defs = raw.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(
                    {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
                )
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    out = inline(raw)
    out["properties"].pop("ray_address", None)
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; expected a finite number")


class UnsupportedMediaType(ServiceError):
    status = 415
    title = "Unsupported media type"


@router.post(
    "",
    status_code=201,
    response_model=schemas.JobDetail,
    responses=errors(400, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": config_schema(), "example": JOB_EXAMPLE}},
        }
    },
)
async def create_job(request: Request, user: UserDep, settings: SettingsDep) -> schemas.JobPublic:
    """Queue a search job; the body is a SearchConfig (a `hwnas search` YAML file, as JSON)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type: expected application/json, got {content_type or 'none'}", field="Content-Type"
        )
    raw = await request.body()
    if not raw.strip():
        raise ServiceError("body: missing; expected a search config as a JSON object", field="body")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ServiceError(f"body: not valid JSON ({exc})", field="body") from None
    except RecursionError:
        raise ServiceError(
            f"body: nested too deeply to parse; expected a search config (at most {configs.MAX_DEPTH} levels)",
            field="body",
        ) from None
    owner_id = user.id

    def create() -> schemas.JobPublic:
        config = configs.parse_config(data, settings)
        with session_scope(settings.database_url) as session:
            owner = session.get(User, owner_id)
            if owner is None:
                raise NotFoundError("user: the key's user was deleted during the request")
            job = jobs.create_job(session, owner=owner, config=config)
            return jobs.job_public(job, owner.name, detail=True)

    return await run_in_threadpool(create)


@router.get("", response_model=schemas.JobsPublic, responses=errors(422))
def list_jobs(
    user: UserDep,
    session: SessionDep,
    limit: Limit = 50,
    status: schemas.JobStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> schemas.JobsPublic:
    """Your jobs, newest first."""
    return jobs.list_jobs(session, owner=user, status=status, cursor=cursor, limit=limit)


@router.get("/{job_id}", response_model=schemas.JobDetail, responses=errors(404))
def get_job(job_id: str, user: UserDep, session: SessionDep) -> schemas.JobPublic:
    return jobs.job_public(jobs.get_job(session, owner=user, job_id=job_id), user.name, detail=True)


@router.post("/{job_id}/cancel", response_model=schemas.JobPublic, responses=errors(404, 409))
def cancel_job(job_id: str, user: UserDep, session: SessionDep) -> schemas.JobPublic:
    """Stop a queued or running job; what a running one found is kept (409 for a finished job)."""
    return jobs.job_public(jobs.cancel_job(session, owner=user, job_id=job_id), user.name)


@router.delete("/{job_id}", status_code=204, response_class=Response, responses=errors(404, 409))
def delete_job(job_id: str, user: UserDep, session: SessionDep, settings: SettingsDep) -> Response:
    """Delete a finished job with its trials and study (409 while it is queued or running)."""
    jobs.delete_job(session, owner=user, job_id=job_id, database_url=settings.database_url)
    return Response(status_code=204)


@router.get(
    "/{job_id}/trials",
    response_model=schemas.TrialsPublic,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}, **errors(404, 422)},
)
def list_trials(
    job_id: str,
    user: UserDep,
    session: SessionDep,
    limit: Limit = 100,
    sort: Annotated[str, Query(max_length=200, description="number, seconds or a metric name")] = "number",
    order: Literal["asc", "desc"] = "asc",
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    state: Literal["COMPLETE", "FAIL", "complete", "fail"] | None = None,
    feasible: bool | None = None,
    on_front: bool | None = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """A page of the job's trials (format=csv: all of them, filtered and sorted, as CSV)."""
    job = jobs.get_job(session, owner=user, job_id=job_id)
    page, rows, front = trials.list_trials(
        session,
        job=job,
        sort=sort,
        order=order,
        cursor=cursor,
        limit=limit,
        state=state,
        feasible=feasible,
        on_front=on_front,
    )
    if format == "csv":
        return Response(
            trials.trials_csv(rows, front),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{job_id}-trials.csv"'},
        )
    return page


@router.get("/{job_id}/pareto", response_model=schemas.ParetoPublic, responses=errors(404))
def pareto(job_id: str, user: UserDep, session: SessionDep) -> schemas.ParetoPublic:
    """The feasible non-dominated trials, sorted by the first objective."""
    return trials.pareto(session, job=jobs.get_job(session, owner=user, job_id=job_id))


@router.get("/{job_id}/trials/{number}", response_model=schemas.TrialPublic, responses=errors(404, 422))
def get_trial(job_id: str, number: int, user: UserDep, session: SessionDep) -> schemas.TrialPublic:
    """One finished trial by its number (what a click on a plotted point opens)."""
    return trials.get_trial(session, job=jobs.get_job(session, owner=user, job_id=job_id), number=number)


@router.get("/{job_id}/points", response_model=schemas.PointsPublic, responses=errors(404, 422))
def points(
    job_id: str,
    request: Request,
    user: UserDep,
    session: SessionDep,
    digits: Annotated[
        int | None, Query(ge=1, le=17, description="round metrics to this many significant digits (a plot needs 4-6)")
    ] = None,
    arch_ids: Annotated[bool, Query(description="false leaves the arch_ids column out")] = True,
) -> Response:
    """Every trial as parallel columns (number, arch_id, feasible, on_front, each metric), for plotting.

    The answer is encoded (and gzipped) once per state of the job, not per request.
    """
    job = jobs.get_job(session, owner=user, job_id=job_id)
    gz = "gzip" in request.headers.get("accept-encoding", "")
    body = trials.points_json(session, job=job, digits=digits, arch_ids=arch_ids, gzipped=gz)
    headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"} if gz else {"Vary": "Accept-Encoding"}
    return Response(body, media_type="application/json", headers=headers)


@router.get("/{job_id}/hypervolume", response_model=schemas.HypervolumePublic, responses=errors(404))
def hypervolume(job_id: str, user: UserDep, session: SessionDep) -> schemas.HypervolumePublic:
    """Hypervolume of the feasible front after each trial (objectives in their own units)."""
    return trials.hypervolume_history(session, job=jobs.get_job(session, owner=user, job_id=job_id))


def _own_job(job_id: str, user: UserDep, session: SessionDep) -> schemas.JobPublic:
    """The job, or 404 before a stream starts (an error inside a stream could no longer change its status)."""
    return jobs.job_public(jobs.get_job(session, owner=user, job_id=job_id), user.name)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
)
async def events(
    request: Request, job: Annotated[schemas.JobPublic, Depends(_own_job)], user: UserDep, settings: SettingsDep
) -> AsyncIterator[ServerSentEvent]:
    """Live progress as server-sent events: a `job` event whenever the job changes, until it finishes.

    Clients without EventSource poll `GET /api/v1/jobs/{id}` instead.
    """
    job_id, owner_name = job.id, user.name

    def read() -> schemas.JobPublic:
        with session_scope(settings.database_url) as session:
            row = session.get(Job, job_id)
            if row is None:  # deleted while watched
                return job.model_copy(update={"status": "cancelled"})
            return jobs.job_public(row, owner_name)

    current, last = job, None
    while True:
        text = current.model_dump_json()
        if text != last:
            last = text
            yield ServerSentEvent(event="job", id=str(current.progress.done), data=json.loads(text))
        if current.status in FINISHED_STATES or await request.is_disconnected():
            return
        await asyncio.sleep(0.5)
        current = await run_in_threadpool(read)
