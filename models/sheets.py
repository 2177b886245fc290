"""Spreadsheets in and out: the one reader of tabular files (CSV UTF-8 or an .xlsx workbook's first
sheet) and the one writer of .xlsx / CSV exports, for every import and export of disburse
(registry imports, batches, apply-free facts, ledger / list / registry exports).

Reading treats a file as a claim:

    rows, problems = read_table(data, "enterprises.xlsx", COLUMNS, max_rows=50_000)

`data` is the file's bytes (`read_bytes(path, max_bytes)` reads them with a size limit). The
format is decided by the bytes, never the name: a ZIP is read as .xlsx (its first sheet), an
Excel 97-2003 file is refused, anything else must be UTF-8 CSV (a BOM is allowed). A header row
names the columns (each a `Column`: its limit, whether the header must have it, whether every row
must fill it), in any order, each once, nothing else. Every cell is checked (no control or bidi
characters, trimmed, NFC, within its limit). `rows` are `(line, {column: cell})` with the line
the file's line (CSV) or the sheet's row number (.xlsx), so a message points where a person looks;
`problems` are the rows left out, each a `RegistryError` with line and field. File-level problems
(unreadable, not UTF-8, not a workbook, bad header, too many rows) raise a RegistryError at once.
Callers validate the rows' meaning, collect every problem, and write all rows or none: a refused
file raises `SheetRefused(name, problems)` (every import the same way: one line per bad row).

Writing:

    write_xlsx(path, [("ledger", header, rows)])      # one sheet per (title, header, rows)
    write_table(path, header, rows, title="ledger")   # .xlsx or .csv by the path's suffix

Text that a spreadsheet could take for a formula (cli/safe_text.FORMULA_TRIGGERS: = + - @ ...) is
neutralised: in .xlsx it is written as a text cell marked quotePrefix (Excel's leading apostrophe:
shown and kept as text, never evaluated, and read back unchanged, so an export imports back
equal); in CSV it gets a leading ' (cli/safe_text.spreadsheet_cell). Decimals are written as
numbers with two places shown; dates as dates.
"""
from __future__ import annotations

import csv
import re
import io
import stat
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Hashable, Iterable, Iterator, Optional, Sequence, TypeVar

from cli.safe_text import FORMULA_TRIGGERS, codepoint, first_unsafe, shown, spreadsheet_cell, visible

PATH_SHOWN = 200                         # a file name echoed in a message is clipped to this
UTF8_EXPECTED = 'expected UTF-8 text: re-save the file as "CSV UTF-8" (Excel: CSV UTF-8(逗号分隔)) or as .xlsx'
XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"
XLSX_MAX_UNPACKED = 256 * 1024 * 1024    # a workbook that unpacks to more than this is refused unread
XLSX_MAX_COLUMNS = 200                   # cells read per row (a sheet's phantom columns are not read)


class RegistryError(ValueError):
    """Bad tabular input: which file, which line, which field, which rule. `str()` is one line,
    `FILE: line N: FIELD: RULE` (the parts that are known); echoed values in it are clipped and
    their control characters shown as escapes. `problems` (when a whole file was checked) lists
    every problem found, one per bad row, in line order."""

    def __init__(self, rule: str, *, path=None, line: Optional[int] = None, field: Optional[str] = None,
                 more: int = 0, problems: Optional[list["RegistryError"]] = None):
        self.rule = rule
        self.path = None if path is None else str(path)
        self.line = line
        self.field = field
        self.more = more                  # further problems found in the same file
        self.problems = problems if problems is not None else [self]
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

    def lines(self) -> list[str]:
        """One line per problem (per bad row), for a refusal listing every row."""
        return [RegistryError(p.rule, path=p.path, line=p.line, field=p.field)._text() for p in self.problems]


