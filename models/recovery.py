"""Recovery (追回) of paid awards, and the bars that follow, in the award book's database.

`recover` runs under the enterprise's book lock (models/book.py `locked`), in one transaction:
it reads what the ledger paid the application (payments, less what earlier orders recovered, plus
amendments' top-ups), never an amount from the caller; writes one recovery entry (negative) per
payment it takes back, linked to that payment, which stays as it was; records the order and bars
the enterprise for the period the policy sets (models/recovery_policy.py). Exactly once: an order
is identified by its application, amount, basis and reason (`order_key`); the same order again —
an activity's retry, or a second identical request — finds the first and writes nothing.

Whether the room under the caps comes back is the policy's: by default it does not (the paid
award lines stay as they are and keep counting, so a recovered item is not paid again); where a
document allows it, the recovered share of each paid line is taken off the line.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Optional

from sqlmodel import Session, select

from calc.money import ZERO, to_fen
from models import book
from models.clawback import RecoverRequest, RecoveryResult
from models.db import session
from models.recovery_policy import BASIS_ZH, rules_for
from models.tables import AwardLine, Bar, ClaimRow, LedgerEntry, RecoveryOrder


def order_key(application_id: str, requested: Optional[Decimal], basis: str, reason: str) -> str:
    text = "\x1f".join((application_id, "all" if requested is None else f"{requested:.2f}", basis, reason.strip()))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:                       # 29 February
        return day.replace(year=day.year + years, day=28)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def paid_by_payment(s: Session, application_id: str) -> list[tuple[LedgerEntry, Decimal]]:
    """Each payment of the application with what it still holds: its amount plus the entries that
    settle it (recoveries, amendments' top-ups and corrections)."""
    rows = list(s.exec(select(LedgerEntry).where(LedgerEntry.application_id == application_id)
                       .order_by(LedgerEntry.year, LedgerEntry.seq, LedgerEntry.id)))
    settled: dict[int, Decimal] = {}
    for r in rows:
        if r.kind != "payment" and r.ref_id is not None:
            settled[r.ref_id] = settled.get(r.ref_id, ZERO) + r.amount
    return [(r, r.amount + settled.get(r.id, ZERO)) for r in rows if r.kind == "payment"]


def enterprise_of(application_id: str) -> Optional[str]:
    with session() as s:
        row = s.exec(select(LedgerEntry.enterprise_code).where(LedgerEntry.application_id == application_id)).first()
        if row:
            return row
        line = s.exec(select(AwardLine.enterprise_code).where(AwardLine.application_id == application_id)).first()
        if line:
            return line
        claim = s.get(ClaimRow, application_id)
    if claim is not None:
        import json
        return json.loads(claim.claim_json).get("enterprise_code")
    return None


def recover(req: RecoverRequest, enterprise_code: str) -> RecoveryResult:
    """Carry out a recovery order (see the module's docstring). A refusal writes nothing."""
    o = req.order
    key = order_key(req.application_id, o.amount, o.basis, o.reason)
    day = date.fromisoformat(req.day)
    with book.locked(enterprise_code) as s:
        found = s.exec(select(RecoveryOrder).where(RecoveryOrder.order_key == key)).first()
        if found is not None:
            return _result(s, found, duplicate=found.source != req.source)
        payments = paid_by_payment(s, req.application_id)
        holding = sum((left for _, left in payments), ZERO)
        earlier = list(s.exec(select(RecoveryOrder).where(RecoveryOrder.application_id == req.application_id)))
        if holding <= 0:
            if earlier:
                done = "; ".join(f"order #{e.id} of {e.ordered_on} recovered {e.amount}" for e in earlier)
                return RecoveryResult(refused=f"{req.application_id}: nothing left to recover — {done}")
            return RecoveryResult(refused=f"{req.application_id}: nothing has been paid, nothing to recover "
                                  "(withdraw or revoke an application that is not paid)")
        want = holding if o.all else o.amount
        if want > holding:
            return RecoveryResult(refused=f"amount: {want} is more than {req.application_id} holds "
                                  f"({holding} paid and not yet recovered)")
        clause_id = payments[0][0].clause_id
        rules = rules_for(clause_id, o.basis, day)
        now = _now()
        order = RecoveryOrder(order_key=key, source=req.source, application_id=req.application_id,
                              enterprise_code=enterprise_code, clause_id=clause_id, requested=o.amount,
                              amount=want, basis=o.basis, reason=o.reason, who=req.who, bureau=req.bureau,
                              releases_room=rules.release_room, room_rule=rules.release_rule[:1000],
                              ordered_on=day, ordered_at=now)
        s.add(order)
        s.flush()
        left = want
        for payment, holds in reversed(payments):           # the newest payment first
            take = min(holds, left)
            if take <= 0:
                continue
            s.add(LedgerEntry(application_id=req.application_id, clause_id=payment.clause_id,
                              enterprise_code=enterprise_code, year=payment.year, seq=payment.seq,
                              item_id=payment.item_id, amount=-take, due=None,
                              label=f"追回 order #{order.id}", paid_at=now, kind="recovery",
                              entry=f"clawback#{order.id}", ref_id=payment.id,
                              reason=f"{BASIS_ZH[o.basis]}: {o.reason}"[:1000]))
            if rules.release_room:
                _take_off_lines(s, req.application_id, payment.year, payment.seq, take,
                                f"recovered by order #{order.id}; {rules.release_rule}")
            left -= take
            if left <= 0:
                break
        if rules.bar_years > 0:
            s.add(Bar(enterprise_code=enterprise_code, from_day=day, until_day=add_years(day, rules.bar_years),
                      reason=f"追回 of {req.application_id} (order #{order.id}): "
                             f"{BASIS_ZH[o.basis]}: {o.reason}"[:1000],
                      basis=o.basis, rule=rules.bar_rule[:1000], application_id=req.application_id,
                      order_id=order.id, created_at=now))
        s.flush()
        return _result(s, order, duplicate=False)


def _take_off_lines(s: Session, application_id: str, year: int, seq: int, amount: Decimal, reason: str) -> None:
    """The policy gives recovered room back: the paid lines of the tranche lose the recovered
    amount (in proportion to their items); a line left at nothing is released."""
    lines = [ln for ln in s.exec(select(AwardLine).where(
        AwardLine.application_id == application_id, AwardLine.year == year, AwardLine.seq == seq,
        AwardLine.state == "paid").order_by(AwardLine.item_id))]
    total = sum((ln.amount for ln in lines), ZERO)
    given, now = ZERO, _now()
    for i, ln in enumerate(lines):
        cut = amount - given if i == len(lines) - 1 else to_fen(amount * ln.amount / total)
        cut = min(cut, ln.amount)
        given += cut
        ln.amount -= cut
        if ln.amount <= 0:
            ln.state, ln.released_at = "released", now
        ln.release_reason = reason[:500]
        s.add(ln)


def _result(s: Session, order: RecoveryOrder, *, duplicate: bool) -> RecoveryResult:
    entries = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == order.application_id,
                                               LedgerEntry.entry == f"clawback#{order.id}")
                     .order_by(LedgerEntry.year, LedgerEntry.seq)).all()
    bar = s.exec(select(Bar).where(Bar.order_id == order.id)).first()
    return RecoveryResult(
        duplicate=duplicate, order_id=order.id, amount=order.amount,
        entries=[{"year": e.year, "seq": e.seq, "amount": str(e.amount), "payment": e.ref_id} for e in entries],
        releases_room=order.releases_room, room_rule=order.room_rule,
        bar=bar_line(_bar_dict(bar)) if bar else None, bar_until=bar.until_day.isoformat() if bar else None,
        refused=(f"this recovery was already ordered: order #{order.id} of {order.ordered_on} by {order.who} "
                 f"recovered {order.amount}; nothing more recovered") if duplicate else None)


