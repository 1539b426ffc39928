"""A job's trials: written by its worker as the search tells them, read as pages, fronts and histories.

The Optuna study stays the source of truth (a resumed job backfills from it);
this mirror makes a page of 10,000 trials an indexed read and a cached sort.
Here: what the worker writes. Reading is :mod:`service.trial_cache` (the one
per-process cache, :data:`TRIALS`) and :mod:`service.trial_answers` (what is
built from it); both are importable from here.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from service.db import session_scope
from service.models import Architecture, Job, Trial, utcnow
from service.trial_answers import (
    ENCODED_PER_VIEW,
    get_trial,
    hypervolume_history,
    jobs_with_arch,
    list_trials,
    pareto,
    points_json,
    trials_csv,
    warm,
)
from service.trial_cache import TRIALS, TrialCache

if TYPE_CHECKING:
    from nas.results import SearchProgress

__all__ = [
    "ENCODED_PER_VIEW",
    "TRIALS",
    "TrialCache",
    "architecture_rows",
    "get_trial",
    "hypervolume_history",
    "jobs_with_arch",
    "list_trials",
    "pareto",
    "points_json",
    "record_trials",
    "trials_csv",
    "warm",
]


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
            latency_foreign=bool(getattr(r, "latency_foreign", False)),
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
