"""A staged award in three tranches a month apart, on a task queue of its own (for the clawback and
amendment tests): hu2023 三(六)'s listing reward is paid in three stages (30% / 30% / 40%), but
its window has closed, so the calculation dates every stage today; this stand-in keeps the
calculation and the award book real and moves the second and third stage 30 and 60 days on."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

from temporalio import activity

from activities.book import binding_calculation, settle
from calc import calculate
from calc.model import CalcResult, Tranche
from calc.money import to_fen
from models.application import CommitRequest, SettleRequest, Settled

QUEUE = "disburse-three-tranches"
LISTING = "hu2023-06-listing-reward"
STAGES = {"filing_accepted": "2025-03-15", "approved": "2025-10-20", "listed": "2025-12-20"}


def _three(req) -> CalcResult:
    """The real calculation; its three stages (or its one tranche split 30% / 30% / 40%) a month apart."""
    res = calculate(req)
    if res.refusal or not res.schedule:
        return res
    first = res.schedule[0].due
    if len(res.schedule) == 3:
        parts = [(t.amount, t.label) for t in res.schedule]
    else:
        a, b = to_fen(res.amount * Decimal("0.3")), to_fen(res.amount * Decimal("0.3"))
        parts = [(a, "stage 1"), (b, "stage 2"), (res.amount - a - b, "stage 3")]
    return res.model_copy(update={"schedule": tuple(
        Tranche(seq=i + 1, due=first + timedelta(days=30 * i), amount=amount, label=label)
        for i, (amount, label) in enumerate(parts))})


@activity.defn(name="commit_award")
def three_tranche_commit_award(req: CommitRequest) -> CalcResult:
    return binding_calculation(req, calculate_fn=_three)


@activity.defn(name="settle_award")
def three_tranche_settle_award(req: SettleRequest) -> Settled:
    """settle_award (lean-history-2) with the three-stage commitment."""
    return settle(req, commit=three_tranche_commit_award)


async def add_worker(h) -> None:
    """The harness's workflows and activities on QUEUE, commit_award (and settle_award) replaced (stopped with the
    harness); called from inside the test's coroutine (a worker is made on a running loop)."""
    w = h._worker_with(QUEUE, three_tranche_commit_award, three_tranche_settle_award)
    h.workers.append(w)
    h._tasks.append(h.loop.create_task(w.run()))
    await asyncio.sleep(0)


IP_ABS = "hu2023-05-ip-securitization-subsidy"      # reviewed by 湖州市金融办 and 湖州市财政局, one tranche
IP_FACTS = {"review_amount": "500000", "financing_amount": "20000000", "event_date": "2025-09-30",
            "item_id": "ABS-HU-1"}


def listing_facts(amount: str = "10000000") -> dict:
    return {"review_amount": amount, "stages": dict(STAGES)}


async def states(h, app_id: str) -> list[str]:
    from workflows import client as wc
    return [t["state"] for t in (await wc.status(h.client, app_id))["tranches"]]


async def until_states(h, app_id: str, wanted: list[str], tries: int = 400) -> dict:
    from tests.backend_helpers import through_publicity
    from workflows import client as wc
    for _ in range(tries):
        st = await wc.status(h.client, app_id)
        if [t["state"] for t in st["tranches"]] == wanted:
            return st
        if not await through_publicity(h, st):          # 公示 first: its period passed on the server's clock
            await asyncio.sleep(0.05)
    raise AssertionError(f"{app_id}: tranches never {wanted}: {[t['state'] for t in st['tranches']]}")
