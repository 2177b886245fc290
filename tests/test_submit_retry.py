"""Submitting while the server cannot take the `opened` update for a moment (its workflow task timed
out under load and runs again: "Workflow Task in failed state"): the client asks again under the same
update id while the application is still opening, instead of telling the operator it was refused
(it was not: a second submission would then meet a running application)."""
from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from tests.backend_helpers import app_input
from tests.temporal_env import fresh_code
from workflows import client as wc


class _Described:
    def __init__(self, status):
        self.status = status


class _Handle:
    def __init__(self, failures: int, status=WorkflowExecutionStatus.RUNNING):
        self.failures, self.status, self.calls = failures, status, []

    async def execute_update(self, name, *, id, result_type):
        self.calls.append((name, id))
        if len(self.calls) <= self.failures:
            raise RPCError("Unable to perform workflow execution update due to Workflow Task in failed state.",
                           RPCStatusCode.FAILED_PRECONDITION, b"")
        return {"status": "review"}

    async def describe(self):
        return _Described(self.status)

    async def result(self):
        await asyncio.sleep(3600)


class _Client:
    """Takes the start (update-with-start) and answers its `opened` update as the handle does."""

    def __init__(self, handle):
        self.handle = handle

    async def execute_update_with_start_workflow(self, update, *, id, start_workflow_operation, result_type):
        start_workflow_operation._workflow_handle.set_result(self.handle)     # the start was answered
        return await self.handle.execute_update(update, id=id, result_type=result_type)


@pytest.fixture(autouse=True)
def _no_wait(monkeypatch):
    real = asyncio.sleep
    monkeypatch.setattr(wc.asyncio, "sleep", lambda *a: real(0))


def test_a_busy_server_is_asked_again_under_the_same_update_id(signing_keys):
    h = _Handle(failures=3)
    inp = app_input(fresh_code())
    assert asyncio.run(wc.submit(_Client(h), inp)) == inp.application_id
    assert len(h.calls) == 4 and {c[0] for c in h.calls} == {"opened"}
    assert len({c[1] for c in h.calls}) == 1 and h.calls[0][1].startswith("opened-")   # one update id throughout


def test_it_gives_up_after_its_attempts_and_says_why(signing_keys, monkeypatch):
    monkeypatch.setattr(wc, "_start_failure", lambda handle: asyncio.sleep(0))
    h = _Handle(failures=100)
    with pytest.raises(wc.RequestRefused, match="Workflow Task in failed state"):
        asyncio.run(wc.submit(_Client(h), app_input(fresh_code())))
    assert len(h.calls) == wc.OPEN_ATTEMPTS


def test_an_application_that_ended_is_not_asked_again(signing_keys, monkeypatch):
    monkeypatch.setattr(wc, "_start_failure", lambda handle: asyncio.sleep(0))
    h = _Handle(failures=1, status=WorkflowExecutionStatus.FAILED)
    with pytest.raises(wc.RequestRefused):
        asyncio.run(wc.submit(_Client(h), app_input(fresh_code())))
    assert len(h.calls) == 1


def test_a_refusal_by_the_worker_is_never_retried(signing_keys, monkeypatch):
    async def why(handle):
        return "the claim is refused"
    monkeypatch.setattr(wc, "_start_failure", why)

    class Refusing(_Handle):
        async def execute_update(self, name, *, id, result_type):
            self.calls.append((name, id))
            raise WorkflowUpdateFailedError(RuntimeError("refused"))
    h = Refusing(failures=0)
    with pytest.raises(wc.RequestRefused, match="the claim is refused"):
        asyncio.run(wc.submit(_Client(h), app_input(fresh_code())))
    assert len(h.calls) == 1
