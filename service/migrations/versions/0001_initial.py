"""Users, API keys, jobs, their trials, architectures.

Revision ID: 0001
Revises:
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "hwnas_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created", TS, nullable=False),
    )
    op.create_table(
        "hwnas_api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "user_id", sa.Integer, sa.ForeignKey("hwnas_users.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("last_used", TS, nullable=True),
        sa.Column("revoked", TS, nullable=True),
    )
    op.create_table(
        "hwnas_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("owner_id", sa.Integer, sa.ForeignKey("hwnas_users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("space", sa.String(200), nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("study_name", sa.String(512), nullable=False, unique=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", TS, nullable=False),
        sa.Column("started", TS, nullable=True),
        sa.Column("finished", TS, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("trials_done", sa.Integer, nullable=False),
        sa.Column("trials_budget", sa.Integer, nullable=True),
        sa.Column("seconds_budget", sa.Float, nullable=True),
        sa.Column("elapsed", sa.Float, nullable=False),
        sa.Column("front_size", sa.Integer, nullable=False),
        sa.Column("hypervolume", sa.Float, nullable=True),
        sa.Column("best", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("lease_expires", sa.Float, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
    )
    op.create_index("ix_hwnas_jobs_owner_created", "hwnas_jobs", ["owner_id", "created"])
    op.create_index("ix_hwnas_jobs_status_created", "hwnas_jobs", ["status", "created"])
    op.create_table(
        "hwnas_trials",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("hwnas_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("arch_id", sa.String(32), nullable=True, index=True),
        sa.Column("metrics", sa.Text, nullable=False),
        sa.Column("objectives", sa.Text, nullable=True),
        sa.Column("feasible", sa.Boolean, nullable=False),
        sa.Column("violations", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("hypervolume", sa.Float, nullable=True),
        sa.Column("finished", TS, nullable=False),
    )
    op.create_table(
        "hwnas_architectures",
        sa.Column("arch_id", sa.String(32), primary_key=True),
        sa.Column("canonical", sa.Text, nullable=False),
        sa.Column("encoding", sa.Text, nullable=False),
        sa.Column("params", sa.BigInteger, nullable=False),
        sa.Column("macs", sa.BigInteger, nullable=False),
        sa.Column("activations", sa.BigInteger, nullable=False),
        sa.Column("created", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("hwnas_architectures", "hwnas_trials", "hwnas_jobs", "hwnas_api_keys", "hwnas_users"):
        op.drop_table(table)
