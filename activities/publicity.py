"""Activities of the review and 公示 stages (models/publicity.py): the provisional calculation on
the claim (a local activity: read-only, it commits nothing) and the notice period of an award
(the official calendar, calc/workdays.py)."""
from __future__ import annotations

from datetime import date

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import bind
from calc import CalcRequest, InputError, calculate
from calc.workdays import CalendarError
from models import book, registry
from models.db import session
from models.publicity import Period, PeriodRequest, Provisional, ProvisionalRequest, period


@activity.defn
def provisional_calculation(req: ProvisionalRequest) -> Provisional:
    """The calculation core on the claim as it stands, against the award book as it is now (no
    lock, nothing committed): what reviewers see during review. A refusal or a claim the core
    cannot calculate is reported in the result, never raised: reviewers decide."""
    log = bind(req.application_id, req.clause_id)
    base = dict(facts=req.facts, computed_at=req.computed_at, as_of=req.as_of)
    try:
        ent = registry.enterprise(req.enterprise_code)
    except (ValidationError, ValueError) as e:
        return Provisional(error=f"enterprise_code: the registry row is invalid ({e})", **base)
    if ent is None:
        return Provisional(error=f"enterprise_code: {req.enterprise_code} is not registered", **base)
    with session() as s:
        prior = book.prior_awards(s, req.enterprise_code, exclude=(req.application_id, req.year))
    try:
        result = calculate(CalcRequest.model_validate({
            "clause_id": req.clause_id, "year": req.year, "enterprise": ent, "facts": req.facts,
            "prior_awards": prior, "as_of": date.fromisoformat(req.as_of), "alternatives": tuple(req.alternatives)}))
    except InputError as e:
        return Provisional(error=f"{e.field}: {e.rule}", **base)
    except ValidationError as e:
        return Provisional(error=f"calculation input: {e.errors()[0]['msg']}", **base)
    dumped = result.model_dump(mode="json")
    out = Provisional(amount=str(result.amount),
                      refusal=f"{result.refusal.code}: {result.refusal.reason}" if result.refusal else None,
                      trace=dumped.get("trace", [])[:50], **base)
    log.info("provisional_calculated", amount=out.amount, refusal=result.refusal.code if result.refusal else None)
    return out


@activity.defn
def publicity_period(req: PeriodRequest) -> Period:
    """The award's notice period: N working days (policy data) after the day it is published,
    ending at 00:00 China time after the last; a year the installed calendar does not know stops
    here (CalendarError, no retry: the application waits in `attention` until it is resumed)."""
    log = bind(req.application_id, req.clause_id)
    try:
        p = period(req.clause_id, req.published, req.day_seconds)
    except CalendarError as e:
        raise ApplicationError(str(e), type="CalendarError", non_retryable=True) from None
    if p.day_seconds:
        log.warning("publicity_demo_days", day_seconds=p.day_seconds, ends_at=p.ends_at.isoformat(),
                    message="DEMO/TEST setting: 公示 notice days are seconds, not working days")
    log.info("publicity_period", first_day=p.first_day.isoformat(), last_day=p.last_day.isoformat(),
             ends_at=p.ends_at.isoformat(), working_days=p.working_days)
    return p
