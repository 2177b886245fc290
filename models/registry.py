"""Registries the CLI manages: reviewers, credit blacklist, enterprises (imports from CSV or .xlsx,
read by models/sheets.py); ledger rows;
and the loaders the activities use (enterprise -> calc.Enterprise, prior awards, blacklist check)."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Optional, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select

from calc.credit_code import region_of, validate as validate_credit_code
from calc.model import QualificationKind
from cli.safe_text import shown
from models import sheets
from models.db import session
from models.sheets import Column, RegistryError
from models.sheets import cell as _cell, decode as _decode, header_of as _header, record_of as _record  # noqa: F401
from models.tables import BlacklistEntry, EnterpriseRow, LedgerEntry, Reviewer

# Limits on what an import reads (module attributes, so a test can lower them).
MAX_FILE_BYTES = 16 * 1024 * 1024        # a registry file larger than this is refused: split it
MAX_ROWS = 50_000                        # data rows per file
ID_MAX, NAME_MAX, BUREAU_MAX, TEXT_MAX = 64, 200, 100, 1000
QUALIFICATIONS_MAX = 2000

BLACKLIST_AHEAD = timedelta(days=1)      # a blacklist entry may be dated at most this far ahead of today

try:
    CHINA = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:            # no tz database on this machine: China has kept UTC+8 since 1991
    CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

UTF8_EXPECTED = sheets.UTF8_EXPECTED


def _read_bytes(path: Path) -> bytes:
    return sheets.read_bytes(path, MAX_FILE_BYTES)


def _read_csv(path, columns: tuple[Column, ...]) -> tuple[list[tuple[int, dict[str, str]]], list[RegistryError]]:
    """The rows of a registry file — CSV (UTF-8) or .xlsx (its first sheet), decided by its bytes
    (models/sheets.py) — as (line, {column: cell}), and the problems of the rows left out.
    File-level problems (not readable, not UTF-8, bad header, malformed CSV, too big) raise at
    once. `line` is the file line a row starts on, or the sheet's row (the header is line 1)."""
    path = Path(path)
    return sheets.read_table(_read_bytes(path), path, columns, max_rows=MAX_ROWS)


def parse_csv(path, text: str, columns: tuple[Column, ...], *, max_rows: Optional[int] = None
              ) -> tuple[list[tuple[int, dict[str, str]]], list[RegistryError]]:
    """sheets.parse_csv with the registry's row limit by default."""
    return sheets.parse_csv(path, text, columns, max_rows=MAX_ROWS if max_rows is None else max_rows)


def _check(path, rows, problems, build, key_field: str, what: str) -> list:
    """Every row through `build` (which raises RegistryError naming the field), and each key
    (`key_field` of what build made) at most once in the file; all problems are collected and
    raised together (SheetRefused: the first, saying how many more there are). Returns what build made."""
    def twice(obj, first: int) -> RegistryError:
        return RegistryError(f"'{shown(getattr(obj, key_field))}' is also on line {first}: a file lists each "
                             f"{what} once", field=key_field)
    return sheets.checked_rows(path, rows, problems, lambda line, cells: build(cells),
                               lambda obj: getattr(obj, key_field), twice)


def _write(objs: list) -> None:
    """All rows in one transaction: either every row is in, or none is."""
    with session() as s:
        for o in objs:
            s.merge(o)
        s.commit()


def _code(value: str) -> str:
    if not value.isascii():
        raise RegistryError("unified social credit code has non-ASCII characters", field="credit_code")
    try:
        return validate_credit_code(value)
    except ValueError as e:
        raise RegistryError(str(e), field="credit_code") from None


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_REGION = re.compile(r"[0-9]{6}")
QUALIFICATION_KINDS = get_args(QualificationKind)


def _date(field: str, value: str) -> Optional[date]:
    """YYYY-MM-DD exactly (not the other ISO 8601 forms date.fromisoformat takes), or None if empty."""
    if not value:
        return None
    try:
        if not _ISO_DATE.fullmatch(value):
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise RegistryError(f"not a date (YYYY-MM-DD): '{shown(value)}'", field=field) from None


def parse_qualifications(text: str) -> list[dict]:
    """'tech_enterprise:2021-01-01;high_tech:2023-06-01:2026-05-31' -> Qualification dicts
    (kind one of calc.model.QualificationKind, dates YYYY-MM-DD, valid_to not before valid_from)."""
    out = []
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        bits = [b.strip() for b in part.split(":")]
        if len(bits) not in (2, 3):
            raise RegistryError(f"'{shown(part)}': expected kind:from[:to], e.g. high_tech:2023-06-01:2026-05-31",
                                field="qualifications")
        kind = bits[0]
        if kind not in QUALIFICATION_KINDS:
            raise RegistryError(f"unknown qualification kind '{shown(kind)}' (known: {', '.join(QUALIFICATION_KINDS)})",
                                field="qualifications")
        q = {"kind": kind, "valid_from": _date("qualifications", bits[1])}
        if q["valid_from"] is None:
            raise RegistryError(f"'{shown(part)}': the date it is valid from is missing", field="qualifications")
        if len(bits) == 3 and bits[2]:
            q["valid_to"] = _date("qualifications", bits[2])
            if q["valid_to"] < q["valid_from"]:
                raise RegistryError(f"{kind}: valid to {q['valid_to']} is before valid from {q['valid_from']}",
                                    field="qualifications")
        out.append(q)
    return out


