"""A job's trials: written by its worker as the search tells them, read as pages, fronts and histories.

The Optuna study stays the source of truth (a resumed job backfills from it);
this mirror makes a page of 10,000 trials an indexed read and a cached sort.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import threading
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from nas.pareto import non_dominated, to_minimize
from service import schemas
from service.db import session_scope
from service.errors import InvalidError, NotFoundError
from service.models import Architecture, Job, Trial, User, utcnow

if TYPE_CHECKING:
    from nas.results import SearchProgress
from service.pagination import decode_cursor, encode_cursor


# ------------------------------------------------------------------ written by the worker
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
        out.append(
            dict(
                arch_id=arch.arch_id,
                canonical=arch.to_json(),
                encoding=r.arch,
                params=cost.params,
                macs=cost.macs,
                activations=cost.activations,
                created=utcnow(),
            )
        )
    return out


def record_trials(
    url: str,
    *,
    job_id: str,
    records: list[Any],
    hypervolumes: list[float | None],
    progress: SearchProgress | None = None,
) -> None:
    """Mirror finished trials (nas TrialRecords) into the job's table, with their nets, in one transaction;
    with the search's ``progress``, the job's row takes it too."""
    rows = [
        dict(
            job_id=job_id,
            number=r.number,
            state=r.state,
            arch_id=r.arch_id,
            metrics=json.dumps(r.metrics),
            objectives=json.dumps(r.objectives) if r.objectives else None,
            feasible=r.feasible,
            violations=json.dumps(r.violations),
            error=r.error,
            seconds=r.seconds,
            hypervolume=hv,
            node=r.node,
            finished=utcnow(),
        )
        for r, hv in zip(records, hypervolumes, strict=True)
    ]
    with session_scope(url) as session:
        _insert_ignore(session, Architecture, architecture_rows(records))
        _insert_ignore(session, Trial, rows)
        if progress is not None:
            session.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    trials_done=progress.done,
                    elapsed=progress.elapsed,
                    front_size=progress.front_size,
                    hypervolume=progress.hypervolume,
                    best=json.dumps(progress.best),
                )
            )


# ------------------------------------------------------------------ reading a job's trials
ENCODED_PER_VIEW = 4  # encoded answers kept per view of a job (the dashboard asks for one, gzipped: two)


@dataclass(frozen=True)
class _Cached:
    """One job's trials as of one count: never changed once made (a newer count makes a new one), so a
    request keeps a consistent view while another tops the cache up."""

    numbers: frozenset[int]
    rows: tuple[dict[str, Any], ...]  # by number
    front: frozenset[int]
    directions: tuple[str, ...]
    orders: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)  # (sort, order) -> rows
    encoded: dict[tuple[Any, ...], bytes] = field(default_factory=dict)  # answers made once per view, LRU
    encoding: threading.Lock = field(default_factory=threading.Lock)  # request threads and the warm-up share it

    def ordered(self, sort: str, order: str) -> list[dict[str, Any]]:
        """The rows sorted by ``number``, ``seconds`` or a metric (trials without it last), once per view."""
        key = (sort, order)
        if key not in self.orders:
            if sort in ("number", "seconds"):
                rows = sorted(self.rows, key=lambda r: r[sort], reverse=order == "desc")
            else:
                present = [r for r in self.rows if r["metrics"].get(sort) is not None]
                present.sort(key=lambda r: r["metrics"][sort], reverse=order == "desc")
                rows = present + [r for r in self.rows if r["metrics"].get(sort) is None]
            self.orders[key] = rows
        return self.orders[key]


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
            if cached is not None and count == len(cached.numbers):
                return cached
            known = cached.numbers if cached is not None else frozenset()
            rows = list(cached.rows) if cached is not None else []
            columns = (
                Trial.number,
                Trial.state,
                Trial.arch_id,
                Trial.metrics,
                Trial.objectives,
                Trial.feasible,
                Trial.violations,
                Trial.error,
                Trial.seconds,
                Trial.hypervolume,
                Trial.node,
            )
            # tuples, not ORM objects, and one JSON parse per column, not three per row: the first page view
            # after a restart waits for this (a 50,000-trial job's load times: benchmarks/results/dashboard.json)
            if cached is None:
                found = session.execute(select(*columns).where(Trial.job_id == job.id)).all()
            else:
                numbers = set(session.scalars(select(Trial.number).where(Trial.job_id == job.id)).all())
                new = sorted(numbers - known)
                found = [
                    r
                    for start in range(0, len(new), 500)
                    for r in session.execute(
                        select(*columns).where(Trial.job_id == job.id, Trial.number.in_(new[start : start + 500]))
                    ).all()
                ]
            parse = lambda texts: json.loads("[" + ",".join(texts) + "]")  # noqa: E731
            metrics = parse(r.metrics for r in found)
            objectives = parse(r.objectives or "null" for r in found)
            violations = parse(r.violations for r in found)
            for r, m, o, v in zip(found, metrics, objectives, violations, strict=True):
                rows.append(
                    dict(
                        number=r.number,
                        state=r.state,
                        arch_id=r.arch_id,
                        metrics=m,
                        objectives=o,
                        feasible=r.feasible,
                        violations=v,
                        error=r.error,
                        seconds=r.seconds,
                        hypervolume=r.hypervolume,
                        node=r.node,
                    )
                )
            rows.sort(key=lambda r: r["number"])
            directions = tuple(o["direction"] for o in json.loads(job.config)["objectives"])
            ok = [r for r in rows if r["feasible"] and r["objectives"] is not None]
            mask: Any = non_dominated(to_minimize([r["objectives"] for r in ok], directions)) if ok else []
            front = frozenset(r["number"] for r, keep in zip(ok, mask, strict=True) if keep)
            cached = self._jobs[job.id] = _Cached(
                frozenset(known | {r.number for r in found}), tuple(rows), front, directions
            )
            return cached


TRIALS = TrialCache()


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
    writer.writerow(["number", "state", "arch_id", "feasible", "on_front", *names, "seconds", "node", "error"])
    for r in rows:
        writer.writerow(
            [
                r["number"],
                r["state"],
                r["arch_id"] or "",
                r["feasible"],
                r["number"] in front,
                *["" if r["metrics"].get(m) is None else r["metrics"][m] for m in names],
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
            number=r["number"], arch_id=r["arch_id"], encoding=encodings.get(r["arch_id"], ""), metrics=r["metrics"]
        )
        for r in members
    ]
    return schemas.ParetoPublic(objectives=objectives, data=data, count=len(data))


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
