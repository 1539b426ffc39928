"""A service world per test: a fresh database (SQLite file, or a new PostgreSQL database), settings, keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest
from fastapi.testclient import TestClient

from tests.conftest import postgres_or_skip


def _admin(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return psycopg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database, autocommit=True
    )


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the PostgreSQL test server, dropped afterwards (open connections and all)."""
    base = postgres_or_skip()
    from sqlalchemy.engine import make_url

    name = f"hwnas_t_{uuid.uuid4().hex[:12]}"
    with _admin(base) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from service.db import get_engine

        get_engine(url).dispose()
        with _admin(base) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'hwnas.db'}"
    return str(request.getfixturevalue("postgres_url"))


@dataclass
class World:
    settings: Any
    client: TestClient
    keys: dict[str, str]

    def as_user(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def make_settings(database_url: str, tmp_path: Path, **over: Any) -> Any:
    from service.settings import Settings

    values: dict[str, Any] = dict(
        database_url=database_url,
        data_dir=tmp_path / "data",
        auth="required",
        lease_seconds=3.0,
        heartbeat_seconds=0.5,
        poll_seconds=0.1,
    )
    values.update(over)
    return Settings(**values)


def make_keys(database_url: str, *users: str) -> dict[str, str]:
    from service.db import session_scope, upgrade
    from service.security import create_key

    upgrade(database_url)
    with session_scope(database_url) as session:
        return {u: create_key(session, user=u, name=f"{u}'s key").key for u in users}


@pytest.fixture()
def world(database_url: str, tmp_path: Path, isolated_tables: Path) -> Iterator[World]:
    """The app on a fresh database with two users, alice and bob, each with a key; auth required."""
    from service.api.main import create_app
    from service.latency import forget_tables

    forget_tables()  # tables are cached per process; this test has its own table folder
    keys = make_keys(database_url, "alice", "bob")
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings)) as client:
        yield World(settings, client, keys)


class RunCli(Protocol):
    def __call__(self, *argv: str) -> tuple[int, str, str]: ...


@pytest.fixture()
def cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``hwnas`` run in this process: ``cli("spaces", "--json")`` gives (exit code, stdout, stderr)."""
    from service.cli import main

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
