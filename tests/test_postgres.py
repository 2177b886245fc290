"""PostgreSQL as the database (DISBURSE_DB_URL=postgresql+psycopg://...), on a real server the test
session starts itself (tests/pg.py): the migrations build the declared schema and take turns, money
is exact, the award book holds its caps under concurrency with only one enterprise waiting for
another's lock, a whole application runs through Temporal against it, and a refused registry
import changes nothing."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import BigInteger, Boolean, Date, DateTime, create_engine, inspect, select, text
from sqlmodel import SQLModel, select as sm_select

from models import book
from models.migrate import _LOCK_KEY, upgrade
from tests.test_award_book import CAP, _award

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ migrations


def _head() -> str:
    """The newest revision in migrations/ (the one a migrated database must be at)."""
    from alembic.script import ScriptDirectory

    from models.migrate import config
    return ScriptDirectory.from_config(config()).get_current_head()

def test_migrations_build_the_declared_schema_on_postgres(pg_url):
    eng = create_engine(pg_url)
    try:
        upgrade(eng)
        with eng.connect() as c:
            diff = compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}), SQLModel.metadata)
        assert diff == [], f"models/tables.py and migrations/ differ on PostgreSQL: {diff}"
        cols = {(t, c["name"]): c["type"] for t in ("ledger", "award_line", "application", "blacklist")
                for c in inspect(eng).get_columns(t)}
        assert isinstance(cols[("ledger", "amount")], BigInteger)          # fen, exact
        assert isinstance(cols[("award_line", "item_value")], BigInteger)
        assert isinstance(cols[("award_line", "due")], Date)
        assert isinstance(cols[("application", "overdue")], Boolean)
        assert isinstance(cols[("ledger", "paid_at")], DateTime) and cols[("ledger", "paid_at")].timezone
    finally:
        eng.dispose()


def test_upgrade_is_idempotent_on_postgres(pg_url):
    eng = create_engine(pg_url)
    try:
        upgrade(eng)
        upgrade(eng)
        with eng.connect() as c:
            assert c.execute(text("select version_num from alembic_version")).scalars().all() == [_head()]
    finally:
        eng.dispose()


def test_four_processes_starting_together_migrate_once_on_postgres(pg_url):
    code = "from models.db import init_db; init_db(); print('ok')"
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={"DISBURSE_DB_URL": pg_url, "PATH": ""},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    eng = create_engine(pg_url)
    try:
        assert {"ledger", "award_line", "enterprise_book"} <= set(inspect(eng).get_table_names())
        with eng.connect() as c:
            assert c.execute(text("select version_num from alembic_version")).scalars().all() == [_head()]
    finally:
        eng.dispose()


def test_a_migration_waits_for_the_advisory_lock(pg_url):
    """models/migrate.py takes pg_advisory_lock: while another session holds it, no migration runs."""
    holder, eng = create_engine(pg_url), create_engine(pg_url)
    done = threading.Event()
    try:
        with holder.connect() as c:
            c.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _LOCK_KEY})
            t = threading.Thread(target=lambda: (upgrade(eng), done.set()), daemon=True)
            t.start()
            assert not done.wait(1.5), "the migration ran while another process held the lock"
            assert "alembic_version" not in inspect(holder).get_table_names()
            c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
            assert done.wait(60), "the migration did not run once the lock was free"
        t.join(5)
        assert "alembic_version" in inspect(eng).get_table_names()
    finally:
        holder.dispose()
        eng.dispose()


# ------------------------------------------------------------------------------ the engine

def test_the_engine_pools_connections_for_the_worker(pg_db, postgres_server, monkeypatch):
    """Enough connections for the worker's 16 activity threads; a plain postgresql:// URL uses
    psycopg 3; a connection the server dropped is replaced before it is used (pool_pre_ping)."""
    import os

    from models import db as dbmod
    eng = dbmod.engine()
    assert (eng.dialect.driver, eng.pool.size(), eng.pool._max_overflow, eng.pool._pre_ping) == ("psycopg", 10, 10, True)
    assert pg_db.enterprise_rows() == []                                  # a connection now waits in the pool
    database = eng.url.database
    with postgres_server.admin() as c:
        killed = c.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = %s AND application_name = 'disburse'", (database,)).fetchone()[0]
    assert killed >= 1
    assert pg_db.enterprise_rows() == []                                  # no "server closed the connection"
    plain = os.environ["DISBURSE_DB_URL"].replace("postgresql+psycopg://", "postgresql://")
    monkeypatch.setenv("DISBURSE_DB_URL", plain)
    try:
        e2 = dbmod.engine()
        assert e2.dialect.driver == "psycopg"
        with e2.connect() as c:
            assert c.execute(text("select current_setting('application_name')")).scalar() == "disburse"
    finally:
        eng2 = dbmod._engines.pop(plain, None)
        if eng2 is not None:
            eng2.dispose()


# ------------------------------------------------------------------------------ money

def test_money_is_stored_exactly_in_fen(pg_db):
    from models.db import session
    from models.tables import LedgerEntry
    amounts = [Decimal("9999999999.99"), Decimal("0.01"), Decimal("21474836.48")]   # the last is 2**31 fen
    with session() as s:
        for seq, amount in enumerate(amounts, start=1):
            s.add(LedgerEntry(application_id="app-big", clause_id="c", enterprise_code="E-1", year=2026, seq=seq,
                              amount=amount, label="", paid_at=datetime.now(timezone.utc)))
        s.commit()
    assert [r["amount"] for r in pg_db.ledger_rows("app-big")] == amounts
    assert [str(r["amount"]) for r in pg_db.ledger_rows("app-big")] == ["9999999999.99", "0.01", "21474836.48"]
    with session() as s:
        raw = s.connection().execute(text("select amount from ledger order by seq")).scalars().all()
    assert raw == [999_999_999_999, 1, 2**31] and all(type(v) is int for v in raw)
    with session() as s:
        total = s.connection().execute(select(LedgerEntry.__table__.c.amount)
                                       .where(LedgerEntry.__table__.c.seq == 1)).scalar_one()
    assert total == Decimal("9999999999.99")


def test_an_amount_finer_than_a_fen_is_refused_on_postgres(pg_db):
    from models.db import session
    from models.tables import LedgerEntry
    with session() as s:
        s.add(LedgerEntry(application_id="app-x", clause_id="c", enterprise_code="E-1", year=2026, seq=1,
                          amount=Decimal("1.001"), label="", paid_at=datetime.now(timezone.utc)))
        with pytest.raises(Exception, match="finer than a fen"):
            s.commit()
    assert pg_db.ledger_rows("app-x") == []


# ------------------------------------------------------------------------------ the award book

def test_twenty_concurrent_commitments_of_one_enterprise_hold_the_cap_on_postgres(pg_db):
    """tests/test_award_book.py's test on PostgreSQL, where SELECT ... FOR UPDATE on the
    enterprise's lock row serializes the book: each calculation sees every commitment before it."""
    seen: list = []
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda i: book.commit(f"app-{i}", "E-1", 2026, _award(str(i), seen=seen, pause=0.02)),
                                range(20)))
    assert sum(r.amount for r in results) == CAP                 # 30k + 30k + 30k + 10k, the rest refused
    assert sorted(r.amount for r in results if r.refusal is None) == [Decimal("10000"), Decimal("30000"),
                                                                       Decimal("30000"), Decimal("30000")]
    assert sum(ln["amount"] for ln in book.lines(enterprise_code="E-1")) == CAP
    assert seen == [Decimal(0), Decimal(30000), Decimal(60000), Decimal(90000)] + [CAP] * 16   # one at a time
    from models.db import session
    from models.tables import EnterpriseBook
    with session() as s:
        assert s.get(EnterpriseBook, "E-1").version == 20


