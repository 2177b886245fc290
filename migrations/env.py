"""Alembic environment: the disburse tables (models/tables.py) on DISBURSE_DB_URL.

Run by models/migrate.py at every start (`upgrade head`); a new revision after a change to
models/tables.py:

    .venv/bin/alembic -c migrations/alembic.ini revision --autogenerate -m "what changed"
"""
from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from models import tables  # noqa: F401 - registers the tables on SQLModel.metadata

target_metadata = SQLModel.metadata


def _configure(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite",   # ALTER TABLE on SQLite
                      compare_type=True)


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    from models.db import engine
    with engine(migrate=False).connect() as connection:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run against a database")
run_migrations_online()
