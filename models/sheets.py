"""Spreadsheets in and out: the rows of a CSV (UTF-8, with or without BOM) or .xlsx file (its first
sheet) as (line, {column: cell}) with the registry's cell rules (models/registry.py), a refusal
listing every bad row (`FILE: line N: FIELD: RULE`), and a plain .xlsx writer for exports.

The CSV side is models/registry.py's parse_csv; the .xlsx side (read_xlsx) reads the first sheet
with the CSV's header and cell checks, for any set of columns (cli/batch.py's workbooks too).
"""
from __future__ import annotations

import io
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from models.registry import Column, RegistryError, _decode, _header, _read_bytes, _record, parse_csv

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0"

Rows = list[tuple[int, dict[str, str]]]


class SheetRefused(ValueError):
    """A file refused whole, nothing written: `problems` are RegistryErrors, one per bad row (or
    one for the file). str() is a summary line, then one line per problem."""

    def __init__(self, name: str, problems: list[RegistryError], *, nothing: str = "nothing was imported"):
        from cli.safe_text import shown
        self.name = name
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        rows = [p for p in self.problems if p.line is not None]
        what = f"{len(rows)} row{'s' if len(rows) != 1 else ''} refused" if rows else "the file is refused"
        self.headline = f"{shown(str(name), 200)}: {what}; {nothing}"
        super().__init__(self.headline + "\n" + "\n".join(self.lines()))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


def read_path(path) -> bytes:
    """The bytes of a file to import (size limit, a regular file; RegistryError naming it otherwise)."""
    return _read_bytes(Path(path))


def read_rows(data: bytes, name: str, columns: Sequence[Column], *, max_rows: int) -> tuple[Rows, list[RegistryError]]:
    """The rows of a CSV or .xlsx file, and the problems of the rows left out. File-level problems
    (an .xls, not a workbook, not UTF-8, a bad header, too many rows) raise RegistryError."""
    if data.startswith(XLS_MAGIC):
        raise RegistryError("an Excel 97-2003 (.xls) workbook is not read: save it as .xlsx or as CSV UTF-8",
                            path=name)
    if data.startswith(XLSX_MAGIC):
        return read_xlsx(name, data, tuple(columns), max_rows)
    return parse_csv(name, _decode(Path(name), data), tuple(columns), max_rows=max_rows)


def read_xlsx(name: str, data: bytes, columns: Sequence[Column], max_rows: int) -> tuple[Rows, list[RegistryError]]:
    """The first sheet's rows, as parse_csv gives a CSV's (line = the sheet's row number)."""
    from openpyxl import load_workbook
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb.worksheets[0]
    except Exception as e:  # noqa: BLE001 - a damaged or foreign zip
        raise RegistryError(f"not a readable .xlsx workbook ({type(e).__name__})", path=name) from None
    by_name = {c.name: c for c in columns}
    expected = ",".join(c.name for c in columns)
    header: Optional[list[str]] = None
    rows: Rows = []
    problems: list[RegistryError] = []
    try:
        for n, values in enumerate(ws.iter_rows(values_only=True), start=1):
            cells = [cell_text(v) for v in values]
            while cells and cells[-1] == "":
                cells.pop()
            if not cells:
                continue
            if header is None:
                header = _header(Path(name), n, cells, by_name, expected)
                continue
            if len(rows) + len(problems) >= max_rows:
                raise RegistryError(f"more than {max_rows:,} rows; split the file", path=name, line=n)
            cells += [""] * (len(header) - len(cells))       # empty trailing cells are not stored
            try:
                rows.append((n, _record(header, cells, by_name)))
            except RegistryError as e:
                problems.append(e.at(name, n))
    finally:
        wb.close()
    if header is None:
        raise RegistryError(f"empty sheet: expected a header row naming the columns ({expected})", path=name)
    return rows, problems


def cell_text(v: Any) -> str:
    """A workbook cell as text. A number typed in Excel arrives as a float: its shortest repr is
    the decimal typed (for up to 15 significant digits), which the column's own rule then checks."""
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


def write_xlsx(path, sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence[Any]]]]) -> Path:
    """A workbook with one sheet per (title, header, rows). Decimals are written as exact numbers
    (their decimal text, never through a float); text cells that a spreadsheet would take for a
    formula are written as text. Written to a temporary file and renamed into place."""
    from openpyxl import Workbook
    from openpyxl.cell.cell import TYPE_STRING
    path = Path(path)
    wb = Workbook(write_only=False)
    wb.remove(wb.active)
    for title, header, rows in sheets:
        ws = wb.create_sheet(title[:31])
        ws.append(list(header))
        for row in rows:
            ws.append([_out(v) for v in row])
            for cell in ws[ws.max_row]:
                if isinstance(cell.value, str) and cell.value[:1] in ("=", "+", "-", "@"):
                    cell.data_type = TYPE_STRING          # never a formula
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    tmp.replace(path)
    return path


def _out(v: Any) -> Any:
    if isinstance(v, Decimal):
        return v                                       # openpyxl writes str(Decimal): exact
    if isinstance(v, (list, tuple)):
        return ";".join(str(x) for x in v)
    return v
