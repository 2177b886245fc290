"""LPR and deposit benchmark tables (policies/rates.yaml), for the preferential-rate rule:
the loan rate must be below the LPR of the same term on the contract date, and the subsidy may
not bring the enterprise's own rate below the deposit benchmark of the same term."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from pydantic import BaseModel, ConfigDict, Field

from calc.parameters import POLICY_DIR, Citation, ParameterError, _load_yaml


class _M(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LprFixing(_M):
    since: date
    one_year: Decimal = Field(gt=0, lt=100)
    five_year: Decimal = Field(gt=0, lt=100)
    cite: Citation


class DepositTable(_M):
    since: date
    terms: dict[int, Decimal]
    cite: Citation


class Rates(_M):
    lpr: tuple[LprFixing, ...] = Field(min_length=1)
    lpr_five_year_from_months: int = 61
    deposit: tuple[DepositTable, ...] = Field(min_length=1)


@lru_cache(maxsize=1)
def rates() -> Rates:
    path = POLICY_DIR / "rates.yaml"
    from pydantic import ValidationError
    try:
        r = Rates.model_validate(_load_yaml(path))
    except ValidationError as e:
        err = e.errors()[0]
        raise ParameterError(path.name, ".".join(map(str, err["loc"])), err["msg"]) from None
    if [f.since for f in r.lpr] != sorted(f.since for f in r.lpr):
        raise ParameterError(path.name, "lpr", "fixings must be in date order")
    return r


def first_lpr_fixing() -> date:
    """The first LPR fixing of the table (the LPR reform, 2019-08-20)."""
    return rates().lpr[0].since


@lru_cache(maxsize=4096)
def lpr_on(day: date, term_months: int) -> tuple[Decimal, str] | None:
    """The LPR of the loan's term in force on `day` (the contract date), with its label; None
    before the first fixing: there was no LPR then (the caller refuses, it does not guess)."""
    r = rates()
    found = None
    for f in r.lpr:
        if f.since <= day:
            found = f
        else:
            break
    if found is None:
        return None
    if term_months >= r.lpr_five_year_from_months:
        return found.five_year, f"LPR 5Y {found.five_year} since {found.since}"
    return found.one_year, f"LPR 1Y {found.one_year} since {found.since}"


@lru_cache(maxsize=256)
def deposit_rate(term_months: int) -> tuple[Decimal, str]:
    """The deposit benchmark of the shortest published term covering the loan term."""
    table = rates().deposit[-1]
    for months in sorted(table.terms):
        if term_months <= months:
            return table.terms[months], f"deposit {months}m {table.terms[months]}"
    longest = max(table.terms)
    return table.terms[longest], f"deposit {longest}m {table.terms[longest]} (longer terms)"
