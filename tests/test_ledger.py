"""The payout ledger: a tranche is written exactly once (unique application/year/seq, whatever
retries or races), and every payment is in the award book that feeds caps and 从优、就高、不重复
across applications (payments of the first workflow version included)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from activities.legacy import write_payout
from models import book
from models.db import session
from models.legacy import PayoutInput
from tests.backend_helpers import app_input, approve_both, register, result, wait_status
from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
from workflows import client as wc


def _payout(seq: int = 1, amount: str = "1234.56") -> PayoutInput:
    return PayoutInput(application_id="app-x", clause_id=LOAN_CLAUSE, enterprise_code="91330106MA2H00001E",
                       year=2026, seq=seq, amount=Decimal(amount), due="2026-12-01", item_id="loan:L-1")


def test_a_retried_payout_is_written_once(db):
    first = write_payout(_payout())
    again = write_payout(_payout())            # an activity retry after a crash past the commit
    assert first.created and not again.created
    assert again.amount == Decimal("1234.56")
    assert [(r["seq"], r["amount"], r["item_id"]) for r in db.ledger_rows("app-x")] == [
        (1, Decimal("1234.56"), "loan:L-1")]


def test_racing_payouts_write_one_row(db):
    with ThreadPoolExecutor(8) as pool:
        recs = list(pool.map(lambda _: write_payout(_payout(seq=2)), range(8)))
    assert sum(r.created for r in recs) == 1
    assert len(db.ledger_rows("app-x")) == 1


def test_amounts_are_stored_exactly(db):
    write_payout(_payout(seq=3, amount="9999999999.99"))
    assert db.ledger_rows("app-x")[0]["amount"] == Decimal("9999999999.99")


def test_prior_awards_carry_the_item_and_leave_out_the_award_itself(db):
    """A first-version payment (item key without its period) is booked with the loan-year key."""
    write_payout(_payout(seq=1))
    code = "91330106MA2H00001E"
    with session() as s:
        assert book.prior_awards(s, code) == [
            {"clause_id": LOAN_CLAUSE, "year": 2026, "amount": Decimal("1234.56"), "item_id": "loan:L-1@2026"}]
        assert book.prior_awards(s, code, exclude=("app-x", 2026)) == []


def test_the_same_loan_under_a_second_clause_gets_only_the_top_up(harness, db):
    """hz2025 附则 从优、就高、不重复: one loan, first 1% under (一) capped at 200,000, then under (二)
    (1%, cap 10,000,000 = 300,000): the second application pays only the 100,000 difference."""
    async def go():
        code = register(db, fresh_code(), quals="tech_enterprise:2020-01-01;five_ecosystem:2020-01-01")
        big = {**loan(2026), "loan_id": "L-BIG", "principal": "30000000"}
        first = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [big]}))
        await approve_both(harness, first, lead="hz-jxj")
        await wait_status(harness, first, "awaiting_evidence")
        await wc.withdraw(harness.client, first, operator="op-demo", comment="one year is enough")
        second = await wc.submit(harness.client, app_input(
            code, clause="hz2025-02-ecosystem-equipment-loan-interest",
            facts={"loans": [big], "fixed_asset_investment": "25000000"}))
        await approve_both(harness, second, lead="hz-jxj")
        await wait_status(harness, second, "awaiting_evidence")
        calc = await wc.calculation(harness.client, second)
        assert calc.amount == Decimal("100000.00")
        assert [s.step for s in calc.trace if s.step == "overlap"] == ["overlap"]
        await wc.withdraw(harness.client, second, operator="op-demo")
        await result(harness, second)
        rows = [r for r in db.ledger_rows() if r["enterprise_code"] == code]
        assert [(r["clause_id"][:7], r["amount"], r["item_id"]) for r in rows] == [
            ("hz2025-", Decimal("200000.00"), "loan:L-BIG@2026"), ("hz2025-", Decimal("100000.00"), "loan:L-BIG@2026")]
        assert sum(r["amount"] for r in rows) == Decimal("300000.00")
    harness.run(go())


def test_an_amount_finer_than_a_fen_is_refused_not_rounded(db):
    import pytest
    from sqlalchemy.exc import StatementError
    with pytest.raises(StatementError, match="finer than a fen"):
        write_payout(_payout(seq=4, amount="0.005"))
    assert db.ledger_rows("app-x") == []


def test_rows_written_by_retried_activities_are_written_once(harness, db):
    """notify rows are keyed by run id + activity id."""
    from temporalio.testing import ActivityEnvironment
    from sqlmodel import select

    from activities.application import notify
    from models.application import Notification
    from models.db import session
    from models.tables import NotificationRow

    env = ActivityEnvironment()
    n = Notification(application_id="app-y", kind="escalation", message="late", recipients=["杭州市财政局"])
    env.run(notify, n)
    env.run(notify, n)                          # the same activity (same run + activity id) again
    with session() as s:
        assert len(s.exec(select(NotificationRow).where(NotificationRow.application_id == "app-y")).all()) == 1


def test_a_worker_crash_after_the_ledger_write_pays_once(harness, db):
    """The ledger activity writes, then its worker 'crashes' before reporting, twice; Temporal
    retries it; the retries find the row and the workflow completes with one payout."""
    from tests.fake_activities import FLAKY_FAILURES, FLAKY_QUEUE

    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code), task_queue=FLAKY_QUEUE)
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "completed" and res["awarded"] == "400000.00"
        assert [r["amount"] for r in db.ledger_rows(app_id)] == [Decimal("400000.00")]
        history = await harness.client.get_workflow_handle(app_id).fetch_history()
        started = [e for e in history.events if e.HasField("activity_task_started_event_attributes")]
        attempts = [e.activity_task_started_event_attributes.attempt for e in started]
        assert max(attempts) == FLAKY_FAILURES + 1           # the payout activity ran three times
    harness.run(go())
