"""Registries the CLI manages: reviewers, credit blacklist, enterprises (CSV imports); ledger rows;
and the loaders the activities use (enterprise -> calc.Enterprise, prior awards, blacklist check)."""
from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Optional

from sqlmodel import select

from calc.credit_code import validate as validate_credit_code
from models.db import session
from models.tables import BlacklistEntry, EnterpriseRow, LedgerEntry, Reviewer


class RegistryError(ValueError):
    """Bad registry input (missing column, bad credit code, bad date...)."""


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise RegistryError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(header) or 'none'})")
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise RegistryError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise RegistryError(f"{path}: not UTF-8 text") from None


def _code(path, line: int, value: str) -> str:
    try:
        return validate_credit_code(value)
    except ValueError as e:
        raise RegistryError(f"{path}: line {line}: credit_code: {e}") from None


def _date(path, line: int, field: str, value: str) -> Optional[date]:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RegistryError(f"{path}: line {line}: {field}: not a date (YYYY-MM-DD): {value!r}") from None


def parse_qualifications(text: str) -> list[dict]:
    """'tech_enterprise:2021-01-01;high_tech:2023-06-01:2026-05-31' -> Qualification dicts."""
    out = []
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) not in (2, 3):
            raise RegistryError(f"qualification {part!r}: expected kind:from[:to]")
        q = {"kind": bits[0].strip(), "valid_from": date.fromisoformat(bits[1].strip())}
        if len(bits) == 3 and bits[2].strip():
            q["valid_to"] = date.fromisoformat(bits[2].strip())
        out.append(q)
    return out


def _row(obj) -> dict:
    return {f: getattr(obj, f) for f in type(obj).model_fields}


# ---------------------------------------------------------------------------------- blacklist

def import_blacklist_csv(path) -> int:
    rows = _read_csv(path, ("credit_code",))
    entries = [BlacklistEntry(credit_code=_code(path, i, r["credit_code"]), name=r.get("name", ""),
                              listed_on=_date(path, i, "listed_on", r.get("listed_on", "")),
                              reason=r.get("reason", ""))
               for i, r in enumerate(rows, start=2)]
    with session() as s:
        for e in entries:
            s.merge(e)
        s.commit()
    return len(entries)


def add_blacklist(credit_code: str, *, name: str = "", reason: str = "", listed_on: Optional[date] = None) -> None:
    with session() as s:
        s.merge(BlacklistEntry(credit_code=validate_credit_code(credit_code), name=name, reason=reason,
                               listed_on=listed_on))
        s.commit()


def blacklist_rows() -> list[dict]:
    with session() as s:
        return [_row(e) for e in s.exec(select(BlacklistEntry).order_by(BlacklistEntry.credit_code))]


def blacklist_entry(credit_code: str) -> Optional[dict]:
    with session() as s:
        e = s.get(BlacklistEntry, credit_code)
        return _row(e) if e else None


# ---------------------------------------------------------------------------------- enterprises

def import_enterprises_csv(path) -> int:
    rows = _read_csv(path, ("credit_code", "name"))
    entries = []
    for i, r in enumerate(rows, start=2):
        try:
            parse_qualifications(r.get("qualifications", ""))
        except (RegistryError, ValueError) as e:
            raise RegistryError(f"{path}: line {i}: qualifications: {e}") from None
        entries.append(EnterpriseRow(credit_code=_code(path, i, r["credit_code"]), name=r["name"],
                                     region=r.get("region", ""), qualifications=r.get("qualifications", "")))
    with session() as s:
        for e in entries:
            s.merge(e)
        s.commit()
    return len(entries)


def add_enterprise(credit_code: str, *, name: str = "", region: str = "", qualifications: str = "") -> None:
    parse_qualifications(qualifications)
    with session() as s:
        s.merge(EnterpriseRow(credit_code=validate_credit_code(credit_code), name=name, region=region,
                              qualifications=qualifications))
        s.commit()


def enterprise_rows() -> list[dict]:
    with session() as s:
        return [_row(e) for e in s.exec(select(EnterpriseRow).order_by(EnterpriseRow.credit_code))]


def enterprise(credit_code: str):
    """calc.Enterprise for a registered enterprise, or None."""
    from calc import Enterprise
    with session() as s:
        e = s.get(EnterpriseRow, credit_code)
        if e is None:
            return None
        return Enterprise(credit_code=e.credit_code, name=e.name, region=e.region or None,
                          qualifications=tuple(parse_qualifications(e.qualifications)))


# ---------------------------------------------------------------------------------- reviewers

def add_reviewer(reviewer_id: str, bureau: str, name: str = "") -> None:
    if not reviewer_id.strip():
        raise RegistryError("a reviewer id must not be empty")
    if not bureau.strip():
        raise RegistryError("bureau must not be empty")
    from models.clauses import known_bureaus
    if bureau.strip() not in known_bureaus():
        raise RegistryError(f"bureau {bureau.strip()!r} is not a responsible bureau of any clause; "
                            f"known: {'、'.join(sorted(known_bureaus()))}")
    with session() as s:
        s.merge(Reviewer(reviewer_id=reviewer_id.strip(), bureau=bureau.strip(), name=name))
        s.commit()


def import_reviewers_csv(path) -> int:
    rows = _read_csv(path, ("reviewer_id", "bureau"))
    for i, r in enumerate(rows, start=2):
        try:
            add_reviewer(r["reviewer_id"], r["bureau"], r.get("name", ""))
        except RegistryError as e:
            raise RegistryError(f"{path}: line {i}: {e}") from None
    return len(rows)


def list_reviewers() -> list[dict]:
    with session() as s:
        return [_row(r) for r in s.exec(select(Reviewer).order_by(Reviewer.reviewer_id))]


def reviewer_snapshot() -> dict[str, str]:
    """reviewer id -> qualified bureau (what a new workflow carries)."""
    return {r["reviewer_id"]: r["bureau"] for r in list_reviewers()}


# ---------------------------------------------------------------------------------- ledger

def ledger_rows(application_id: Optional[str] = None) -> list[dict]:
    with session() as s:
        q = select(LedgerEntry)
        if application_id:
            q = q.where(LedgerEntry.application_id == application_id)
        q = q.order_by(LedgerEntry.application_id, LedgerEntry.year, LedgerEntry.seq)
        return [_row(e) for e in s.exec(q)]


def prior_awards(enterprise_code: str, *, exclude: Optional[tuple[str, int]] = None) -> list[dict]:
    """Ledger totals per (clause, year) for an enterprise, as calc.PriorAward dicts; `exclude`
    (application id, year) leaves out the award being calculated (a re-run must not count itself)."""
    totals: dict[tuple[str, int, str], object] = {}
    with session() as s:
        for e in s.exec(select(LedgerEntry).where(LedgerEntry.enterprise_code == enterprise_code)):
            if exclude and (e.application_id, e.year) == exclude:
                continue
            key = (e.clause_id, e.year, e.item_id or "")
            totals[key] = totals.get(key, 0) + e.amount
    return [{"clause_id": c, "year": y, "amount": a, "item_id": i or None}
            for (c, y, i), a in sorted(totals.items())]
