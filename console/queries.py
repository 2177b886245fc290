"""What the console shows, read from the application database (the status mirror, the claims,
the decisions, the award book): no Temporal round trip for lists."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Optional

from sqlmodel import select

from models.db import session
from models.tables import ApplicationRow, ClaimRow, DecisionRow

WAITING = ("review", "info_requested")


@dataclass
class Row:
    application_id: str
    clause_id: str
    enterprise_code: str
    enterprise_name: str
    year: int
    status: str
    awarded: Decimal
    overdue: bool
    updated_at: datetime
    operator: str = ""
    required: list[str] = field(default_factory=list)
    decided: dict[str, str] = field(default_factory=dict)      # bureau -> kind


def _rows(filters: dict[str, Any] | None = None) -> list[Row]:
    f = filters or {}
    with session() as s:
        q = select(ApplicationRow, ClaimRow).join(ClaimRow, ClaimRow.application_id == ApplicationRow.application_id,
                                                  isouter=True)
        if f.get("clause"):
            q = q.where(ApplicationRow.clause_id == f["clause"])
        if f.get("enterprise"):
            q = q.where(ApplicationRow.enterprise_code == f["enterprise"].strip().upper())
        if f.get("year"):
            q = q.where(ApplicationRow.year == int(f["year"]))
        found = list(s.exec(q.order_by(ApplicationRow.updated_at.desc()).limit(2000)))
        decided: dict[str, dict[str, str]] = {}
        ids = [a.application_id for a, _ in found]
        if ids:
            for d in s.exec(select(DecisionRow).where(DecisionRow.application_id.in_(ids),
                                                      DecisionRow.kind.in_(("approve", "reject")))):
                if d.bureau:
                    decided.setdefault(d.application_id, {})[d.bureau] = d.kind
    out = []
    for a, c in found:
        claim = json.loads(c.claim_json) if c else {}
        pinned = json.loads(c.pinned_json) if c else {}
        out.append(Row(application_id=a.application_id, clause_id=a.clause_id, enterprise_code=a.enterprise_code,
                       enterprise_name=a.enterprise_name, year=a.year, status=a.status, awarded=a.awarded,
                       overdue=a.overdue, updated_at=a.updated_at, operator=claim.get("operator", ""),
                       required=(pinned.get("clause") or {}).get("required_bureaus", []),
                       decided=decided.get(a.application_id, {})))
    return out


def inbox(bureau: str, filters: dict[str, Any] | None = None) -> list[Row]:
    """Applications waiting for `bureau`: in review where it must decide and has not, or (for a
    finance bureau) a programme year waiting for its confirmation. Overdue first, then oldest."""
    rows = []
    for r in _rows(filters):
        in_review = r.status in WAITING and bureau in r.required and bureau not in r.decided
        confirming = r.status == "confirming" and bureau.endswith("财政局") and bureau in r.required
        if in_review or confirming:
            rows.append(r)
    return sorted(rows, key=lambda r: (not r.overdue, r.updated_at))


def of_operator(operator: str, filters: dict[str, Any] | None = None) -> list[Row]:
    return [r for r in _rows(filters) if r.operator == operator]


def everything(filters: dict[str, Any] | None = None) -> list[Row]:
    return _rows(filters)


def statuses(application_ids: list[str]) -> dict[str, str]:
    """The status mirror's status of each application (those it knows)."""
    out: dict[str, str] = {}
    with session() as s:
        for i in range(0, len(application_ids), 500):
            chunk = application_ids[i:i + 500]
            for a in s.exec(select(ApplicationRow).where(ApplicationRow.application_id.in_(chunk))):
                out[a.application_id] = a.status
    return out


def provisional(application_id: str) -> Optional[dict[str, Any]]:
    """What the calculation core says now for the claim as it stands (facts as submitted), against
    the award book as it is (this application's own commitments left out): for reviewers, not
    binding — the binding calculation runs after the credit check, under the enterprise's lock."""
    from calc import CalcRequest, calculate
    from models.application import china_today
    from models import book, registry
    with session() as s:
        c = s.get(ClaimRow, application_id)
        if c is None:
            return None
        claim = json.loads(c.claim_json)
        prior = book.prior_awards(s, claim["enterprise_code"], exclude=(application_id, claim["year"]))
    try:
        ent = registry.enterprise(claim["enterprise_code"])
        result = calculate(CalcRequest.model_validate({
            "clause_id": claim["clause_id"], "year": claim["year"], "enterprise": ent, "facts": claim["facts"],
            "prior_awards": prior, "as_of": china_today(datetime.now(timezone.utc)),
            "alternatives": tuple(claim.get("alternatives") or ())}))
    except Exception as e:  # noqa: BLE001 - shown as such, never a page error
        return {"error": str(e)[:300]}
    return result.model_dump(mode="json")