class SheetRefused(RegistryError):
    """A file refused whole, nothing written: the one refusal of every import (registries, held
    facts, budget lines, batches). `problems` are RegistryErrors, one per bad row (or the one of
    the file), in line order. As a RegistryError it is the first problem, counting the others
    (`str()` is that one line); `headline` is the summary, `FILE: N rows refused; nothing was
    imported` (`nothing` says what was not done), and `lines()` one line per problem."""

    def __init__(self, name, problems: list[RegistryError], *, nothing: str = "nothing was imported"):
        problems = sorted(problems, key=lambda p: p.line or 0)
        first = problems[0]
        super().__init__(first.rule, path=first.path, line=first.line, field=first.field,
                         more=len(problems) - 1, problems=problems)
        self.name = str(name)
        rows = [p for p in problems if p.line is not None]
        what = f"{len(rows)} row{'s' if len(rows) != 1 else ''} refused" if rows else "the file is refused"
        self.headline = f"{shown(self.name, PATH_SHOWN)}: {what}; {nothing}"


@dataclass(frozen=True)
class Column:
    name: str
    max_len: int
    required: bool = False               # the header must have it
    nonempty: bool = False               # every row must fill it


Rows = list[tuple[int, dict[str, str]]]
T = TypeVar("T")


def checked_rows(name, rows: Rows, problems: list[RegistryError], build: Callable[[int, dict[str, str]], T],
                 key: Callable[[T], Hashable], twice: Callable[[T, int], RegistryError], *,
                 nothing: str = "nothing was imported") -> list[T]:
    """What `build(line, cells)` makes of every row (it raises a RegistryError naming the field),
    each `key` at most once in the file (`twice(made, first_line)` is the problem of a repeat).
    Every problem is located at its row and collected with `problems` (those read_table found):
    if there are any, the file is refused whole (SheetRefused(name, problems, nothing=nothing))."""
    out: list[T] = []
    seen: dict[Hashable, int] = {}
    for line, cells in rows:
        try:
            made = build(line, cells)
            k = key(made)
            if k in seen:
                raise twice(made, seen[k])
            seen[k] = line
            out.append(made)
        except RegistryError as e:
            problems.append(e.at(name, line))
    if problems:
        raise SheetRefused(name, problems, nothing=nothing)
    return out


def cell(col: Column, raw: Optional[str]) -> str:
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


# ------------------------------------------------------------------------------------ reading

