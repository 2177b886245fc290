"""Scenarios for `python -m tests.record_histories v3-publicity-timer tests.record_publicity_timer`:
an application opened before patch `lean-history` (the recording turns that one patch off) whose
公示 timer fires, so it asks for patch `publicity-ends-by-its-timer` and is paid. Its history keeps
both: the replay test proves that such an application, recorded with the marker, replays."""
from __future__ import annotations


async def scenarios(h, db) -> dict[str, tuple[str, list[str]]]:
    from temporalio import workflow

    from tests.backend_helpers import app_input, approve_both, register, result
    from tests.temporal_env import fresh_code
    from workflows import client as wc
    from workflows.application import LEAN_PATCH

    real = workflow.patched

    def before_lean(patch_id: str) -> bool:      # as a worker of the code before lean-history did
        return False if patch_id == LEAN_PATCH else real(patch_id)
    workflow.patched = before_lean
    try:
        code = register(db, fresh_code())
        app_id = await wc.submit(h.client, app_input(code), task_queue=wc.TASK_QUEUE)
        run = (await h.client.get_workflow_handle(app_id).describe()).run_id
        await approve_both(h, app_id)
        assert (await result(h, app_id))["status"] == "completed"
    finally:
        workflow.patched = real
    return {"publicity_ends_by_its_timer": (app_id, [run])}
