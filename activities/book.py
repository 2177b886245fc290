"""The award book's activities (models/book.py): commit an award (the binding calculation under
the enterprise's lock), pay one committed tranche, release what an application no longer needs."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Callable, Optional

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import metrics
from activities.logs import bind
from activities.once import activity_key, add_once
from calc import CalcRequest, CalcResult, InputError, calculate
from models import book, registry
from models.application import (
    CommitRequest, CreditResult, Notification, PayoutRecord, PayRequest, ReleaseRequest, SettleRequest, Settled,
    paid_message,
)
from models.publicity import PeriodRequest
from models.db import session
from models.tables import CalculationRow


def binding_calculation(req: CommitRequest, calculate_fn: Callable[[CalcRequest], CalcResult] = calculate,
                        ) -> CalcResult:
    """Commit the award of (application, year) against the enterprise's award book."""
    log = bind(req.application_id, req.clause_id)
    try:
        ent = registry.enterprise(req.enterprise_code)
    except (ValidationError, ValueError) as e:
        raise ApplicationError(f"the registry row of {req.enterprise_code} is invalid: {e}; correct it "
                               "(`disburse enterprises import`) and resume the application",
                               type="RegistryError", non_retryable=True) from None
    if ent is None:
        raise ApplicationError(f"enterprise {req.enterprise_code} is not registered",
                               type="UnknownEnterprise", non_retryable=True)

    fresh = []                                # set when this call calculated (not a retry's stored result)

    def evaluate(prior: list[dict]) -> CalcResult:
        fresh.append(True)
        try:
            return calculate_fn(CalcRequest.model_validate({
                "clause_id": req.clause_id, "year": req.year, "enterprise": ent, "facts": req.facts,
                "prior_awards": prior, "as_of": date.fromisoformat(req.as_of),
                "alternatives": tuple(req.alternatives), "adjustment": req.adjustment,
            }))
        except (InputError, ValidationError) as e:
            raise ApplicationError(f"calculation input error: {e}", type="InputError", non_retryable=True) from None

    result = book.commit(req.application_id, req.enterprise_code, req.year, evaluate, budget=req.budget)
    with session() as s:
        add_once(s, CalculationRow(application_id=req.application_id, clause_id=result.clause_id, year=req.year,
                                   amount=result.amount, refusal_code=result.refusal.code if result.refusal else None,
                                   result_json=result.model_dump_json(), created_at=datetime.now(timezone.utc),
                                   facts_json=req.facts.model_dump_json(exclude_none=True), source=activity_key()))
    if result.refusal is None and fresh:
        metrics.award_committed(result.clause_id, result.amount)
    log.info("committed" if result.refusal is None else
             "budget_exhausted" if result.refusal.code == "budget_exhausted" else "refused", year=req.year, amount=str(result.amount),
             refusal=result.refusal.code if result.refusal else None, tranches=len(result.schedule),
             items=sorted(result.items))
    return result


@activity.defn
def commit_award(req: CommitRequest) -> CalcResult:
    return binding_calculation(req)


@activity.defn
def settle_award(req: SettleRequest) -> Settled:
    """lean-history-2: once every bureau approved, in one local activity: the credit check on the
    day; not listed, the binding calculation (commit_award); an award, its 公示 period
    (publicity_period). Run again (a crash, a resumption) it checks again and finds its
    commitment made (the award book keys it by application and year)."""
    return settle(req)


def settle(req: SettleRequest, commit: Callable[[CommitRequest], CalcResult] = binding_calculation) -> Settled:
    from activities.application import check_credit
    from activities.publicity import publicity_period
    credit = check_credit(req.credit)
    if credit.listed:
        return Settled(credit=credit)
    calc = commit(req.commit)
    if calc.refusal is not None:
        return Settled(credit=credit, calc=calc)
    period = publicity_period(PeriodRequest(application_id=req.commit.application_id,
                                            clause_id=calc.clause_id or req.commit.clause_id,
                                            published=req.published, day_seconds=req.day_seconds))
    return Settled(credit=credit, calc=calc, period=period)


REFUSED = "not paid, credit check: "    # the release reason of a tranche the credit check stopped ...
BARRED = "not paid, barred: "           # ... and of one a bar after a recovery (追回) stopped


@activity.defn
def pay_tranche(req: PayRequest) -> PayoutRecord:
    """Pay one committed tranche (the amount is the award book's). lean-history-2: first the credit
    check on `credit_day`, under the enterprise's lock: listed (or barred), the tranche is released
    instead, and the record says why."""
    log = bind(req.application_id, req.clause_id)
    credit: list[CreditResult] = []

    def check(s, enterprise_code: str) -> Optional[str]:
        from activities.application import credit_on
        credit[:] = [credit_on(enterprise_code, date.fromisoformat(req.credit_day), s)]
        log.info("blacklist_checked", enterprise_code=enterprise_code, listed=credit[0].listed,
                 day=req.credit_day, barred=credit[0].bar is not None)
        if not credit[0].listed:
            return None
        return f"{BARRED if credit[0].bar else REFUSED}{credit[0].reason} ({req.credit_day})"

    try:
        amount, created, state = book.pay(req.application_id, req.year, req.seq,
                                          check=check if req.credit_day else None)
    except book.BookError as e:
        raise ApplicationError(str(e), type="NoCommitment", non_retryable=True) from None
    if credit and credit[0].listed:         # released by this call
        metrics.award_released(req.clause_id, amount)
        log.info("payout_refused", year=req.year, seq=req.seq, reason=credit[0].reason)
        return PayoutRecord(application_id=req.application_id, year=req.year, seq=req.seq, amount=amount,
                            created=False, state="released", credit=credit[0])
    if state == "released" and req.credit_day:  # by an attempt before this one (a crash after it)?
        reason = book.release_reason(req.application_id, req.year, req.seq) or ""
        for prefix in (REFUSED, BARRED):
            if reason.startswith(prefix):
                why = reason.removeprefix(prefix)
                return PayoutRecord(application_id=req.application_id, year=req.year, seq=req.seq, amount=amount,
                                    created=False, state="released",
                                    credit=CreditResult(listed=True, reason=why, bar=why if prefix == BARRED else None))
    if created:
        metrics.award_paid(req.clause_id, amount)
    log.info("payout_recorded" if created else f"payout_{state}_already", year=req.year, seq=req.seq,
             amount=str(amount))
    notice = None
    if req.notify and state == "paid":       # lean-history: the payment's notice, once, under its own key
        from activities.application import send_notice
        notice = Notification(application_id=req.application_id, kind="tranche_paid",
                              message=paid_message(req.year, req.seq, amount), recipients=list(req.notify),
                              key=f"paid/{req.application_id}/{req.year}/{req.seq}")
        if not send_notice(notice, notice.key):
            notice = None
    return PayoutRecord(application_id=req.application_id, year=req.year, seq=req.seq, amount=amount,
                        created=created, state=state, notice=notice)


@activity.defn
def release_award(req: ReleaseRequest) -> str:
    log = bind(req.application_id, req.clause_id)
    released = book.release(req.application_id, req.reason)
    metrics.award_released(req.clause_id, released)
    log.info("released", amount=str(released), reason=req.reason)
    return str(released)


def enterprise_name(code: str) -> Optional[str]:
    ent = registry.enterprise_rows()
    return next((e["name"] for e in ent if e["credit_code"] == code), None)
