"""Decisions the workflow can verify (models/credentials.py): a request carries a credential
signed by the console / CLI service; the workflow's validators verify it with the keys the workers
hold. A caller who reaches Temporal but holds no key decides nothing."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowUpdateFailedError

from models import credentials as creds
from models.application import Decision, OperatorAction
from tests.backend_helpers import app_input, register, result, submit_new
from tests.temporal_env import fresh_code
from workflows import client as wc
from workflows.client import RequestRefused

REVIEWER = creds.Actor(user="hz-kjj", role="reviewer", bureau="杭州市科技局")
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)


def test_a_credential_verifies_for_its_application_action_and_time():
    s = creds.Signer.generate("k1")
    v = creds.Verifier.of(s)
    c = s.sign(REVIEWER, application_id="app-1", action="approve", now=NOW)
    assert v.verify(c, application_id="app-1", actions=("approve",), now=NOW + timedelta(minutes=5)).bureau == \
        "杭州市科技局"
    for kwargs, why in ((dict(application_id="app-2", actions=("approve",), now=NOW), "not this application"),
                        (dict(application_id="app-1", actions=("revoke",), now=NOW), "not revoke"),
                        (dict(application_id="app-1", actions=("approve",), now=NOW + timedelta(hours=1)), "stale"),
                        (dict(application_id="app-1", actions=("approve",), now=NOW - timedelta(hours=1)), "future")):
        with pytest.raises(creds.CredentialError, match=why):
            v.verify(c, **kwargs)


def test_a_changed_claim_or_a_foreign_key_does_not_verify():
    s, other = creds.Signer.generate("k1"), creds.Signer.generate("k1")
    v = creds.Verifier.of(s)
    c = s.sign(REVIEWER, application_id="app-1", action="approve", now=NOW)
    for forged in (c.model_copy(update={"bureau": "杭州市财政局"}), c.model_copy(update={"user": "hz-czj"}),
                   other.sign(REVIEWER, application_id="app-1", action="approve", now=NOW)):
        with pytest.raises(creds.CredentialError, match="does not verify"):
            v.verify(forged, application_id="app-1", actions=("approve",), now=NOW)
    with pytest.raises(creds.CredentialError, match="unknown key"):
        v.verify(creds.Signer.generate("k9").sign(REVIEWER, application_id="app-1", action="approve", now=NOW),
                 application_id="app-1", actions=("approve",), now=NOW)
    with pytest.raises(creds.CredentialError, match="no credential"):
        v.verify(None, application_id="app-1", actions=("approve",), now=NOW)


def test_keys_rotate_by_id(tmp_path):
    old, new = creds.Signer.generate("k1"), creds.Signer.generate("k2")
    old.save(tmp_path)
    new.save(tmp_path)
    v = creds.Verifier.from_directory(tmp_path)
    assert set(v.keys) == {"k1", "k2"}
    for s in (old, new):
        assert v.verify(s.sign(REVIEWER, application_id="a", action="approve", now=NOW), application_id="a",
                        actions=("approve",), now=NOW)
    assert oct((tmp_path / "k1.pem").stat().st_mode & 0o777) == "0o600"


def test_forged_requests_sent_straight_to_temporal_are_refused(harness, db):
    """With the bare Python client: no credential, a credential of a key the workers do not hold,
    one for another application, one for another action, one naming someone else."""
    async def go():
        app_id = await submit_new(harness, db)
        h = harness.client.get_workflow_handle(app_id)
        rogue = creds.Signer.generate("test-k1")                      # same key id, another key
        other_app = creds.signer().sign(REVIEWER, application_id="app-other", action="approve")
        revoke_cred = creds.signer().sign(REVIEWER, application_id=app_id, action="revoke")
        someone_else = creds.signer().sign(creds.Actor(user="hz-czj", role="finance", bureau="杭州市财政局"),
                                           application_id=app_id, action="approve")
        for cred, why in ((None, "no credential"),
                          (rogue.sign(REVIEWER, application_id=app_id, action="approve"), "does not verify"),
                          (other_app, "not this application"), (revoke_cred, "is for 'revoke', not approve"),
                          (someone_else, "signed for hz-czj")):
            with pytest.raises(WorkflowUpdateFailedError) as e:
                await h.execute_update("approve", Decision(reviewer="hz-kjj", comment="ok", credential=cred))
            assert why in e.value.cause.message, e.value.cause.message
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await h.execute_update("withdraw", OperatorAction(operator="op-demo"))
        assert "no credential" in e.value.cause.message
        st = await wc.status(harness.client, app_id)
        assert st["status"] == "review" and st["decisions"] == []
        await wc.withdraw(harness.client, app_id, operator="op-demo")
        assert (await result(harness, app_id))["status"] == "withdrawn"
    harness.run(go())


def test_a_submission_without_the_operators_credential_is_refused(harness, db):
    async def go():
        from models.application import ApplicationRun
        from workflows.application import ApplicationWorkflow
        inp = app_input(register(db, fresh_code()))
        h = await harness.client.start_workflow(ApplicationWorkflow.run, ApplicationRun(claim=inp),
                                                id=inp.application_id, task_queue=wc.TASK_QUEUE)
        with pytest.raises(Exception) as e:
            await asyncio.wait_for(h.result(), 20)
        assert "credential" in str(e.value.cause)
        # signed by a reviewer for the operator's claim: refused too
        reviewer_signed = creds.signer().sign(REVIEWER, application_id=inp.application_id, action="submit")
        h = await harness.client.start_workflow(
            ApplicationWorkflow.run, ApplicationRun(claim=inp, credential=reviewer_signed), id=inp.application_id,
            task_queue=wc.TASK_QUEUE, id_reuse_policy=__import__("temporalio.common", fromlist=["x"])
            .WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
        with pytest.raises(Exception) as e:
            await asyncio.wait_for(h.result(), 20)
        assert "operator" in str(e.value.cause)
        app_id = await wc.submit(harness.client, inp)                 # signed properly: it opens
        assert (await wc.status(harness.client, app_id))["status"] == "review"
        await wc.withdraw(harness.client, app_id, operator="op-demo")
    harness.run(go())
