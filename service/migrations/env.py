"""Alembic environment: the engine comes from service.db (hwnas db upgrade, or the service at start)."""

from __future__ import annotations

from alembic import context

from service.db import VERSION_TABLE
from service.models import Base

engine = context.config.attributes.get("engine")
if engine is None:
    raise RuntimeError("run migrations through `hwnas db upgrade` (service.db.upgrade), which supplies the engine")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
