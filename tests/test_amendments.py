"""Amendments: the lead bureau proposes a correction of an approved award (up or down, with a
reason), finance approves it (never the proposer); the award book applies it once — to the unpaid
tranches, or settled in the ledger by a top-up or a correction entry for paid ones — and refuses an
amendment up that would break a cap, naming the cap and citing it."""
from __future__ import annotations

from decimal import Decimal

import pytest

from tests.backend_helpers import app_input, approve_both, register, result, wait_status
from tests.temporal_env import LOAN_CLAUSE, fresh_code, loan
from tests.three_tranches import LISTING, QUEUE, add_worker, listing_facts, until_states
from workflows import client as wc
from workflows.client import RequestRefused


async def _listing(h, db, amount: str = "10000000") -> str:
    code = register(db, fresh_code("330502"), quals="")
    app_id = await wc.submit(h.client, app_input(code, clause=LISTING, year=2025, facts=listing_facts(amount)),
                             task_queue=QUEUE)
    await wc.approve(h.client, app_id, reviewer="hu-jrb", comment="ok")
    await wc.approve(h.client, app_id, reviewer="hu-czj", comment="ok")
    await until_states(h, app_id, ["paid", "pending", "pending"])
    return app_id


def _ledger(db, app_id: str) -> list[tuple[str, int, Decimal]]:
    return [(r["kind"], r["seq"], r["amount"]) for r in db.ledger_rows(app_id)]


def test_amendment_up_within_the_cap_is_paid_on_the_unpaid_tranches(harness, db):
    async def go():
        await add_worker(harness)
        app_id = await _listing(harness, db)
        a = await wc.propose_amendment(harness.client, app_id, reviewer="hu-jrb", amount=Decimal("12000000"),
                                       reason="复核: 上市奖励按 1200 万元核定")
        assert (a.number, a.before, a.after, a.state) == (1, Decimal("10000000.00"), Decimal("12000000"), "proposed")
        done = await wc.approve_amendment(harness.client, app_id, reviewer="hu-czj", comment="同意")
        assert done["state"] == "applied" and Decimal(done["settled"]) == 0, done
        st = await wc.status(harness.client, app_id)
        assert [Decimal(t["amount"]) for t in st["tranches"]] == [
            Decimal("3000000.00"), Decimal("3857142.86"), Decimal("5142857.14")]
        assert (await result(harness, app_id))["status"] == "completed"
        assert sum(r[2] for r in _ledger(db, app_id)) == Decimal("12000000.00")
        assert [r[0] for r in _ledger(db, app_id)] == ["payment"] * 3
        from models.audit import audit_record
        [row] = audit_record(app_id)["amendments"]
        assert (row["before"], row["after"], row["proposed_by"], row["approved_by"]) == (
            Decimal("10000000.00"), Decimal("12000000.00"), "hu-jrb", "hu-czj")
        kinds = [d["kind"] for d in audit_record(app_id)["decisions"]]
        assert "propose_amendment" in kinds and "approve_amendment" in kinds
    harness.run(go())


def test_amendment_up_beyond_the_cap_is_refused_naming_it(harness, db):
    async def go():
        await add_worker(harness)
        app_id = await _listing(harness, db)
        await wc.propose_amendment(harness.client, app_id, reviewer="hu-jrb", amount=Decimal("25000000"),
                                   reason="按申报金额")
        with pytest.raises(RequestRefused, match=r"cap:per_period: 25000000.* cap of 20000000 under "
                                                 r"hu2023-06-listing-reward .* 给予最高2000万元的分阶段奖励"):
            await wc.approve_amendment(harness.client, app_id, reviewer="hu-czj")
        st = await wc.status(harness.client, app_id)
        assert [Decimal(t["amount"]) for t in st["tranches"]] == [
            Decimal("3000000.00"), Decimal("3000000.00"), Decimal("4000000.00")]
        assert st["amendments"][0]["state"] == "rejected"
        assert (await result(harness, app_id))["status"] == "completed"
        assert sum(r[2] for r in _ledger(db, app_id)) == Decimal("10000000.00")
    harness.run(go())


def test_amendment_down_on_unpaid_tranches_and_the_proposer_cannot_approve(harness, db):
    async def go():
        await add_worker(harness)
        app_id = await _listing(harness, db)
        with pytest.raises(RequestRefused, match="only a reviewer of 湖州市金融办"):
            await wc.propose_amendment(harness.client, app_id, reviewer="hu-czj", amount=Decimal("8000000"),
                                       reason="x")
        await wc.propose_amendment(harness.client, app_id, reviewer="hu-jrb", amount=Decimal("8000000"),
                                   reason="核减: 第二阶段材料不全")
        with pytest.raises(RequestRefused, match="hu-jrb proposed amendment #1 and cannot decide on it"):
            await wc.approve_amendment(harness.client, app_id, reviewer="hu-jrb")
        done = await wc.approve_amendment(harness.client, app_id, reviewer="hu-czj")
        assert done["state"] == "applied" and Decimal(done["settled"]) == 0
        assert (await result(harness, app_id))["status"] == "completed"
        assert _ledger(db, app_id) == [("payment", 1, Decimal("3000000.00")), ("payment", 2, Decimal("2142857.14")),
                                       ("payment", 3, Decimal("2857142.86"))]
    harness.run(go())


