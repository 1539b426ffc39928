"""Jobs: create, list, read, cancel, delete; claim, renew and finish them (workers); their trials and front.

Every function takes the session or the database URL explicitly and scopes
reads to an owner, so a route is a thin wrapper and another user's job is
simply not found. A job is claimed by one conditional UPDATE on its row
(status, lease), which is atomic on SQLite and PostgreSQL alike; trials
within a job are distributed by Optuna and Ray, not here.
"""

from __future__ import annotations

import base64
import contextlib
import csv
import io
import json
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from nas.config import ConfigError, SearchConfig
from nas.pareto import non_dominated, to_minimize
from searchspace import SearchSpaceError
from service import schemas
from service.db import get_engine, session_scope
from service.errors import ConflictError, InvalidError, LimitError, NotFoundError
from service.models import FINISHED_STATES, Architecture, Job, Trial, User, utcnow
from service.settings import Settings

MAX_PAGE = 1000
JOB_ID = re.compile(r"[0-9a-f]{32}")  # uuid4().hex, as create_job makes them


# ------------------------------------------------------------------ configs
_PATH = re.compile(r"[A-Za-z_][\w-]*(\[\d+\])*(\.[A-Za-z_][\w-]*(\[\d+\])*)*")


def field_errors(message: str) -> list[dict[str, str]]:
    """``a.b: msg`` lines (nas/searchspace error style) -> [{field, message}] for problem details.

    A nested spec's lines read ``space: stages[1].depth: msg``: that is field ``space.stages[1].depth``; the
    heading line that announces them (``space: invalid search space (inline spec):``) is no error of its own.
    """
    out = []
    for line in message.splitlines()[1:] or message.splitlines():
        head, sep, rest = line.strip().partition(": ")
        if not sep or " " in head:
            out.append({"field": "", "message": line})
            continue
        if rest.endswith(":"):
            continue
        sub, sep, tail = rest.partition(": ")
        if sep and _PATH.fullmatch(sub):
            head, rest = f"{head}.{sub}", tail
        out.append({"field": head, "message": rest})
    return out


def shown(value: str, limit: int = 60) -> str:
    """``value`` for an error message: quoted, and cut short (a 5,000-character id is not worth echoing)."""
    return repr(value) if len(value) <= limit else repr(value[:limit]) + f"... ({len(value):,} characters)"


MAX_DEPTH = 32  # a search config is a few levels deep; far deeper JSON only exhausts the parsers' stacks


def check_json(data: Any) -> None:
    """Refuse what no database or validator should see: NUL characters (PostgreSQL cannot store them) and
    absurd nesting. Iterative, so a deep body cannot exhaust the stack here."""
    stack: list[tuple[str, Any, int]] = [("", data, 0)]
    while stack:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InvalidError(f"{path}: nested more than {MAX_DEPTH} levels deep; expected a search config",
                               field=path)
        if isinstance(value, str) and "\x00" in value:
            raise InvalidError(f"{path or 'body'}: contains a NUL character (\\x00); expected text without it",
                               field=path or "body")
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if "\x00" in str(key):
                    raise InvalidError(f"{path or 'body'}: the key {shown(str(key))} contains a NUL character "
                                       "(\\x00); expected text without it", field=path or "body")
                stack.append((where, item, depth + 1))
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value))


def parse_config(data: Any, settings: Settings) -> SearchConfig:
    """A submitted SearchConfig, validated and checked against this server's limits (nothing is written)."""
    check_json(data)
    if isinstance(data, dict) and isinstance(data.get("space"), str):
        from searchspace import list_spaces

        if data["space"] not in list_spaces():
            raise InvalidError(f"space: unknown built-in space {data['space']!r}; expected one of "
                               f"{', '.join(list_spaces())}, or a space spec as a JSON object", field="space")
    if isinstance(data, dict) and data.get("ray_address") is not None:
        raise InvalidError("ray_address: set by the server (HWNAS_RAY_ADDRESS), not by a job", field="ray_address")
    try:
        config = SearchConfig.parse(data, "body")
    except ConfigError as exc:
        raise InvalidError(str(exc)) from None
    check_limits(config, settings)
    return config


