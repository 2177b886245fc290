"""Yearly programmes (interest subsidies, first-set insurance): one application, up to three
support years, each year's evidence -> recalculation -> finance confirmation -> credit check ->
payout, continue-as-new between years; on the time-skipping server, years pass in seconds."""
from decimal import Decimal

import pytest
from sqlmodel import select

from models.db import session
from models.tables import NotificationRow
from tests.backend_helpers import app_input, approve_both, register, result, wait_status
from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
from workflows import client as wc
from workflows.client import RequestRefused

FIRST_SET = "hz2025-06-first-set-equipment-insurance"


def first_set_facts(year: int, premium: str) -> dict:
    return {"premium": premium, "insured_amount": "50000000", "policy_no": "FS-1", "period_start": f"{year}-12-15"}


async def _next_year(h, app_id: str, evidence: dict, *, confirm: bool = True) -> dict:
    await wait_status(h, app_id, "awaiting_evidence")
    await wc.submit_evidence(h.client, app_id, evidence, operator="op-demo")
    st = await wait_status(h, app_id, ("confirming", "completed", "blacklisted"))
    if confirm and st["status"] == "confirming":
        await wc.confirm_year(h.client, app_id, reviewer="hz-czj", comment="evidence checked")
    return st


async def _loan_year_one_paid(h, db) -> tuple[str, str]:
    """A hz2025-01 loan-interest programme whose 2026 tranche is paid, awaiting 2027's evidence."""
    code = register(db, fresh_code())
    app_id = await wc.submit(h.client, app_input(code, clause=LOAN_CLAUSE, year=2026, facts={"loans": [loan(2026)]}))
    await approve_both(h, app_id, lead="hz-jxj")
    await wait_status(h, app_id, "awaiting_evidence")
    return code, app_id


def test_three_year_first_set_programme_declines_ten_points_a_year(harness, db):
    """hz2025-06: 90% in the first year, then 10 points less each year; 2025, 2026, 2027 are the
    policy window's three years, so the programme ends by itself after 2027."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=FIRST_SET, year=2025,
                                                           facts=first_set_facts(2025, "1500000")))
        first_run = (await harness.client.get_workflow_handle(app_id).describe()).run_id
        await approve_both(harness, app_id, lead="hz-jxj")
        st = await _next_year(harness, app_id, {"premium": "1200000", "period_start": "2026-12-15"})
        assert st["programme_year"] == 2 and st["year"] == 2026
        assert st["calculation"]["amount"] == "800000.00"          # 80% x min(1.2M, 2% x 50M)
        await _next_year(harness, app_id, {"premium": "900000", "period_start": "2027-12-15"})
        res = await result(harness, app_id)
        assert res["status"] == "completed", res
        assert res["programme_year"] == 3 and res["year"] == 2027
        rows = db.ledger_rows(app_id)
        assert [(r["year"], r["amount"]) for r in rows] == [
            (2025, Decimal("900000.00")), (2026, Decimal("800000.00")), (2027, Decimal("630000.00"))]
        assert res["awarded"] == "2330000.00"
        assert [t["state"] for t in res["tranches"]] == ["paid"] * 3
        kinds = [d["kind"] for d in res["decisions"]]
        assert kinds == ["approve", "approve", "submit_evidence", "confirm_year", "submit_evidence", "confirm_year"]
        last_run = (await harness.client.get_workflow_handle(app_id).describe()).run_id
        assert last_run != first_run                                  # continued as new between years
    harness.run(go())


def test_loan_programme_stops_at_the_end_of_the_policy_window(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, year=2026,
                                                           facts={"loans": [loan(2026)]}))
        await approve_both(harness, app_id, lead="hz-jxj")
        await _next_year(harness, app_id, {"loans": [loan(2027)]})
        res = await result(harness, app_id)
        assert res["status"] == "completed" and res["year"] == 2027    # 2028 is outside hz2025's window
        assert [(r["year"], r["amount"]) for r in db.ledger_rows(app_id)] == [
            (2026, Decimal("80000.00")), (2027, Decimal("80000.00"))]
    harness.run(go())


def test_no_evidence_by_the_deadline_ends_the_programme_cleanly(harness, db):
    async def go():
        code, app_id = await _loan_year_one_paid(harness, db)
        res = await result(harness, app_id)                           # time skips past the deadline
        assert res["status"] == "completed"
        assert "no evidence for 2027" in res["note"]
        assert len(db.ledger_rows(app_id)) == 1
        with session() as s:
            kinds = [n.kind for n in s.exec(select(NotificationRow).where(NotificationRow.application_id == app_id))]
        assert kinds == ["awaiting_review", "publicity", "tranche_paid", "evidence_due", "programme_ended"]
        with pytest.raises(RequestRefused, match="closed"):
            await wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="op-demo")
    harness.run(go())


def test_blacklisted_between_programme_years_gets_no_further_tranche(harness, db):
    async def go():
        code, app_id = await _loan_year_one_paid(harness, db)
        db.add_blacklist(code, reason="列入严重失信名单")
        await _next_year(harness, app_id, {"loans": [loan(2027)]})
        res = await result(harness, app_id)
        assert res["status"] == "blacklisted" and "严重失信" in res["note"]
        assert [t["state"] for t in res["tranches"]] == ["paid", "cancelled"]
        assert [r["year"] for r in db.ledger_rows(app_id)] == [2026]
    harness.run(go())


def test_year_two_refusals(harness, db):
    """Evidence only from the submitting operator, with valid facts; confirmation only by the
    finance bureau; withdraw while awaiting evidence cancels the programme."""
    async def go():
        code, app_id = await _loan_year_one_paid(harness, db)
        with pytest.raises(RequestRefused, match="only the submitting operator"):
            await wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="intruder")
        with pytest.raises(RequestRefused, match="must say who they are"):
            await wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="")
        with pytest.raises(RequestRefused, match="facts"):
            await wc.submit_evidence(harness.client, app_id, {"loans": [{"principal": "-1"}]}, operator="op-demo")
        await wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="op-demo")
        await wait_status(harness, app_id, "confirming")
        with pytest.raises(RequestRefused, match="only 杭州市财政局 may confirm"):
            await wc.confirm_year(harness.client, app_id, reviewer="hz-jxj")
        await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="loan repaid early, evidence void")
        res = await result(harness, app_id)
        assert res["status"] == "revoked"
        assert [t["state"] for t in res["tranches"]] == ["paid", "cancelled"]   # 2027 never paid
        assert [r["year"] for r in db.ledger_rows(app_id)] == [2026]
    harness.run(go())


def test_withdraw_while_awaiting_evidence(harness, db):
    async def go():
        code, app_id = await _loan_year_one_paid(harness, db)
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="moved away")
        res = await result(harness, app_id)
        assert res["status"] == "withdrawn" and len(db.ledger_rows(app_id)) == 1
    harness.run(go())
