"""The award book: the single source of truth for caps and items.

An award counts against every cap and every 不重复 item from the moment it is calculated
(`commit`), not when it is paid; `pay` turns one committed tranche into a ledger payment; `release`
gives the room back when the application is withdrawn, revoked, blacklisted or a tranche is
cancelled. Every read-and-write of one enterprise's book happens in one database transaction that
holds that enterprise's lock row (`enterprise_book`):

- PostgreSQL: `SELECT ... FOR UPDATE` on the row, so only that enterprise is serialized;
- SQLite: `BEGIN IMMEDIATE`, which takes the database's write lock at the start of the
  transaction (SQLite has one writer at a time anyway), so the read of the book and the write of
  the commitment cannot interleave with another writer.

So two applications of one enterprise, calculated at the same instant by two workers, cannot both
take the same room under a cap or the same item: the second one's calculation sees the first one's
commitment. Each operation is idempotent (a retried activity finds its own earlier write).

A commitment also draws on the budget line of its clause and year (models/budget.py), checked in
the same transaction under the line's own lock (lines are shared by enterprises); payments and
releases move the line's figures with the book, which is where they are summed from.
"""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Callable, Iterator, Optional

from sqlalchemy import func
from sqlmodel import Session, select

from calc.model import CalcResult, Refusal
from calc.money import ZERO, to_fen
from models import budget as budgets
from models.db import engine
from models.tables import Award, AwardLine, EnterpriseBook, LedgerEntry

COUNTING = ("committed", "paid")     # line states that count against caps and items


class BookError(RuntimeError):
    """A request the book refuses (no commitment to pay, an award released...). Not retryable."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def locked(enterprise_code: str) -> Iterator[Session]:
    """A session holding the enterprise's book lock until it commits (or rolls back)."""
    eng = engine()
    with Session(eng) as s:
        if eng.dialect.name == "sqlite":
            s.connection().exec_driver_sql("BEGIN IMMEDIATE")
        row = s.get(EnterpriseBook, enterprise_code, with_for_update=eng.dialect.name != "sqlite")
        if row is None:
            _insert_lock_row(s, enterprise_code)
            row = s.get(EnterpriseBook, enterprise_code, with_for_update=eng.dialect.name != "sqlite")
        try:
            yield s
            row.version += 1
            s.add(row)
            s.commit()
        except BaseException:
            s.rollback()
            raise


def _insert_lock_row(s: Session, enterprise_code: str) -> None:
    dialect = s.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    s.execute(insert(EnterpriseBook).values(enterprise_code=enterprise_code, version=0)
              .on_conflict_do_nothing(index_elements=["enterprise_code"]))
    s.flush()


def prior_awards(s: Session, enterprise_code: str, *, exclude: Optional[tuple[str, int]] = None) -> list[dict]:
    """Committed and paid awards of the enterprise per (clause, year, item), as calc.PriorAward
    dicts; `exclude` (application id, year) leaves out the award being calculated."""
    q = (select(AwardLine.clause_id, AwardLine.year, AwardLine.item_id, AwardLine.application_id,
                func.sum(AwardLine.amount))
         .where(AwardLine.enterprise_code == enterprise_code, AwardLine.state.in_(COUNTING))
         .group_by(AwardLine.clause_id, AwardLine.year, AwardLine.item_id, AwardLine.application_id))
    totals: dict[tuple[str, int, str], Decimal] = {}
    for clause_id, year, item_id, app, amount in s.exec(q):   # SUM keeps the column's type: yuan
        if exclude and (app, year) == exclude:
            continue
        totals[(clause_id, year, item_id)] = totals.get((clause_id, year, item_id), ZERO) + amount
    return [{"clause_id": c, "year": y, "amount": a.quantize(Decimal("0.01")), "item_id": i or None}
            for (c, y, i), a in sorted(totals.items())]


def commit(application_id: str, enterprise_code: str, year: int,
           calculate: Callable[[list[dict]], CalcResult], *, budget: bool = False) -> CalcResult:
    """The binding calculation of (application, year) under the enterprise's lock: `calculate`
    receives the book's prior awards and returns the result; an award is written as committed lines,
    one per tranche and item. A second call for the same (application, year) returns the first
    result without calculating again.

    With `budget`, the award draws on the budget line of its clause and year (models/budget.py),
    checked in this transaction under the line's lock: when the line cannot cover it, nothing is
    written and the result comes back with the refusal `budget_exhausted` (the amount it needs
    kept), to be tried again once finance adds budget. Without a line the clause is not
    budget-controlled. (Without `budget` — applications that started before budgets — the award
    is committed and counts on its line all the same.)"""
    with locked(enterprise_code) as s:
        found = s.exec(select(Award).where(Award.application_id == application_id, Award.year == year)).first()
        if found is not None:
            return CalcResult.model_validate_json(found.result_json)
        result = calculate(prior_awards(s, enterprise_code, exclude=(application_id, year)))
        if budget and result.refusal is None and result.amount > 0:
            short = budgets.shortfall(s, result.clause_id, year, result.amount)
            if short is not None:
                return result.model_copy(update={"refusal": Refusal(
                    code="budget_exhausted", reason=short.reason(), rule=f"budget:{short.line_id}")})
        if result.refusal is None and result.amount > 0:
            now = _now()
            s.add(Award(application_id=application_id, enterprise_code=enterprise_code, clause_id=result.clause_id,
                        year=year, amount=result.amount, result_json=result.model_dump_json(), committed_at=now))
            for line in lines_of(result):
                s.add(AwardLine(application_id=application_id, enterprise_code=enterprise_code,
                                clause_id=result.clause_id, year=year, committed_at=now, **line))
        return result