def check_limits(config: SearchConfig, settings: Settings) -> None:
    budget = config.budget
    if budget.trials is not None and budget.trials > settings.max_trials:
        raise LimitError(f"budget.trials: {budget.trials} is over this server's limit of {settings.max_trials} "
                         "(HWNAS_MAX_TRIALS)", field="budget.trials")
    if budget.trials is None and budget.seconds is None:
        raise LimitError("budget: give trials and/or seconds", field="budget")
    if budget.seconds is not None and budget.seconds > settings.max_seconds:
        raise LimitError(f"budget.seconds: {budget.seconds:g} is over this server's limit of "
                         f"{settings.max_seconds:g} (HWNAS_MAX_SECONDS)", field="budget.seconds")
    if config.workers > settings.max_workers:
        raise LimitError(f"workers: {config.workers} is over this server's limit of {settings.max_workers} "
                         "(HWNAS_MAX_WORKERS)", field="workers")
    check_dataset(config)
    if config.dataset.path is not None:
        root = (settings.data_dir / "datasets").resolve()
        from pathlib import Path

        if not Path(config.dataset.path).resolve().is_relative_to(root):
            raise LimitError(f"dataset.path: a job may only read datasets under {root} on this server",
                             field="dataset.path")
    space = config.load_space()
    if max(space.resolutions) > settings.max_resolution:
        raise LimitError(f"space: resolution {max(space.resolutions)} is over this server's limit of "
                         f"{settings.max_resolution} (HWNAS_MAX_RESOLUTION)", field="space")
    from searchspace.cost import count_cost

    # the largest of a seeded sample: the space's size is a product of choices, its largest net is not enumerable
    rng = random.Random(0)
    try:
        costs = [count_cost(space.sample(rng)) for _ in range(64)]
    except SearchSpaceError as exc:  # a spec that loads but has no net to offer somewhere
        raise InvalidError(f"space: {exc}", field="space") from None
    except ValidationError as exc:  # the spec's bounds let a layer through that no block may be
        from searchspace.validation import describe_validation_error

        reasons = "; ".join(describe_validation_error(exc).splitlines())
        raise InvalidError(f"space: its nets would have layers no block may have ({reasons}); expected fewer "
                           "channels, a smaller width multiplier or expansion ratio", field="space") from None
    params, macs = max(c.params for c in costs), max(c.macs for c in costs)
    if params > settings.max_params:
        raise LimitError(f"space: nets of {params:,} params are over this server's limit of "
                         f"{settings.max_params:,} (HWNAS_MAX_PARAMS)", field="space")
    if macs > settings.max_macs:
        raise LimitError(f"space: nets of {macs:,} MACs are over this server's limit of {settings.max_macs:,} "
                         "(HWNAS_MAX_MACS)", field="space")


def check_dataset(config: SearchConfig) -> None:
    """The dataset section, checked now rather than when the first trial loads it (as DataSpec.load would)."""
    from nas.errors import NasError

    spec = config.dataset
    try:
        source = spec.source()
    except NasError as exc:
        raise InvalidError(f"dataset.name: {exc}", field="dataset.name") from None
    unknown = sorted(set(spec.options) - set(source.options))
    if unknown:
        raise InvalidError(f"dataset.options: {', '.join(unknown)} not understood by {spec.name!r}; expected "
                           f"{', '.join(source.options) or 'none'}", field="dataset.options")
    if source.path == "required" and not spec.path:
        raise InvalidError(f"dataset.path: dataset {spec.name!r} needs a path ({source.description})",
                           field="dataset.path")
    if source.path == "none" and spec.path:
        raise InvalidError(f"dataset.path: dataset {spec.name!r} takes no path; expected none", field="dataset.path")