def _canonical_qualifications(quals: list[dict]) -> str:
    return ";".join(f"{q['kind']}:{q['valid_from']}" + (f":{q['valid_to']}" if q.get("valid_to") else "")
                    for q in quals)


def _row(obj) -> dict:
    return {f: getattr(obj, f) for f in type(obj).model_fields}


# ---------------------------------------------------------------------------------- blacklist

def china_day(moment) -> date:
    """The calendar day in China (Asia/Shanghai) of an aware datetime; a date is taken as it is. A
    naive datetime is refused: its zone is unknown."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise TypeError("a naive datetime has no zone: pass a date or an aware datetime")
        return moment.astimezone(CHINA).date()
    if isinstance(moment, date):
        return moment
    raise TypeError(f"expected a date or an aware datetime, got {type(moment).__name__}")


def today_cn() -> date:
    """Today in China (Asia/Shanghai)."""
    return china_day(datetime.now(timezone.utc))


BLACKLIST_COLUMNS = (Column("credit_code", ID_MAX, required=True, nonempty=True), Column("name", NAME_MAX),
                     Column("listed_on", ID_MAX), Column("reason", TEXT_MAX))


def _listed_on(listed_on: Optional[date], today: date) -> Optional[date]:
    if listed_on is not None and listed_on > today + BLACKLIST_AHEAD:
        raise RegistryError(f"{listed_on} is in the future (today is {today} in China, Asia/Shanghai): an entry "
                            f"counts only from its listed_on date, and one dated more than {BLACKLIST_AHEAD.days} "
                            f"day ahead is refused", field="listed_on")
    return listed_on


def _blacklist_entry(cells: dict[str, str], today: date) -> BlacklistEntry:
    code = _code(cells["credit_code"])
    listed_on = _listed_on(_date("listed_on", cells.get("listed_on", "")), today)
    return BlacklistEntry(credit_code=code, name=cells.get("name", ""), listed_on=listed_on,
                          reason=cells.get("reason", ""))


def import_blacklist_csv(path, *, today: Optional[date] = None) -> int:
    """Import (or refresh) blacklist entries; `listed_on` more than a day after `today` (default:
    today in China) is refused."""
    today = today_cn() if today is None else china_day(today)
    rows, problems = _read_csv(path, BLACKLIST_COLUMNS)
    entries = _check(path, rows, problems, lambda cells: _blacklist_entry(cells, today), "credit_code", "enterprise")
    _write(entries)
    return len(entries)


def add_blacklist(credit_code: str, *, name: str = "", reason: str = "", listed_on: Optional[date] = None,
                  today: Optional[date] = None) -> None:
    """Add (or refresh) one entry, checked as an imported row is."""
    if listed_on is not None and (isinstance(listed_on, datetime) or not isinstance(listed_on, date)):
        raise RegistryError(f"expected a date, got {type(listed_on).__name__}", field="listed_on")
    today = today_cn() if today is None else china_day(today)
    cells = {c.name: _cell(c, v) for c, v in zip(BLACKLIST_COLUMNS, (credit_code, name, "", reason))}
    entry = _blacklist_entry(cells, today)
    entry.listed_on = _listed_on(listed_on, today)
    _write([entry])


def blacklist_rows() -> list[dict]:
    with session() as s:
        return [_row(e) for e in s.exec(select(BlacklistEntry).order_by(BlacklistEntry.credit_code))]


def blacklist_entry(credit_code: str, on=None, s=None) -> Optional[dict]:
    """The blacklist entry for `credit_code` that counts on the day `on` (a date, or an aware
    datetime taken as its day in China; default: today in China), or None. An entry counts from
    its listed_on day onwards; one without a date counts on every day. Read in the session `s`
    when given (a caller holding a transaction: the award book's lock), else in one of its own."""
    day = today_cn() if on is None else china_day(on)
    if s is None:
        with session() as own:
            return blacklist_entry(credit_code, day, own)
    e = s.get(BlacklistEntry, credit_code)
    if e is None or (e.listed_on is not None and e.listed_on > day):
        return None
    return _row(e)


# ---------------------------------------------------------------------------------- enterprises

ENTERPRISE_COLUMNS = (Column("credit_code", ID_MAX, required=True, nonempty=True),
                      Column("name", NAME_MAX, required=True), Column("region", ID_MAX),
                      Column("qualifications", QUALIFICATIONS_MAX))


def _enterprise_row(cells: dict[str, str]) -> EnterpriseRow:
    code = _code(cells["credit_code"])
    region = cells.get("region", "")
    if region:
        if not _REGION.fullmatch(region):
            raise RegistryError(f"'{shown(region)}' is not a region code: 6 digits (行政区划代码), "
                                f"e.g. {region_of(code)} as in the credit code", field="region")
        if region != region_of(code):
            raise RegistryError(f"{region} contradicts the credit code {code}, whose region digits (characters 3-8) "
                                f"are {region_of(code)}: the jurisdiction is the credit code's; leave region empty "
                                f"or write {region_of(code)}", field="region")
    quals = _canonical_qualifications(parse_qualifications(cells.get("qualifications", "")))
    return EnterpriseRow(credit_code=code, name=cells.get("name", ""), region=region, qualifications=quals)


def import_enterprises_csv(path) -> int:
    rows, problems = _read_csv(path, ENTERPRISE_COLUMNS)
    entries = _check(path, rows, problems, _enterprise_row, "credit_code", "enterprise")
    _write(entries)
    return len(entries)


def add_enterprise(credit_code: str, *, name: str = "", region: str = "", qualifications: str = "") -> None:
    """Add (or refresh) one enterprise, checked as an imported row is."""
    cells = {c.name: _cell(c, v) for c, v in zip(ENTERPRISE_COLUMNS, (credit_code, name, region, qualifications))}
    _write([_enterprise_row(cells)])


def enterprise_rows() -> list[dict]:
    with session() as s:
        return [_row(e) for e in s.exec(select(EnterpriseRow).order_by(EnterpriseRow.credit_code))]


def enterprise(credit_code: str):
    """calc.Enterprise for a registered enterprise, or None."""
    with session() as s:
        e = s.get(EnterpriseRow, credit_code)
        if e is None:
            return None
        return enterprise_of(e)


def enterprise_of(e: EnterpriseRow):
    """calc.Enterprise of a registry row."""
    from calc import Enterprise
    return Enterprise(credit_code=e.credit_code, name=e.name, region=e.region or None,
                      qualifications=tuple(_stored_qualifications(e.qualifications)))


def _stored_qualifications(text: str) -> list[dict]:
    """Qualifications as stored, read as before the stricter checks on the way in (other ISO 8601
    date forms, dates out of order), so rows imported earlier load as they did."""
    out = []
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        bits = part.split(":")
        if len(bits) not in (2, 3):
            raise RegistryError(f"'{shown(part)}': expected kind:from[:to]", field="qualifications")
        q = {"kind": bits[0].strip(), "valid_from": date.fromisoformat(bits[1].strip())}
        if len(bits) == 3 and bits[2].strip():
            q["valid_to"] = date.fromisoformat(bits[2].strip())
        out.append(q)
    return out


# ---------------------------------------------------------------------------------- reviewers

REVIEWER_COLUMNS = (Column("reviewer_id", ID_MAX, required=True, nonempty=True),
                    Column("bureau", BUREAU_MAX, required=True, nonempty=True), Column("name", NAME_MAX))
_REVIEWER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]*")


