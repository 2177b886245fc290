"""Helpers for the backend workflow tests."""
from __future__ import annotations

from models import ApplicationInput
from tests.temporal_env import PREMIUM_CLAUSE, PREMIUM_FACTS, fresh_code
from workflows import client as wc


def register(db, code: str, quals: str = "tech_enterprise:2020-01-01") -> str:
    db.add_enterprise(code, name=f"E {code}", qualifications=quals)
    return code


def app_input(code: str, *, clause: str = PREMIUM_CLAUSE, year: int = 2026, facts: dict | None = None,
              **kw) -> ApplicationInput:
    return ApplicationInput.model_validate({
        "clause_id": clause, "year": year, "enterprise_code": code, "enterprise_name": f"E {code}",
        "operator": "op-demo", "facts": PREMIUM_FACTS if facts is None else facts, **kw})


async def submit_new(h, db, **kw) -> str:
    code = register(db, kw.pop("code", None) or fresh_code())
    queue = kw.pop("task_queue", wc.TASK_QUEUE)
    return await wc.submit(h.client, app_input(code, **kw), task_queue=queue)


async def approve_both(h, app_id: str, lead: str = "hz-kjj") -> None:
    await wc.approve(h.client, app_id, reviewer=lead, comment="ok")
    await wc.approve(h.client, app_id, reviewer="hz-czj", comment="ok")


async def result(h, app_id: str, *, timeout: float = 60) -> dict:
    """The workflow's result, letting the time-skipping server jump over its timers meanwhile
    (only a handle from start_workflow does that by itself; this one is looked up by id)."""
    import asyncio
    async with h.env.time_skipping_unlocked():
        return await asyncio.wait_for(h.client.get_workflow_handle(app_id).result(), timeout)


async def wait_status(h, app_id: str, wanted, *, skip=None, tries: int = 400) -> dict:
    """Poll the status query until it is one of `wanted`; `skip` (timedelta) advances the
    time-skipping server between polls."""
    import asyncio
    wanted = {wanted} if isinstance(wanted, str) else set(wanted)
    st = None
    for _ in range(tries):
        try:
            st = await wc.status(h.client, app_id)
        except Exception:  # noqa: BLE001 - between runs of a continue-as-new
            st = None
        if st and st["status"] in wanted:
            return st
        if skip is not None:
            await h.env.sleep(skip)
        else:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{app_id}: status never reached {wanted}; last {st and st['status']}")
