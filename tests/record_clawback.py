"""The clawback and amendment paths, for tests/record_histories.py (tag v3-clawback):

    .venv/bin/python -m tests.record_histories v3-clawback tests.record_clawback
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal


async def scenarios(h, db) -> dict[str, tuple[str, list[str]]]:
    from tests.backend_helpers import app_input, approve_both, register, result, wait_status
    from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
    from tests.three_tranches import IP_ABS, IP_FACTS, LISTING, QUEUE, add_worker, listing_facts, until_states
    from workflows import client as wc
    from workflows.recovery import recovery_id

    import os
    # the clock moves months ahead: past the last year the installed calendar knows, a real 公示
    # period cannot be computed; record with the demo/test setting (a notice day lasts an hour)
    os.environ["DISBURSE_PUBLICITY_DAY_SECONDS"] = "3600"
    await add_worker(h)
    out: dict[str, tuple[str, list[str]]] = {}

    async def run_id(wid: str) -> str:
        return (await h.client.get_workflow_handle(wid).describe()).run_id

    async def hu(code: str, clause: str, facts: dict) -> str:
        app_id = await wc.submit(h.client, app_input(code, clause=clause, year=2025, facts=facts), task_queue=QUEUE)
        await wc.approve(h.client, app_id, reviewer="hu-jrb", comment="ok")
        await wc.approve(h.client, app_id, reviewer="hu-czj", comment="ok")
        await until_states(h, app_id, ["paid", "pending", "pending"])
        return app_id

    # a clawback after the first of three tranches; the enterprise's other application barred before its next
    code = register(db, fresh_code("330502"))
    other = await hu(code, IP_ABS, IP_FACTS)
    app_id = await hu(code, LISTING, listing_facts())
    await wc.clawback(h.client, app_id, reviewer="hu-czj", everything=True, basis="false_statement",
                      reason="虚假申报")
    await result(h, app_id)
    out["clawback_during_payout"] = (app_id, [await run_id(app_id)])
    await wait_status(h, other, "barred", skip=timedelta(days=5))
    await result(h, other)
    out["barred_before_tranche"] = (other, [await run_id(other)])

    # amendments during payout: up (applied), a refusal by finance, up beyond the cap (refused by the book)
    code = register(db, fresh_code("330502"), quals="")
    app_id = await hu(code, LISTING, listing_facts())
    await wc.propose_amendment(h.client, app_id, reviewer="hu-jrb", amount=Decimal("12000000"), reason="复核")
    await wc.approve_amendment(h.client, app_id, reviewer="hu-czj")
    await wc.propose_amendment(h.client, app_id, reviewer="hu-jrb", amount=Decimal("8000000"), reason="核减")
    await wc.refuse_amendment(h.client, app_id, reviewer="hu-czj", comment="不予调整")
    await wc.propose_amendment(h.client, app_id, reviewer="hu-jrb", amount=Decimal("25000000"), reason="按申报")
    try:
        await wc.approve_amendment(h.client, app_id, reviewer="hu-czj")
    except wc.RequestRefused:
        pass
    await result(h, app_id)
    out["amendments_during_payout"] = (app_id, [await run_id(app_id)])

    # an amendment of a paid award (a correction entry) while awaiting evidence, then withdrawn
    code = register(db, fresh_code())
    app_id = await wc.submit(h.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]}))
    await approve_both(h, app_id, lead="hz-jxj")
    await wait_status(h, app_id, "awaiting_evidence")
    paid = db.ledger_rows(app_id)[0]["amount"]
    await wc.propose_amendment(h.client, app_id, reviewer="hz-jxj", amount=paid - 1000, reason="利率核错")
    await wc.approve_amendment(h.client, app_id, reviewer="hz-czj")
    await wc.withdraw(h.client, app_id, operator="op-demo", comment="done")
    await result(h, app_id)
    out["amendment_of_paid_award"] = (app_id, [await run_id(app_id)])

    # a completed application recovered by the Recovery workflow
    code = register(db, fresh_code())
    app_id = await wc.submit(h.client, app_input(code))
    await approve_both(h, app_id)
    await result(h, app_id)
    await wc.clawback(h.client, app_id, reviewer="hz-czj", amount=Decimal("100000"), basis="serious_dishonesty",
                      reason="列入严重失信名单")
    out["recovery_of_completed"] = (recovery_id(app_id), [await run_id(recovery_id(app_id))])
    return out
