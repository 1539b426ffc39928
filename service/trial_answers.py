"""Answers built from a job's cached trials: pages, CSV, one trial, the front, the points, the hypervolume steps."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Set as AbstractSet
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from service import schemas
from service.db import session_scope
from service.errors import InvalidError, NotFoundError
from service.jobs import latency_warnings
from service.models import Architecture, Job, Trial, User
from service.pagination import decode_cursor, encode_cursor
from service.trial_cache import TRIALS

ENCODED_PER_VIEW = 4  # encoded answers kept per view of a job (the dashboard asks for one, gzipped: two)


def _trial_public(row: dict[str, Any], front: AbstractSet[int]) -> schemas.TrialPublic:
    return schemas.TrialPublic(**{k: v for k, v in row.items() if k != "hypervolume"}, on_front=row["number"] in front)


def list_trials(
    session: Session,
    *,
    job: Job,
    sort: str,
    order: Literal["asc", "desc"],
    cursor: str | None,
    limit: int,
    state: str | None = None,
    feasible: bool | None = None,
    on_front: bool | None = None,
) -> tuple[schemas.TrialsPublic, list[dict[str, Any]], AbstractSet[int]]:
    """A page of trials sorted by ``number``, ``seconds`` or any metric (trials without it last), with every
    filtered row (for CSV) and the front they were judged against."""
    cached = TRIALS.get(session, job)
    if sort not in ("number", "seconds"):
        config = json.loads(job.config)
        known = {o["metric"] for o in config["objectives"]} | {c["metric"] for c in config.get("constraints", [])}
        if sort not in known:
            raise InvalidError(
                f"sort: unknown metric {sort!r}; expected number, seconds or one of {', '.join(sorted(known))}",
                field="sort",
            )
    rows = cached.ordered(sort, order)
    if state is not None:
        rows = [r for r in rows if r["state"] == state.upper()]
    if feasible is not None:
        rows = [r for r in rows if r["feasible"] == feasible]
    if on_front is not None:
        rows = [r for r in rows if (r["number"] in cached.front) == on_front]
    offset = decode_cursor(cursor, int)[0] if cursor else 0
    if offset < 0:
        raise InvalidError(
            "cursor: not a cursor this server gave out (use next_cursor from the previous page)", field="cursor"
        )
    page = rows[offset : offset + limit]
    next_cursor = encode_cursor(offset + limit) if offset + limit < len(rows) else None
    data = [_trial_public(r, cached.front) for r in page]
    return (
        schemas.TrialsPublic(data=data, count=len(rows), next_cursor=next_cursor, sort=sort, order=order),
        rows,
        cached.front,
    )


def trials_csv(rows: list[dict[str, Any]], front: AbstractSet[int]) -> str:
    names = sorted({m for r in rows for m in r["metrics"]})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        ["number", "state", "arch_id", "feasible", "on_front", *names, "latency_foreign", "seconds", "node", "error"]
    )
    for r in rows:
        writer.writerow(
            [
                r["number"],
                r["state"],
                r["arch_id"] or "",
                r["feasible"],
                r["number"] in front,
                *["" if r["metrics"].get(m) is None else r["metrics"][m] for m in names],
                r["latency_foreign"],
                f"{r['seconds']:.3f}",
                r["node"] or "",
                r["error"] or "",
            ]
        )
    return buf.getvalue()


def pareto(session: Session, *, job: Job) -> schemas.ParetoPublic:
    cached = TRIALS.get(session, job)
    members = [r for r in cached.rows if r["number"] in cached.front]
    ids = {r["arch_id"] for r in members}
    encodings = (
        dict(
            session.execute(
                select(Architecture.arch_id, Architecture.encoding).where(Architecture.arch_id.in_(ids))
            ).all()
        )
        if ids
        else {}
    )
    objectives = [schemas.Objective(**o) for o in json.loads(job.config)["objectives"]]
    first = objectives[0].metric
    members.sort(key=lambda r: (r["metrics"].get(first) is None, r["metrics"].get(first) or 0.0))
    data = [
        schemas.ParetoPoint(
            number=r["number"],
            arch_id=r["arch_id"],
            encoding=encodings.get(r["arch_id"], ""),
            metrics=r["metrics"],
            latency_foreign=r["latency_foreign"],
        )
        for r in members
    ]
    return schemas.ParetoPublic(
        objectives=objectives, data=data, count=len(data), latency_warnings=latency_warnings(job)
    )


def warm(url: str, jobs: int) -> int:
    """Read the ``jobs`` most recently created jobs with trials into the cache, with the answer the dashboard's
    job page asks for first; how many were read. Run once at server start, in the background."""
    with session_scope(url) as session:
        recent = session.scalars(select(Job).where(Job.trials_done > 0).order_by(Job.created.desc()).limit(jobs)).all()
        for job in recent:
            points_json(session, job=job, digits=6, arch_ids=False, gzipped=True)
        return len(recent)


def get_trial(session: Session, *, job: Job, number: int) -> schemas.TrialPublic:
    cached = TRIALS.get(session, job)
    if number in cached.numbers:
        for r in cached.rows:  # by number: a bisect would need a key list; one scan is microseconds per 10k rows
            if r["number"] == number:
                return _trial_public(r, cached.front)
    raise NotFoundError(
        f"number: job {job.id} has no finished trial {number} (it has {len(cached.numbers)})", field="number"
    )


def _rounded(v: float | None, digits: int | None) -> float | None:
    return v if v is None or digits is None else float(f"{v:.{digits}g}")


def points_json(
    session: Session, *, job: Job, digits: int | None = None, arch_ids: bool = True, gzipped: bool = False
) -> bytes:
    """All trials as columns (by number), as JSON bytes (gzipped on request), made once per view of the job.

    What a scatter plot of the whole job needs and nothing more: ``digits`` rounds
    metrics to that many significant digits, ``arch_ids=False`` leaves the 16-hex ids
    out (a third of a 50,000-trial answer; a client resolves one by
    ``GET .../trials/{number}`` when a point is clicked).
    """
    cached = TRIALS.get(session, job)
    key = ("points", digits, arch_ids, gzipped)
    plain = ("points", digits, arch_ids, False)
    with cached.encoding:
        if key in cached.encoded:
            cached.encoded[key] = cached.encoded.pop(key)  # most recently used last
            return cached.encoded[key]
        body = cached.encoded.get(plain)
    if body is None:  # built outside the lock (two threads may both build it: the same bytes)
        rows = cached.rows
        names = sorted({m for r in rows for m in r["metrics"]})
        answer: dict[str, Any] = {"numbers": [r["number"] for r in rows]}
        if arch_ids:
            answer["arch_ids"] = [r["arch_id"] for r in rows]
        answer |= {
            "feasible": [r["feasible"] for r in rows],
            "on_front": [r["number"] in cached.front for r in rows],
            "metrics": {m: [_rounded(r["metrics"].get(m), digits) for r in rows] for m in names},
            "count": len(rows),
        }
        body = json.dumps(answer, separators=(",", ":"), allow_nan=False).encode()
    out = gzip.compress(body, 6, mtime=0) if gzipped else body  # from the same view's plain body
    with cached.encoding:
        if gzipped:
            cached.encoded[plain] = cached.encoded.pop(plain, body)
        cached.encoded[key] = out
        while len(cached.encoded) > ENCODED_PER_VIEW:  # a few MB each on a big job: keep the variants in use
            del cached.encoded[next(iter(cached.encoded))]
    return out


def hypervolume_history(session: Session, *, job: Job) -> schemas.HypervolumePublic:
    """The hypervolume after each trial that changed it, and after the latest: a step function, so a
    50,000-trial job answers with its few hundred steps."""
    cached = TRIALS.get(session, job)
    data: list[schemas.HypervolumePoint] = []
    last_index = max((i for i, r in enumerate(cached.rows) if r["hypervolume"] is not None), default=-1)
    for i, r in enumerate(cached.rows):
        hv = r["hypervolume"]
        if hv is not None and (not data or hv != data[-1].hypervolume or i == last_index):
            data.append(schemas.HypervolumePoint(trial=i + 1, hypervolume=hv))
    return schemas.HypervolumePublic(data=data)


def jobs_with_arch(session: Session, *, owner: User, arch_id: str) -> list[str]:
    return list(
        session.scalars(
            select(Job.id)
            .join(Trial, Trial.job_id == Job.id)
            .where(Job.owner_id == owner.id, Trial.arch_id == arch_id)
            .distinct()
        ).all()
    )
