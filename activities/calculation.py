"""calculate_award: enterprise + prior awards from the DB -> calc.calculate -> calculations table."""
from __future__ import annotations

from datetime import date, datetime, timezone

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.logs import bind
from activities.once import activity_key, add_once
from calc import CalcRequest, CalcResult, InputError, calculate
from models import registry
from models.application import CalcInput
from models.db import session
from models.tables import CalculationRow


@activity.defn
def calculate_award(req: CalcInput) -> CalcResult:
    log = bind(req.application_id, req.clause_id)
    ent = registry.enterprise(req.enterprise_code)
    if ent is None:
        log.warning("unknown_enterprise", enterprise_code=req.enterprise_code)
        raise ApplicationError(f"enterprise {req.enterprise_code} is not registered",
                               type="UnknownEnterprise", non_retryable=True)
    prior = registry.prior_awards(req.enterprise_code, exclude=(req.application_id, req.year))
    try:
        calc_req = CalcRequest.model_validate({
            "clause_id": req.clause_id, "year": req.year, "enterprise": ent, "facts": req.facts,
            "prior_awards": prior, "as_of": date.fromisoformat(req.as_of),
            "alternatives": tuple(req.alternatives), "adjustment": req.adjustment,
        })
        result = calculate(calc_req)
    except (InputError, ValueError) as e:
        log.warning("calculation_input_error", error=str(e))
        raise ApplicationError(f"calculation input error: {e}", type="InputError", non_retryable=True) from None
    with session() as s:
        add_once(s, CalculationRow(application_id=req.application_id, clause_id=result.clause_id, year=req.year,
                                   amount=result.amount, refusal_code=result.refusal.code if result.refusal else None,
                                   result_json=result.model_dump_json(), created_at=datetime.now(timezone.utc),
                                   source=activity_key()))
    log.info("calculated", year=req.year, amount=str(result.amount),
             refusal=result.refusal.code if result.refusal else None, tranches=len(result.schedule))
    return result
