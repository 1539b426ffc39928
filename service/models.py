"""The service's tables (SQLAlchemy 2 typed ORM); the schema itself is Alembic's (service/migrations).

A job's trials are written by the worker as its search tells them to
Optuna (the study, in the same database, stays the source of truth and a
resumed job backfills from it), so listing, sorting and the Pareto front are
indexed reads, not a replay of the study. Only a key's SHA-256 is stored.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED_STATES = ("succeeded", "failed", "cancelled")


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time hwnas stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "hwnas_users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    keys: Mapped[list[ApiKey]] = relationship(back_populates="user")


class ApiKey(Base):
    __tablename__ = "hwnas_api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("hwnas_users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    hash: Mapped[str] = mapped_column(String(64))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[User] = relationship(back_populates="keys")


class Job(Base):
    __tablename__ = "hwnas_jobs"
    __table_args__ = (
        Index("ix_hwnas_jobs_owner_created", "owner_id", "created"),
        Index("ix_hwnas_jobs_status_created", "status", "created"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("hwnas_users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    space: Mapped[str] = mapped_column(String(200))
    config: Mapped[str] = mapped_column(Text)  # the SearchConfig as JSON
    study_name: Mapped[str] = mapped_column(String(512), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    # progress, as the worker last reported it
    trials_done: Mapped[int] = mapped_column(Integer, default=0)
    trials_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    seconds_budget: Mapped[float | None] = mapped_column(Float, nullable=True)
    elapsed: Mapped[float] = mapped_column(Float, default=0.0)
    front_size: Mapped[int] = mapped_column(Integer, default=0)
    hypervolume: Mapped[float | None] = mapped_column(Float, nullable=True)
    best: Mapped[str] = mapped_column(Text, default="{}")  # JSON {metric: value}
    notes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    # JSON {profile: the latency table its metrics came from (nas.table_choice.TableChoice.as_dict)}
    latency_tables: Mapped[str] = mapped_column(Text, default="{}")
    # the lease: one worker at a time, taken over when it expires
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires: Mapped[float | None] = mapped_column(Float, nullable=True)  # epoch seconds
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)


class Trial(Base):
    __tablename__ = "hwnas_trials"

    job_id: Mapped[str] = mapped_column(ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    arch_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    metrics: Mapped[str] = mapped_column(Text, default="{}")  # JSON {metric: value}
    objectives: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON list, in the config's order
    feasible: Mapped[bool] = mapped_column(Boolean, default=False)
    violations: Mapped[str] = mapped_column(Text, default="[]")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    hypervolume: Mapped[float | None] = mapped_column(Float, nullable=True)  # of the front after this trial
    node: Mapped[str | None] = mapped_column(String(64), nullable=True)  # the Ray node that evaluated it
    # a latency metric of it was predicted from a table measured on another host
    latency_foreign: Mapped[bool] = mapped_column(Boolean, default=False)
    finished: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Architecture(Base):
    __tablename__ = "hwnas_architectures"

    arch_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    canonical: Mapped[str] = mapped_column(Text)  # canonical JSON
    encoding: Mapped[str] = mapped_column(Text)  # string form
    params: Mapped[int] = mapped_column(BigInteger)
    macs: Mapped[int] = mapped_column(BigInteger)
    activations: Mapped[int] = mapped_column(BigInteger)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