# ------------------------------------------------------------------ users' side
def create_job(session: Session, *, owner: User, config: SearchConfig) -> Job:
    job_id = uuid.uuid4().hex
    space = config.space if isinstance(config.space, str) else str(config.space.get("name", "custom"))
    job = Job(id=job_id, owner_id=owner.id, name=config.name or f"{space} {job_id[:8]}", space=space,
              config=json.dumps(config.model_dump(mode="json")), study_name=f"hwnas-job-{job_id}", status="queued",
              trials_budget=config.budget.trials, seconds_budget=config.budget.seconds, trials_done=0,
              elapsed=0.0, front_size=0, best="{}", notes="[]", attempts=0, cancel_requested=False)
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, *, owner: User, job_id: str) -> Job:
    if not JOB_ID.fullmatch(job_id):  # never a query with it: PostgreSQL refuses some strings (NUL) outright
        raise NotFoundError(f"job_id: {shown(job_id)} is not a job id; expected 32 hex digits "
                            "(`GET /api/v1/jobs` lists yours)", field="job_id")
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
        id=job.id, name=job.name, owner=owner, space=job.space, status=job.status, created=_utc(job.created),
        started=_utc(job.started), finished=_utc(job.finished), error=job.error,
        progress=schemas.JobProgress(done=job.trials_done, budget_trials=job.trials_budget,
                                     budget_seconds=job.seconds_budget, elapsed=job.elapsed, fraction=fraction),
        objectives=[schemas.Objective(**o) for o in config["objectives"]], best=json.loads(job.best),
        front_size=job.front_size, hypervolume=job.hypervolume, attempts=job.attempts,
        cancel_requested=job.cancel_requested, notes=json.loads(job.notes))
    if detail:
        return schemas.JobDetail(**data, config=config)
    return schemas.JobPublic(**data)


