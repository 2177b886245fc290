"""Backend test fixtures: session time-skipping env (tests/temporal_env.py), fresh DB per test,
and the exit guard (temporalio 1.35 can segfault at interpreter exit)."""
from __future__ import annotations

import os
import sys

import pytest

_exit_status = 0


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    path = os.environ.get("DISBURSE_PYTEST_STATUS_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(_exit_status))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="session")
def harness():
    from tests.temporal_env import Harness
    h = Harness()
    h.start()
    yield h
    h.stop()


@pytest.fixture()
def db(tmp_path, monkeypatch):
    """A fresh SQLite DB for this test, with the reviewers and the test enterprise registered."""
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    from models import registry
    from models.db import init_db
    init_db()
    from tests.temporal_env import REVIEWERS
    for rid, bureau in REVIEWERS.items():
        registry.add_reviewer(rid, bureau, rid)
    return registry
