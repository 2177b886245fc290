"""Amendments: a correction of an approved award, applied once to the award book and settled in
the ledger, under the enterprise's book lock (models/book.py `locked`), in one transaction.

- An amendment up is checked against the caps first, as the binding calculation is (calc/caps.py
  on the book's other awards of the enterprise): one that would break a cap is refused, naming the
  cap and citing it, and nothing changes.
- The change goes to the unpaid (committed) tranches first, in proportion to their amounts: a
  tranche lowered to nothing is released. What the unpaid tranches cannot take — an amendment of
  an award that is paid — is settled in the ledger: a top-up entry (positive) on the last payment,
  or a correction entry (negative) on the payments from the newest, each linked to its payment,
  which stays as it was. The paid lines of the book carry the amended amount.
- Exactly once: the amendment's key (application#number) is written with it; the same amendment
  again finds it and changes nothing.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from types import SimpleNamespace
from typing import Optional

from sqlmodel import Session, select

from calc.money import ZERO, to_fen
from models import book
from models import budget as budgets
from models.clawback import AmendRequest, AmendResult
from models.recovery import paid_by_payment
from models.tables import AmendmentRow, AwardLine, LedgerEntry


def _now() -> datetime:
    return datetime.now(timezone.utc)


def cap_refusal(s: Session, clause_id: str, year: int, enterprise_code: str, application_id: str,
                amount: Decimal, items: dict[str, Decimal], as_of: date) -> Optional[str]:
    """Why `amount` for (application, year) would break a cap of the clause, given the book's
    other awards of the enterprise (naming the cap and citing it), or None."""
    from calc import catalogue
    from calc.caps import apply_caps
    from calc.context import Ctx, Refused
    from calc.history import AwardHistory
    cat = catalogue()
    plan = cat.plan(clause_id, year)            # the clause's data in force that year, its counted period
    history = AwardHistory()
    for p in book.prior_awards(s, enterprise_code, exclude=(application_id, year)):
        history.add(p["clause_id"], p["year"], p["amount"], p["item_id"])
    for key in items:                                   # 不重复: an item another award paid
        paid = history.for_item(key) if key else {}
        if paid:
            return (f"not_twice: {key} was also awarded under {', '.join(f'{c} ({a})' for c, a in paid.items())}; "
                    f"an amendment cannot raise it (不重复)")
    ctx = Ctx(SimpleNamespace(year=year), plan, history, as_of)
    try:
        allowed = apply_caps(ctx, cat, amount, {k: v for k, v in items.items() if k})
    except Refused as r:
        cite = ctx.trace[-1].cite if ctx.trace else None
        return f"{r.refusal.rule}: {r.refusal.reason}" + (f" — {cite}" if cite else "")
    if allowed >= amount:
        return None
    step = next(t for t in reversed(ctx.trace) if t.rule and t.rule.startswith("cap:"))
    i = step.inputs
    return (f"{step.rule}: {amount} would break the cap of {i['cap']} under {clause_id} "
            f"({i['already_awarded']} awarded by other applications, {i['remaining']} left) — {step.cite}")


def _spread(total_change: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """`total_change` split in proportion to `weights` (to the fen; the last takes the remainder)."""
    base = sum(weights, ZERO)
    out, given = [], ZERO
    for i, w in enumerate(weights):
        part = total_change - given if i == len(weights) - 1 else (to_fen(total_change * w / base) if base else ZERO)
        out.append(part)
        given += part
    return out


def _change_lines(lines: list[AwardLine], change: Decimal, reason: str) -> None:
    for ln, part in zip(lines, _spread(change, [ln.amount for ln in lines] if any(ln.amount for ln in lines)
                                       else [Decimal(1)] * len(lines))):
        ln.amount += part
        if ln.amount <= 0 and ln.state == "committed":
            ln.amount, ln.state, ln.released_at, ln.release_reason = ZERO, "released", _now(), reason[:500]


def amend(req: AmendRequest) -> AmendResult:
    key = f"{req.application_id}#{req.number}"
    with book.locked(req.enterprise_code) as s:
        found = s.exec(select(AmendmentRow).where(AmendmentRow.amendment_key == key)).first()
        if found is not None:
            return _result(s, found, req)
        lines = list(s.exec(select(AwardLine).where(
            AwardLine.application_id == req.application_id, AwardLine.year == req.year,
            AwardLine.state.in_(book.COUNTING)).order_by(AwardLine.seq, AwardLine.item_id)))
        if not lines:
            return AmendResult(applied=False, refusal=f"nothing is awarded to {req.application_id} for {req.year}")
        before = sum((ln.amount for ln in lines), ZERO)
        change = req.after - before
        if change == 0:
            return AmendResult(applied=False, refusal=f"the award for {req.year} is already {before}", before=before,
                               after=req.after)
        if change > 0:
            items: dict[str, Decimal] = {}
            for ln in lines:
                items[ln.item_id] = items.get(ln.item_id, ZERO) + ln.amount
            refusal = cap_refusal(s, lines[0].clause_id, req.year, req.enterprise_code, req.application_id,
                                  req.after, items, date.fromisoformat(req.as_of))
            if refusal:
                return AmendResult(applied=False, refusal=refusal, before=before, after=req.after)
            # the increase draws on the clause's budget line as a commitment would (models/budget.py)
            short = budgets.shortfall(s, lines[0].clause_id, req.year, change)
            if short is not None:
                return AmendResult(applied=False, refusal=f"budget:{short.line_id}: {short.reason()}", before=before,
                                   after=req.after)
        tranches: dict[int, list[AwardLine]] = {}
        for ln in lines:
            tranches.setdefault(ln.seq, []).append(ln)
        unpaid = [q for q, ls in tranches.items() if all(ln.state == "committed" for ln in ls)]
        paid = [q for q in tranches if q not in unpaid]
        reason = f"amendment #{req.number}: {req.reason}"
        row = AmendmentRow(amendment_key=key, application_id=req.application_id, year=req.year, before=before,
                           after=req.after, unpaid_change=ZERO, settled=ZERO, reason=req.reason,
                           proposed_by=req.proposed_by, approved_by=req.approved_by, applied_at=_now())
        s.add(row)
        s.flush()
        left = change
        if unpaid:
            amounts = [sum((ln.amount for ln in tranches[q]), ZERO) for q in unpaid]
            on_unpaid = change if change > 0 else -min(-change, sum(amounts, ZERO))
            for q, part in zip(unpaid, _spread(on_unpaid, amounts)):
                _change_lines(tranches[q], part, reason)
            row.unpaid_change, left = on_unpaid, change - on_unpaid
        if left != 0:
            holding = {p.seq: (p, holds) for p, holds in paid_by_payment(s, req.application_id) if p.year == req.year}
            order = sorted((q for q in paid if q in holding), reverse=True)
            if left > 0:
                order = order[:1]
            for q in order:
                payment, holds = holding[q]
                part = left if left > 0 else -min(holds, -left)
                if part == 0:
                    continue
                s.add(LedgerEntry(application_id=req.application_id, clause_id=payment.clause_id,
                                  enterprise_code=req.enterprise_code, year=req.year, seq=q, item_id=payment.item_id,
                                  amount=part, due=None, label=f"amendment #{req.number}", paid_at=_now(),
                                  kind="top_up" if part > 0 else "correction", entry=f"amendment#{row.id}",
                                  ref_id=payment.id, reason=req.reason[:1000]))
                _change_lines(tranches[q], part, reason)
                row.settled += part
                left -= part
                if left == 0:
                    break
        s.add(row)
        for ln in lines:
            s.add(ln)
        s.flush()
        return _result(s, row, req)


def _result(s: Session, row: AmendmentRow, req: AmendRequest) -> AmendResult:
    lines = s.exec(select(AwardLine).where(AwardLine.application_id == req.application_id,
                                           AwardLine.year == req.year).order_by(AwardLine.seq)).all()
    tranches: dict[int, dict] = {}
    for ln in lines:
        t = tranches.setdefault(ln.seq, {"seq": ln.seq, "amount": ZERO, "state": ln.state})
        t["amount"] += ln.amount
        if ln.state != "released":
            t["state"] = ln.state
    entries = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == req.application_id,
                                               LedgerEntry.entry == f"amendment#{row.id}")).all()
    return AmendResult(applied=True, before=row.before, after=row.after, settled=row.settled,
                       tranches=[{**t, "amount": str(t["amount"])} for t in tranches.values()],
                       entries=[{"year": e.year, "seq": e.seq, "amount": str(e.amount), "kind": e.kind,
                                 "payment": e.ref_id} for e in entries])
