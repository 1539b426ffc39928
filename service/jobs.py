"""Jobs: create, list, read, cancel, delete (users); claim, renew, finish, release (workers).

Every function takes the session or the database URL explicitly and scopes
reads to an owner, so a route is a thin wrapper and another user's job is
simply not found. A job is claimed by one conditional UPDATE on its row
(status, lease), which is atomic on SQLite and PostgreSQL alike; trials
within a job are distributed by Optuna and Ray, not here (service.trials
holds what the search found).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import uuid
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import CursorResult, Update, and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from nas.config import SearchConfig
from service import schemas
from service.db import session_scope
from service.errors import ConflictError, InvalidError, NotFoundError, shown
from service.models import FINISHED_STATES, Job, Trial, User, as_utc, utcnow
from service.pagination import decode_cursor, encode_cursor

MAX_PAGE = 1000
JOB_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as create_job makes them


# ------------------------------------------------------------------ users' side
def create_job(session: Session, *, owner: User, config: SearchConfig) -> Job:
    job_id = uuid.uuid4().hex
    space = config.space if isinstance(config.space, str) else str(config.space.get("name", "custom"))
    job = Job(
        id=job_id,
        owner_id=owner.id,
        name=config.name or f"{space} {job_id[:8]}",
        space=space,
        config=json.dumps(config.model_dump(mode="json")),
        study_name=f"hwnas-job-{job_id}",
        status="queued",
        trials_budget=config.budget.trials,
        seconds_budget=config.budget.seconds,
        trials_done=0,
        elapsed=0.0,
        front_size=0,
        best="{}",
        notes="[]",
        latency_tables="{}",
        attempts=0,
        cancel_requested=False,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, owner: User, job_id: str) -> Job:
    if not JOB_ID.fullmatch(job_id):  # never a query with it: PostgreSQL refuses some strings (NUL) outright
        raise NotFoundError(
            f"job_id: {shown(job_id)} is not a job id; expected 32 hex digits (`GET /api/v1/jobs` lists yours)",
            field="job_id",
        )
    job = session.get(Job, job_id)
    if job is None or job.owner_id != owner.id:
        raise NotFoundError(f"job_id: no job {job_id!r} of yours (`GET /api/v1/jobs` lists them)", field="job_id")
    return job


def job_public(job: Job, owner: str, detail: bool = False) -> schemas.JobPublic:
    config = json.loads(job.config)
    fractions = []
    if job.trials_budget:
        fractions.append(job.trials_done / job.trials_budget)
    if job.seconds_budget:
        fractions.append(job.elapsed / job.seconds_budget)
    fraction = 1.0 if job.status == "succeeded" else (min(1.0, max(fractions)) if fractions else None)
    data: dict[str, Any] = dict(
        id=job.id,
        name=job.name,
        owner=owner,
        space=job.space,
        status=job.status,
        created=as_utc(job.created),
        started=job.started and as_utc(job.started),
        finished=job.finished and as_utc(job.finished),
        error=job.error,
        progress=schemas.JobProgress(
            done=job.trials_done,
            budget_trials=job.trials_budget,
            budget_seconds=job.seconds_budget,
            elapsed=job.elapsed,
            fraction=fraction,
        ),
        objectives=[schemas.Objective(**o) for o in config["objectives"]],
        best=json.loads(job.best),
        front_size=job.front_size,
        hypervolume=job.hypervolume,
        attempts=job.attempts,
        worker=job.worker,
        cancel_requested=job.cancel_requested,
        notes=json.loads(job.notes),
        latency_tables=latency_tables(job),
    )
    if detail:
        return schemas.JobDetail(**data, config=config)
    return schemas.JobPublic(**data)


def latency_tables(job: Job) -> list[schemas.JobLatencyTable]:
    """The job's latency tables as its worker recorded them (a record this server cannot read is left out)."""
    from pydantic import ValidationError

    try:
        recorded = json.loads(job.latency_tables or "{}")
    except ValueError:
        return []
    out = []
    for item in recorded.values() if isinstance(recorded, dict) else []:
        try:
            out.append(schemas.JobLatencyTable.model_validate(item))
        except ValidationError:
            continue
    return out


def latency_warnings(job: Job) -> list[str]:
    """One line per latency profile of the job predicted from a table of another host."""
    return [t.warning for t in latency_tables(job) if t.foreign and t.warning]