def _reviewer(cells: dict[str, str]) -> Reviewer:
    from models.clauses import known_bureaus
    if not _REVIEWER_ID.fullmatch(cells["reviewer_id"]):
        raise RegistryError(f"'{shown(cells['reviewer_id'])}' is not a reviewer id: ASCII letters, digits and "
                            f"- _ . @ only, starting with a letter or digit", field="reviewer_id")
    bureau = cells["bureau"]
    if bureau not in known_bureaus():
        raise RegistryError(f"'{shown(bureau)}' is not a responsible bureau of any clause; "
                            f"known: {'、'.join(sorted(known_bureaus()))}", field="bureau")
    return Reviewer(reviewer_id=cells["reviewer_id"], bureau=bureau, name=cells.get("name", ""))


def add_reviewer(reviewer_id: str, bureau: str, name: str = "") -> None:
    """Register (or move) one reviewer, checked as an imported row is."""
    cells = {c.name: _cell(c, v) for c, v in zip(REVIEWER_COLUMNS, (reviewer_id, bureau, name))}
    _write([_reviewer(cells)])


def import_reviewers_csv(path) -> int:
    rows, problems = _read_csv(path, REVIEWER_COLUMNS)
    reviewers = _check(path, rows, problems, _reviewer, "reviewer_id", "reviewer")
    _write(reviewers)
    return len(reviewers)


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
        q = q.order_by(LedgerEntry.application_id, LedgerEntry.year, LedgerEntry.seq, LedgerEntry.id)
        return [_row(e) for e in s.exec(q)]
