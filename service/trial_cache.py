"""A job's trials as the service reads them: parsed once per process and topped up with what is new.

The Optuna study stays the source of truth (a resumed job backfills from it);
the trials table mirrors it, and this cache makes a page of 10,000 trials a
cached sort instead of 10,000 rows read and parsed again.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from nas.pareto import non_dominated, to_minimize
from service.models import Job, Trial


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
                Trial.latency_foreign,
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
                        latency_foreign=bool(r.latency_foreign),
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