def updated(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed (Session.execute is typed as returning a Result; an UPDATE's is a CursorResult)."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def list_jobs(
    session: Session, *, owner: User, status: str | None, cursor: str | None, limit: int
) -> schemas.JobsPublic:
    """Newest first; keyset pagination on (created, id), so pages stay stable while jobs are added."""
    where = [Job.owner_id == owner.id]
    if status is not None:
        where.append(Job.status == status)
    count = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    query = select(Job).where(*where)
    if cursor is not None:
        created_s, last_id = decode_cursor(cursor, str, str)
        try:
            created = datetime.fromisoformat(created_s)
        except ValueError:
            created = None
        if created is None or not JOB_ID.fullmatch(last_id):
            raise InvalidError(
                "cursor: not a cursor this server gave out (use next_cursor from the previous page)", field="cursor"
            )
        query = query.where(or_(Job.created < created, and_(Job.created == created, Job.id < last_id)))
    rows = session.scalars(query.order_by(Job.created.desc(), Job.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = encode_cursor(page[-1].created.isoformat(), page[-1].id) if len(rows) > limit else None
    return schemas.JobsPublic(data=[job_public(j, owner.name) for j in page], count=count, next_cursor=next_cursor)


def cancel_job(session: Session, *, owner: User, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it within seconds."""
    job = get_job(session, owner=owner, job_id=job_id)
    if job.status in FINISHED_STATES:
        raise ConflictError(f"job {job_id} is already {job.status}; only a queued or running job can be cancelled")
    now = time.time()
    finished_now = (
        update(Job)
        .where(Job.id == job_id, or_(Job.status == "queued", and_(Job.status == "running", Job.lease_expires < now)))
        .values(status="cancelled", finished=utcnow(), cancel_requested=True, worker=None, lease_expires=None)
    )
    if updated(session, finished_now) == 0:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    session.flush()
    session.refresh(job)
    return job


def delete_job(session: Session, *, owner: User, job_id: str, database_url: str) -> None:
    """A finished job goes with its trials and its Optuna study; the shared evaluation cache stays."""
    job = get_job(session, owner=owner, job_id=job_id)
    if job.status not in FINISHED_STATES:
        raise ConflictError(f"job {job_id} is {job.status}; cancel it first, then delete it")
    import optuna

    storage = _optuna_storage(database_url)
    try:
        with contextlib.suppress(KeyError):  # a job that never started has no study
            optuna.delete_study(study_name=job.study_name, storage=storage)
    finally:
        storage.engine.dispose()  # its own pool: closed now, not whenever the garbage collector gets to it
    from nas.store import InflightRow

    session.execute(delete(Trial).where(Trial.job_id == job_id))
    session.execute(delete(InflightRow).where(InflightRow.study == job.study_name))
    session.delete(job)
    session.commit()  # then forget: a request between the two would cache the rows again until they are gone
    from service.trials import TRIALS  # trials reads jobs; the reverse is only this

    TRIALS.forget(job_id)


def _optuna_storage(url: str) -> Any:
    import optuna

    from service.db import engine_kwargs

    return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))


# ------------------------------------------------------------------ workers' side
def claim_job(url: str, *, worker: str, lease_seconds: float) -> Job | None:
    """Take the oldest queued job, or a running one whose worker's lease ran out; None when there is none.

    The UPDATE re-checks the claimable condition on the row, so of two
    workers racing for one job exactly one sees rowcount 1.
    """
    now = time.time()
    with session_scope(url) as session:  # jobs cancelled while their worker was dead: finish them
        session.execute(
            update(Job)
            .where(Job.status == "running", Job.lease_expires < now, Job.cancel_requested.is_(True))
            .values(status="cancelled", finished=utcnow(), worker=None, lease_expires=None)
        )
    claimable = and_(
        Job.cancel_requested.is_(False),
        or_(Job.status == "queued", and_(Job.status == "running", Job.lease_expires < now)),
    )
    with session_scope(url) as session:
        candidates = session.scalars(select(Job.id).where(claimable).order_by(Job.created).limit(8)).all()
    for job_id in candidates:
        with session_scope(url) as session:
            claimed = updated(
                session,
                update(Job)
                .where(Job.id == job_id, claimable)
                .values(
                    status="running",
                    worker=worker,
                    lease_expires=now + lease_seconds,
                    attempts=Job.attempts + 1,
                    started=func.coalesce(Job.started, utcnow()),
                ),
            )
            if claimed == 1:
                return session.get(Job, job_id)
    return None


def renew_lease(url: str, *, job_id: str, worker: str, lease_seconds: float) -> Literal["ok", "cancel", "lost"]:
    """Extend this worker's lease; 'cancel' when the user asked to stop, 'lost' when another worker owns it."""
    with session_scope(url) as session:
        renewed = updated(
            session,
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == "running")
            .values(lease_expires=time.time() + lease_seconds),
        )
        if renewed != 1:
            return "lost"
        return "cancel" if session.scalar(select(Job.cancel_requested).where(Job.id == job_id)) else "ok"


def finish_job(
    url: str, *, job_id: str, worker: str, status: str, error: str | None = None, notes: list[str] | None = None
) -> bool:
    """Set the final state, only if this worker still holds the job (a taken-over job is not overwritten)."""
    values: dict[str, Any] = dict(status=status, finished=utcnow(), worker=None, lease_expires=None, error=error)
    if notes is not None:
        values["notes"] = json.dumps(notes)
    with session_scope(url) as session:
        statement = update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
        return updated(session, statement.values(**values)) == 1


def report_activity(
    url: str, *, job_id: str, worker: str, notes: list[str], tables: dict[str, Any] | None = None
) -> bool:
    """What a running job is doing before its first trial (building a latency table), as its notes; with the
    latency tables it chose. Only while this worker holds the job."""
    values: dict[str, Any] = dict(notes=json.dumps(notes))
    if tables is not None:
        values["latency_tables"] = json.dumps(tables)
    with session_scope(url) as session:
        statement = update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
        return updated(session, statement.values(**values)) == 1


def release_job(url: str, *, job_id: str, worker: str, note: str, retry_after: float = 0.0) -> None:
    """Give a job back (this worker cannot run it now, through no fault of the job).

    With ``retry_after`` the job stays 'running' under no worker until then, so
    no worker claims it again before whatever blocked it can have passed.
    """
    values: dict[str, Any] = dict(worker=None, notes=json.dumps([note]))
    if retry_after > 0:
        values.update(lease_expires=time.time() + retry_after)
    else:
        values.update(status="queued", lease_expires=None)
    with session_scope(url) as session:
        session.execute(
            update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running").values(**values)
        )
