"""Budget lines (预算指标): what finance has for a clause, or a group of clauses, in a support year,
and what the award book has drawn on it.

- A clause with no line for a year is **not budget-controlled** that year: its awards are
  committed as before. Once finance imports a line naming the clause, every award of that clause
  and year draws on it.
- **Drawn = the award book.** A line's committed and paid figures are the sums of the award lines
  (models/book.py) of its clauses and year, `committed` and `paid`; available = budget − both. So
  a payment moves an amount from committed to paid and a release (withdrawal, revocation,
  blacklisting, a cancelled tranche) gives it back, in the book's own transaction, with no counter
  to drift.
- **Checked under a lock.** `shortfall` runs inside the award book's commit, after the
  calculation and before the award lines are written, holding the line's row: `SELECT ... FOR
  UPDATE` on PostgreSQL (lines are shared across enterprises, whose book locks do not serialize
  each other), and SQLite's single writer lock (the book's `BEGIN IMMEDIATE`). Lock order is
  always enterprise, then budget line; a top-up takes the line alone.
- The award of support year Y draws on the line of year Y, whichever years its tranches fall due
  in; the report's forecast shows the years the unpaid tranches fall due.
- Every change (import, top-up) is a `budget_change` row: who, when, before, after, the document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Optional

from sqlalchemy import func
from sqlmodel import Session, select

from calc.money import ZERO
from models.db import engine
from models.registry import Column, RegistryError
from models.tables import AwardLine, BudgetChange, BudgetClause, BudgetLine

MAX_ROWS = 5_000
MAX_AMOUNT = Decimal("1000000000000")          # 1e12 yuan: far above any municipal budget line
LINE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
AMOUNT = re.compile(r"^[0-9]{1,13}(\.[0-9]{1,2})?$")
COLUMNS = (
    Column("line_id", 64, required=True, nonempty=True),
    Column("name", 200, required=True, nonempty=True),
    Column("year", 10, required=True, nonempty=True),
    Column("clause_ids", 2000, required=True, nonempty=True),
    Column("amount", 20, required=True, nonempty=True),
    Column("document", 200),
)
HEADER = tuple(c.name for c in COLUMNS)


class BudgetError(ValueError):
    """A budget request refused (one line: the field and the rule)."""


def _now() -> datetime:
    return datetime.now(timezone.utc)


def amount_of(text: str, field: str = "amount") -> Decimal:
    """Yuan as typed: a plain decimal, at most two places, no sign or exponent, above zero."""
    text = str(text).strip()
    if not AMOUNT.match(text):
        raise RegistryError("a plain number of yuan with at most two decimals, e.g. 5000000 or 5000000.50 "
                            "(no sign, no exponent, no thousands separator)", field=field)
    try:
        value = Decimal(text)
    except InvalidOperation:   # pragma: no cover - the pattern rules it out
        raise RegistryError("not a number", field=field) from None
    if value <= 0:
        raise RegistryError("must be above zero", field=field)
    if value > MAX_AMOUNT:
        raise RegistryError(f"more than {MAX_AMOUNT:,} yuan", field=field)
    return value.quantize(Decimal("0.01"))


# ------------------------------------------------------------------------------------ the draw

@dataclass(frozen=True)
class Shortfall:
    line_id: str
    name: str
    year: int
    budget: Decimal
    needed: Decimal
    available: Decimal

    def reason(self) -> str:
        return (f"budget line {self.line_id} ({self.name}, {self.year}) cannot cover {self.needed}: "
                f"{self.available} available of {self.budget}")


def _line_of(s: Session, clause_id: str, year: int, *, lock: bool) -> Optional[BudgetLine]:
    link = s.get(BudgetClause, (clause_id, year))
    if link is None:
        return None
    q = select(BudgetLine).where(BudgetLine.line_id == link.line_id).execution_options(populate_existing=True)
    if lock and s.get_bind().dialect.name != "sqlite":
        q = q.with_for_update()
    return s.exec(q).first()


def _clauses(s: Session, line: BudgetLine) -> list[str]:
    return sorted(s.exec(select(BudgetClause.clause_id).where(BudgetClause.line_id == line.line_id)))


def drawn(s: Session, line: BudgetLine) -> tuple[Decimal, Decimal]:
    """(committed, paid) on the line: the award book's lines of its clauses and year."""
    q = (select(AwardLine.state, func.sum(AwardLine.amount))
         .where(AwardLine.clause_id.in_(_clauses(s, line)), AwardLine.year == line.year,
                AwardLine.state.in_(("committed", "paid")))
         .group_by(AwardLine.state))
    got = {state: Decimal(total) for state, total in s.exec(q)}
    return (got.get("committed", ZERO).quantize(Decimal("0.01")), got.get("paid", ZERO).quantize(Decimal("0.01")))