# ------------------------------------------------------------------------------ bars

def _bar_dict(b: Bar) -> dict:
    return {f: getattr(b, f) for f in Bar.model_fields}


def bar_line(b: dict) -> str:
    """One line naming the bar: who, until when, why, and the rule for its length."""
    return (f"{b['enterprise_code']} is barred from new applications and further tranches until "
            f"{b['until_day']} (from {b['from_day']}; {b['reason']}; period: {b['rule']})")


def active_bar(enterprise_code: str, day: date, s=None) -> Optional[dict]:
    """The bar in force on `day` (the one lasting longest), or None. A bar holds until its
    until_day; one recorded with a later from_day (another clock) holds as well. Read in the
    session `s` when given (a caller holding a transaction), else in one of its own."""
    if s is None:
        with session() as own:
            return active_bar(enterprise_code, day, own)
    b = s.exec(select(Bar).where(Bar.enterprise_code == enterprise_code, Bar.until_day > day)
               .order_by(Bar.until_day.desc(), Bar.id)).first()
    return _bar_dict(b) if b else None


def bars(enterprise_code: Optional[str] = None) -> list[dict]:
    with session() as s:
        q = select(Bar)
        if enterprise_code:
            q = q.where(Bar.enterprise_code == enterprise_code)
        return [_bar_dict(b) for b in s.exec(q.order_by(Bar.enterprise_code, Bar.from_day, Bar.id))]


def orders(application_id: Optional[str] = None) -> list[dict]:
    with session() as s:
        q = select(RecoveryOrder)
        if application_id:
            q = q.where(RecoveryOrder.application_id == application_id)
        return [{f: getattr(r, f) for f in RecoveryOrder.model_fields} for r in s.exec(q.order_by(RecoveryOrder.id))]


