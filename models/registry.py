"""Registries the CLI manages: reviewers, credit blacklist, enterprises (CSV imports); ledger rows;
and the loaders the activities use (enterprise -> calc.Enterprise, prior awards, blacklist check)."""
from __future__ import annotations

import csv
import io
import re
import stat
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Optional, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select

from calc.credit_code import region_of, validate as validate_credit_code
from calc.model import QualificationKind
from cli.safe_text import codepoint, first_unsafe, shown
from models.db import session
from models.tables import BlacklistEntry, EnterpriseRow, LedgerEntry, Reviewer

# Limits on what an import reads (module attributes, so a test can lower them).
MAX_FILE_BYTES = 16 * 1024 * 1024        # a registry file larger than this is refused: split it
MAX_ROWS = 50_000                        # data rows per file
ID_MAX, NAME_MAX, BUREAU_MAX, TEXT_MAX = 64, 200, 100, 1000
QUALIFICATIONS_MAX = 2000
PATH_SHOWN = 200                         # a file name echoed in a message is clipped to this

BLACKLIST_AHEAD = timedelta(days=1)      # a blacklist entry may be dated at most this far ahead of today

try:
    CHINA = ZoneInfo("Asia/Shanghai")
except ZoneInfoNotFoundError:            # no tz database on this machine: China has kept UTC+8 since 1991
    CHINA = timezone(timedelta(hours=8), "Asia/Shanghai")

UTF8_EXPECTED = 'expected UTF-8 text: re-save the file as "CSV UTF-8" (Excel: CSV UTF-8(逗号分隔))'


class RegistryError(ValueError):
    """Bad registry input: which file, which line, which field, which rule. `str()` is one line,
    `FILE: line N: FIELD: RULE` (the parts that are known); echoed values in it are clipped and
    their control characters shown as escapes."""

    def __init__(self, rule: str, *, path=None, line: Optional[int] = None, field: Optional[str] = None,
                 more: int = 0):
        self.rule = rule
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.more = more                  # further problems found in the same file
        super().__init__(self._text())

    def _text(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(shown(self.path, PATH_SHOWN))
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.field is not None:
            parts.append(shown(self.field))
        more = f" (and {self.more:,} more problem{'s' if self.more > 1 else ''} in the file)" if self.more else ""
        parts.append(shown(self.rule, 1000) + more)
        return ": ".join(parts)

    def __str__(self) -> str:
        return self._text()

    def at(self, path, line: Optional[int]) -> "RegistryError":
        """The same problem, located in a file."""
        return RegistryError(self.rule, path=path, line=line, field=self.field)


@dataclass(frozen=True)
class Column:
    name: str
    max_len: int
    required: bool = False               # the header must have it
    nonempty: bool = False               # every row must fill it


def _cell(col: Column, raw: Optional[str]) -> str:
    """A cell (or an argument) as stored: no control characters, trimmed, NFC, within its limit."""
    raw = "" if raw is None else str(raw)
    bad = first_unsafe(raw)
    if bad is not None:
        i, ch = bad
        raise RegistryError(f"control character {codepoint(ch)} at character {i + 1}: not allowed",
                            field=col.name)
    value = raw.strip()
    if len(value) > col.max_len:
        raise RegistryError(f"longer than {col.max_len} characters ({len(value):,})", field=col.name)
    value = unicodedata.normalize("NFC", value)
    if col.nonempty and not value:
        raise RegistryError("must not be empty", field=col.name)
    return value


def _decode(path: Path, data: bytes) -> str:
    for bom, name in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                      (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise RegistryError(f"{name} text (it starts with a {name} byte order mark); {UTF8_EXPECTED}",
                                path=path)
    data = data.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in data.split(b"\n", 1)[0]:
        raise RegistryError(f"not UTF-8 text (NUL bytes in the header: UTF-16 without a byte order mark?); "
                            f"{UTF8_EXPECTED}", path=path, line=1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise RegistryError(f"not UTF-8 text (byte 0x{data[e.start]:02X}: GBK or another legacy encoding?); "
                            f"{UTF8_EXPECTED}", path=path, line=line) from None


def _read_bytes(path: Path) -> bytes:
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise RegistryError("is a directory, expected a CSV file", path=path)
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError("not a regular file, expected a CSV file", path=path)
        if st.st_size > MAX_FILE_BYTES:
            raise RegistryError(f"file is larger than {MAX_FILE_BYTES:,} bytes ({st.st_size:,}); split it", path=path)
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise RegistryError("no such file", path=path) from None
    except IsADirectoryError:
        raise RegistryError("is a directory, expected a CSV file", path=path) from None
    except OSError as e:
        raise RegistryError(f"cannot read it: {e.strerror or e}", path=path) from None
    if len(data) > MAX_FILE_BYTES:
        raise RegistryError(f"file is larger than {MAX_FILE_BYTES:,} bytes; split it", path=path)
    return data


def _read_csv(path, columns: tuple[Column, ...]) -> tuple[list[tuple[int, dict[str, str]]], list[RegistryError]]:
    """The rows of a registry CSV file as (line, {column: cell}), and the problems of the rows
    left out. File-level problems (not readable, not UTF-8, bad header, malformed CSV, too big)
    raise at once. `line` is the file line a row starts on (the header is line 1)."""
    path = Path(path)
    return parse_csv(path, _decode(path, _read_bytes(path)), columns)


def parse_csv(path, text: str, columns: tuple[Column, ...], *, max_rows: Optional[int] = None
              ) -> tuple[list[tuple[int, dict[str, str]]], list[RegistryError]]:
    """_read_csv on text already read and decoded (`path` names it in messages); at most
    `max_rows` data rows (default MAX_ROWS)."""
    max_rows = MAX_ROWS if max_rows is None else max_rows
    expected = ",".join(c.name for c in columns)
    if not text.strip():
        raise RegistryError(f"empty file: expected a header line naming the columns ({expected})", path=path)
    by_name = {c.name: c for c in columns}
    # no cell can be longer than the file; let the per-column limits speak instead of the csv module's
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES + 1))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, dict[str, str]]] = []
    problems: list[RegistryError] = []
    header: Optional[list[str]] = None
    line = 1
    while True:
        start = line
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise RegistryError(f"malformed CSV: {e}", path=path, line=reader.line_num) from None
        line = reader.line_num + 1
        if not record:                                   # a blank line
            continue
        if header is None:
            header = _header(path, start, record, by_name, expected)
            continue
        if len(rows) + len(problems) >= max_rows:
            raise RegistryError(f"more than {max_rows:,} rows; split the file", path=path, line=start)
        try:
            rows.append((start, _record(header, record, by_name)))
        except RegistryError as e:
            problems.append(e.at(path, start))
    if header is None:
        raise RegistryError(f"empty file: expected a header line naming the columns ({expected})", path=path)
    return rows, problems