def shortfall(s: Session, clause_id: str, year: int, amount: Decimal) -> Optional[Shortfall]:
    """Inside the award book's transaction: None if the award may be committed (no line for the
    clause and year, or the line covers it), else what is missing. Locks the line's row until the
    transaction ends, so two enterprises cannot both take the line's last room."""
    line = _line_of(s, clause_id, year, lock=True)
    if line is None:
        return None
    committed, paid = drawn(s, line)
    available = line.amount - committed - paid
    if amount <= available:
        return None
    return Shortfall(line.line_id, line.name, line.year, line.amount, amount, available)


# ------------------------------------------------------------------------------------ changes

def _write_session():
    """A session holding the database's write lock (SQLite: BEGIN IMMEDIATE) from its start."""
    eng = engine()
    s = Session(eng)
    if eng.dialect.name == "sqlite":
        s.connection().exec_driver_sql("BEGIN IMMEDIATE")
    return s


def top_up(line_id: str, amount: Decimal, *, who: str, document: str = "", reason: str = "") -> dict:
    """Add `amount` (yuan, above zero) to a line: one transaction holding the line's row, one
    budget_change row. Returns the line's figures after it."""
    if amount <= 0 or amount != amount.quantize(Decimal("0.01")) or amount > MAX_AMOUNT:
        raise BudgetError("--amount: a top-up is above zero, in yuan to the fen")
    with _write_session() as s:
        q = select(BudgetLine).where(BudgetLine.line_id == line_id)
        if s.get_bind().dialect.name != "sqlite":
            q = q.with_for_update()
        line = s.exec(q).first()
        if line is None:
            raise BudgetError(f"line {line_id!r}: no such budget line (`disburse budget` lists them)")
        now = _now()
        before = line.amount
        line.amount = before + amount
        line.updated_by, line.updated_at = who, now
        s.add(line)
        s.add(BudgetChange(line_id=line_id, kind="top_up", amount_before=before, amount_after=line.amount, document=document[:200],
                           reason=reason[:1000], source="cli", who=who, changed_at=now))
        s.commit()
    return next(r for r in report() if r["line_id"] == line_id)


@dataclass(frozen=True)
class _Row:
    line: int
    line_id: str
    name: str
    year: int
    clauses: tuple[str, ...]
    amount: Decimal
    document: str


def _parse(cells: dict[str, str], known: set[str]) -> _Row:
    line_id = cells["line_id"]
    if not LINE_ID.match(line_id):
        raise RegistryError("letters, digits and . _ - only, starting with a letter or digit, at most 64",
                            field="line_id")
    year_text = cells["year"]
    if not (year_text.isascii() and year_text.isdigit() and 2000 <= int(year_text) <= 2100):
        raise RegistryError("a year such as 2026 (2000 to 2100)", field="year")
    clauses = [c.strip() for c in cells["clause_ids"].split(";") if c.strip()]
    if not clauses:
        raise RegistryError("at least one clause id, several separated by ;", field="clause_ids")
    for c in clauses:
        if c not in known:
            raise RegistryError(f"{c!r} is not a payable clause (`disburse policies` lists them)", field="clause_ids")
    if len(set(clauses)) != len(clauses):
        raise RegistryError("a clause is named twice", field="clause_ids")
    return _Row(0, line_id, cells["name"], int(year_text), tuple(sorted(clauses)), amount_of(cells["amount"]),
                cells.get("document", ""))


