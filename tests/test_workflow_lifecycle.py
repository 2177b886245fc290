from decimal import Decimal

from tests.backend_helpers import approve_both, result, submit_new
from workflows import client as wc


def test_full_lifecycle(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        st = await wc.status(harness.client, app_id)
        assert st["status"] == "review"
        assert st["required_bureaus"] == ["杭州市科技局", "杭州市财政局"]
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "completed", res
        rows = db.ledger_rows(app_id)
        assert len(rows) == 1
        assert rows[0]["amount"] == Decimal("400000.00")
        assert str(rows[0]["amount"]) == "400000.00"
        d = await harness.client.get_workflow_handle(app_id).describe()
        from models import search_attributes as sa
        assert d.typed_search_attributes.get(sa.STATUS) == "completed"
        assert d.typed_search_attributes.get(sa.AWARDED_FEN) == 40_000_000          # fen, exact
        assert [x["kind"] for x in res["decisions"]] == ["approve", "approve"]
    harness.run(go())


def test_the_web_ui_shows_a_summary(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        d = await harness.client.get_workflow_handle(app_id).describe()
        summary = await d.static_summary()
        code = app_id.split("-")[1]
        assert summary == f"E {code} · 科技保险保费补助 · 2026"
        assert "杭州市科技局、杭州市财政局" in await d.static_details()
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())
