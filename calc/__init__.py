"""disburse's calculation core: pure functions over pydantic models. No Temporal, no I/O
beyond reading the policy data files once.

    from calc import calculate, CalcRequest
    result = calculate(CalcRequest.model_validate(data))

`calculate` returns a CalcResult (amount, schedule, trace, refusal); bad input raises InputError.
`calculate_claims` evaluates several clauses claimed for the same item under 从优、就高、不重复.
"""
from calc.catalogue import Catalogue, catalogue
from calc.errors import InputError
from calc.model import (
    CalcRequest, CalcResult, Enterprise, Facts, Investment, Loan, PriorAward, Qualification,
    Refusal, ReviewerAdjustment, TraceStep, Tranche,
)
from calc.engine import calculate, calculate_claims, parse_request

__all__ = [
    "CalcRequest", "CalcResult", "Catalogue", "Enterprise", "Facts", "InputError", "Investment",
    "Loan", "PriorAward", "Qualification", "Refusal", "ReviewerAdjustment", "TraceStep", "Tranche",
    "calculate", "calculate_claims", "catalogue", "parse_request",
]
