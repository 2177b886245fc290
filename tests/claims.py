"""Builds a valid, eligible claim for any clause of the catalogue, with a chosen base amount.
Used by the property tests and the benchmark, so they cover every clause from the data alone."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from calc import CalcRequest, catalogue
from calc.credit_code import make
from calc.model import QualificationKind
from calc.parameters import value_on

REGION_OF = {"3301": "330106", "3305": "330502", "4101": "410105", "4201": "420106", "330326": "330326"}
ALL_KINDS = QualificationKind.__args__  # type: ignore[attr-defined]


def enterprise_for(doc_id: str, serial: int = 1, kinds: tuple[str, ...] = ALL_KINDS) -> dict[str, Any]:
    doc = catalogue().documents[doc_id]
    region = REGION_OF.get(doc.regions[0], doc.regions[0].ljust(6, "0"))
    code = make(f"91{region}MA2P{serial:05d}")
    return {"credit_code": code, "name": f"{doc.issuer} applicant {serial}",
            "qualifications": [{"kind": k, "valid_from": "2000-01-01"} for k in kinds]}


def support_year(doc_id: str) -> int:
    w = catalogue().documents[doc_id].window
    return min(w.end.year, max(w.start.year + 1, 2026)) if w.end.year > w.start.year else w.start.year


def facts_for(clause_id: str, base: Decimal, year: int) -> dict[str, Any]:
    doc, clause = catalogue().clause(clause_id)
    start = max(date(year, 1, 1), doc.window.start)
    end = min(date(year, 12, 31), doc.window.end)
    mid = start if start.month > 6 else date(year, 6, 30) if date(year, 6, 30) <= end else start
    f: dict[str, Any] = {"event_date": str(mid), "period_start": str(mid), "policy_no": f"P-{clause_id}",
                         "programme_year": 1}
    if clause.formula == "loan_interest":
        f["loans"] = [{"loan_id": f"L-{clause_id}", "principal": str(base), "annual_rate_pct": "2.60",
                       "contract_date": str(doc.window.start), "term_months": 36,
                       "start": str(start), "end": str(end), "interest_paid": str((base * Decimal("0.026")).quantize(Decimal("0.01")))}]
        f["interest_paid"] = str((base * Decimal("0.026")).quantize(Decimal("0.01")))
    elif clause.formula == "first_set_premium":
        f["premium"], f["insured_amount"] = str(base), str(base * 100)
    elif clause.formula == "vc_reward":
        f["investments"] = [{"investee_id": make("91330106MA2Q00001"), "amount": str(base), "stage": "seed",
                             "invested_on": str(date(mid.year - 2, mid.month, min(mid.day, 28)))}]
    elif clause.formula in ("reviewed_grant", "staged_grant"):
        f["review_amount"] = str(base)
        if "tiers" in clause.params:
            f["institution_type"] = next(iter(clause.params["tiers"][-1].value))
        if "stage_shares" in clause.params:
            f["stages"] = {s: str(mid) for s in clause.params["stage_shares"][-1].value}
    # every other fact a clause may read: generous, so only the base drives the amount
    for name in ("premium", "guarantee_balance_daily_avg_last_year", "guarantee_balance_daily_avg_this_year",
                 "new_tech_loans", "new_tech_guarantee_total", "financing_amount", "fixed_asset_investment",
                 "project_total_investment", "county_subsidy"):
        f.setdefault(name, str(Decimal(10) ** 11))
    if clause.base:
        f[clause.base] = str(base)
    if clause.second_limit:
        f[clause.second_limit] = str(Decimal(10) ** 12)
    if "item_id" in clause.required_facts:
        f["item_id"] = f"ITEM-{clause_id}"
    f.setdefault("ranking", 1)
    f.setdefault("avg_guarantee_fee_rate_pct", "0.3")
    f.setdefault("balance_grew_this_year", True)
    f.setdefault("balance_grew_last_year", True)
    for t in clause.thresholds:   # satisfy every threshold not on the base itself
        if t.fact == clause.base:
            continue
        v = value_on(t.value, start) or t.value[0]
        if t.op in ("ge", "gt") and not isinstance(v.value, bool):
            f[t.fact] = str(Decimal(str(v.value)) * 2 + 1)
        elif t.op in ("le", "lt") and not isinstance(v.value, bool):
            f[t.fact] = "0" if t.fact != "ranking" else 1
        elif t.op == "eq":
            f[t.fact] = v.value
        elif t.op == "in":
            f[t.fact] = list(v.value)[0]
    return f


def request_for(clause_id: str, base: Decimal, prior_awards: list[dict] | None = None,
                year: int | None = None, serial: int = 1, realistic: bool = False) -> CalcRequest:
    """A claim under `clause_id` on `base`. `realistic`: the applicant holds just the
    qualifications the clause asks for (as real applicants do), not every kind there is."""
    doc, clause = catalogue().clause(clause_id)
    year = year or support_year(doc.id)
    kinds = (clause.requires_qualification[:1] or ("tech_enterprise",)) if realistic else ALL_KINDS
    return CalcRequest.model_validate({
        "clause_id": clause_id, "year": year, "enterprise": enterprise_for(doc.id, serial, kinds),
        "facts": facts_for(clause_id, base, year), "prior_awards": prior_awards or [],
    })
