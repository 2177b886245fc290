"""Stand-ins for tests, each registered under a real activity's name on a task queue of its own
(tests/temporal_env.py): the same workflow, with one activity replaced."""
from __future__ import annotations

import time
from datetime import timedelta

from temporalio import activity

from activities.book import binding_calculation, settle
from calc import calculate
from calc.model import CalcResult, Tranche
from calc.money import to_fen
from models.application import CommitRequest, PayoutRecord, PayRequest, SettleRequest, Settled, StatusUpdate

STAGED_QUEUE = "disburse-staged"
FLAKY_QUEUE = "disburse-flaky"
FLAKY_FAILURES = 2
SLOW_MIRROR_QUEUE = "disburse-slow-mirror"
SLOW_PAY_QUEUE = "disburse-slow-pay"
BROKEN_QUEUE = "disburse-broken"


def _two_stages(req) -> CalcResult:
    """The real calculation, its amount split into two tranches, the second due 30 days after the
    first (the calc core dates single tranches on the as-of date, so a tranche in the future
    needs staged facts; this stands in for them)."""
    res = calculate(req)
    if res.refusal or not res.schedule:
        return res
    first = res.schedule[0]
    half = to_fen(res.amount / 2)
    return res.model_copy(update={"schedule": (
        Tranche(seq=1, due=first.due, amount=half, label="stage 1"),
        Tranche(seq=2, due=first.due + timedelta(days=30), amount=res.amount - half, label="stage 2"),
    )})


@activity.defn(name="commit_award")
def staged_commit_award(req: CommitRequest) -> CalcResult:
    """The real commitment to the award book, of an award paid in two tranches."""
    return binding_calculation(req, calculate_fn=_two_stages)


@activity.defn(name="settle_award")
def staged_settle_award(req: SettleRequest) -> Settled:
    """settle_award (lean-history-2) with the staged commitment."""
    return settle(req, commit=staged_commit_award)


@activity.defn(name="pay_tranche")
def flaky_pay_tranche(req: PayRequest) -> PayoutRecord:
    """The real payment, then a crash before the worker can report it, on the first
    FLAKY_FAILURES attempts: the retry finds the tranche already paid."""
    from activities.book import pay_tranche
    rec = pay_tranche(req)
    if activity.info().attempt <= FLAKY_FAILURES:
        raise RuntimeError(f"worker crashed after writing the ledger (attempt {activity.info().attempt})")
    return rec


@activity.defn(name="mirror_status")
def slow_mirror_status(u: StatusUpdate) -> None:
    """The real status mirror, slowly."""
    from activities.application import mirror_status
    time.sleep(1.5)
    return mirror_status(u)


@activity.defn(name="pay_tranche")
def slow_pay_tranche(req: PayRequest) -> PayoutRecord:
    """The real payment, slowly: the last tranche is 'being paid' for two seconds."""
    from activities.book import pay_tranche
    time.sleep(2)
    return pay_tranche(req)


@activity.defn(name="commit_award")
def broken_commit_award(req: CommitRequest) -> CalcResult:
    """A programming error: no retry can fix it."""
    raise TypeError("unsupported operand type(s) for +: 'Decimal' and 'NoneType'")


@activity.defn(name="settle_award")
def broken_settle_award(req: SettleRequest) -> Settled:
    """settle_award (lean-history-2) with the broken commitment."""
    return settle(req, commit=broken_commit_award)
