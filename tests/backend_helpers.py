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
    """The workflow's result, moving the time-skipping server's clock forward in growing steps
    (an hour, doubling, at most 30 days) while the workflow waits on its timers.

    Not by unlocking time skipping while waiting for the result: the test server keeps each
    completed activity's schedule-to-close deadline (the run timeout, ten years here) and skips to
    it, so every such wait would carry the clock ten years ahead (past the calculation's date
    range of 1900..2100 after a few)."""
    import asyncio
    from datetime import timedelta
    handle = h.client.get_workflow_handle(app_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    step = timedelta(hours=1)
    while not await ended(h, app_id, within=0.3):
        if loop.time() > deadline:
            raise TimeoutError(f"{app_id} still running after {timeout} s")
        await h.env.sleep(step)
        step = min(step * 2, timedelta(days=30))
    return await handle.result()


async def ended(h, app_id: str, *, within: float = 20) -> bool:
    """Whether the workflow closes within `within` seconds of real time, the server's clock held
    still. Waiting on a workflow that failed, with time skipping unlocked, moves the time-skipping
    server's clock by ten years (its default run timeout); a test that expects a failure waits
    here, then reads the failure from result()."""
    import asyncio

    from temporalio.client import WorkflowExecutionStatus
    handle = h.client.get_workflow_handle(app_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return True
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)


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
        if st and await through_publicity(h, st):
            continue
        if skip is not None:
            await h.env.sleep(skip)
        else:
            await asyncio.sleep(0.05)
    raise AssertionError(f"{app_id}: status never reached {wanted}; last {st and st['status']}")


async def through_publicity(h, st: dict | None) -> bool:
    """An application in its 公示 period with no open objection: move the time-skipping server's
    clock to the period's end (the tests that are not about 公示 go through it this way). True if
    it moved the clock."""
    from datetime import datetime, timedelta
    pub = (st or {}).get("publicity") or {}
    if (st or {}).get("status") != "publicity" or not pub or any(o["state"] == "open" for o in pub["objections"]):
        return False
    ends = datetime.fromisoformat(pub["period"]["ends_at"])
    now = await h.env.get_current_time()
    if ends <= now:
        return False
    await h.env.sleep(ends - now + timedelta(seconds=1))
    return True


async def past_publicity(h, app_id: str) -> dict:
    """Wait for the application's 公示 (models/publicity.py), then move the time-skipping server's
    clock past its end (00:00 China after the last notice day): returns the status seen during it."""
    import asyncio
    from datetime import datetime, timedelta
    st = await wait_status(h, app_id, "publicity")
    ends = datetime.fromisoformat(st["publicity"]["period"]["ends_at"])
    now = await h.env.get_current_time()
    if ends > now:
        await h.env.sleep(ends - now + timedelta(seconds=1))
    await asyncio.sleep(0)
    return st

