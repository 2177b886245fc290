"""Database engine (DISBURSE_DB_URL, default sqlite:///<project>/var/disburse.db), migrated on first use.

PostgreSQL: DISBURSE_DB_URL=postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB (the `postgres` extra
installs psycopg 3; a plain postgresql:// URL means the same driver)."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from models import tables  # noqa: F401 - registers the tables

PROJECT = Path(__file__).resolve().parent.parent
_engines: dict[str, object] = {}
_engines_lock = threading.Lock()    # the worker's activity threads may all ask at once, at start


def db_url() -> str:
    return os.environ.get("DISBURSE_DB_URL") or f"sqlite:///{PROJECT / 'var' / 'disburse.db'}"


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def engine(migrate: bool = True):
    """The engine for the current DISBURSE_DB_URL, its schema brought to the newest migration on
    first use (models/migrate.py)."""
    url = db_url()
    eng = _engines.get(url)
    if eng is not None:
        return eng
    if not migrate:
        return _make_engine(url)
    with _engines_lock:                 # one migration per database, not one per thread
        eng = _engines.get(url)
        if eng is None:
            eng = _make_engine(url)
            from models.migrate import upgrade
            upgrade(eng)
            _engines[url] = eng
    return eng


def _make_engine(url: str):
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, connect_args={"check_same_thread": False, "timeout": 10})
        event.listen(eng, "connect", _sqlite_pragmas)
        return eng
    u = make_url(url)
    if u.drivername == "postgresql":
        u = u.set(drivername="postgresql+psycopg")
    if u.get_backend_name() == "postgresql":
        # the worker runs up to 16 activities at once, each holding one connection while it works;
        # a connection dropped by the server or a firewall is replaced before it is used
        defaults = {"connect_timeout": 10, "application_name": "disburse"}
        return create_engine(u, pool_size=10, max_overflow=10, pool_pre_ping=True,
                             connect_args={k: v for k, v in defaults.items() if k not in u.query})
    return create_engine(u)


def init_db():
    return engine()


def session() -> Session:
    return Session(engine())
