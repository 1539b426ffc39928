"""The latency table each job's latency metrics came from, and which trials' latencies describe another host.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("hwnas_jobs") as batch:
        batch.add_column(sa.Column("latency_tables", sa.Text, nullable=False, server_default="{}"))
    with op.batch_alter_table("hwnas_trials") as batch:
        batch.add_column(sa.Column("latency_foreign", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("hwnas_trials") as batch:
        batch.drop_column("latency_foreign")
    with op.batch_alter_table("hwnas_jobs") as batch:
        batch.drop_column("latency_tables")