def _utc(moment: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time hwnas stores is UTC."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def _encode_cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, *types: type) -> list[Any]:
    """The parts of a cursor this server gave out, each of its type; anything else is the client's error."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        parts = None
    if (not isinstance(parts, list) or len(parts) != len(types)
            or not all(type(p) is t for p, t in zip(parts, types, strict=True))):
        raise InvalidError("cursor: not a cursor this server gave out (use next_cursor from the previous page)",
                           field="cursor")
    return parts


def list_jobs(session: Session, *, owner: User, status: str | None, cursor: str | None, limit: int
              ) -> schemas.JobsPublic:
    """Newest first; keyset pagination on (created, id), so pages stay stable while jobs are added."""
    where = [Job.owner_id == owner.id]
    if status is not None:
        where.append(Job.status == status)
    count = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    query = select(Job).where(*where)
    if cursor is not None:
        created_s, last_id = _decode_cursor(cursor, str, str)
        try:
            created = datetime.fromisoformat(created_s)
        except ValueError:
            created = None
        if created is None or not JOB_ID.fullmatch(last_id):
            raise InvalidError("cursor: not a cursor this server gave out (use next_cursor from the previous page)",
                               field="cursor")
        query = query.where(or_(Job.created < created, and_(Job.created == created, Job.id < last_id)))
    rows = session.scalars(query.order_by(Job.created.desc(), Job.id.desc()).limit(limit + 1)).all()
    page = rows[:limit]
    next_cursor = _encode_cursor(page[-1].created.isoformat(), page[-1].id) if len(rows) > limit else None
    return schemas.JobsPublic(data=[job_public(j, owner.name) for j in page], count=count, next_cursor=next_cursor)


def cancel_job(session: Session, *, owner: User, job_id: str) -> Job:
    """A queued job is cancelled at once; a running one is flagged and its worker stops it within seconds."""
    job = get_job(session, owner=owner, job_id=job_id)
    if job.status in FINISHED_STATES:
        raise ConflictError(f"job {job_id} is already {job.status}; only a queued or running job can be cancelled")
    now = time.time()
    finished_now = update(Job).where(
        Job.id == job_id, or_(Job.status == "queued", and_(Job.status == "running", Job.lease_expires < now))
    ).values(status="cancelled", finished=utcnow(), cancel_requested=True, worker=None, lease_expires=None)
    if session.execute(finished_now).rowcount == 0:  # type: ignore[attr-defined]
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

    with contextlib.suppress(KeyError):  # a job that never started has no study
        optuna.delete_study(study_name=job.study_name, storage=_optuna_storage(database_url))
    from nas.store import InflightRow

    session.execute(delete(Trial).where(Trial.job_id == job_id))
    session.execute(delete(InflightRow).where(InflightRow.study == job.study_name))
    session.delete(job)
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
        session.execute(update(Job).where(Job.status == "running", Job.lease_expires < now,
                                          Job.cancel_requested.is_(True))
                        .values(status="cancelled", finished=utcnow(), worker=None, lease_expires=None))
    claimable = and_(Job.cancel_requested.is_(False),
                     or_(Job.status == "queued", and_(Job.status == "running", Job.lease_expires < now)))
    with session_scope(url) as session:
        candidates = session.scalars(select(Job.id).where(claimable).order_by(Job.created).limit(8)).all()
    for job_id in candidates:
        with session_scope(url) as session:
            claimed = session.execute(
                update(Job).where(Job.id == job_id, claimable).values(
                    status="running", worker=worker, lease_expires=now + lease_seconds,
                    attempts=Job.attempts + 1, started=func.coalesce(Job.started, utcnow()))
            ).rowcount  # type: ignore[attr-defined]
            if claimed == 1:
                return session.get(Job, job_id)
    return None


@dataclass
class Snapshot:
    done: int
    elapsed: float
    front_size: int
    hypervolume: float | None
    best: dict[str, float] = field(default_factory=dict)


def renew_lease(url: str, *, job_id: str, worker: str, lease_seconds: float
                ) -> Literal["ok", "cancel", "lost"]:
    """Extend this worker's lease; 'cancel' when the user asked to stop, 'lost' when another worker owns it."""
    with session_scope(url) as session:
        renewed = session.execute(update(Job).where(Job.id == job_id, Job.worker == worker,
                                                    Job.status == "running")
                                  .values(lease_expires=time.time() + lease_seconds)).rowcount  # type: ignore
        if renewed != 1:
            return "lost"
        return "cancel" if session.scalar(select(Job.cancel_requested).where(Job.id == job_id)) else "ok"


def finish_job(url: str, *, job_id: str, worker: str, status: str, error: str | None = None,
               notes: list[str] | None = None) -> bool:
    """Set the final state, only if this worker still holds the job (a taken-over job is not overwritten)."""
    values: dict[str, Any] = dict(status=status, finished=utcnow(), worker=None, lease_expires=None, error=error)
    if notes is not None:
        values["notes"] = json.dumps(notes)
    with session_scope(url) as session:
        return session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                               .values(**values)).rowcount == 1  # type: ignore[attr-defined]


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
        session.execute(update(Job).where(Job.id == job_id, Job.worker == worker, Job.status == "running")
                        .values(**values))


def _insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(rows).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(rows).on_conflict_do_nothing())
    else:
        for row in rows:
            if session.get(table, row[table.__mapper__.primary_key[0].name]) is None:
                session.add(table(**row))


def architecture_rows(records: list[Any]) -> list[dict[str, Any]]:
    from searchspace import Architecture as Arch
    from searchspace.cost import count_cost

    out, seen = [], set()
    for r in records:
        if r.arch is None or r.arch_id is None or r.arch_id in seen:
            continue
        seen.add(r.arch_id)
        arch = Arch.decode(r.arch)
        cost = count_cost(arch)
        out.append(dict(arch_id=arch.arch_id, canonical=arch.to_json(), encoding=r.arch, params=cost.params,
                        macs=cost.macs, activations=cost.activations, created=utcnow()))
    return out


