"""Backend test fixtures: a time-skipping env per test (tests/temporal_env.py), fresh DB per test
(SQLite: `db`; PostgreSQL on a server the session starts, tests/pg.py: `pg_db`; either: `db_any`),
and the exit guard (temporalio 1.35 can segfault at interpreter exit)."""
from __future__ import annotations

import os
import sys

import pytest

# A shell's TEMPORAL_HTTP_ADDRESS names that server's HTTP API, and unset `disburse status` asks
# localhost:7243 (a `make run` on this machine): not the servers the tests start. Off, unless a
# test's stack gives one (tests/test_devserver.py) or a test sets it (tests/test_http_status.py).
os.environ["TEMPORAL_HTTP_ADDRESS"] = "off"

# as the worker does (worker.build_worker): the sandbox's import of a workflow module per workflow
# instance takes its code from memory, not from a compilation each time (workflows/code_cache.py)
from workflows import code_cache  # noqa: E402

code_cache.install()

_exit_status = 0
_postgres_used: list[str] = []          # where the session's PostgreSQL server came from (tests/pg.py)


def pytest_sessionfinish(session, exitstatus):
    global _exit_status
    _exit_status = int(exitstatus)


def pytest_terminal_summary(terminalreporter):
    for source in _postgres_used:
        terminalreporter.write_line(f"PostgreSQL tests ran on a server started for this session: {source}")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    path = os.environ.get("DISBURSE_PYTEST_STATUS_FILE")
    if path:
        with open(path, "w") as f:
            f.write(str(_exit_status))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


@pytest.fixture(scope="session", autouse=True)
def signing_keys():
    """The session's signing service and the workers' key set: a key pair made for the test run
    (models/credentials.py); client calls in tests sign with it, the in-process worker verifies.
    The time-skipping server's clock runs years ahead of the signer's, so freshness is not
    checked here (tests/test_credentials.py checks it; real servers use the 15-minute default)."""
    from datetime import timedelta

    from models import credentials as creds
    signer = creds.Signer.generate("test-k1")
    creds.use_signer(signer)
    creds.use_verifier(creds.Verifier.of(signer, max_age=timedelta(days=36500)))
    yield signer
    creds.use_signer(None)
    creds.use_verifier(None)


@pytest.fixture(autouse=True)
def notice_days(request, monkeypatch):
    """公示 notice days count as calendar days in the tests (the worker's demo/test setting at 86,400
    seconds a day), so that no test depends on whether the installed chinesecalendar already knows
    the next year's holidays on the day it runs. The working-day calendar itself is tested by the
    tests marked `real_calendar` (tests/test_publicity.py, tests/test_workdays.py)."""
    if request.node.get_closest_marker("real_calendar") is None:
        monkeypatch.setenv("DISBURSE_PUBLICITY_DAY_SECONDS", "86400")


@pytest.fixture()
def harness():
    """A time-skipping server and its workers of this test's own (about half a second to start):
    no clock moved by another test, no workflow of another test firing timers into this test's
    database. The test server cannot be shared safely: it keeps the deadlines of completed
    activities and of closed runs and skips to them (ten years on) or stalls on them."""
    from tests.temporal_env import Harness
    h = Harness()
    h.start()
    yield h
    h.stop()


def _migrated_registry():
    """The database behind DISBURSE_DB_URL migrated, the test reviewers registered: the registry."""
    from models import registry
    from models.db import init_db
    init_db()
    from tests.temporal_env import REVIEWERS
    for rid, bureau in REVIEWERS.items():
        registry.add_reviewer(rid, bureau, rid)
    return registry


@pytest.fixture()
def db(tmp_path, monkeypatch):
    """A fresh SQLite DB for this test, with the reviewers and the test enterprise registered."""
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    return _migrated_registry()


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server on this machine for the whole session (tests/pg.py), stopped at its end
    whatever happened; skipped, with the reason, where none can run."""
    from tests import pg
    try:
        server = pg.start()
    except pg.Unavailable as e:
        if pg.required():
            pytest.fail(f"PostgreSQL is required (DISBURSE_TEST_POSTGRES_REQUIRED) but {e}")
        pytest.skip(f"PostgreSQL tests skipped: {e}")
    _postgres_used.append(f"{server.source} on {server.host}:{server.port}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def pg_url(postgres_server):
    """The URL of a fresh, empty PostgreSQL database of this test's own (dropped afterwards)."""
    name = postgres_server.create_database()
    url = postgres_server.url(name)
    yield url
    from models import db as dbmod
    eng = dbmod._engines.pop(url, None)
    if eng is not None:
        eng.dispose()
    postgres_server.drop_database(name)


@pytest.fixture()
def pg_db(pg_url, monkeypatch):
    """`db` on PostgreSQL: a fresh database (DISBURSE_DB_URL points at it), migrated, the test
    reviewers registered; returns the registry module."""
    monkeypatch.setenv("DISBURSE_DB_URL", pg_url)
    return _migrated_registry()


@pytest.fixture(params=["sqlite", "postgres"])
def db_any(request):
    """The same test on SQLite and on PostgreSQL (`db` or `pg_db`)."""
    return request.getfixturevalue("db" if request.param == "sqlite" else "pg_db")