def import_file(path, *, who: str, data: Optional[bytes] = None) -> int:
    """Import budget lines from a CSV or .xlsx file, all or nothing: every row is checked (and,
    for a line already there, checked against the database under its lock) before anything is
    written; a refused file raises models.sheets.SheetRefused with one problem per bad row.

    A new line_id creates a line. A line_id already imported keeps its year and clauses (changing
    them is refused: import a new line); its amount is set to the file's, which may not be less
    than what the line has committed and paid."""
    from calc.catalogue import catalogue
    from models import registry, sheets
    name = str(path)
    try:
        raw = sheets.read_bytes(path, registry.MAX_FILE_BYTES) if data is None else data
        rows, problems = sheets.read_table(raw, name, COLUMNS, max_rows=MAX_ROWS)
        if not rows and not problems:
            raise RegistryError("no rows: the file has a header and nothing else", path=name)
    except RegistryError as e:
        raise sheets.SheetRefused(name, [e]) from None
    known = set(catalogue().clauses)
    parsed: list[_Row] = []
    ids: dict[str, int] = {}
    pairs: dict[tuple[str, int], int] = {}
    for n, cells in rows:
        try:
            r = _parse(cells, known)
            if r.line_id in ids:
                raise RegistryError(f"also on line {ids[r.line_id]}: a file lists each line once", field="line_id")
            for c in r.clauses:
                if (c, r.year) in pairs:
                    raise RegistryError(f"{c} {r.year} is also on line {pairs[(c, r.year)]}: a clause has one "
                                        "budget line a year", field="clause_ids")
            ids[r.line_id] = n
            pairs.update({(c, r.year): n for c in r.clauses})
            parsed.append(_Row(n, r.line_id, r.name, r.year, r.clauses, r.amount, r.document))
        except RegistryError as e:
            problems.append(e.at(name, n))
    if problems:
        raise sheets.SheetRefused(name, problems)
    with _write_session() as s:
        problems = []
        now = _now()
        for r in sorted(parsed, key=lambda r: r.line_id):     # one lock order for every writer of lines
            try:
                _apply(s, r, who=who, now=now, source=Path(name).name)
            except RegistryError as e:
                problems.append(e.at(name, r.line))
        if problems:
            s.rollback()
            raise sheets.SheetRefused(name, problems)
        s.commit()
    return len(parsed)


def _apply(s: Session, r: _Row, *, who: str, now: datetime, source: str) -> None:
    q = select(BudgetLine).where(BudgetLine.line_id == r.line_id)
    if s.get_bind().dialect.name != "sqlite":
        q = q.with_for_update()
    line = s.exec(q).first()
    for c in r.clauses:
        link = s.get(BudgetClause, (c, r.year))
        if link is not None and link.line_id != r.line_id:
            raise RegistryError(f"{c} {r.year} is already paid from budget line {link.line_id}", field="clause_ids")
    if line is None:
        s.add(BudgetLine(line_id=r.line_id, name=r.name, year=r.year, amount=r.amount, document=r.document,
                         imported_by=who, imported_at=now, updated_by=who, updated_at=now))
        for c in r.clauses:
            s.add(BudgetClause(clause_id=c, year=r.year, line_id=r.line_id))
        s.add(BudgetChange(line_id=r.line_id, kind="created", amount_before=ZERO, amount_after=r.amount, document=r.document,
                           source=source, who=who, changed_at=now))
        s.flush()
        return
    if line.year != r.year:
        raise RegistryError(f"line {r.line_id} is for {line.year}: a line's year is fixed (import a new line)",
                            field="year")
    if tuple(_clauses(s, line)) != r.clauses:
        raise RegistryError(f"line {r.line_id} pays {';'.join(_clauses(s, line))}: a line's clauses are fixed "
                            "(import a new line)", field="clause_ids")
    committed, paid = drawn(s, line)
    if r.amount < committed + paid:
        raise RegistryError(f"{r.amount} is less than the line has drawn ({committed} committed, {paid} paid)",
                            field="amount")
    if (line.amount, line.name, line.document) == (r.amount, r.name, r.document):
        return                                       # the same file again: nothing changes
    before = line.amount
    line.amount, line.name, line.document = r.amount, r.name, r.document
    line.updated_by, line.updated_at = who, now
    s.add(line)
    s.add(BudgetChange(line_id=r.line_id, kind="set", amount_before=before, amount_after=r.amount, document=r.document,
                       source=source, who=who, changed_at=now))
    s.flush()


