"""Schema migrations: the revisions in migrations/ build exactly the tables models/tables.py
declares (a model change without a revision fails here), and every process may run them at
start, together, any number of times."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlmodel import SQLModel

from models.migrate import SchemaError, upgrade

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