def test_many_enterprises_commit_at_once_each_under_its_own_cap(pg_db):
    """8 enterprises x 10 threads: every cap holds, and the enterprises' commitments run side by side
    (the figure printed compares with the same 80 commitments of one enterprise; only correctness
    is asserted, timing is not)."""
    enterprises, per, pause = 8, 10, 0.03

    def run(n_enterprises: int, tag: str) -> float:
        jobs = [(f"{tag}-E-{i % n_enterprises}", f"{tag}-app-{i}") for i in range(enterprises * per)]
        start = time.perf_counter()
        with ThreadPoolExecutor(len(jobs)) as pool:
            list(pool.map(lambda j: book.commit(j[1], j[0], 2026, _award(j[1], pause=pause)), jobs))
        elapsed = time.perf_counter() - start
        for e in {e for e, _ in jobs}:
            held = [ln for ln in book.lines(enterprise_code=e) if ln["state"] == "committed"]
            assert sum(ln["amount"] for ln in held) == CAP, e
            assert sorted(ln["amount"] for ln in held) == [Decimal("10000"), Decimal("30000"), Decimal("30000"),
                                                           Decimal("30000")], e
        return elapsed

    many = run(enterprises, "many")
    one = run(1, "one")
    print(f"\n{enterprises * per} commitments ({pause * 1000:.0f} ms calculation each) on PostgreSQL: "
          f"{enterprises} enterprises {many:.2f}s, 1 enterprise {one:.2f}s ({one / many:.1f}x)")
    from models.db import session
    from models.tables import EnterpriseBook
    with session() as s:
        versions = {r.enterprise_code: r.version for r in s.exec(sm_select(EnterpriseBook))}
    assert versions == {**{f"many-E-{i}": per for i in range(enterprises)}, "one-E-0": enterprises * per}


# ------------------------------------------------------------------------------ a whole application