# ------------------------------------------------------------------------------------ the report

def report(year: Optional[int] = None) -> list[dict]:
    """Per line: budget, committed, paid, available, and the forecast — the committed (unpaid)
    tranches by the year they fall due — with the line's clauses and document."""
    with Session(engine()) as s:
        q = select(BudgetLine).order_by(BudgetLine.year, BudgetLine.line_id)
        if year is not None:
            q = q.where(BudgetLine.year == year)
        out = []
        for line in s.exec(q):
            clauses = _clauses(s, line)
            committed, paid = drawn(s, line)
            forecast: dict[int, Decimal] = {}
            for due, amount in s.exec(select(AwardLine.due, AwardLine.amount).where(
                    AwardLine.clause_id.in_(clauses), AwardLine.year == line.year, AwardLine.state == "committed")):
                forecast[due.year] = forecast.get(due.year, ZERO) + amount
            out.append({"line_id": line.line_id, "name": line.name, "year": line.year, "clause_ids": clauses,
                        "budget": line.amount, "committed": committed, "paid": paid,
                        "available": line.amount - committed - paid,
                        "forecast": {y: forecast[y] for y in sorted(forecast)},
                        "document": line.document, "imported_by": line.imported_by,
                        "imported_at": line.imported_at, "updated_by": line.updated_by,
                        "updated_at": line.updated_at})
        return out


def line_of(clause_id: str, year: int) -> Optional[str]:
    """The id of the line paying the clause in the year, if any."""
    with Session(engine()) as s:
        link = s.get(BudgetClause, (clause_id, year))
        return link.line_id if link else None


def changes(line_id: Optional[str] = None) -> list[dict]:
    with Session(engine()) as s:
        q = select(BudgetChange).order_by(BudgetChange.changed_at, BudgetChange.id)
        if line_id:
            q = q.where(BudgetChange.line_id == line_id)
        return [{f: getattr(c, f) for f in BudgetChange.model_fields} for c in s.exec(q)]


def export_xlsx(path, year: Optional[int] = None) -> Path:
    """The report as a workbook: sheet 预算指标 in the import's columns (the file imports back as it
    is: the import reads the first sheet), 执行情况 with budget / committed / paid / available per
    line, and 预计拨付 with the forecast by the year the tranches fall due."""
    from models import sheets
    rows = report(year)
    lines = [(r["line_id"], r["name"], r["year"], ";".join(r["clause_ids"]), r["budget"], r["document"])
             for r in rows]
    figures = [(r["line_id"], r["year"], r["budget"], r["committed"], r["paid"], r["available"]) for r in rows]
    forecast = [(r["line_id"], r["year"], due_year, amount) for r in rows for due_year, amount in r["forecast"].items()]
    return sheets.write_xlsx(path, [
        ("预算指标", HEADER, lines),
        ("执行情况", ("line_id", "year", "budget", "committed", "paid", "available"), figures),
        ("预计拨付", ("line_id", "year", "due_year", "amount"), forecast),
    ])
