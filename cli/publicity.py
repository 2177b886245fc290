"""The publishable 公示 list (`disburse publicity list`): the enterprises, credit codes, clauses,
amounts and notice periods of the awards in their notice period, from the status mirror
(models/tables.py ApplicationRow), written as a table, a CSV (UTF-8 with a BOM, Excel's "CSV
UTF-8") or an .xlsx workbook. Every text cell is neutralised against formula injection
(cli/safe_text.spreadsheet_cell); amounts are exact (text with two decimals in CSV, numbers with
a 0.00 format in xlsx, which Excel keeps to 15 significant digits — every amount here has fewer).
"""
from __future__ import annotations

import csv
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Optional

from cli.safe_text import spreadsheet_cell

COLUMNS = ("enterprise", "credit_code", "clause_id", "clause", "amount", "notice_from", "notice_until", "status",
           "application_id")
HEADERS_ZH = {"enterprise": "企业名称", "credit_code": "统一社会信用代码", "clause_id": "条款编号", "clause": "条款",
              "amount": "金额(元)", "notice_from": "公示开始", "notice_until": "公示截止", "status": "状态",
              "application_id": "申请编号"}
FORMATS = (".csv", ".xlsx")


class ExportError(ValueError):
    """The output file cannot be written as asked; one line naming the file and why."""


def rows(clause: Optional[str] = None, *, include_past: bool = False) -> list[dict]:
    """Applications in 公示 (or, with include_past, every one that went through it), oldest first."""
    from sqlmodel import select

    from calc import catalogue
    from models.db import session
    from models.tables import ApplicationRow
    q = select(ApplicationRow).where(ApplicationRow.publicity_from.is_not(None))
    if not include_past:
        q = q.where(ApplicationRow.status == "publicity")
    if clause:
        q = q.where(ApplicationRow.clause_id == clause)
    q = q.order_by(ApplicationRow.publicity_from, ApplicationRow.application_id)
    cat = catalogue()
    out = []
    with session() as s:
        for r in s.exec(q):
            name = cat.clauses[r.clause_id][1].name_zh if r.clause_id in cat.clauses else ""
            out.append({"enterprise": r.enterprise_name, "credit_code": r.enterprise_code, "clause_id": r.clause_id,
                        "clause": name, "amount": f"{Decimal(r.amount or 0):.2f}",
                        "notice_from": r.publicity_from.isoformat(), "notice_until": r.publicity_until.isoformat(),
                        "status": r.status, "application_id": r.application_id})
    return out


def _target(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"{path}: the list is written as .csv or .xlsx, not {path.suffix or 'a file without an extension'!r}")
    if path.exists() and path.is_dir():
        raise ExportError(f"{path}: is a directory")
    if not path.parent.is_dir():
        raise ExportError(f"{path}: no directory {path.parent}")
    return suffix


def write(path: Path, data: list[dict]) -> None:
    """Write the list to `path` (.csv or .xlsx) atomically: a temporary file renamed into place."""
    suffix = _target(path)
    fd, tmp = tempfile.mkstemp(prefix=".publicity-", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        if suffix == ".csv":
            with open(tmp, "w", encoding="utf-8-sig", newline="") as f:
                w = csv.writer(f)
                w.writerow([HEADERS_ZH[c] for c in COLUMNS])
                for r in data:
                    w.writerow([spreadsheet_cell(r[c]) for c in COLUMNS])
        else:
            from openpyxl import Workbook
            wb = Workbook()
            ws = wb.active
            ws.title = "公示"
            ws.append([HEADERS_ZH[c] for c in COLUMNS])
            for r in data:
                ws.append([Decimal(r[c]) if c == "amount" else spreadsheet_cell(r[c]) for c in COLUMNS])
                ws.cell(row=ws.max_row, column=COLUMNS.index("amount") + 1).number_format = "0.00"
                for i, c in enumerate(COLUMNS, 1):
                    if c != "amount":
                        ws.cell(row=ws.max_row, column=i).data_type = "s"    # text, never a formula
            wb.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_back(path: Path) -> list[dict]:
    """The rows of a written list (the tests' round trip; the quote prefix stays as written)."""
    if path.suffix.lower() == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            lines = list(csv.reader(f))
    else:
        from openpyxl import load_workbook
        ws = load_workbook(path, read_only=True).worksheets[0]
        lines = [["" if v is None else (f"{Decimal(str(v)):.2f}" if isinstance(v, (int, float)) else str(v))
                  for v in row] for row in ws.iter_rows(values_only=True)]
    header = [next(k for k, v in HEADERS_ZH.items() if v == h) for h in lines[0]]
    return [dict(zip(header, line)) for line in lines[1:]]
