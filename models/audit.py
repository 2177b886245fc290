"""The audit record of an application, from the application database alone.

Temporal deletes a closed workflow's history after the namespace's retention period; everything
an auditor needs is written to the database while the application runs: the claim and what the
worker pinned when it opened it, every decision (who, bureau, when, comment, a lowered amount),
every calculation with its facts and trace, the award book's lines (committed, paid, released and
why), the ledger's payments and what settled them (recoveries, amendments' top-ups and corrections), the
recovery orders, bars and amendments, the notifications, the last status mirrored, and the documents
attached (metadata with each file's SHA-256; the files are in the document store, documents/).
"""
from __future__ import annotations

import json
from typing import Any, Optional

from sqlmodel import select

from models.db import session
from models.tables import (
    AmendmentRow, ApplicationRow, AwardLine, Bar, CalculationRow, ClaimRow, DecisionRow, DocumentRow, LedgerEntry,
    NotificationRow, RecoveryOrder,
)


def _row(obj) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in type(obj).model_fields}


def audit_record(application_id: str) -> Optional[dict[str, Any]]:
    """Everything the database holds about the application, or None if it holds nothing."""
    with session() as s:
        app = s.get(ApplicationRow, application_id)
        claim = s.get(ClaimRow, application_id)
        decisions = s.exec(select(DecisionRow).where(DecisionRow.application_id == application_id)
                           .order_by(DecisionRow.decided_at, DecisionRow.id)).all()
        calcs = s.exec(select(CalculationRow).where(CalculationRow.application_id == application_id)
                       .order_by(CalculationRow.created_at, CalculationRow.id)).all()
        lines = s.exec(select(AwardLine).where(AwardLine.application_id == application_id)
                       .order_by(AwardLine.year, AwardLine.seq, AwardLine.item_id)).all()
        paid = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == application_id)
                      .order_by(LedgerEntry.year, LedgerEntry.seq, LedgerEntry.id)).all()
        recoveries = s.exec(select(RecoveryOrder).where(RecoveryOrder.application_id == application_id)
                            .order_by(RecoveryOrder.id)).all()
        bars = s.exec(select(Bar).where(Bar.application_id == application_id).order_by(Bar.id)).all()
        amendments = s.exec(select(AmendmentRow).where(AmendmentRow.application_id == application_id)
                            .order_by(AmendmentRow.id)).all()
        notes = s.exec(select(NotificationRow).where(NotificationRow.application_id == application_id)
                       .order_by(NotificationRow.created_at, NotificationRow.id)).all()
        docs = s.exec(select(DocumentRow).where(DocumentRow.application_id == application_id)
                      .order_by(DocumentRow.uploaded_at, DocumentRow.id)).all()
        if not any((app, claim, decisions, calcs, lines, paid, notes, docs)):
            return None
        return {
            "application_id": application_id,
            "status": _row(app) if app else None,
            "claim": json.loads(claim.claim_json) if claim else None,
            "pinned": json.loads(claim.pinned_json) if claim else None,
            "opened_at": claim.opened_at if claim else None,
            "decisions": [_row(d) for d in decisions],
            "calculations": [{**{k: v for k, v in _row(c).items() if k not in ("result_json", "facts_json")},
                              "facts": json.loads(c.facts_json) if c.facts_json else None,
                              "result": json.loads(c.result_json)} for c in calcs],
            "award_lines": [_row(ln) for ln in lines],
            "budget_lines": _budget_lines(lines),       # the lines its awards draw on (budget_record: their changes)
            "ledger": [_row(p) for p in paid],
            "notifications": [_row(n) for n in notes],
            "documents": [_row(d) for d in docs],
            "recoveries": [_row(r) for r in recoveries],
            "bars": [_row(b) for b in bars],
            "amendments": [_row(a) for a in amendments],
        }


def _budget_lines(lines) -> list[str]:
    from models import budget
    return sorted({line for line in (budget.line_of(c, y) for c, y in {(ln.clause_id, ln.year) for ln in lines})
                   if line})


def budget_record(line_id: Optional[str] = None) -> dict[str, Any]:
    """The budget lines (one, or all) with their figures, and every change made to them: created by
    an import, set by a re-import, topped up; who, when, the document, before and after."""
    from models import budget
    lines = [r for r in budget.report() if line_id is None or r["line_id"] == line_id]
    return {"lines": lines, "changes": budget.changes(line_id)}
