"""Schema migrations (Alembic, migrations/): every process that opens the database first brings it
to the newest revision, so a database kept for years follows the code.

Processes starting together (the worker, the CLI) take turns: an exclusive file lock beside a
SQLite file, a PostgreSQL advisory lock elsewhere.
"""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
_LOCK_KEY = 0x6469736275   # "disbu"


class SchemaError(RuntimeError):
    """The database cannot be brought to the code's schema."""


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


@contextmanager
def _exclusive(eng):
    if eng.dialect.name == "sqlite":
        path = eng.url.database
        if not path or path == ":memory:":
            yield
            return
        with open(f"{path}.lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)
    elif eng.dialect.name == "postgresql":
        with eng.connect() as c:
            c.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            try:
                yield
            finally:
                c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
    else:
        yield


def upgrade(eng) -> None:
    """Bring the database behind `eng` to the newest revision (a no-op when it is there)."""
    with _exclusive(eng):
        names = set(inspect(eng).get_table_names())
        if names and "alembic_version" not in names:
            raise SchemaError(f"{eng.url.render_as_string(hide_password=True)} holds tables from before "
                              "schema migrations existed; move it aside and start again")
        cfg = config()
        with eng.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
