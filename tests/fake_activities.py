"""Stand-ins for tests. A staged calculate_award: the real calculation, its amount split into two tranches,
the second due 30 days after the first (the calc core dates single tranches on the as-of date,
so a tranche in the future needs staged facts; this stands in for them)."""
from __future__ import annotations

from datetime import timedelta

from temporalio import activity

from activities.calculation import calculate_award as real_calculate_award
from calc.model import CalcResult, Tranche
from calc.money import to_fen
from models.application import CalcInput, PayoutInput, PayoutRecord

STAGED_QUEUE = "disburse-staged"


@activity.defn(name="calculate_award")
def staged_calculate_award(req: CalcInput) -> CalcResult:
    res = real_calculate_award(req)
    if res.refusal or not res.schedule:
        return res
    first = res.schedule[0]
    half = to_fen(res.amount / 2)
    return res.model_copy(update={"schedule": (
        Tranche(seq=1, due=first.due, amount=half, label="stage 1"),
        Tranche(seq=2, due=first.due + timedelta(days=30), amount=res.amount - half, label="stage 2"),
    )})


FLAKY_QUEUE = "disburse-flaky"
FLAKY_FAILURES = 2


@activity.defn(name="record_payout")
def flaky_record_payout(req: PayoutInput) -> PayoutRecord:
    """The real ledger write, then a crash before the worker can report it, on the first
    FLAKY_FAILURES attempts: the retry finds the row already written."""
    from activities.ledger import record_payout
    rec = record_payout(req)
    if activity.info().attempt <= FLAKY_FAILURES:
        raise RuntimeError(f"worker crashed after writing the ledger (attempt {activity.info().attempt})")
    return rec
