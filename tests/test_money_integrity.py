"""Money integrity: every fen owed is paid exactly once, under every cap, whatever the timing.

One regression test per defect of the money-integrity issue, each written against the behaviour
that paid money it must not pay (time-skipping server, the real worker and activities)."""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from tests.backend_helpers import app_input, approve_both, ended, register, result, wait_status
from tests.fake_activities import BROKEN_QUEUE, SLOW_MIRROR_QUEUE, SLOW_PAY_QUEUE, STAGED_QUEUE
from tests.temporal_env import LOAN_CLAUSE, PREMIUM_CLAUSE, PREMIUM_FACTS, fresh_code, loan
from workflows import client as wc
from workflows.client import DuplicateApplication, RequestRefused

FIRST_SET = "hz2025-06-first-set-equipment-insurance"
LISTING = "hu2023-06-listing-reward"
VC = "hz2025-09-vc-early-stage-reward"


def _paid(db, code: str) -> Decimal:
    return sum((r["amount"] for r in db.ledger_rows() if r["enterprise_code"] == code), Decimal("0"))


async def _settle(h, app_id: str) -> dict:
    try:
        return await result(h, app_id, timeout=30)
    except Exception:  # noqa: BLE001 - still waiting: its status says where
        return await wc.status(h.client, app_id)


# 1 ----------------------------------------------------------------------------------------------

