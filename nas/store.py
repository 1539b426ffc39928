"""hwnas' own tables, next to the Optuna study in the same database (SQLite by default, PostgreSQL in production).

``hwnas_evaluations`` is the evaluation cache: a net's expensive metric is
computed once per (arch_id, metric, settings digest), and every search using
the same database and the same metric settings shares it, so a net one job
already scored is never scored again. Errors are cached too (a net that
cannot be scored does not become scorable by retrying), except timeouts and
lost workers, which are not properties of the net.

``hwnas_inflight`` holds the parameters of every trial a controller has
handed out and not yet finished, one row each: what a killed controller was
doing, so the next one can requeue it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Float, Integer, String, Text, create_engine, delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column


class Base(DeclarativeBase):
    pass


class EvaluationRow(Base):
    __tablename__ = "hwnas_evaluations"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    arch_id: Mapped[str] = mapped_column(String(32), index=True)
    metric: Mapped[str] = mapped_column(String(200))
    settings: Mapped[str] = mapped_column(String(64))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    created: Mapped[float] = mapped_column(Float)


class InflightRow(Base):
    __tablename__ = "hwnas_inflight"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study: Mapped[str] = mapped_column(String(512), index=True)
    token: Mapped[str] = mapped_column(String(64))
    params: Mapped[str] = mapped_column(Text)
    created: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class Evaluation:
    value: float | None
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False
    node: str | None = None  # the Ray node that computed it (None: this process, or the cache)

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None


def settings_hash(settings: Any) -> str:
    """A stable digest of the settings a metric's value depends on (JSON-serialisable)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_key(arch_id: str, metric: str, settings: str) -> str:
    return hashlib.sha256(f"{arch_id}|{metric}|{settings}".encode()).hexdigest()


class EvaluationCache:
    """Get and put evaluations by (arch_id, metric, settings digest)."""

    def __init__(self, url_or_engine: str | Engine) -> None:
        self.engine = create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
        Base.metadata.create_all(self.engine)

    def get_many(self, wanted: Iterable[tuple[str, str, str]]) -> dict[tuple[str, str, str], Evaluation]:
        wanted = list(wanted)
        keys = {cache_key(*w): w for w in wanted}
        found: dict[tuple[str, str, str], Evaluation] = {}
        if not keys:
            return found
        with Session(self.engine) as session:
            for chunk_start in range(0, len(keys), 500):
                chunk = list(keys)[chunk_start : chunk_start + 500]
                for row in session.scalars(select(EvaluationRow).where(EvaluationRow.key.in_(chunk))):
                    found[keys[row.key]] = Evaluation(row.value, row.error, row.seconds, cached=True)
        return found

    def put(self, arch_id: str, metric: str, settings: str, result: Evaluation) -> None:
        with Session(self.engine) as session, session.begin():
            session.merge(
                EvaluationRow(
                    key=cache_key(arch_id, metric, settings),
                    arch_id=arch_id,
                    metric=metric,
                    settings=settings,
                    value=result.value,
                    error=result.error,
                    seconds=result.seconds,
                    created=time.time(),
                )
            )

    def count(self) -> int:
        with Session(self.engine) as session:
            return len(session.scalars(select(EvaluationRow.key)).all())


class InflightLog:
    """Params of the trials a controller is evaluating, so an interrupted search can requeue them."""

    def __init__(self, engine: Engine, study: str) -> None:
        self.engine = engine
        self.study = study
        Base.metadata.create_all(engine)

    def add(self, token: str, params: dict[str, Any]) -> None:
        with Session(self.engine) as session, session.begin():
            session.add(
                InflightRow(
                    study=self.study, token=token, params=json.dumps(params, sort_keys=True), created=time.time()
                )
            )

    def remove(self, token: str) -> None:
        with Session(self.engine) as session, session.begin():
            session.execute(delete(InflightRow).where(InflightRow.study == self.study, InflightRow.token == token))

    def take_all(self) -> list[dict[str, Any]]:
        """The params a previous controller left in flight, oldest first; the rows are removed."""
        with Session(self.engine) as session, session.begin():
            rows = session.scalars(
                select(InflightRow).where(InflightRow.study == self.study).order_by(InflightRow.id)
            ).all()
            out = [json.loads(r.params) for r in rows]
            session.execute(delete(InflightRow).where(InflightRow.study == self.study))
        return out
