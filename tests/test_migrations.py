"""Schema migrations: the revisions in migrations/ build exactly the tables models/tables.py
declares (a model change without a revision fails here), and every process may run them at
start, together, any number of times. (The same on PostgreSQL: tests/test_postgres.py.)"""
from __future__ import annotations

import subprocess
import sys
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import Session, SQLModel, select

from models.migrate import SchemaError, config, upgrade

ROOT = Path(__file__).resolve().parent.parent


def test_migrations_build_the_declared_schema(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(eng)
    with eng.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata)
    assert diff == [], f"models/tables.py and migrations/ differ; add a revision: {diff}"


def test_upgrade_is_idempotent(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(eng)
    upgrade(eng)
    with eng.connect() as c:
        assert c.execute(text("select count(*) from alembic_version")).scalar() == 1


def test_processes_starting_together_migrate_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'm.db'}"
    code = "from models.db import init_db; init_db(); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={"DISBURSE_DB_URL": url, "PATH": ""},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    assert "ledger" in inspect(create_engine(url)).get_table_names()


def test_a_database_from_before_migrations_is_refused_clearly(tmp_path):
    eng = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    with eng.begin() as c:
        c.execute(text("create table ledger (id integer primary key)"))
    with pytest.raises(SchemaError, match="before schema migrations"):
        upgrade(eng)


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request, tmp_path):
    """An empty database, SQLite or PostgreSQL (tests/pg.py)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    url = request.getfixturevalue("pg_url")
    eng = create_engine(url)
    with eng.begin() as c:     # as a server in China would be set up: the book must not depend on it
        c.execute(text(f"ALTER DATABASE {eng.url.database} SET timezone TO 'Asia/Shanghai'"))
    eng.dispose()
    return url


def _upgrade_to(eng, revision: str) -> None:
    cfg = config()
    with eng.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, revision)


def test_0002_books_the_payments_already_in_the_ledger(empty_url):
    """Every payment in a ledger from before the award book becomes a paid award line (loan keys
    get their support year; a payment without a due date is due on its payment's day, in UTC)."""
    from models.tables import Award, AwardLine, LedgerEntry
    eng = create_engine(empty_url)
    try:
        _upgrade_to(eng, "0001")
        evening = datetime(2026, 3, 1, 17, 30, tzinfo=timezone.utc)          # already 2 March in China
        rows = [("app-1", 2026, 1, "loan:L-1", Decimal("1234.56"), date(2026, 2, 1)),
                ("app-1", 2026, 2, "loan:L-2@2026", Decimal("0.01"), None),
                ("app-2", 2025, 1, None, Decimal("9999999999.99"), date(2025, 12, 31))]
        with eng.begin() as c:
            c.execute(LedgerEntry.__table__.insert(), [
                {"application_id": a, "clause_id": "hz2025-01-tech-loan-interest", "enterprise_code": "E-1", "year": y,
                 "seq": q, "item_id": i, "amount": m, "due": d, "label": f"t{q}", "paid_at": evening}
                for a, y, q, i, m, d in rows])
        upgrade(eng)
        with Session(eng) as s:
            awards = [(a.application_id, a.year, a.amount, a.committed_at)
                      for a in s.exec(select(Award).order_by(Award.application_id))]
            lines = [(ln.application_id, ln.year, ln.seq, ln.item_id, ln.amount, ln.item_value, ln.due, ln.state,
                      ln.paid_at) for ln in s.exec(select(AwardLine).order_by(AwardLine.application_id, AwardLine.seq))]
        assert awards == [("app-1", 2026, Decimal("1234.57"), evening), ("app-2", 2025, Decimal("9999999999.99"), evening)]
        assert lines == [
            ("app-1", 2026, 1, "loan:L-1@2026", Decimal("1234.56"), Decimal("1234.56"), date(2026, 2, 1), "paid", evening),
            ("app-1", 2026, 2, "loan:L-2@2026", Decimal("0.01"), Decimal("0.01"), date(2026, 3, 1), "paid", evening),
            ("app-2", 2025, 1, "", Decimal("9999999999.99"), Decimal("9999999999.99"), date(2025, 12, 31), "paid",
             evening)]
    finally:
        eng.dispose()