def lines_of(result: CalcResult) -> list[dict]:
    """One line per tranche and item: each tranche split over the items in proportion to the
    award's item shares (to the fen; the last item of a tranche takes the remainder)."""
    shares = result.items or {"": result.amount}
    total = sum(shares.values(), ZERO)
    out = []
    for t in result.schedule:
        given = ZERO
        keys = list(shares)
        for i, key in enumerate(keys):
            amount = t.amount - given if i == len(keys) - 1 else to_fen(t.amount * shares[key] / total)
            given += amount
            value = result.item_values.get(key, shares[key]) if key else result.amount
            out.append({"seq": t.seq, "item_id": key, "amount": amount, "item_value": to_fen(value),
                        "due": t.due, "label": t.label})
    return out


def pay(application_id: str, year: int, seq: int,
        check: Optional[Callable[[Session, str], Optional[str]]] = None) -> tuple[Decimal, bool, str]:
    """Pay one committed tranche: its lines become `paid` and the ledger gets one row, in one
    transaction. The amount is the book's, never the caller's. Returns (amount, first write?,
    state): state `paid`, or `released` when the tranche was released before it could be paid.

    `check(session, enterprise_code)`, when given, runs under the enterprise's lock, in the lock's
    session (a second connection, taken while holding the lock, could wait for a pool the lock's
    waiters hold), once the tranche is known to be unpaid; a reason it returns stops the payment
    and releases the tranche in the same transaction (state `released`), so that no other attempt
    of the same payment can pay it later."""
    with Session(engine()) as s:
        line = s.exec(select(AwardLine).where(AwardLine.application_id == application_id, AwardLine.year == year,
                                              AwardLine.seq == seq)).first()
    if line is None:
        raise BookError(f"no commitment in the award book for {application_id} {year} tranche {seq}")
    with locked(line.enterprise_code) as s:
        lines = list(s.exec(select(AwardLine).where(AwardLine.application_id == application_id,
                                                    AwardLine.year == year, AwardLine.seq == seq)))
        amount = sum((ln.amount for ln in lines), ZERO)
        states = {ln.state for ln in lines}
        if states == {"paid"}:
            return amount, False, "paid"
        if "released" in states:
            return amount, False, "released"
        now = _now()
        refused = check(s, lines[0].enterprise_code) if check is not None else None
        if refused is not None:
            for ln in lines:
                ln.state, ln.released_at, ln.release_reason = "released", now, refused[:500]
                s.add(ln)
            return amount, True, "released"
        items = sorted({ln.item_id for ln in lines if ln.item_id})
        s.add(LedgerEntry(application_id=application_id, clause_id=lines[0].clause_id,
                          enterprise_code=lines[0].enterprise_code, year=year, seq=seq, amount=amount,
                          item_id="+".join(items) or None, due=lines[0].due, label=lines[0].label, paid_at=now))
        for ln in lines:
            ln.state, ln.paid_at = "paid", now
            s.add(ln)
        return amount, True, "paid"


def release_reason(application_id: str, year: int, seq: int) -> Optional[str]:
    """Why a released tranche was released (None: not released, or no reason kept)."""
    with Session(engine()) as s:
        line = s.exec(select(AwardLine).where(AwardLine.application_id == application_id, AwardLine.year == year,
                                              AwardLine.seq == seq, AwardLine.state == "released")).first()
    return line.release_reason if line is not None else None


def release(application_id: str, reason: str, *, year: Optional[int] = None) -> Decimal:
    """Release every committed (unpaid) line of the application (of one year if given): the room
    under caps and the items are free again. Paid lines stay paid. Returns the amount released."""
    with Session(engine()) as s:
        line = s.exec(select(AwardLine).where(AwardLine.application_id == application_id)).first()
    if line is None:
        return ZERO
    with locked(line.enterprise_code) as s:
        q = select(AwardLine).where(AwardLine.application_id == application_id, AwardLine.state == "committed")
        if year is not None:
            q = q.where(AwardLine.year == year)
        released, now = ZERO, _now()
        for ln in s.exec(q):
            ln.state, ln.released_at, ln.release_reason = "released", now, reason[:500]
            released += ln.amount
            s.add(ln)
        return released


def lines(application_id: Optional[str] = None, enterprise_code: Optional[str] = None) -> list[dict]:
    with Session(engine()) as s:
        q = select(AwardLine)
        if application_id:
            q = q.where(AwardLine.application_id == application_id)
        if enterprise_code:
            q = q.where(AwardLine.enterprise_code == enterprise_code)
        q = q.order_by(AwardLine.application_id, AwardLine.year, AwardLine.seq, AwardLine.item_id)
        return [{f: getattr(r, f) for f in AwardLine.model_fields} for r in s.exec(q)]


def record_legacy_payment(s: Session, entry: LedgerEntry) -> None:
    """A payment written by a workflow of the first version (which had no award book): booked as
    a paid line, so that caps and 不重复 count it."""
    exists = s.exec(select(AwardLine).where(AwardLine.application_id == entry.application_id,
                                            AwardLine.year == entry.year, AwardLine.seq == entry.seq)).first()
    if exists is not None:
        return
    item = entry.item_id or ""
    if item.startswith("loan:") and "@" not in item and "+" not in item:
        item = f"{item}@{entry.year}"
    s.add(AwardLine(application_id=entry.application_id, enterprise_code=entry.enterprise_code,
                    clause_id=entry.clause_id, year=entry.year, seq=entry.seq, item_id=item, amount=entry.amount,
                    item_value=entry.amount, due=entry.due or date.today(), label=entry.label, state="paid",
                    committed_at=entry.paid_at, paid_at=entry.paid_at))