def test_full_lifecycle_on_postgres(harness, pg_db):
    from models.db import session
    from models.tables import ApplicationRow, DecisionRow
    from tests.backend_helpers import approve_both, result, submit_new
    from workflows import client as wc

    async def go():
        app_id = await submit_new(harness, pg_db)
        assert (await wc.status(harness.client, app_id))["status"] == "review"
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "completed", res
        rows = pg_db.ledger_rows(app_id)
        assert [(r["seq"], r["amount"], str(r["amount"])) for r in rows] == [(1, Decimal("400000.00"), "400000.00")]
        lines = book.lines(app_id)
        assert [(ln["seq"], ln["state"], ln["amount"]) for ln in lines] == [(1, "paid", Decimal("400000.00"))]
        with session() as s:
            row = s.get(ApplicationRow, app_id)
            assert (row.status, row.awarded, row.overdue) == ("completed", Decimal("400000.00"), False)
            assert row.bureaus == "杭州市科技局;杭州市财政局"
            decisions = s.exec(sm_select(DecisionRow).where(DecisionRow.application_id == app_id)
                               .order_by(DecisionRow.decided_at)).all()
            assert [(d.kind, d.who, d.bureau) for d in decisions] == [("approve", "hz-kjj", "杭州市科技局"),
                                                                      ("approve", "hz-czj", "杭州市财政局")]
    harness.run(go())


def test_a_withdrawal_releases_the_committed_tranche_on_postgres(harness, pg_db):
    from models.db import session
    from models.tables import ApplicationRow, DecisionRow
    from tests.backend_helpers import app_input, approve_both, register, result, through_publicity
    from tests.fake_activities import STAGED_QUEUE
    from tests.temporal_env import fresh_code
    from workflows import client as wc

    async def go():
        code = register(pg_db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code), task_queue=STAGED_QUEUE)
        await approve_both(harness, app_id)
        for _ in range(200):                       # first of two tranches paid, the second due in 30 days
            st = await wc.status(harness.client, app_id)
            if [t["state"] for t in st["tranches"]] == ["paid", "pending"]:
                break
            await through_publicity(harness, st)   # 公示 first (models/publicity.py)
            await __import__("asyncio").sleep(0.05)
        assert [ln["state"] for ln in book.lines(app_id)] == ["paid", "committed"]
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="no longer needed")
        res = await result(harness, app_id)
        assert res["status"] == "withdrawn"
        assert [(ln["seq"], ln["state"], ln["amount"]) for ln in book.lines(app_id)] == [
            (1, "paid", Decimal("200000.00")), (2, "released", Decimal("200000.00"))]
        assert "withdrawn" in book.lines(app_id)[1]["release_reason"]
        assert [r["amount"] for r in pg_db.ledger_rows(app_id)] == [Decimal("200000.00")]
        with session() as s:
            assert s.get(ApplicationRow, app_id).status == "withdrawn"
            kinds = s.exec(sm_select(DecisionRow.kind).where(DecisionRow.application_id == app_id)
                           .order_by(DecisionRow.decided_at)).all()
            assert kinds == ["approve", "approve", "withdraw"]
    harness.run(go())


# ------------------------------------------------------------------------------ registry imports

def test_a_refused_import_leaves_the_table_unchanged_on_postgres(pg_db, tmp_path):
    from calc.credit_code import make as make_code
    a, b, c = (make_code(f"91330106MA2PG0{n}00"[:17]) for n in range(1, 4))
    good = tmp_path / "good.csv"
    good.write_text(f"credit_code,name,region,qualifications\n{a},甲,,\n{b},乙,,\n", encoding="utf-8")
    assert pg_db.import_enterprises_csv(good) == 2
    before = pg_db.enterprise_rows()
    bad = tmp_path / "bad.csv"
    bad.write_text(f"credit_code,name,region,qualifications\n{a},甲（更名）,,\n{b},乙,999999,\n{c},丙,,\n",
                   encoding="utf-8")
    with pytest.raises(pg_db.RegistryError, match="line 3: region"):
        pg_db.import_enterprises_csv(bad)
    assert pg_db.enterprise_rows() == before
    fixed = tmp_path / "fixed.csv"
    fixed.write_text(f"credit_code,name,region,qualifications\n{a},甲（更名）,,\n{c},丙,,\n", encoding="utf-8")
    assert pg_db.import_enterprises_csv(fixed) == 2
    assert {r["credit_code"]: r["name"] for r in pg_db.enterprise_rows()} == {a: "甲（更名）", b: "乙", c: "丙"}


def test_the_status_mirror_upsert_on_postgres(pg_db):
    """Concurrent first writes of one application's status (the dialect's INSERT ... ON CONFLICT):
    no unique violation, and the newest version wins."""
    from temporalio.testing import ActivityEnvironment

    from activities.application import mirror_status
    from models.application import StatusUpdate
    from models.db import session
    from models.tables import ApplicationRow

    def write(i: int):
        u = StatusUpdate(application_id="app-race", clause_id="hz2025-04-tech-insurance-premium",
                         enterprise_code="91330106MA2H00001E", year=2026, status=f"s{i}", version=i,
                         awarded=Decimal("12.34"))
        return ActivityEnvironment().run(mirror_status, u)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, [3, 8, 1, 5, 2, 7, 4, 6]))
    with session() as s:
        row = s.get(ApplicationRow, "app-race")
        assert (row.version, row.status, row.awarded) == (8, "s8", Decimal("12.34"))
    write(2)
    with session() as s:
        assert s.get(ApplicationRow, "app-race").version == 8
