"""Facts the city already holds (政府已掌握的数据) per enterprise, clause and support year: what a
免申即享 (apply-free) application is started with, since no enterprise fills in a form.

Every clause of the catalogue computes on facts an enterprise's registry row does not carry (a
premium, loans, an event date...): the registry says who the enterprise is, where it is registered
and which qualifications it holds when; these rows say what the bureau knows of its claim. They
come from the data exchanges the city already has (tax, insurance, the banks' loan reports),
exported as a spreadsheet and imported here:

    disburse facts import FILE       CSV (UTF-8) or .xlsx: credit_code, clause_id, year, facts

`facts` is one JSON object in the cell, exactly what `facts` holds in examples/*.json; or (also)
a column per fact, named as in calc.Facts (premium, policy_no, period_start, event_date, ...: every
fact but the lists loans, investments and stages, which only the JSON holds). A row is
checked as a claim is: a registered enterprise, a known clause, a year inside the clause's policy
window, facts valid as calc.Facts and holding what the clause needs. All rows or none (one
RegistryError listing every bad row with line and field); importing a row again replaces it.
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from sqlmodel import select

from cli.safe_text import shown
from models import sheets
from models.db import session
from models.sheets import Column, RegistryError
from models.tables import EnterpriseRow, HeldFact

MAX_FILE_BYTES = 16 * 1024 * 1024
MAX_ROWS = 50_000
FACTS_MAX = 32_767                      # characters of the facts cell (Excel's own limit for a cell)
STRUCTURED = ("loans", "investments", "stages")     # lists and mappings: only in the facts JSON


def _fact_columns() -> tuple[Column, ...]:
    from calc import Facts
    return tuple(Column(name, 200) for name in Facts.model_fields if name not in STRUCTURED)


FACT_COLUMNS = _fact_columns()
COLUMNS = (
    Column("credit_code", 64, required=True, nonempty=True),
    Column("clause_id", 80, required=True, nonempty=True),
    Column("year", 10, required=True, nonempty=True),
    Column("facts", FACTS_MAX),
) + FACT_COLUMNS


def clause_window(clause_id: str, field: str = "clause_id"):
    """(document, clause) of a known clause, or RegistryError naming `field`."""
    from calc import catalogue
    entry = catalogue().clauses.get(clause_id)
    if entry is None:
        raise RegistryError(f"unknown clause '{shown(clause_id)}'; `disburse policies` lists the clause ids",
                            field=field)
    return entry


def support_year(doc, text: str, field: str = "year") -> int:
    """A support year inside the document's policy window (a whole number, ASCII digits)."""
    if not (text.isascii() and text.isdigit() and len(text) == 4):
        raise RegistryError(f"'{shown(text)}' is not a year (e.g. 2026)", field=field)
    year = int(text)
    w = doc.window
    if not w.start.year <= year <= w.end.year:
        raise RegistryError(f"{year} is outside {doc.id}'s policy window {w.start}..{w.end}", field=field)
    return year


def canonical_facts(clause_id: str, data: Any) -> str:
    """The facts of a claim under `clause_id` validated (calc.Facts, and what the clause needs) and
    written as canonical JSON; RegistryError naming the fact otherwise."""
    from pydantic import ValidationError

    from calc import Facts, InputError
    from calc.engine import check_claim
    from cli.errors import _loc
    try:
        facts = Facts.model_validate(data)
        check_claim(clause_id, facts)
    except ValidationError as e:
        errors = e.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise RegistryError(first.get("msg", "invalid").removeprefix("Value error, ") + more,
                            field="facts." + _loc(tuple(first.get("loc", ())))) from None
    except InputError as e:
        raise RegistryError(e.rule, field=e.field) from None
    return json.dumps(facts.model_dump(mode="json", exclude_none=True), ensure_ascii=False, sort_keys=True)


def _held(cells: dict[str, str], registered: set[str], source: str, who: str, now: datetime) -> HeldFact:
    from cli.batch import _facts
    from models.registry import _code
    code = _code(cells["credit_code"])
    if code not in registered:
        raise RegistryError(f"{code} is not in the enterprise registry: import the enterprise first "
                            "(`disburse enterprises import`)", field="credit_code")
    doc, clause = clause_window(cells["clause_id"])
    year = support_year(doc, cells["year"])
    data = _facts(cells["facts"]) if cells.get("facts") else {}
    for col in FACT_COLUMNS:
        value = cells.get(col.name, "")
        if value:
            if col.name in data:
                raise RegistryError("given twice: in the facts JSON and as a column", field=col.name)
            data[col.name] = value
    facts = canonical_facts(clause.id, data)
    return HeldFact(credit_code=code, clause_id=clause.id, year=year, facts=facts, source=source,
                    imported_by=who, imported_at=now)


def read_facts(path, *, imported_by: str = "") -> list[HeldFact]:
    """Every row of a facts file, checked; SheetRefused (every bad row in `.problems`) otherwise."""
    path = Path(path)
    rows, problems = sheets.read_table(sheets.read_bytes(path, MAX_FILE_BYTES), path, COLUMNS, max_rows=MAX_ROWS)
    with session() as s:
        registered = set(s.exec(select(EnterpriseRow.credit_code)))
    now = datetime.now(timezone.utc)
    source = shown(path.name, 200)
    return sheets.checked_rows(
        path, rows, problems, lambda line, cells: _held(cells, registered, source, imported_by, now),
        lambda row: (row.credit_code, row.clause_id, row.year),
        lambda row, first: RegistryError(f"same enterprise, clause and year as line {first}: a file lists each "
                                         "once", field="credit_code"))


def import_facts(path, *, imported_by: str = "") -> int:
    """Import (or replace) held facts from a CSV or .xlsx file: all rows in one transaction, or none."""
    rows = read_facts(path, imported_by=imported_by)
    with session() as s:
        for r in rows:
            s.merge(r)
        s.commit()
    return len(rows)


def facts_for(clause_id: str, year: int) -> dict[str, dict]:
    """credit code -> the facts held for the clause and year (a JSON object)."""
    with session() as s:
        q = select(HeldFact).where(HeldFact.clause_id == clause_id, HeldFact.year == year)
        return {r.credit_code: json.loads(r.facts) for r in s.exec(q)}


def held_rows(clause_id: Optional[str] = None, year: Optional[int] = None) -> list[dict]:
    with session() as s:
        q = select(HeldFact)
        if clause_id:
            q = q.where(HeldFact.clause_id == clause_id)
        if year:
            q = q.where(HeldFact.year == year)
        q = q.order_by(HeldFact.clause_id, HeldFact.year, HeldFact.credit_code)
        return [{f: getattr(r, f) for f in HeldFact.model_fields} for r in s.exec(q)]
