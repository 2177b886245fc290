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


def test_the_payment_checks_credit_on_its_day_and_a_retry_says_why_it_did_not_pay(db):
    """pay_tranche with a credit day (lean-history-2): listed on that day, the tranche is released,
    not paid, and the record carries the listing; the same payment run again (a crash after the
    release) says the same; not listed, it pays."""
    from datetime import date as date_

    from temporalio.testing import ActivityEnvironment

    from activities.book import pay_tranche as pay_activity
    from calc.model import CalcResult, Tranche
    from models import book, registry
    from models.application import PayRequest
    from tests.backend_helpers import register
    from tests.temporal_env import fresh_code

    listed, clean = register(db, fresh_code()), register(db, fresh_code())
    for code, app in ((listed, "app-L"), (clean, "app-C")):
        book.commit(app, code, 2026, lambda prior: CalcResult(
            clause_id="c", year=2026, amount=Decimal("500.00"), items={"i": Decimal("500.00")},
            schedule=(Tranche(1, date_(2026, 1, 1), Decimal("500.00")),)))
    registry.add_blacklist(listed, reason="严重失信", listed_on=date_(2026, 3, 1))

    def pay_tranche(req):
        return ActivityEnvironment().run(pay_activity, req)
    before = pay_tranche(PayRequest(application_id="app-L", clause_id="c", year=2026, seq=1, credit_day="2026-02-28"))
    assert before.state == "paid" and before.credit is None                  # not yet listed on that day
    book.commit("app-L2", listed, 2026, lambda prior: CalcResult(
        clause_id="c", year=2026, amount=Decimal("7.00"), items={"j": Decimal("7.00")},
        schedule=(Tranche(1, date_(2026, 1, 1), Decimal("7.00")),)))
    for _ in range(2):                                                        # the first run, then a retry
        rec = pay_tranche(PayRequest(application_id="app-L2", clause_id="c", year=2026, seq=1,
                                     credit_day="2026-03-01"))
        assert rec.state == "released" and rec.credit is not None and rec.credit.listed, rec
        assert "严重失信" in rec.credit.reason
    assert [r["application_id"] for r in registry.ledger_rows("app-L2")] == []
    ok = pay_tranche(PayRequest(application_id="app-C", clause_id="c", year=2026, seq=1, credit_day="2026-03-01"))
    assert ok.state == "paid" and ok.credit is None and ok.amount == Decimal("500.00")


def test_twenty_payments_of_one_enterprise_at_once_each_check_credit_and_pay(db):
    """The payment's credit check reads in the session holding the enterprise's book lock. Taking a
    second connection there made the lock's holder wait for the pool, whose connections the
    payments queued behind the lock held: every one of them then failed with `database is locked`
    (the lifecycle bench: 100 applications took 325 s instead of 30). Seen failing so, here."""
    from datetime import date as date_

    from temporalio.testing import ActivityEnvironment

    from activities.book import pay_tranche
    from calc.model import CalcResult, Tranche
    from models import book, registry
    from models.application import PayRequest

    code = register(db, fresh_code())
    for i in range(20):
        book.commit(f"app-{i}", code, 2026, lambda prior, i=i: CalcResult(
            clause_id="c", year=2026, amount=Decimal("10.00"), items={f"i{i}": Decimal("10.00")},
            schedule=(Tranche(1, date_(2026, 1, 1), Decimal("10.00")),)))

    def pay(i: int):
        return ActivityEnvironment().run(pay_tranche, PayRequest(application_id=f"app-{i}", clause_id="c", year=2026,
                                                                 seq=1, credit_day="2026-03-01"))
    with ThreadPoolExecutor(20) as pool:
        records = list(pool.map(pay, range(20)))
    assert [(r.state, r.credit) for r in records] == [("paid", None)] * 20
    assert sum(len(registry.ledger_rows(f"app-{i}")) for i in range(20)) == 20


def test_a_payment_stopped_by_a_bar_says_barred_when_run_again(db):
    """A bar after a recovery (追回) stops a payment as a listing does; run again (a crash after the
    release), the payment still reports the bar, so the application ends `barred`, not `blacklisted`."""
    from datetime import date as date_
    from datetime import datetime, timezone

    from temporalio.testing import ActivityEnvironment

    from activities.book import pay_tranche
    from calc.model import CalcResult, Tranche
    from models import book
    from models.application import PayRequest
    from models.db import session
    from models.tables import Bar

    code = register(db, fresh_code())
    book.commit("app-B", code, 2026, lambda prior: CalcResult(
        clause_id="c", year=2026, amount=Decimal("9.00"), items={"b": Decimal("9.00")},
        schedule=(Tranche(1, date_(2026, 1, 1), Decimal("9.00")),)))
    with session() as s:
        s.add(Bar(enterprise_code=code, from_day=date_(2026, 1, 5), until_day=date_(2029, 1, 5),
                  reason="虚假申报追回", basis="false_statement", application_id="app-x",
                  created_at=datetime.now(timezone.utc)))
        s.commit()
    for _ in range(2):                                                        # the first run, then a retry
        rec = ActivityEnvironment().run(pay_tranche, PayRequest(application_id="app-B", clause_id="c", year=2026,
                                                                seq=1, credit_day="2026-03-01"))
        assert rec.state == "released" and rec.credit is not None and rec.credit.listed, rec
        assert rec.credit.bar and "2029-01-05" in rec.credit.bar, rec.credit