def test_1_a_revoke_accepted_while_evidence_is_saved_is_not_lost(harness, db):
    """A revoke accepted while submit_evidence is still being handled must end the programme: no
    next year, nothing more paid."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]}),
                                 task_queue=SLOW_MIRROR_QUEUE)
        await approve_both(harness, app_id, lead="hz-jxj")
        await wait_status(harness, app_id, "awaiting_evidence", tries=2000)
        evidence = asyncio.ensure_future(
            wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="op-demo"))
        await asyncio.sleep(0.3)
        await wc.revoke(harness.client, app_id, reviewer="hz-czj", reason="loan repaid, evidence void")
        await evidence
        st = await wait_status(harness, app_id, ("revoked", "confirming", "calculating", "credit_check"), tries=2000)
        if st["status"] == "confirming":       # what happened: the next year went on; finance confirms it
            await wc.confirm_year(harness.client, app_id, reviewer="hz-czj")
            await asyncio.sleep(1)
        assert st["status"] == "revoked", st
        assert [r["year"] for r in db.ledger_rows(app_id)] == [2026]
    harness.run(go())


# 2 ----------------------------------------------------------------------------------------------

def test_2_an_award_counts_against_caps_from_the_moment_it_is_committed(harness, db):
    """hu2023 三(六) listing reward, 20,000,000 per policy period: application A commits the whole
    20M (first stage paid, second pending); a second application of the same enterprise must not
    take the pending half again."""
    async def go():
        code = register(db, fresh_code("330502"), quals="")
        stages = {"filing_accepted": "2025-03-15", "approved": "2025-10-20", "listed": "2025-12-20"}
        facts = {"review_amount": "20000000", "stages": stages}
        a = await wc.submit(harness.client, app_input(code, clause=LISTING, year=2025, facts=facts),
                            task_queue=STAGED_QUEUE)
        await wc.approve(harness.client, a, reviewer="hu-jrb", comment="ok")
        await wc.approve(harness.client, a, reviewer="hu-czj", comment="ok")
        for _ in range(400):
            st = await wc.status(harness.client, a)
            if [t["state"] for t in st["tranches"]] == ["paid", "pending"]:
                break
            await asyncio.sleep(0.05)
        b = await wc.submit(harness.client, app_input(code, clause=LISTING, year=2024, facts=facts))
        await wc.approve(harness.client, b, reviewer="hu-jrb", comment="ok")
        await wc.approve(harness.client, b, reviewer="hu-czj", comment="ok")
        await _settle(harness, b)
        await _settle(harness, a)
        assert _paid(db, code) <= Decimal("20000000"), _paid(db, code)
    harness.run(go())


# 3 ----------------------------------------------------------------------------------------------

def test_3_the_per_investee_cap_sees_earlier_awards(harness, db):
    """hz2025 (九): 单个机构每投资1家企业最高奖励100万元 — two applications for one investee."""
    async def go():
        code = register(db, fresh_code(), quals="vc_institution:2020-01-01")
        investee = fresh_code()
        first = {"investee_id": investee, "amount": "20000000", "stage": "seed", "invested_on": "2024-01-01"}
        second = {**first, "invested_on": "2025-06-01"}
        for year, inv in ((2026, first), (2027, second)):
            app_id = await wc.submit(harness.client, app_input(code, clause=VC, year=year,
                                                               facts={"investments": [inv]}))
            await approve_both(harness, app_id)
            await _settle(harness, app_id)
        assert _paid(db, code) == Decimal("1000000.00")
    harness.run(go())


# 4 ----------------------------------------------------------------------------------------------

def test_4_one_insurance_policy_year_is_paid_once_whatever_the_support_year(harness, db):
    async def go():
        code = register(db, fresh_code())
        for year in (2026, 2027):
            app_id = await wc.submit(harness.client, app_input(code, year=year, facts=PREMIUM_FACTS))
            await approve_both(harness, app_id)
            res = await _settle(harness, app_id)
        assert res["status"] == "refused", res
        assert "already" in res["note"] or "support year" in res["note"], res     # 不重复, or not that year's
        assert _paid(db, code) == Decimal("400000.00")
    harness.run(go())


# 5 ----------------------------------------------------------------------------------------------

def _first_set(year: int, policy: str = "FS-1", **kw) -> dict:
    return {"premium": "1000000", "insured_amount": "50000000", "policy_no": policy,
            "period_start": f"{year}-12-15", **kw}


def test_5_the_programme_year_is_derived_not_declared(harness, db):
    """hz2025 (六) 首年度90%, 逐年递减10个百分点: an applicant who declares year 1 again for the
    second insured year of the same policy gets 80%, not 90%."""
    async def go():
        code = register(db, fresh_code())
        a = await wc.submit(harness.client, app_input(code, clause=FIRST_SET, year=2025,
                                                      facts=_first_set(2025, programme_year=1)))
        await approve_both(harness, a, lead="hz-jxj")
        await wait_status(harness, a, "awaiting_evidence")
        await wc.withdraw(harness.client, a, operator="op-demo", comment="apply again next year")
        b = await wc.submit(harness.client, app_input(code, clause=FIRST_SET, year=2026,
                                                      facts=_first_set(2026, programme_year=1)))
        await approve_both(harness, b, lead="hz-jxj")
        await wait_status(harness, b, ("awaiting_evidence", "completed", "refused"))
        assert [r["amount"] for r in db.ledger_rows(b)] == [Decimal("800000.00")]
    harness.run(go())


def test_5_evidence_may_not_change_the_item_or_the_programme_year(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=FIRST_SET, year=2025,
                                                           facts=_first_set(2025)))
        await approve_both(harness, app_id, lead="hz-jxj")
        await wait_status(harness, app_id, "awaiting_evidence")
        with pytest.raises(RequestRefused, match="policy_no"):
            await wc.submit_evidence(harness.client, app_id, _first_set(2026, policy="FS-OTHER"), operator="op-demo")
        with pytest.raises(RequestRefused, match="programme_year"):
            await wc.submit_evidence(harness.client, app_id, {**_first_set(2026), "programme_year": 1},
                                     operator="op-demo")
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())


# 6 ----------------------------------------------------------------------------------------------

def test_6_the_application_id_cannot_be_chosen_by_the_caller(harness, db):
    async def go():
        code = register(db, fresh_code())
        await wc.submit(harness.client, app_input(code))
        with pytest.raises((ValidationError, DuplicateApplication)):
            await wc.submit(harness.client, app_input(code, application_id="app-my-own-id"))
    harness.run(go())


# 7 ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount", ["1.00001", "Infinity", "-0", "1e30", "0.005"])
def test_7_a_lowered_amount_is_checked_like_the_core_checks_it(harness, db, amount):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        with pytest.raises((RequestRefused, ValidationError)):
            await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok", amount=Decimal(amount),
                             reason="partial documents")
        st = await wc.status(harness.client, app_id)
        assert st["status"] == "review" and st["decisions"] == []
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())


def test_7_a_lowering_holds_for_the_later_programme_years(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code, clause=LOAN_CLAUSE, facts={"loans": [loan(2026)]}))
        await wc.approve(harness.client, app_id, reviewer="hz-jxj", comment="ok", amount=Decimal("50000"),
                         reason="only part of the loan is for R&D")
        await wc.approve(harness.client, app_id, reviewer="hz-czj", comment="ok")
        await wait_status(harness, app_id, "awaiting_evidence")
        await wc.submit_evidence(harness.client, app_id, {"loans": [loan(2027)]}, operator="op-demo")
        await wait_status(harness, app_id, "confirming")
        await wc.confirm_year(harness.client, app_id, reviewer="hz-czj")
        await _settle(harness, app_id)
        assert [r["amount"] for r in db.ledger_rows(app_id)] == [Decimal("50000.00"), Decimal("50000.00")]
    harness.run(go())


# 8 ----------------------------------------------------------------------------------------------

def test_8_a_withdrawal_after_the_last_tranche_is_refused_not_ignored(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code), task_queue=SLOW_PAY_QUEUE)
        await approve_both(harness, app_id)
        await wait_status(harness, app_id, "payout")
        await asyncio.sleep(0.5)                  # the one tranche is being paid (slow ledger write)
        with pytest.raises(RequestRefused, match="paid"):
            await wc.withdraw(harness.client, app_id, operator="op-demo", comment="too late")
        res = await result(harness, app_id)
        assert res["status"] == "completed" and len(db.ledger_rows(app_id)) == 1
    harness.run(go())


# 9 ----------------------------------------------------------------------------------------------

def test_9_a_programming_error_stops_retrying_and_says_so(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code), task_queue=BROKEN_QUEUE)
        await approve_both(harness, app_id)
        st = None
        for _ in range(60):
            await harness.env.sleep(timedelta(minutes=10))
            st = await wc.status(harness.client, app_id)
            if st["status"] == "attention":
                break
        assert st["status"] == "attention", st
        assert "TypeError" in (st["note"] or "")
        await wc.withdraw(harness.client, app_id, operator="op-demo", comment="cannot be calculated")
        assert (await result(harness, app_id))["status"] == "withdrawn"
    harness.run(go())


def test_9_an_approval_is_answered_during_a_database_outage(harness, db, monkeypatch):
    from sqlalchemy.exc import OperationalError

    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        await wait_status(harness, app_id, "review")
        await asyncio.sleep(0.5)

        def down(*a, **k):
            raise OperationalError("SELECT 1", {}, Exception("database is down"))
        import importlib
        outage = pytest.MonkeyPatch()     # its own: undoing it must not undo the test's database settings
        for name in ("activities.notify", "activities.application"):      # where the status mirror lives
            try:
                outage.setattr(importlib.import_module(name), "session", down)
            except ModuleNotFoundError:
                pass
        try:
            rec = await asyncio.wait_for(wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="ok"), 10)
        finally:
            outage.undo()
        assert rec.kind == "approve"
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        await result(harness, app_id)
    harness.run(go())


def test_9_first_status_writes_of_an_application_do_not_race(db):
    from temporalio.testing import ActivityEnvironment

    try:
        from activities.application import record_status
    except ImportError:
        from activities.notify import record_status
    from models.application import StatusUpdate

    def write(i: int):
        u = StatusUpdate(application_id="app-race", clause_id=PREMIUM_CLAUSE, enterprise_code="91330106MA2H00001E",
                         year=2026, status="review", version=i)
        return ActivityEnvironment().run(record_status, u)

    for _ in range(5):
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(write, range(1, 9)))       # raises if a first insert hits UNIQUE
        from models.db import session
        from models.tables import ApplicationRow
        with session() as s:
            row = s.get(ApplicationRow, "app-race")
            assert row.version == 8
            s.delete(row)
            s.commit()


# 10 ---------------------------------------------------------------------------------------------

def test_10_a_workflow_started_by_hand_with_its_own_bureaus_and_tranches_pays_nothing(harness, db):
    """Started with the bare Python client: no reviewers required, an injected tranche."""
    async def go():
        code = register(db, fresh_code())
        wid = f"app-{code}-{PREMIUM_CLAUSE}-2026"
        forged = {
            "application": {"clause_id": PREMIUM_CLAUSE, "year": 2026, "enterprise_code": code, "operator": "x",
                            "facts": PREMIUM_FACTS},
            "clause": {"issuer": "杭州市", "lead_bureau": "杭州市科技局", "finance_bureau": "杭州市财政局",
                       "required_bureaus": [], "bureaus": [], "programme_years": 1},
            "tranches": [{"year": 2026, "seq": 7, "due": "2026-01-01", "amount": "88888888.00"}],
            "awarded_total": "0", "search_attributes": False,
        }
        handle = await harness.client.start_workflow("ApplicationWorkflow", forged, id=wid, task_queue=wc.TASK_QUEUE)
        await ended(harness, wid, within=10)    # refused (fails) or still waiting for a real review
        assert db.ledger_rows(wid) == []
    harness.run(go())


def test_10_an_invented_reviewer_registry_decides_nothing(harness, db):
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        h = harness.client.get_workflow_handle(app_id)
        try:
            await h.execute_update("refresh_reviewers", {"reviewers": {"evil-1": "杭州市科技局",
                                                                       "evil-2": "杭州市财政局"}})
        except Exception:  # noqa: BLE001 - refused outright is fine
            pass
        for who in ("evil-1", "evil-2"):
            with pytest.raises(RequestRefused):
                await wc.approve(harness.client, app_id, reviewer=who, comment="approved by me")
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        await result(harness, app_id)
        assert db.ledger_rows(app_id) == []
    harness.run(go())


# 11 ---------------------------------------------------------------------------------------------

def test_11_a_registry_region_cannot_contradict_the_credit_code(db):
    from calc import Enterprise, InputError
    from models.registry import RegistryError
    huzhou = fresh_code("330502")
    with pytest.raises(RegistryError, match="region"):
        db.add_enterprise(huzhou, name="湖州某公司", region="330106")
    with pytest.raises((ValidationError, InputError), match="region"):
        Enterprise(credit_code=huzhou, region="330106")


# a retried request ----------------------------------------------------------------------------

def test_a_retried_decision_returns_the_first_result(harness, db):
    """The client retries after a lost reply (a server restart, a timeout): the same request has
    the same update id, so it gets the first result back, not 'already decided'."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        first = await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="保单真实")
        again = await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="保单真实")
        assert again == first
        with pytest.raises(RequestRefused, match="already decided"):        # a different request is refused
            await wc.approve(harness.client, app_id, reviewer="hz-kjj", comment="another opinion")
        st = await wc.status(harness.client, app_id)
        assert [d["kind"] for d in st["decisions"]] == ["approve"]
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())


