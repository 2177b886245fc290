"""The activities of the first version of the workflow (workflows/legacy.py), under the names and
payloads it calls them with. Only applications started before the award book existed call them;
they now read and write the award book too, so that their payments count against caps and items.
"""
from __future__ import annotations

from datetime import date, datetime, timezone

from sqlalchemy.exc import IntegrityError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import bind
from activities.once import activity_key, add_once
from calc import CalcRequest, CalcResult, InputError, calculate
from models import book, registry
from models.db import session
from models.legacy import CalcInput, PayoutInput, PayoutRecord
from models.tables import CalculationRow, LedgerEntry


@activity.defn(name="calculate_award")
def calculate_award(req: CalcInput) -> CalcResult:
    log = bind(req.application_id, req.clause_id)
    ent = registry.enterprise(req.enterprise_code)
    if ent is None:
        raise ApplicationError(f"enterprise {req.enterprise_code} is not registered",
                               type="UnknownEnterprise", non_retryable=True)
    with session() as s:
        prior = book.prior_awards(s, req.enterprise_code, exclude=(req.application_id, req.year))
    try:
        result = calculate(CalcRequest.model_validate({
            "clause_id": req.clause_id, "year": req.year, "enterprise": ent, "facts": req.facts,
            "prior_awards": prior, "as_of": date.fromisoformat(req.as_of),
            "alternatives": tuple(req.alternatives), "adjustment": req.adjustment,
        }))
    except (InputError, ValueError) as e:
        raise ApplicationError(f"calculation input error: {e}", type="InputError", non_retryable=True) from None
    with session() as s:
        add_once(s, CalculationRow(application_id=req.application_id, clause_id=result.clause_id, year=req.year,
                                   amount=result.amount, refusal_code=result.refusal.code if result.refusal else None,
                                   result_json=result.model_dump_json(), created_at=datetime.now(timezone.utc),
                                   source=activity_key()))
    log.info("calculated", year=req.year, amount=str(result.amount))
    return result


def write_payout(req: PayoutInput) -> PayoutRecord:
    row = LedgerEntry(application_id=req.application_id, clause_id=req.clause_id, enterprise_code=req.enterprise_code,
                      year=req.year, seq=req.seq, amount=req.amount, item_id=req.item_id,
                      due=date.fromisoformat(req.due) if req.due else None, label=req.label,
                      paid_at=datetime.now(timezone.utc))
    with session() as s:
        found = add_once(s, row, key=("application_id", "year", "seq"))
        paid = found if found is not None else row
        book.record_legacy_payment(s, paid)
        try:
            s.commit()
        except IntegrityError:       # a racing retry booked it first
            s.rollback()
        return PayoutRecord(application_id=paid.application_id, year=paid.year, seq=paid.seq,
                            amount=paid.amount, created=found is None)


@activity.defn(name="record_payout")
def record_payout(req: PayoutInput) -> PayoutRecord:
    log = bind(req.application_id, req.clause_id)
    rec = write_payout(req)
    log.info("payout_recorded" if rec.created else "payout_already_recorded",
             year=req.year, seq=req.seq, amount=str(rec.amount))
    return rec


LEGACY_ACTIVITIES = [calculate_award, record_payout]
