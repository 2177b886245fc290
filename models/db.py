"""Database engine (DISBURSE_DB_URL, default sqlite:///<project>/var/disburse.db) and init_db()."""
from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, SQLModel, create_engine

from models import tables  # noqa: F401 - registers the tables

PROJECT = Path(__file__).resolve().parent.parent
_engines: dict[str, object] = {}


def db_url() -> str:
    return os.environ.get("DISBURSE_DB_URL") or f"sqlite:///{PROJECT / 'var' / 'disburse.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def engine():
    """The engine for the current DISBURSE_DB_URL (tables created on first use)."""
    url = db_url()
    eng = _engines.get(url)
    if eng is None:
        if url.startswith("sqlite:///"):
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
            event.listen(eng, "connect", _sqlite_pragmas)
        else:
            eng = create_engine(url)
        _create_tables(eng)
        _engines[url] = eng
    return eng


def _create_tables(eng, attempts: int = 5) -> None:
    """create_all, tolerant of another process (worker, CLI) creating the same tables at the
    same moment: its check-then-create can lose the race with "table ... already exists"."""
    for attempt in range(attempts):
        try:
            SQLModel.metadata.create_all(eng)
            return
        except OperationalError as e:
            if "already exists" not in str(e) or attempt == attempts - 1:
                raise


def init_db():
    return engine()


def session() -> Session:
    return Session(engine())
