"""Fallback registry storage for the CLI, used only while models/ (the backend's tables) is not
importable. Same database URL (DISBURSE_DB_URL, default sqlite:///var/disburse.db), tables
prefixed `cli_` so they never collide with the backend's. Delete once models/ has landed.
"""
from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path
from typing import Optional

from sqlmodel import Field, Session, SQLModel, create_engine, select

from cli.errors import BAD_INPUT, CliError


class CliReviewer(SQLModel, table=True):
    __tablename__ = "cli_reviewer"
    reviewer_id: str = Field(primary_key=True)
    bureau: str
    name: str = ""


class CliBlacklistEntry(SQLModel, table=True):
    __tablename__ = "cli_blacklist"
    credit_code: str = Field(primary_key=True)
    name: str = ""
    listed_on: Optional[date] = None
    reason: str = ""


class CliEnterprise(SQLModel, table=True):
    __tablename__ = "cli_enterprise"
    credit_code: str = Field(primary_key=True)
    name: str = ""
    region: str = ""
    qualifications: str = ""


def db_url() -> str:
    return os.environ.get("DISBURSE_DB_URL", "sqlite:///var/disburse.db")


_engines: dict[str, object] = {}


def engine():
    url = db_url()
    if url not in _engines:
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url)
        SQLModel.metadata.create_all(eng, tables=[CliReviewer.__table__, CliBlacklistEntry.__table__,
                                                  CliEnterprise.__table__])
        _engines[url] = eng
    return _engines[url]


def _read_csv(path: Path, required: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in required if c not in header]
            if missing:
                raise CliError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(header) or 'none'})",
                               BAD_INPUT)
            return [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except FileNotFoundError:
        raise CliError(f"{path}: no such file", BAD_INPUT) from None
    except UnicodeDecodeError:
        raise CliError(f"{path}: not UTF-8 text", BAD_INPUT) from None


def _code(path: Path, line: int, value: str) -> str:
    try:
        return credit_code_validate(value)
    except ValueError as e:
        raise CliError(f"{path}: line {line}: credit_code: {e}", BAD_INPUT) from None


def credit_code_validate(value: str) -> str:
    """calc.credit_code.validate, loaded from its file if the calc package cannot be imported."""
    try:
        from calc.credit_code import validate
    except Exception:  # noqa: BLE001 - calc/__init__ mid-change: load the module on its own
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "_disburse_credit_code", Path(__file__).resolve().parent.parent / "calc" / "credit_code.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        validate = mod.validate
    return validate(value)


def _date(path: Path, line: int, field: str, value: str) -> Optional[date]:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CliError(f"{path}: line {line}: {field}: not a date (YYYY-MM-DD): {value!r}", BAD_INPUT) from None


def _row(obj: SQLModel) -> dict:
    return {f: getattr(obj, f) for f in type(obj).model_fields}


def import_blacklist(path: Path) -> int:
    rows = _read_csv(path, ("credit_code",))
    entries = [CliBlacklistEntry(credit_code=_code(path, i, r["credit_code"]), name=r.get("name", ""),
                                 listed_on=_date(path, i, "listed_on", r.get("listed_on", "")),
                                 reason=r.get("reason", ""))
               for i, r in enumerate(rows, start=2)]
    with Session(engine()) as s:
        for e in entries:
            s.merge(e)
        s.commit()
    return len(entries)


def blacklist_rows() -> list[dict]:
    with Session(engine()) as s:
        return [_row(e) for e in s.exec(select(CliBlacklistEntry).order_by(CliBlacklistEntry.credit_code))]


def import_enterprises(path: Path) -> int:
    rows = _read_csv(path, ("credit_code", "name"))
    entries = [CliEnterprise(credit_code=_code(path, i, r["credit_code"]), name=r["name"],
                             region=r.get("region", ""), qualifications=r.get("qualifications", ""))
               for i, r in enumerate(rows, start=2)]
    with Session(engine()) as s:
        for e in entries:
            s.merge(e)
        s.commit()
    return len(entries)


def enterprise_rows() -> list[dict]:
    with Session(engine()) as s:
        return [_row(e) for e in s.exec(select(CliEnterprise).order_by(CliEnterprise.credit_code))]


def add_reviewer(reviewer_id: str, *, bureau: str, name: str = "") -> None:
    if not reviewer_id.strip():
        raise CliError("ID: a reviewer id must not be empty", BAD_INPUT)
    if not bureau.strip():
        raise CliError("--bureau: must not be empty", BAD_INPUT)
    with Session(engine()) as s:
        s.merge(CliReviewer(reviewer_id=reviewer_id.strip(), bureau=bureau.strip(), name=name.strip()))
        s.commit()


def import_reviewers(path: Path) -> int:
    rows = _read_csv(path, ("reviewer_id", "bureau"))
    for r in rows:
        add_reviewer(r["reviewer_id"], bureau=r["bureau"], name=r.get("name", ""))
    return len(rows)


def reviewer_rows() -> list[dict]:
    with Session(engine()) as s:
        return [_row(e) for e in s.exec(select(CliReviewer).order_by(CliReviewer.reviewer_id))]