def record_trials(url: str, *, job_id: str, records: list[Any], hypervolumes: list[float | None],
                  snapshot: Snapshot | None = None) -> None:
    """Mirror finished trials (nas TrialRecords) into the job's table, with their nets, in one transaction."""
    rows = [dict(job_id=job_id, number=r.number, state=r.state, arch_id=r.arch_id,
                 metrics=json.dumps(r.metrics), objectives=json.dumps(r.objectives) if r.objectives else None,
                 feasible=r.feasible, violations=json.dumps(r.violations), error=r.error, seconds=r.seconds,
                 hypervolume=hv, finished=utcnow())
            for r, hv in zip(records, hypervolumes, strict=True)]
    with session_scope(url) as session:
        _insert_ignore(session, Architecture, architecture_rows(records))
        _insert_ignore(session, Trial, rows)
        if snapshot is not None:
            session.execute(update(Job).where(Job.id == job_id).values(
                trials_done=snapshot.done, elapsed=snapshot.elapsed, front_size=snapshot.front_size,
                hypervolume=snapshot.hypervolume, best=json.dumps(snapshot.best)))


# ------------------------------------------------------------------ reading a job's trials
@dataclass
class _Cached:
    numbers: set[int] = field(default_factory=set)
    rows: list[dict[str, Any]] = field(default_factory=list)
    front: set[int] = field(default_factory=set)
    directions: list[str] = field(default_factory=list)


