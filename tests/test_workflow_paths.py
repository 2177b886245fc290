from datetime import timedelta
from decimal import Decimal

import pytest

from sqlmodel import select

from models import search_attributes as sa
from models.db import session
from models.tables import ApplicationRow, DecisionRow, NotificationRow
from tests.backend_helpers import (
    app_input, approve_both, register, result, submit_new, through_publicity, wait_status,
)
from tests.fake_activities import STAGED_QUEUE
from tests.temporal_env import fresh_code
from workflows import client as wc
from workflows.client import RequestRefused


def test_blacklisted_at_submission(harness, db):
    async def go():
        code = register(db, fresh_code())
        db.add_blacklist(code, reason="严重失信")
        app_id = await wc.submit(harness.client, app_input(code))
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "blacklisted" and "严重失信" in res["note"]
        assert db.ledger_rows(app_id) == []
    harness.run(go())


async def _paid_first_tranche(harness, app_id):
    for _ in range(200):
        st = await wc.status(harness.client, app_id)
        if [t["state"] for t in st["tranches"]] == ["paid", "pending"]:
            return st
        await through_publicity(harness, st)
        await __import__("asyncio").sleep(0.05)
    raise AssertionError(st)


def test_blacklisted_before_a_due_tranche(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code), task_queue=STAGED_QUEUE)
        await approve_both(harness, app_id)
        st = await _paid_first_tranche(harness, app_id)
        assert st["status"] == "payout"
        db.add_blacklist(code, reason="listed later")
        res = await result(harness, app_id)
        assert res["status"] == "blacklisted"
        assert [t["state"] for t in res["tranches"]] == ["paid", "cancelled"]
        assert [r["amount"] for r in db.ledger_rows(app_id)] == [Decimal("200000.00")]
    harness.run(go())


def test_withdraw_in_review(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok")
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="changed our mind")
        res = await result(harness, app_id)
        assert res["status"] == "withdrawn"
        with session() as s:
            assert s.get(ApplicationRow, app_id).status == "withdrawn"
            kinds = [d.kind for d in s.exec(select(DecisionRow).where(DecisionRow.application_id == app_id))]
        assert sorted(kinds) == ["approve", "withdraw"]
    harness.run(go())


def test_revoke_while_waiting_to_pay(harness, db):
    async def go():
        app_id = await submit_new(harness, db, task_queue=STAGED_QUEUE)
        await approve_both(harness, app_id)
        await _paid_first_tranche(harness, app_id)
        rec = await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="fraud found")
        assert rec.bureau == "杭州市财政局"
        res = await result(harness, app_id)
        assert res["status"] == "revoked"
        assert [t["state"] for t in res["tranches"]] == ["paid", "cancelled"]
        assert len(db.ledger_rows(app_id)) == 1
    harness.run(go())


def test_review_sla_escalation(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok")
        await harness.env.sleep(timedelta(days=16))
        st = await wait_status(harness, app_id, "review")
        for _ in range(100):
            st = await wc.status(harness.client, app_id)
            if st["overdue"]:
                break
            await __import__("asyncio").sleep(0.05)
        assert st["overdue"] and st["status"] == "review"
        d = await harness.client.get_workflow_handle(app_id).describe()
        assert d.typed_search_attributes.get(sa.OVERDUE) is True
        with session() as s:
            notes = list(s.exec(select(NotificationRow).where(NotificationRow.application_id == app_id)))
        escalations = [n for n in notes if n.kind == "escalation"]
        assert escalations and "杭州市财政局" in escalations[0].recipients
        assert "杭州市科技局" not in escalations[0].recipients                # it has decided already
        await wc.approve(harness.client, app_id, reviewer="hz-czj", comment="late but ok")
        assert (await result(harness, app_id))["status"] == "completed"
    harness.run(go())


def test_calc_refusal_out_of_jurisdiction(harness, db):
    async def go():
        code = register(db, "91330502MA2H000019")
        app_id = await wc.submit(harness.client, app_input(code))
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "refused" and res["note"].startswith("out_of_jurisdiction")
        calc = await wc.calculation(harness.client, app_id)
        assert calc.refusal.code == "out_of_jurisdiction" and calc.trace
    harness.run(go())


def test_unknown_enterprise_refused(harness, db):
    """The worker checks the claim against its own registry when the application opens: an
    enterprise it does not know is refused at once, and the id stays free for a corrected claim."""
    async def go():
        code = fresh_code()
        with pytest.raises(RequestRefused, match="not in the enterprise registry"):
            await wc.submit(harness.client, app_input(code))   # not registered
        register(db, code)
        app_id = await wc.submit(harness.client, app_input(code))
        assert (await wc.status(harness.client, app_id))["status"] == "review"
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())


def test_lowered_award(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok",
                         amount=Decimal("123456.78"), reason="partial documentation")
        await wc.approve(harness.client, app_id, reviewer="hz-czj", comment="ok")
        res = await result(harness, app_id)
        assert res["status"] == "completed"
        assert [r["amount"] for r in db.ledger_rows(app_id)] == [Decimal("123456.78")]
    harness.run(go())