def read_bytes(path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (RegistryError naming the file otherwise)."""
    path = Path(path)
    what = "expected a CSV or .xlsx file"
    try:
        st = path.stat()
        if stat.S_ISDIR(st.st_mode):
            raise RegistryError(f"is a directory, {what}", path=path)
        if not stat.S_ISREG(st.st_mode):
            raise RegistryError(f"not a regular file, {what}", path=path)
        if st.st_size > max_bytes:
            raise RegistryError(f"file is larger than {max_bytes:,} bytes ({st.st_size:,}); split it", path=path)
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise RegistryError("no such file", path=path) from None
    except IsADirectoryError:
        raise RegistryError(f"is a directory, {what}", path=path) from None
    except OSError as e:
        raise RegistryError(f"cannot read it: {e.strerror or e}", path=path) from None
    if len(data) > max_bytes:
        raise RegistryError(f"file is larger than {max_bytes:,} bytes; split it", path=path)
    return data


def is_xlsx(data: bytes) -> bool:
    return data.startswith(XLSX_MAGIC)


def read_table(data: bytes, name, columns: Sequence[Column], *, max_rows: int) -> tuple[Rows, list[RegistryError]]:
    """The rows of a CSV or .xlsx file (decided by its bytes) as (line, {column: cell}), and the
    problems of the rows left out; file-level problems raise. `name` names the file in messages."""
    if data.startswith(XLS_MAGIC):
        raise RegistryError("an Excel 97-2003 (.xls) workbook is not read: save it as .xlsx or as CSV UTF-8",
                            path=name)
    if is_xlsx(data):
        return parse_xlsx(name, data, columns, max_rows=max_rows)
    return parse_csv(name, decode(name, data), columns, max_rows=max_rows)


def decode(path, data: bytes) -> str:
    for bom, enc in ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                     (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16")):
        if data.startswith(bom):
            raise RegistryError(f"{enc} text (it starts with a {enc} byte order mark); {UTF8_EXPECTED}",
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


def _expected(columns: Sequence[Column]) -> str:
    return ",".join(c.name for c in columns)


def parse_csv(path, text: str, columns: Sequence[Column], *, max_rows: int) -> tuple[Rows, list[RegistryError]]:
    """The rows of CSV text already read and decoded (`path` names it in messages); at most
    `max_rows` data rows. `line` is the file line a row starts on (the header is line 1)."""
    empty = f"empty file: expected a header line naming the columns ({_expected(columns)})"
    if not text.strip():
        raise RegistryError(empty, path=path)
    # no cell can be longer than the text; let the per-column limits speak instead of the csv module's
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    header, rows, problems = _table(path, _csv_records(path, text), columns, max_rows=max_rows)
    if header is None:
        raise RegistryError(empty, path=path)
    return rows, problems


def _csv_records(path, text: str) -> Iterator[tuple[int, list[str]]]:
    """The CSV's records but blank lines, each with the file line it starts on."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    line = 1
    while True:
        start = line
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise RegistryError(f"malformed CSV: {e}", path=path, line=reader.line_num) from None
        line = reader.line_num + 1
        if record:
            yield start, record


def _table(path, records: Iterable[tuple[int, list[str]]], columns: Sequence[Column], *, max_rows: int,
           pad: bool = False) -> tuple[Optional[list[str]], Rows, list[RegistryError]]:
    """The header (None when there is no record) and the rows of a file's non-blank records
    `(line, cells)`: the first names the columns (header_of), each other is a row (record_of) or a
    problem located at its line; more than `max_rows` rows raise. `pad`: a short record is filled
    with empty cells (a sheet does not store its empty trailing cells)."""
    by_name = {c.name: c for c in columns}
    expected = _expected(columns)
    header: Optional[list[str]] = None
    rows: Rows = []
    problems: list[RegistryError] = []
    for line, record in records:
        if header is None:
            header = header_of(path, line, record, by_name, expected)
            continue
        if len(rows) + len(problems) >= max_rows:
            raise RegistryError(f"more than {max_rows:,} rows; split the file", path=path, line=line)
        if pad:
            record = record + [""] * (len(header) - len(record))
        try:
            rows.append((line, record_of(header, record, by_name)))
        except RegistryError as e:
            problems.append(e.at(path, line))
    return header, rows, problems


def parse_xlsx(name, data: bytes, columns: Sequence[Column], *, max_rows: int) -> tuple[Rows, list[RegistryError]]:
    """The first sheet's rows, as parse_csv gives a CSV's (line = the sheet's row number). Cells
    are read as values (a formula's cached result, never the formula); numbers as their shortest
    decimal text, whole numbers without ".0", dates as YYYY-MM-DD."""
    from openpyxl import load_workbook
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as e:
        raise RegistryError(f"not a readable .xlsx workbook ({type(e).__name__})", path=name) from None
    if unpacked > XLSX_MAX_UNPACKED:
        raise RegistryError(f"the workbook unpacks to more than {XLSX_MAX_UNPACKED:,} bytes; split it", path=name)
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb.worksheets[0]
    except Exception as e:  # noqa: BLE001 - a damaged or foreign zip
        raise RegistryError(f"not a readable .xlsx workbook ({type(e).__name__})", path=name) from None

    def records() -> Iterator[tuple[int, list[str]]]:
        for n, values in enumerate(ws.iter_rows(values_only=True, max_col=XLSX_MAX_COLUMNS), start=1):
            cells = [xlsx_text(v) for v in values]
            while cells and cells[-1] == "":
                cells.pop()
            if cells:
                yield n, cells
    try:
        header, rows, problems = _table(name, records(), columns, max_rows=max_rows, pad=True)
    except RegistryError:
        raise
    except Exception as e:  # noqa: BLE001 - a damaged sheet part, found while reading it
        raise RegistryError(f"not a readable .xlsx workbook ({type(e).__name__})", path=name) from None
    finally:
        wb.close()
    if header is None:
        raise RegistryError(f"empty sheet: expected a header row naming the columns ({_expected(columns)})",
                            path=name)
    return rows, problems


def xlsx_text(v: Any) -> str:
    """A workbook cell's value as the text a CSV would hold."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def header_of(path, line: int, record: list[str], by_name: dict[str, Column], expected: str) -> list[str]:
    header: list[str] = []
    for i, raw in enumerate(record, start=1):
        try:
            name = cell(Column(f"column {i}", 100, nonempty=True), raw)
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


def record_of(header: list[str], record: list[str], by_name: dict[str, Column]) -> dict[str, str]:
    if len(record) < len(header):
        raise RegistryError(f"{len(record)} cells, the header has {len(header)} columns (short row)",
                            field=header[len(record)])
    if len(record) > len(header):
        raise RegistryError(f"{len(record)} cells, the header has {len(header)} columns (extra cells)",
                            field=f"column {len(header) + 1}")
    return {name: cell(by_name[name], raw) for name, raw in zip(header, record)}


# ------------------------------------------------------------------------------------ writing

Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]     # (title, header, rows)


_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")   # openpyxl's ILLEGAL_CHARACTERS_RE


def _xlsx_value(ws, row: int, col: int, value: Any) -> None:
    c = ws.cell(row=row, column=col)
    if value is None:
        return
    if isinstance(value, bool):
        c.value = "true" if value else "false"
    elif isinstance(value, Decimal):
        c.value = value
        c.number_format = "#,##0.00"
    elif isinstance(value, (int, float)):
        c.value = value
    elif isinstance(value, datetime):
        c.value = value.replace(tzinfo=None) if value.tzinfo is not None else value
        c.number_format = "yyyy-mm-dd hh:mm:ss"
    elif isinstance(value, date):
        c.value = value
        c.number_format = "yyyy-mm-dd"
    else:
        text = str(value)
        if _ILLEGAL.search(text):            # XML cannot hold them: shown as escapes (\x1b), as on a terminal
            text = visible(text)
        c.value = text
        c.data_type = "s"                    # text, never a formula, whatever it starts with
        if text.startswith(FORMULA_TRIGGERS):
            c.quotePrefix = True             # and kept as text when a person edits the cell


def xlsx_bytes(sheets: Sequence[Sheet]) -> bytes:
    """An .xlsx workbook with one sheet per (title, header, rows): bold frozen header, values
    typed (see _xlsx_value), text that looks like a formula kept as text."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    wb = Workbook()
    wb.remove(wb.active)
    for title, header, rows in sheets:
        ws = wb.create_sheet(_sheet_title(title))
        for j, h in enumerate(header, start=1):
            _xlsx_value(ws, 1, j, h)
            ws.cell(row=1, column=j).font = Font(bold=True)
        ws.freeze_panes = "A2"
        for i, r in enumerate(rows, start=2):
            for j, v in enumerate(r, start=1):
                _xlsx_value(ws, i, j, v)
    if not wb.worksheets:
        wb.create_sheet("sheet1")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _sheet_title(title: str) -> str:
    bad = set('[]:*?/\\')
    t = "".join("_" if ch in bad or first_unsafe(ch) else ch for ch in str(title)).strip("'") or "sheet"
    return t[:31]


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """CSV UTF-8 with a BOM (what Excel opens as UTF-8), formula-looking text neutralised."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow([spreadsheet_cell(h) for h in header])
    for r in rows:
        w.writerow([spreadsheet_cell(v) for v in r])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_xlsx(path, sheets: Sequence[Sheet]) -> Path:
    return _write(path, xlsx_bytes(sheets))


def write_table(path, header: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str = "sheet1") -> Path:
    """One table to `path`: .xlsx, or CSV for a .csv name; anything else is refused."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        return _write(path, xlsx_bytes([(title, header, rows)]))
    if suffix == ".csv":
        return _write(path, csv_bytes(header, rows))
    raise RegistryError("write to a .xlsx or a .csv file", path=path)


def rows_of(dicts: Sequence[dict], columns: Sequence[str]) -> list[list[Any]]:
    """Dicts (e.g. database rows) as rows of the given columns, in order."""
    return [[d.get(c) for c in columns] for d in dicts]


def _write(path, data: bytes) -> Path:
    """Written whole to a temporary file beside `path`, then renamed over it: a reader never sees
    half a workbook."""
    import os
    import tempfile
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent or ".")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        raise RegistryError(f"cannot write it: {e.strerror or e}", path=path) from None
    return path