class TrialCache:
    """A job's trials, parsed once per process and topped up with what is new.

    Reading 10,000 rows and their JSON for every page would cost far more
    than the page; a count per request tells whether anything changed.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def forget(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def get(self, session: Session, job: Job) -> _Cached:
        count = session.scalar(select(func.count()).select_from(Trial).where(Trial.job_id == job.id)) or 0
        with self._lock:
            cached = self._jobs.get(job.id)
            if cached is None:
                cached = self._jobs[job.id] = _Cached(directions=[o["direction"] for o in
                                                                  json.loads(job.config)["objectives"]])
            if count == len(cached.numbers):
                return cached
            numbers = set(session.scalars(select(Trial.number).where(Trial.job_id == job.id)).all())
            new = sorted(numbers - cached.numbers)
            for start in range(0, len(new), 500):
                chunk = new[start:start + 500]
                for t in session.scalars(select(Trial).where(Trial.job_id == job.id, Trial.number.in_(chunk))):
                    cached.rows.append(dict(
                        number=t.number, state=t.state, arch_id=t.arch_id, metrics=json.loads(t.metrics),
                        objectives=json.loads(t.objectives) if t.objectives else None, feasible=t.feasible,
                        violations=json.loads(t.violations), error=t.error, seconds=t.seconds,
                        hypervolume=t.hypervolume))
            cached.numbers |= set(new)
            cached.rows.sort(key=lambda r: r["number"])
            ok = [r for r in cached.rows if r["feasible"] and r["objectives"] is not None]
            mask: Any = non_dominated(to_minimize([r["objectives"] for r in ok], cached.directions)) if ok else []
            cached.front = {r["number"] for r, keep in zip(ok, mask, strict=True) if keep}
            return cached


TRIALS = TrialCache()


def _trial_public(row: dict[str, Any], front: set[int]) -> schemas.TrialPublic:
    return schemas.TrialPublic(**{k: v for k, v in row.items() if k != "hypervolume"},
                               on_front=row["number"] in front)


def list_trials(session: Session, *, job: Job, sort: str, order: Literal["asc", "desc"], cursor: str | None,
                limit: int, state: str | None = None, feasible: bool | None = None, on_front: bool | None = None
                ) -> tuple[schemas.TrialsPublic, list[dict[str, Any]]]:
    """A page of trials sorted by ``number``, ``seconds`` or any metric (trials without it last)."""
    cached = TRIALS.get(session, job)
    rows = cached.rows
    if state is not None:
        rows = [r for r in rows if r["state"] == state.upper()]
    if feasible is not None:
        rows = [r for r in rows if r["feasible"] == feasible]
    if on_front is not None:
        rows = [r for r in rows if (r["number"] in cached.front) == on_front]
    if sort not in ("number", "seconds"):
        config = json.loads(job.config)
        known = {o["metric"] for o in config["objectives"]} | {c["metric"] for c in config.get("constraints", [])}
        if sort not in known:
            raise InvalidError(f"sort: unknown metric {sort!r}; expected number, seconds or one of "
                               f"{', '.join(sorted(known))}", field="sort")
        present = [r for r in rows if r["metrics"].get(sort) is not None]
        absent = [r for r in rows if r["metrics"].get(sort) is None]
        present.sort(key=lambda r: r["metrics"][sort], reverse=order == "desc")
        rows = present + absent
    elif order == "desc" or sort == "seconds":
        rows = sorted(rows, key=lambda r: r[sort], reverse=order == "desc")
    offset = _decode_cursor(cursor, int)[0] if cursor else 0
    if offset < 0:
        raise InvalidError("cursor: not a cursor this server gave out (use next_cursor from the previous page)",
                           field="cursor")
    page = rows[offset:offset + limit]
    next_cursor = _encode_cursor(offset + limit) if offset + limit < len(rows) else None
    data = [_trial_public(r, cached.front) for r in page]
    return schemas.TrialsPublic(data=data, count=len(rows), next_cursor=next_cursor, sort=sort, order=order), rows


def trials_csv(rows: list[dict[str, Any]], front: set[int]) -> str:
    names = sorted({m for r in rows for m in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["number", "state", "arch_id", "feasible", "on_front", *names, "seconds", "error"])
    for r in rows:
        writer.writerow([r["number"], r["state"], r["arch_id"] or "", r["feasible"], r["number"] in front,
                         *["" if r["metrics"].get(m) is None else r["metrics"][m] for m in names],
                         f"{r['seconds']:.3f}", r["error"] or ""])
    return buf.getvalue()


def pareto(session: Session, *, job: Job) -> schemas.ParetoPublic:
    cached = TRIALS.get(session, job)
    members = [r for r in cached.rows if r["number"] in cached.front]
    ids = {r["arch_id"] for r in members}
    encodings = dict(session.execute(select(Architecture.arch_id, Architecture.encoding)
                                     .where(Architecture.arch_id.in_(ids))).all()) if ids else {}
    objectives = [schemas.Objective(**o) for o in json.loads(job.config)["objectives"]]
    first = objectives[0].metric
    members.sort(key=lambda r: (r["metrics"].get(first) is None, r["metrics"].get(first) or 0.0))
    data = [schemas.ParetoPoint(number=r["number"], arch_id=r["arch_id"], encoding=encodings.get(r["arch_id"], ""),
                                metrics=r["metrics"]) for r in members]
    return schemas.ParetoPublic(objectives=objectives, data=data, count=len(data))


def hypervolume_history(session: Session, *, job: Job) -> schemas.HypervolumePublic:
    cached = TRIALS.get(session, job)
    data = [schemas.HypervolumePoint(trial=i + 1, hypervolume=r["hypervolume"])
            for i, r in enumerate(cached.rows) if r["hypervolume"] is not None]
    return schemas.HypervolumePublic(data=data)


def jobs_with_arch(session: Session, *, owner: User, arch_id: str) -> list[str]:
    return list(session.scalars(select(Job.id).join(Trial, Trial.job_id == Job.id)
                                .where(Job.owner_id == owner.id, Trial.arch_id == arch_id).distinct()).all())


def job_counts(url: str) -> dict[str, int]:
    with get_engine(url).connect() as conn:
        return dict(conn.execute(select(Job.status, func.count()).group_by(Job.status)).all())  # type: ignore

