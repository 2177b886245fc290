"""Records the event histories the replay test (tests/test_replay.py) keeps, so that a change to
ApplicationWorkflow that would break workflows already running (for years) fails a test.

    .venv/bin/python -m tests.record_histories v2   # writes tests/histories/<scenario>-v2.json

Record only on purpose, under a new tag: a history recorded with today's code proves nothing
about yesterday's workflows, so the old files stay (an existing file is never overwritten).
"""
from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from pathlib import Path

HISTORIES = Path(__file__).resolve().parent / "histories"


async def scenarios(h, db) -> dict[str, tuple[str, list[str]]]:
    """name -> (workflow id, run ids). Each drives one path through the workflow to its end."""
    from tests.backend_helpers import app_input, approve_both, register, result, wait_status
    from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
    from workflows import client as wc
    from datetime import timedelta

    out: dict[str, tuple[str, list[str]]] = {}

    async def start(task_queue: str = wc.TASK_QUEUE, **kw) -> tuple[str, str]:
        code = register(db, fresh_code())
        app_id = await wc.submit(h.client, app_input(code, **kw), task_queue=task_queue)
        return app_id, (await h.client.get_workflow_handle(app_id).describe()).run_id

    # 公示 (patch "provisional-and-publicity"): an objection upheld (rejected, commitment released), and
    # one dismissed after the period ended (paid then)
    from tests.backend_helpers import past_publicity
    app_id, run = await start()
    await approve_both(h, app_id)
    await wait_status(h, app_id, "publicity")
    await wc.object_to(h.client, app_id, who="op-desk", objector_name="张三", objector_contact="13800000000",
                       reason="保单系伪造")
    await wc.rule_objection(h.client, app_id, reviewer="hz-kjj", objection=1, reason="核实属实", uphold=True)
    await result(h, app_id)
    out["publicity_objection_upheld"] = (app_id, [run])

    app_id, run = await start()
    await approve_both(h, app_id)
    await wait_status(h, app_id, "publicity")
    await wc.object_to(h.client, app_id, who="op-desk", objector_name="李四", objector_contact="hz@example.cn",
                       reason="金额有误")
    await past_publicity(h, app_id)
    await wc.rule_objection(h.client, app_id, reviewer="hz-kjj", objection=1, reason="核实无误", uphold=False)
    await result(h, app_id)
    out["publicity_objection_dismissed"] = (app_id, [run])

    # The scenarios below move the clock weeks ahead (one harness for all): past the last year the
    # installed calendar knows, a real 公示 period cannot be computed. They record with the
    # demo/test setting (a notice day lasts an hour), pinned when each application opens.
    os.environ["DISBURSE_PUBLICITY_DAY_SECONDS"] = "3600"

    # review with a request for information, an SLA escalation, approval, payout
    app_id, run = await start()
    await wc.request_info(h.client, app_id, reviewer="hz-kjj", comment="send the policy scan")
    await wc.provide_info(h.client, app_id, {"premium": "800000"}, operator="op-demo")
    await wc.approve(h.client, app_id, reviewer="hz-kjj", comment="ok")
    await h.env.sleep(timedelta(days=16))
    await wait_status(h, app_id, "review")
    await wc.approve(h.client, app_id, reviewer="hz-czj", comment="late but fine")
    await result(h, app_id)
    out["lifecycle_info_sla"] = (app_id, [run])

    # a loan-interest programme over two years (continue-as-new), finance confirmation
    app_id, run = await start(clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]})
    await approve_both(h, app_id, lead="hz-jxj")
    await wait_status(h, app_id, "awaiting_evidence")
    await wc.submit_evidence(h.client, app_id, {"loans": [loan(2027)]}, operator="op-demo")
    await wait_status(h, app_id, "confirming")
    await wc.confirm_year(h.client, app_id, reviewer="hz-czj")
    await result(h, app_id)
    last = (await h.client.get_workflow_handle(app_id).describe()).run_id
    out["programme_two_years"] = (app_id, [run, last])

    # rejected by one bureau
    app_id, run = await start()
    await wc.reject(h.client, app_id, reviewer="hz-kjj", comment="not a tech enterprise")
    await result(h, app_id)
    out["rejected"] = (app_id, [run])

    # withdrawn while awaiting evidence
    app_id, run = await start(clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]})
    await approve_both(h, app_id, lead="hz-jxj")
    await wait_status(h, app_id, "awaiting_evidence")
    await wc.withdraw(h.client, app_id, operator="op-demo")
    await result(h, app_id)
    out["withdrawn_awaiting_evidence"] = (app_id, [run])

    # revoked during payout: the first of two tranches paid, the second (due in 30 days) cancelled
    from tests.fake_activities import BROKEN_QUEUE, STAGED_QUEUE
    app_id, run = await start(task_queue=STAGED_QUEUE)
    await approve_both(h, app_id)
    await _first_tranche_paid(h, app_id)
    await wc.revoke(h.client, app_id, reviewer="hz-czj", reason="documents forged")
    await result(h, app_id)
    out["revoked_during_payout"] = (app_id, [run])

    # blacklisted during payout: listed before the second tranche falls due
    code = register(db, fresh_code())
    app_id = await wc.submit(h.client, app_input(code), task_queue=STAGED_QUEUE)
    run = (await h.client.get_workflow_handle(app_id).describe()).run_id
    await approve_both(h, app_id)
    await _first_tranche_paid(h, app_id)
    db.add_blacklist(code, reason="列入严重失信名单")
    await result(h, app_id)
    out["blacklisted_during_payout"] = (app_id, [run])

    # a step no retry can fix: attention, then withdrawn
    app_id, run = await start(task_queue=BROKEN_QUEUE)
    await approve_both(h, app_id)
    await wait_status(h, app_id, "attention")
    await wc.withdraw(h.client, app_id, operator="op-demo", comment="cannot be calculated")
    await result(h, app_id)
    out["attention_withdrawn"] = (app_id, [run])

    # budget lines (patch "budget-lines"): the line cannot cover the award -> awaiting_budget; topped
    # up and retried -> paid; a second application waits and is rejected for budget -> refused
    from decimal import Decimal

    from models import book, budget
    from tests.temporal_env import PREMIUM_CLAUSE
    drawn = sum((ln["amount"] for ln in book.lines() if ln["clause_id"] == PREMIUM_CLAUSE and ln["year"] == 2026
                 and ln["state"] in ("committed", "paid")), Decimal(0))
    csv = Path(tempfile.mkdtemp()) / "budget.csv"
    csv.write_text(f"line_id,name,year,clause_ids,amount,document\nB-REC,科技保险,2026,{PREMIUM_CLAUSE},"
                   f"{drawn + 100000:.2f},\n", encoding="utf-8")
    budget.import_file(csv, who="hz-czj")
    app_id, run = await start()
    await approve_both(h, app_id)
    await wait_status(h, app_id, "awaiting_budget")
    budget.top_up("B-REC", Decimal("300000"), who="hz-czj")
    await wc.retry_budget(h.client, app_id, who="hz-czj", comment="+300000")
    await result(h, app_id)
    out["budget_topped_up"] = (app_id, [run])

    app_id, run = await start()
    await approve_both(h, app_id)
    await wait_status(h, app_id, "awaiting_budget")
    await wc.reject_for_budget(h.client, app_id, reviewer="hz-czj", reason="本年度预算已用完")
    await result(h, app_id)
    out["budget_rejected"] = (app_id, [run])
    return out