def test_amendment_down_on_a_paid_award_is_a_correction_entry(harness, db):
    """A loan-interest programme waiting for next year's evidence: this year's award is paid, so the
    correction is a negative entry linked to the payment (which stays as it was); an amendment up
    later is a top-up entry; a refused amendment changes nothing."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]}))
        await approve_both(harness, app_id, lead="hz-jxj")
        await wait_status(harness, app_id, "awaiting_evidence")
        [payment] = db.ledger_rows(app_id)
        paid = payment["amount"]
        await wc.propose_amendment(harness.client, app_id, reviewer="hz-jxj", amount=paid - 1000, reason="利率核错")
        done = await wc.approve_amendment(harness.client, app_id, reviewer="hz-czj")
        assert Decimal(done["settled"]) == Decimal("-1000.00")
        await wc.propose_amendment(harness.client, app_id, reviewer="hz-jxj", amount=paid - 500, reason="再核")
        with pytest.raises(RequestRefused, match="refusing an amendment needs a comment"):
            await wc.refuse_amendment(harness.client, app_id, reviewer="hz-czj", comment=" ")
        await wc.refuse_amendment(harness.client, app_id, reviewer="hz-czj", comment="不予调整")
        await wc.propose_amendment(harness.client, app_id, reviewer="hz-jxj", amount=paid + 200, reason="补差")
        up = await wc.approve_amendment(harness.client, app_id, reviewer="hz-czj")
        assert Decimal(up["settled"]) == Decimal("1200.00")
        rows = db.ledger_rows(app_id)
        assert rows[0] == payment
        assert [(r["kind"], r["amount"], r["ref_id"]) for r in rows[1:]] == [
            ("correction", Decimal("-1000.00"), payment["id"]), ("top_up", Decimal("1200.00"), payment["id"])]
        st = await wc.status(harness.client, app_id)
        assert Decimal(st["awarded"]) == paid + 200
        assert [a["state"] for a in st["amendments"]] == ["applied", "refused", "applied"]
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="done")
        await result(harness, app_id)
    harness.run(go())


# ------------------------------------------------------------------------------ the book (both databases)

def test_the_book_applies_an_amendment_once_and_checks_the_caps(db_any):
    from models import book
    from models.amendments import amend
    from models.clawback import AmendRequest
    from tests.test_clawback import _paid_award
    code = fresh_code("330502")
    _paid_award(db_any, code, "app-a1", ["6000000"], year=2024)            # another award under the same cap
    from calc.model import CalcResult, Tranche
    from datetime import date
    res = CalcResult.model_validate({
        "clause_id": LISTING, "year": 2025, "amount": "10000000", "trace": [], "refusal": None,
        "schedule": [Tranche(seq=1, due=date(2025, 12, 1), amount=Decimal("3000000"), label="s1"),
                     Tranche(seq=2, due=date(2026, 1, 1), amount=Decimal("7000000"), label="s2")],
        "items": {}, "item_values": {}})
    book.commit("app-a2", code, 2025, lambda prior: res)
    book.pay("app-a2", 2025, 1)

    def req(n: int, after: str) -> AmendRequest:
        return AmendRequest(application_id="app-a2", enterprise_code=code, year=2025, number=n, after=Decimal(after),
                            reason="r", proposed_by="hu-jrb", approved_by="hu-czj", as_of="2026-12-01")

    refused = amend(req(1, "14000000.01"))
    assert not refused.applied and refused.refusal.startswith("cap:per_period:") and "6000000" in refused.refusal
    ok = amend(req(2, "14000000"))
    assert ok.applied and [t["amount"] for t in ok.tranches] == ["3000000.00", "11000000.00"]
    assert amend(req(2, "14000000")).tranches == ok.tranches                # once
    down = amend(req(3, "2000000"))                                        # below what was paid
    assert down.applied and down.settled == Decimal("-1000000.00")
    assert [(ln["seq"], ln["amount"], ln["state"]) for ln in book.lines("app-a2")] == [
        (1, Decimal("2000000.00"), "paid"), (2, Decimal("0.00"), "released")]
    assert [(r["kind"], r["amount"]) for r in db_any.ledger_rows("app-a2")] == [
        ("payment", Decimal("3000000.00")), ("correction", Decimal("-1000000.00"))]


def test_an_amendment_up_draws_on_the_budget_line(db_any, tmp_path):
    """An increase is a commitment like any other: where the clause's budget line cannot cover it,
    the book refuses it naming the line; once finance tops the line up it is applied."""
    from datetime import date

    from calc.model import CalcResult, Tranche
    from models import book, budget
    from models.amendments import amend
    from models.clawback import AmendRequest
    code = fresh_code("330502")
    res = CalcResult.model_validate({
        "clause_id": LISTING, "year": 2025, "amount": "10000000", "trace": [], "refusal": None,
        "schedule": [Tranche(seq=1, due=date(2026, 1, 1), amount=Decimal("10000000"), label="s1")],
        "items": {}, "item_values": {}})
    book.commit("app-b1", code, 2025, lambda prior: res)
    csv = tmp_path / "budget.csv"
    csv.write_text(f"line_id,name,year,clause_ids,amount,document\nB-LIST,上市奖励,2025,{LISTING},10500000.00,\n",
                   encoding="utf-8")
    budget.import_file(csv, who="hu-czj")

    def req(n: int, after: str) -> AmendRequest:
        return AmendRequest(application_id="app-b1", enterprise_code=code, year=2025, number=n, after=Decimal(after),
                            reason="r", proposed_by="hu-jrb", approved_by="hu-czj", as_of="2026-12-01")

    refused = amend(req(1, "11000000"))
    assert not refused.applied and refused.refusal.startswith("budget:B-LIST:"), refused.refusal
    assert "1000000" in refused.refusal and "500000" in refused.refusal
    assert [ln["amount"] for ln in book.lines("app-b1")] == [Decimal("10000000.00")]
    budget.top_up("B-LIST", Decimal("500000"), who="hu-czj")
    assert amend(req(2, "11000000")).applied
    assert [ln["amount"] for ln in book.lines("app-b1")] == [Decimal("11000000.00")]
