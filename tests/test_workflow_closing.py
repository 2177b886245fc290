"""Withdraw (the submitting operator) and revoke (the finance bureau, with a reason) end an
application at every stage before its last tranche; unpaid tranches are cancelled; once the
application is closed, both are refused."""
import pytest
from pydantic import ValidationError

from tests.backend_helpers import app_input, approve_both, register, result, through_publicity, wait_status
from tests.fake_activities import STAGED_QUEUE
from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
from workflows import client as wc
from workflows.client import RequestRefused


async def _at_stage(h, db, stage: str) -> tuple[str, int]:
    """An application brought to `stage`; returns its id and the ledger rows it has by then."""
    code = register(db, fresh_code())
    if stage in ("review", "info_requested"):
        app_id = await wc.submit(h.client, app_input(code))
        if stage == "info_requested":
            await wc.request_info(h.client, app_id, reviewer="hz-kjj", comment="need the policy scan")
        return app_id, 0
    if stage == "payout":                          # first of two tranches paid, the second due in 30 days
        app_id = await wc.submit(h.client, app_input(code), task_queue=STAGED_QUEUE)
        await approve_both(h, app_id)
        for _ in range(200):
            st = await wc.status(h.client, app_id)
            if [t["state"] for t in st["tranches"]] == ["paid", "pending"]:
                return app_id, 1
            await through_publicity(h, st)
            await __import__("asyncio").sleep(0.05)
        raise AssertionError(st)
    app_id = await wc.submit(h.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]}))
    await approve_both(h, app_id, lead="hz-jxj")
    await wait_status(h, app_id, "awaiting_evidence")
    if stage == "confirming":
        await wc.submit_evidence(h.client, app_id, {"loans": [loan(2027)]}, operator="op-demo")
        await wait_status(h, app_id, "confirming")
    return app_id, 1


STAGES = ["review", "info_requested", "payout", "awaiting_evidence", "confirming"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize("action", ["withdraw", "revoke"])
def test_close_at_every_stage(harness, db, stage, action):
    async def go():
        app_id, paid = await _at_stage(harness, db, stage)
        if action == "withdraw":
            rec = await wc.withdraw(harness.client, app_id, operator="op-demo", comment="no longer needed")
            assert rec.kind == "withdraw" and rec.who == "op-demo"
        else:
            rec = await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="documents forged")
            assert rec.kind == "revoke" and rec.bureau == "杭州市财政局" and rec.comment == "documents forged"
        res = await result(harness, app_id)
        assert res["status"] == {"withdraw": "withdrawn", "revoke": "revoked"}[action]
        assert "pending" not in [t["state"] for t in res["tranches"]]
        assert len(db.ledger_rows(app_id)) == paid
        with pytest.raises(RequestRefused, match="closed"):
            await wc.withdraw(harness.client, app_id, operator="op-demo")
        with pytest.raises(RequestRefused, match="closed"):
            await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="again")
    harness.run(go())


def test_withdraw_needs_the_submitting_operator_and_revoke_a_reason(harness, db):
    async def go():
        app_id, _ = await _at_stage(harness, db, "review")
        with pytest.raises(RequestRefused, match="only the submitting operator"):
            await wc.withdraw(harness.client, app_id, operator="op-other")
        with pytest.raises(ValidationError, match="reason"):
            await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="")
        assert (await wc.status(harness.client, app_id))["status"] == "review"
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        assert (await result(harness, app_id))["status"] == "withdrawn"
    harness.run(go())


def test_nothing_closes_a_completed_application(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        await approve_both(harness, app_id)
        assert (await result(harness, app_id))["status"] == "completed"
        with pytest.raises(RequestRefused, match="closed"):
            await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="too late")
        assert len(db.ledger_rows(app_id)) == 1
    harness.run(go())
