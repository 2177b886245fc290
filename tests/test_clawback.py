"""Clawback (追回): finance recovers what an application was paid. The ledger gets recovery entries
(negative, linked to the payment, which stays as it was), exactly once; unpaid tranches are
cancelled; the enterprise is barred from new applications and further tranches. On a running
application (its `clawback` update) and on one that has ended (the Recovery workflow)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.backend_helpers import app_input, approve_both, register, result, wait_status
from tests.temporal_env import fresh_code
from tests.three_tranches import IP_FACTS, IP_ABS, LISTING, QUEUE, add_worker, listing_facts, until_states
from workflows import client as wc
from workflows.client import RequestRefused

HU_CODE_REGION = "330502"


def _rows(db, app_id: str) -> list[dict]:
    return db.ledger_rows(app_id)


async def _listing(h, code: str, year: int = 2025, amount: str = "10000000") -> str:
    app_id = await wc.submit(h.client, app_input(code, clause=LISTING, year=year, facts=listing_facts(amount)),
                             task_queue=QUEUE)
    await wc.approve(h.client, app_id, reviewer="hu-jrb", comment="ok")
    await wc.approve(h.client, app_id, reviewer="hu-czj", comment="ok")
    return app_id


def test_clawback_after_the_first_of_three_tranches(harness, db):
    """The first of three tranches paid, finance recovers it all: the two others are cancelled, the
    ledger gets one recovery entry linked to the payment (which is untouched), the enterprise is
    barred: its next submission is refused naming the bar, and its other running application
    stops before its next tranche."""
    async def go():
        await add_worker(harness)
        code = register(db, fresh_code(HU_CODE_REGION))
        other = await wc.submit(harness.client, app_input(code, clause=IP_ABS, year=2025, facts=IP_FACTS),
                                task_queue=QUEUE)                             # another running application
        await wc.approve(harness.client, other, reviewer="hu-jrb", comment="ok")
        await wc.approve(harness.client, other, reviewer="hu-czj", comment="ok")
        await until_states(harness, other, ["paid", "pending", "pending"])
        app_id = await _listing(harness, code)
        await until_states(harness, app_id, ["paid", "pending", "pending"])
        payment = _rows(db, app_id)
        assert [(r["kind"], r["amount"]) for r in payment] == [("payment", Decimal("3000000.00"))]

        res = await wc.clawback(harness.client, app_id, reviewer="hu-czj", everything=True,
                                basis="false_statement", reason="虚假申报: 上市申报材料不实")
        assert res["application"] == "running" and Decimal(res["amount"]) == Decimal("3000000.00")
        st = await wc.status(harness.client, app_id)
        assert st["status"] == "recovered"
        assert [t["state"] for t in st["tranches"]] == ["paid", "cancelled", "cancelled"]
        assert Decimal(st["awarded"]) == 0

        rows = _rows(db, app_id)
        assert rows[0] == payment[0]                                   # the payment row, untouched
        recovery = [r for r in rows if r["kind"] == "recovery"]
        assert [(r["seq"], r["amount"], r["ref_id"]) for r in recovery] == [
            (1, Decimal("-3000000.00"), payment[0]["id"])]
        assert sum(r["amount"] for r in rows) == 0
        # the book: the paid line still counts (policy default), the cancelled tranches are released
        from models import book
        assert [(ln["seq"], ln["state"]) for ln in book.lines(app_id)] == [(1, "paid"), (2, "released"),
                                                                          (3, "released")]
        from models.recovery import bars
        [bar] = bars(code)
        assert bar["application_id"] == app_id and bar["basis"] == "false_statement"
        assert bar["until_day"] == bar["from_day"].replace(year=bar["from_day"].year + 3)

        # the next submission of the same enterprise is refused, naming the bar
        with pytest.raises(RequestRefused, match=r"barred from new applications .* until " + str(bar["until_day"])):
            await wc.submit(harness.client, app_input(code, clause=IP_ABS, year=2024,
                                                      facts={**IP_FACTS, "item_id": "ABS-HU-2"}))
        # the other running application stops before its next tranche
        st = await wait_status(harness, other, "barred", skip=timedelta(days=5))
        assert [t["state"] for t in st["tranches"]] == ["paid", "cancelled", "cancelled"]
        assert "barred" in st["note"] and app_id in st["note"]
        assert [r["seq"] for r in _rows(db, other)] == [1]
        # and the recovery shows in the audit record and the decisions
        from models.audit import audit_record
        rec = audit_record(app_id)
        assert [o["amount"] for o in rec["recoveries"]] == [Decimal("3000000.00")]
        assert any(d["kind"] == "clawback" and d["who"] == "hu-czj" for d in rec["decisions"])
    harness.run(go())


def test_clawback_of_a_completed_application_exactly_once(harness, db):
    """A completed application: the Recovery workflow recovers an amount; the same order again is
    refused (nothing more recovered); the rest can be recovered; then nothing is left."""
    async def go():
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        await approve_both(harness, app_id)
        assert (await result(harness, app_id))["status"] == "completed"
        order = dict(reviewer="hz-czj", basis="serious_dishonesty", reason="列入严重失信名单")
        res = await wc.clawback(harness.client, app_id, amount=Decimal("100000"), **order)
        assert res["application"] == "ended" and Decimal(res["amount"]) == Decimal("100000.00")
        assert "until" in res["bar"]
        with pytest.raises(RequestRefused, match="already ordered"):
            await wc.clawback(harness.client, app_id, amount=Decimal("100000"), **order)
        with pytest.raises(RequestRefused, match=r"more than .* holds \(300000.00 paid and not yet recovered\)"):
            await wc.clawback(harness.client, app_id, amount=Decimal("300000.01"), **order)
        rest = await wc.clawback(harness.client, app_id, everything=True, **order)
        assert Decimal(rest["amount"]) == Decimal("300000.00")
        with pytest.raises(RequestRefused, match="nothing left to recover"):
            await wc.clawback(harness.client, app_id, everything=True, **{**order, "reason": "again"})
        rows = db.ledger_rows(app_id)
        assert [(r["kind"], r["amount"]) for r in rows] == [
            ("payment", Decimal("400000.00")), ("recovery", Decimal("-100000.00")), ("recovery", Decimal("-300000.00"))]
        assert {r["ref_id"] for r in rows[1:]} == {rows[0]["id"]}
    harness.run(go())


def test_clawback_refused_for_non_finance_and_unpaid(harness, db):
    async def go():
        code = register(db, fresh_code())
        in_review = await wc.submit(harness.client, app_input(code))
        with pytest.raises(RequestRefused, match="only 杭州市财政局 may order a recovery"):
            await wc.clawback(harness.client, in_review, reviewer="hz-kjj", everything=True, basis="other",
                              reason="x")
        with pytest.raises(RequestRefused, match="nothing has been paid"):
            await wc.clawback(harness.client, in_review, reviewer="hz-czj", everything=True, basis="other",
                              reason="x")
        await approve_both(harness, in_review)
        assert (await result(harness, in_review))["status"] == "completed"
        with pytest.raises(RequestRefused, match="only 杭州市财政局 may order a recovery"):     # ended: Recovery
            await wc.clawback(harness.client, in_review, reviewer="hz-kjj", everything=True, basis="other",
                              reason="x")
        assert [r["kind"] for r in db.ledger_rows(in_review)] == ["payment"]
    harness.run(go())


def test_a_forged_recovery_order_is_refused_by_the_worker(harness, db):
    """The Recovery workflow's input is a claim: an order without a credential, or with one for
    another application, is refused by the worker and recovers nothing."""
    async def go():
        from models.clawback import ClawbackOrder, RecoveryRun
        from workflows.recovery import RecoveryWorkflow, recovery_id
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        await approve_both(harness, app_id)
        await result(harness, app_id)
        other_cred = wc.sign("hz-czj", "app-someone-else", "clawback")
        for cred in (None, other_cred):
            order = ClawbackOrder(reviewer="hz-czj", all=True, basis="other", reason="forged", credential=cred)
            h = await harness.client.start_workflow(RecoveryWorkflow.run, RecoveryRun(application_id=app_id,
                                                                                      order=order),
                                                    id=recovery_id(app_id), task_queue=wc.TASK_QUEUE)
            res = await result(harness, h.id)
            assert res["refused"].startswith("credential:"), res
        assert [r["kind"] for r in db.ledger_rows(app_id)] == ["payment"]
    harness.run(go())


# ------------------------------------------------------------------------------ the book (both databases)

def _paid_award(db, code: str, app_id: str, amounts: list[str], clause: str = LISTING, year: int = 2025):
    """An award committed and its tranches paid, straight into the book (no Temporal)."""
    from calc.model import CalcResult, Tranche
    from models import book
    total = sum((Decimal(a) for a in amounts), Decimal(0))
    res = CalcResult.model_validate({
        "clause_id": clause, "year": year, "amount": str(total), "trace": [], "refusal": None,
        "schedule": [Tranche(seq=i, due=date(2025, 12, i), amount=Decimal(a), label=f"s{i}")
                     for i, a in enumerate(amounts, start=1)],
        "items": {}, "item_values": {}})
    book.commit(app_id, code, year, lambda prior: res)
    for i in range(1, len(amounts) + 1):
        book.pay(app_id, year, i)


def _order(**kw):
    from models.clawback import ClawbackOrder
    return ClawbackOrder(**{"reviewer": "hu-czj", "basis": "false_statement", "reason": "r", **kw})


def _request(app_id: str, source: str = "s1", **kw):
    from models.clawback import RecoverRequest
    return RecoverRequest(application_id=app_id, order=_order(**kw), who="hu-czj", bureau="湖州市财政局",
                          day="2026-12-01", source=source)


def test_recovery_is_written_once_under_racing_retries(db_any):
    """Eight attempts of one order at once (an activity retried while the first still runs): one
    order, one recovery entry per payment taken back, newest payment first."""
    from models.recovery import orders, recover
    code = fresh_code(HU_CODE_REGION)
    _paid_award(db_any, code, "app-r1", ["300", "300", "400"])
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: recover(_request("app-r1", amount="500"), code), range(8)))
    assert {r.order_id for r in results} == {results[0].order_id} and not any(r.refused for r in results)
    rows = db_any.ledger_rows("app-r1")
    rec = [(r["seq"], r["amount"]) for r in rows if r["kind"] == "recovery"]
    assert sorted(rec) == [(2, Decimal("-100.00")), (3, Decimal("-400.00"))]
    assert [r["amount"] for r in rows if r["kind"] == "payment"] == [Decimal("300.00")] * 2 + [Decimal("400.00")]
    assert len(orders("app-r1")) == 1
    again = recover(_request("app-r1", source="another request", amount="500"), code)
    assert again.duplicate and "already ordered" in again.refused
    assert len([r for r in db_any.ledger_rows("app-r1") if r["kind"] == "recovery"]) == 2


def test_the_recovered_award_keeps_counting_unless_the_policy_releases_it(db_any, monkeypatch):
    from models import book, recovery, recovery_policy
    code = fresh_code(HU_CODE_REGION)
    _paid_award(db_any, code, "app-r2", ["1000"])
    recovery.recover(_request("app-r2", all=True), code)
    with book.locked(code) as s:
        assert sum(p["amount"] for p in book.prior_awards(s, code)) == Decimal("1000.00")     # still counts
    released = recovery_policy.RecoveryRules(release_room=True, release_rule="test reading", bar_years=0,
                                             bar_rule="test")
    monkeypatch.setattr(recovery, "rules_for", lambda *a: released)
    _paid_award(db_any, code, "app-r3", ["1000"], year=2024)
    recovery.recover(_request("app-r3", amount="250"), code)
    with book.locked(code) as s:
        by_year = {p["year"]: p["amount"] for p in book.prior_awards(s, code)}
    assert by_year == {2025: Decimal("1000.00"), 2024: Decimal("750.00")}
    assert recovery.active_bar(code, date(2026, 12, 2)) is not None          # app-r2's bar (3 years)
    assert [b["application_id"] for b in recovery.bars(code)] == ["app-r2"]  # bar_years 0: no bar


def test_a_bar_holds_until_its_day(db_any):
    from models.recovery import active_bar, bar_line, recover
    code = fresh_code(HU_CODE_REGION)
    _paid_award(db_any, code, "app-r4", ["10"])
    res = recover(_request("app-r4", all=True, basis="other"), code)
    assert res.bar_until == "2027-12-01"                                     # other: 1 year (reading)
    assert active_bar(code, date(2027, 11, 30)) is not None
    assert active_bar(code, date(2027, 12, 1)) is None
    assert "until 2027-12-01" in bar_line(active_bar(code, date(2026, 12, 1)))


# ------------------------------------------------------------------------------ the CLI (no Temporal)

@pytest.fixture
def cli(tmp_path, monkeypatch):
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.delenv("DISBURSE_DEBUG", raising=False)
    from typer.testing import CliRunner

    from cli.main import app
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_cli_shows_recoveries_in_the_ledger_and_lists_bars(cli):
    from models import registry
    from models.db import init_db
    from models.recovery import recover
    init_db()
    code = fresh_code(HU_CODE_REGION)
    _paid_award(registry, code, "app-c1", ["1000"])
    recover(_request("app-c1", amount="400", reason="申报材料虚假"), code)
    out = cli("ledger", "--application", "app-c1")
    assert out.exit_code == 0, out.output
    assert "recovery" in out.stdout and "-400.00" in out.stdout and "payment of #1" in out.stdout
    assert "total paid: 1,000.00; net of recoveries and amendments: 600.00" in out.stdout
    bars_out = cli("bars", "--enterprise", code)
    assert bars_out.exit_code == 0 and code in bars_out.stdout and "app-c1" in bars_out.stdout
    assert "2029-12-01" in bars_out.stdout


@pytest.mark.parametrize("args, needle", [
    (["--all", "--amount", "5"], "--amount / --all"),
    ([], "--amount / --all"),
    (["--amount", "-5"], "--amount"),
    (["--amount", "1e5"], "--amount"),
    (["--all", "--basis", "fraud"], "--basis"),
])
def test_cli_clawback_refuses_bad_input_in_one_line(cli, args, needle):
    base = {"--basis": "other", "--reason": "r", "--reviewer": "cz-li"}
    for i in range(0, len(args), 1):
        if args[i] in base:
            base.pop(args[i])
    flat = [x for k, v in base.items() for x in (k, v)]
    out = cli("clawback", "app-x", *flat, *args)
    assert out.exit_code != 0
    err = out.stderr.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and needle in err, err
