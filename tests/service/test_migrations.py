"""The schema's migrations: the newest one matches the models, and an older database keeps its rows."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from service.db import VERSION_TABLE, _alembic_config, current_revision, get_engine, head_revision, upgrade
from service.models import Base


def test_a_database_of_the_first_revision_upgrades_with_its_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(_alembic_config(url), "0001")
    with get_engine(url).begin() as conn:
        conn.execute(text("INSERT INTO hwnas_users (id, name, created) VALUES (1, 'alice', '2026-01-01')"))
        conn.execute(
            text(
                "INSERT INTO hwnas_jobs (id, owner_id, name, space, config, study_name, status, created, trials_done, "
                "elapsed, front_size, best, notes, attempts, cancel_requested) VALUES ('j1', 1, 'old', 's', '{}', "
                "'study-j1', 'succeeded', '2026-01-01', 1, 1.0, 1, '{}', '[]', 0, 0)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO hwnas_trials (job_id, number, state, metrics, feasible, violations, seconds, finished) "
                "VALUES ('j1', 0, 'COMPLETE', '{\"params\": 5}', 1, '[]', 0.5, '2026-01-01')"
            )
        )
    assert current_revision(url) == "0001"
    assert upgrade(url) == head_revision()
    with get_engine(url).connect() as conn:
        row = conn.execute(text("SELECT number, metrics, node FROM hwnas_trials WHERE job_id = 'j1'")).one()
    assert tuple(row) == (0, '{"params": 5}', None)


def test_the_newest_revision_is_what_the_models_declare(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    upgrade(url)
    with get_engine(url).connect() as conn:
        ours = set(Base.metadata.tables)  # not Optuna's tables nor the search's own, which share the database
        context = MigrationContext.configure(
            conn,
            opts={
                "version_table": VERSION_TABLE,
                "include_name": lambda name, type_, parent: type_ != "table" or name in ours,
            },
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"the models and the migrations disagree (write a migration): {diff}"