async def _first_tranche_paid(h, app_id: str) -> None:
    import asyncio
    from tests.backend_helpers import through_publicity
    for _ in range(400):
        st = await wc_status(h, app_id)
        if [t["state"] for t in st["tranches"]] == ["paid", "pending"]:
            return
        await through_publicity(h, st)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{app_id}: first tranche never paid")


async def wc_status(h, app_id: str) -> dict:
    from workflows import client as wc
    return await wc.status(h.client, app_id)


async def histories(h, db, module: str | None = None) -> dict[str, object]:
    """name -> WorkflowHistory, one per run (suffix -run1, -run2 for continue-as-new chains); the
    scenarios of `module` (e.g. tests.record_clawback) instead of this module's when given."""
    import importlib
    drive = importlib.import_module(module).scenarios if module else scenarios
    got = {}
    for name, (app_id, runs) in (await drive(h, db)).items():
        for i, run_id in enumerate(runs, start=1):
            hist = await h.client.get_workflow_handle(app_id, run_id=run_id).fetch_history()
            got[name if len(runs) == 1 else f"{name}-run{i}"] = hist
    return got


def main() -> int:
    if len(sys.argv) not in (2, 3) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", sys.argv[1]):
        print("usage: python -m tests.record_histories TAG [SCENARIO_MODULE]   (e.g. v2; v3-clawback "
              "tests.record_clawback)", file=sys.stderr)
        return 2
    tag = sys.argv[1]
    module = sys.argv[2] if len(sys.argv) == 3 else None
    taken = sorted(p.name for p in HISTORIES.glob(f"*-{tag}.json"))
    if taken:
        print(f"tag {tag} is taken ({', '.join(taken)}); choose a new one", file=sys.stderr)
        return 2
    from datetime import timedelta

    from models import credentials as creds
    from models import registry
    from models.db import init_db
    signer = creds.Signer.generate("record-k1")        # a key pair of the recording's own, as in tests
    creds.use_signer(signer)
    creds.use_verifier(creds.Verifier.of(signer, max_age=timedelta(days=36500)))
    from tests.temporal_env import REVIEWERS, Harness
    os.environ["DISBURSE_DB_URL"] = f"sqlite:///{tempfile.mkdtemp()}/record.db"
    init_db()
    for rid, bureau in REVIEWERS.items():
        registry.add_reviewer(rid, bureau, rid)
    h = Harness()
    h.start()
    try:
        got = h.run(histories(h, registry, module))
    finally:
        h.stop()
    HISTORIES.mkdir(exist_ok=True)
    for name, hist in got.items():
        path = HISTORIES / f"{name}-{tag}.json"
        path.write_text(json.dumps(json.loads(hist.to_json()), indent=1) + "\n")
        print(f"wrote {path.relative_to(HISTORIES.parent.parent)} ({len(hist.events)} events)")
    sys.stdout.flush()
    os._exit(0)     # temporalio 1.35 may crash at interpreter exit


if __name__ == "__main__":
    sys.exit(main())
