import pytest

from tests.backend_helpers import approve_both, result, submit_new
from workflows import client as wc
from workflows.client import RequestRefused


def test_validator_refusals(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        c = harness.client
        with pytest.raises(RequestRefused, match="nobody is operator, not a reviewer"):
            await wc.approve(c, app_id, reviewer="nobody", comment="x")      # no reviewer of any bureau
        with pytest.raises(RequestRefused, match="not responsible"):
            await wc.approve(c, app_id, reviewer="hz-jtj", comment="x")
        with pytest.raises(RequestRefused, match="op-demo submitted this application and cannot decide on it"):
            await wc.approve(c, app_id, reviewer="op-demo", comment="x")      # the submitting operator
        rec = await wc.approve(c, app_id, reviewer="hz-czj", comment="fine")
        assert rec.bureau == "杭州市财政局" and rec.kind == "approve"
        with pytest.raises(RequestRefused, match="already decided"):
            await wc.approve(c, app_id, reviewer="hz-czj2", comment="again")
        with pytest.raises(RequestRefused, match="only 杭州市财政局 may revoke"):
            await wc.revoke(c, app_id, reviewer="hz-kjj", reason="x")
        with pytest.raises(RequestRefused, match="awaiting evidence"):
            await wc.submit_evidence(c, app_id, {"premium": "1"})
        with pytest.raises(RequestRefused, match="nothing to confirm"):
            await wc.confirm_year(c, app_id, reviewer="hz-czj")
        await wc.reject(c, app_id, reviewer="hz-kjj", comment="no")
        res = await result(harness, app_id)
        assert res["status"] == "rejected"
        with pytest.raises(RequestRefused, match="closed"):
            await wc.approve(c, app_id, reviewer="hz-kjj", comment="x")
    harness.run(go())


def test_request_and_provide_info(harness, db):
    async def go():
        c = harness.client
        app_id = await submit_new(harness, db, facts={"premium": "100000", "policy_no": "P-9",
                                                       "period_start": "2026-01-10"})
        await wc.request_info(c, app_id, reviewer="hz-kjj", comment="premium looks low")
        st = await wc.status(c, app_id)
        assert st["status"] == "info_requested"
        with pytest.raises(RequestRefused, match="information was requested"):
            await wc.approve(c, app_id, reviewer="hz-czj", comment="x")
        with pytest.raises(RequestRefused, match="only the submitting operator"):
            await wc.provide_info(c, app_id, {"premium": "800000"}, operator="someone-else")
        with pytest.raises(RequestRefused, match="facts"):
            await wc.provide_info(c, app_id, {"premium": "-5"}, operator="op-demo")
        await wc.provide_info(c, app_id, {"premium": "800000"}, operator="op-demo")
        assert (await wc.status(c, app_id))["status"] == "review"
        await approve_both(harness, app_id)
        res = await result(harness, app_id)
        assert res["status"] == "completed"
        assert [r["amount"] for r in db.ledger_rows(app_id)] == [__import__("decimal").Decimal("400000.00")]
        assert [d["kind"] for d in res["decisions"]] == ["request_info", "provide_info", "approve", "approve"]
    harness.run(go())


def test_duplicate_submission_refused(harness, db):
    async def go():
        from tests.backend_helpers import app_input, register
        from tests.temporal_env import fresh_code
        code = register(db, fresh_code())
        app_id = await wc.submit(harness.client, app_input(code))
        with pytest.raises(wc.DuplicateApplication) as ei:
            await wc.submit(harness.client, app_input(code))
        assert ei.value.workflow_id == app_id
        from temporalio.exceptions import WorkflowAlreadyStartedError
        assert isinstance(ei.value, WorkflowAlreadyStartedError)
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        assert (await result(harness, app_id))["status"] == "withdrawn"
        with pytest.raises(wc.DuplicateApplication):       # REJECT_DUPLICATE: also once closed
            await wc.submit(harness.client, app_input(code))
    harness.run(go())


def test_a_reviewer_registered_after_submission_can_decide(harness, db):
    async def go():
        app_id = await submit_new(harness, db)
        db.add_reviewer("hz-kjj-new", "杭州市科技局", "新同事")       # not in the workflow's snapshot
        rec = await wc.approve(harness.client, app_id, reviewer="hz-kjj-new", comment="ok")
        assert rec.bureau == "杭州市科技局"                          # the credential vouches for the bureau
        with pytest.raises(RequestRefused, match="ghost is operator, not a reviewer"):   # nobody vouches for ghost
            await wc.approve(harness.client, app_id, reviewer="ghost", comment="x")
        await wc.approve(harness.client, app_id, reviewer="hz-czj", comment="ok")
        assert (await result(harness, app_id))["status"] == "completed"
    harness.run(go())


def test_invalid_input_never_starts_a_workflow(harness, db):
    from pydantic import ValidationError
    from temporalio.service import RPCError

    from calc import InputError
    from tests.backend_helpers import app_input, register
    from tests.temporal_env import fresh_code

    async def go():
        code = register(db, fresh_code())
        with pytest.raises(ValidationError, match="enterprise_code"):
            app_input(code[:-1] + ("0" if code[-1] != "0" else "1"))          # wrong check digit
        bad = [(app_input(code, clause="hz2025-99-nothing"), "clause_id"),
               (app_input(code, facts={"policy_no": "P-1", "period_start": "2026-01-10"}), "facts.premium"),
               (app_input(code, alternatives=["nope"]), "alternatives.0")]
        for inp, field in bad:
            with pytest.raises(InputError) as ei:
                await wc.submit(harness.client, inp)
            assert ei.value.field == field
            with pytest.raises(RPCError):
                await harness.client.get_workflow_handle(inp.application_id).describe()
    harness.run(go())
