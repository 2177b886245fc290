"""Submitting while the server cannot take the `opened` update for a moment (its workflow task timed
out under load and runs again: "Workflow Task in failed state"): the client asks again under the same
update id while the application is still opening, instead of telling the operator it was refused
(it was not: a second submission would then meet a running application)."""
from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import WorkflowAlreadyStartedError
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

    async def execute_update(self, name, arg=None, *, id, result_type):
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
        async def execute_update(self, name, arg=None, *, id, result_type):
            self.calls.append((name, id))
            raise WorkflowUpdateFailedError(RuntimeError("refused"))
    h = Refusing(failures=0)
    with pytest.raises(wc.RequestRefused, match="the claim is refused"):
        asyncio.run(wc.submit(_Client(h), app_input(fresh_code())))
    assert len(h.calls) == 1


class _Taken:
    """The server refuses the start (the id is taken) as temporalio reports it: the same error is
    raised and set on the operation's handle future (client/_impl.py, `_on_start_error`)."""

    def __init__(self, error):
        self.error, self.future = error, None     # a new error each time: one kept would keep the future

    async def execute_update_with_start_workflow(self, update, *, id, start_workflow_operation, result_type):
        self.future = weakref.ref(start_workflow_operation._workflow_handle)
        error = self.error()
        start_workflow_operation._workflow_handle.set_exception(error)
        raise error


@pytest.mark.parametrize("error", [
    lambda: WorkflowAlreadyStartedError("app-x", "Application", run_id="run-1"),
    lambda: RPCError("Workflow execution is already running", RPCStatusCode.ALREADY_EXISTS, b""),   # the test server's
], ids=["already-started", "already-exists"])
def test_a_duplicate_leaves_no_start_error_unretrieved(signing_keys, error):
    """A duplicate is DuplicateApplication, and the refused start's error on the operation's handle
    future is retrieved: else asyncio logs "Future exception was never retrieved" once the future
    goes (seen at interpreter exit in a CI log)."""
    logged = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: logged.append(context["message"]))
        client = _Taken(error)
        with pytest.raises(wc.DuplicateApplication):
            await wc.submit(client, app_input(fresh_code()))
        gc.collect()
        assert client.future() is None       # the future is gone: had it an unretrieved error, it was logged
    asyncio.run(main())
    assert logged == []


class _DecisionClient:
    def __init__(self, handle):
        self.handle = handle

    def get_workflow_handle(self, app_id):
        return self.handle


def test_a_decision_is_asked_again_while_the_workflow_task_runs_again():
    """An approval sent while the application's workflow task timed out under load and runs again
    ("Workflow Task in failed state") is asked again under the same update id (the bench lost a
    round to it: the approval's error ended the run), not reported as an error."""
    from models.payloads import Decision
    h = _Handle(failures=2)

    async def go():
        return await wc._execute(_DecisionClient(h), "app-1", "approve", Decision(reviewer="r", comment="ok"),
                                 result_type=dict)
    assert asyncio.run(go()) == {"status": "review"}
    assert len(h.calls) == 3 and len({i for _, i in h.calls}) == 1, h.calls


def test_a_decision_gives_up_when_the_workflow_task_keeps_failing():
    from models.payloads import Decision
    h = _Handle(failures=100)

    async def go():
        return await wc._execute(_DecisionClient(h), "app-1", "approve", Decision(reviewer="r", comment="ok"),
                                 result_type=dict)
    with pytest.raises(RPCError, match="failed state"):
        asyncio.run(go())
    assert len(h.calls) == wc.OPEN_ATTEMPTS
