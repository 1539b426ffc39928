"""The database: one engine per URL and process, sessions, and the schema kept current by Alembic.

SQLite runs in WAL mode with a busy timeout, so reading a job never blocks
the search writing to it and two processes (API, worker) share the file.
Optuna's study tables live in the same database; they carry Optuna's own
Alembic version table, so hwnas' migrations keep theirs in
``hwnas_alembic_version``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

VERSION_TABLE = "hwnas_alembic_version"
MIGRATIONS = Path(__file__).with_name("migrations")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def engine_kwargs(url: str) -> dict[str, Any]:
    """How hwnas connects to ``url``: also what the search's Optuna storage uses, so both behave alike."""
    if make_url(url).get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": 30, "check_same_thread": False}}
    return {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    engine = create_engine(url, **engine_kwargs(url))
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


@lru_cache(maxsize=8)
def _factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back when it raises."""
    session = _factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _alembic_config(url: str | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        cfg.attributes["engine"] = get_engine(url)
    return cfg


@contextmanager
def _migration_lock(url: str) -> Iterator[None]:
    """One process migrates at a time: two workers starting on a fresh database would both create tables."""
    engine = get_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _LOCK_KEY})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _LOCK_KEY})
                conn.commit()
        return
    database = make_url(url).database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield
        return
    import fcntl

    with open(f"{database}.migrate.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_LOCK_KEY = 0x68776E6173  # "hwnas"


def upgrade(url: str) -> str:
    """Bring the database at ``url`` to the newest schema; returns the revision it is at.

    Also creates what the search keeps in the same database (Optuna's tables,
    the evaluation cache), so no worker races another to create them.
    """
    from alembic import command

    with _migration_lock(url):
        command.upgrade(_alembic_config(url), "head")
        import optuna

        from nas.store import EvaluationCache

        optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs(url))
        EvaluationCache(get_engine(url))
    return current_revision(url) or "?"


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as conn:
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(_alembic_config()).get_current_head())


def redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