# dates are days in China ---------------------------------------------------------------------

def test_policy_days_are_days_in_china():
    from datetime import date, datetime, timezone

    from models.application import china_midnight, china_today
    late_evening_utc = datetime(2026, 12, 31, 17, 30, tzinfo=timezone.utc)        # 01:30 on 1 January in China
    assert china_today(late_evening_utc) == date(2027, 1, 1)
    assert china_midnight(date(2027, 1, 1)) == datetime(2026, 12, 31, 16, 0, tzinfo=timezone.utc)


def test_hostile_update_payloads_sent_straight_to_temporal_change_nothing(harness, db):
    """Payloads that skip the client's models: refused, the application unharmed (no workflow
    task failure in its history), nothing decided."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        h = harness.client.get_workflow_handle(app_id)
        for name, arg in (("approve", {"reviewer": "hz-kjj", "amount": "1e30", "reason": "x"}),
                          ("approve", {"reviewer": "hz-kjj", "amount": "-0", "reason": "x"}),
                          ("approve", {"reviewer": 5}), ("approve", "not an object"),
                          ("approve", {"reviewer": "hz-kjj", "bureau": "杭州市财政局"}),
                          ("withdraw", {"operator": "op-demo\x1b[2J"}),
                          ("submit_evidence", {"operator": "op-demo", "facts": {"premium": "1e999"}}),
                          ("no_such_update", {})):
            with pytest.raises(Exception):
                await asyncio.wait_for(h.execute_update(name, arg), 10)
        st = await wc.status(harness.client, app_id)
        assert st["status"] == "review" and st["decisions"] == []
        history = await h.fetch_history()
        assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        assert (await result(harness, app_id))["status"] == "withdrawn"
    harness.run(go())