def _header(path: Path, line: int, record: list[str], by_name: dict[str, Column], expected: str) -> list[str]:
    header: list[str] = []
    for i, raw in enumerate(record, start=1):
        try:
            name = _cell(Column(f"column {i}", 100, nonempty=True), raw)
        except RegistryError as e:
            raise e.at(path, line) from None
        if name in header:
            raise RegistryError(f"column appears twice (columns {header.index(name) + 1} and {i})",
                                path=path, line=line, field=name)
        if name not in by_name:
            raise RegistryError(f"unknown column (expected columns: {expected})", path=path, line=line, field=name)
        header.append(name)
    for c in by_name.values():
        if c.required and c.name not in header:
            raise RegistryError(f"missing column (expected columns: {expected}; the file has: {','.join(header)})",
                                path=path, line=line, field=c.name)
    return header


def _record(header: list[str], record: list[str], by_name: dict[str, Column]) -> dict[str, str]:
    if len(record) < len(header):
        raise RegistryError(f"{len(record)} cells, the header has {len(header)} columns (short row)",
                            field=header[len(record)])
    if len(record) > len(header):
        raise RegistryError(f"{len(record)} cells, the header has {len(header)} columns (extra cells)",
                            field=f"column {len(header) + 1}")
    return {name: _cell(by_name[name], raw) for name, raw in zip(header, record)}


def _check(path, rows, problems, build, key_field: str, what: str) -> list:
    """Every row through `build` (which raises RegistryError naming the field), and each key
    (`key_field` of what build made) at most once in the file; all problems are collected, the
    first one raised (saying how many more there are). Returns what build made."""
    out = []
    seen: dict[str, int] = {}
    for line, cells in rows:
        try:
            obj = build(cells)
            key = getattr(obj, key_field)
            if key in seen:
                raise RegistryError(f"'{shown(key)}' is also on line {seen[key]}: a file lists each {what} once",
                                    field=key_field)
            seen[key] = line
            out.append(obj)
        except RegistryError as e:
            problems.append(e.at(path, line))
    if problems:
        problems.sort(key=lambda e: e.line or 0)
        first = problems[0]
        raise RegistryError(first.rule, path=first.path, line=first.line, field=first.field,
                            more=len(problems) - 1)
    return out


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


def blacklist_entry(credit_code: str, on=None) -> Optional[dict]:
    """The blacklist entry for `credit_code` that counts on the day `on` (a date, or an aware
    datetime taken as its day in China; default: today in China), or None. An entry counts from
    its listed_on day onwards; one without a date counts on every day."""
    day = today_cn() if on is None else china_day(on)
    with session() as s:
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
    from calc import Enterprise
    with session() as s:
        e = s.get(EnterpriseRow, credit_code)
        if e is None:
            return None
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
