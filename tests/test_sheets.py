"""Spreadsheets (models/sheets.py): the registries import from .xlsx as from CSV, an export imports
back equal, a malformed workbook is refused row by row (line and field for each bad row) with
nothing imported, and exported text that looks like a formula stays text."""
from __future__ import annotations

import io
import zipfile
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlmodel import select
from typer.testing import CliRunner

from calc.credit_code import make as make_code
from models.db import session
from models.tables import BlacklistEntry, EnterpriseRow, LedgerEntry, Reviewer

HZ = "330106"
CODES = [make_code(f"91{HZ}MA2KH0{i:03d}"[:17]) for i in range(1, 6)]


def _xlsx(path: Path, header, rows) -> Path:
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.append(list(header))
    for r in rows:
        ws.append(list(r))
    wb.save(path)
    return path


def _tables() -> dict:
    with session() as s:
        return {m.__tablename__: sorted(tuple(sorted(r.model_dump().items())) for r in s.exec(select(m)))
                for m in (EnterpriseRow, Reviewer, BlacklistEntry)}


@pytest.fixture
def cli(db, monkeypatch):
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.delenv("DISBURSE_DEBUG", raising=False)
    from cli.main import app
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


# ------------------------------------------------------------------------------------ round trips

def test_registries_round_trip_through_xlsx(db, cli, tmp_path):
    """Exported to .xlsx and imported back: equal, formula-looking names included (a CSV export
    prefixes those with ' instead, so it is equal only for plain text)."""
    hostile = "=HYPERLINK(\"http://x\",\"点我\")"
    db.add_enterprise(CODES[0], name="杭州甲科技有限公司", region=HZ,
                      qualifications="tech_enterprise:2021-01-01;high_tech:2023-06-01:2026-05-31")
    db.add_enterprise(CODES[1], name=hostile, qualifications="")
    db.add_enterprise(CODES[2], name="+86 乙", region="", qualifications="specialized_sme:2024-01-01")
    db.add_blacklist(CODES[3], name="-丙", reason="@失信", listed_on=date(2025, 3, 1))
    db.add_blacklist(CODES[4], name="丁", reason="")
    db.add_reviewer("hz-extra", "杭州市科技局", "=1+1")
    before = _tables()
    for suffix in (".xlsx",):
        files = {what: tmp_path / f"{what}{suffix}" for what in ("enterprises", "blacklist", "reviewers")}
        for what, f in files.items():
            r = cli(what, "list", "--xlsx", f)
            assert r.exit_code == 0 and "written to" in r.stdout, r.output
        with session() as s:                                # empty the registries, then import the exports
            for m in (EnterpriseRow, BlacklistEntry, Reviewer):
                for row in s.exec(select(m)):
                    s.delete(row)
            s.commit()
        for what, f in files.items():
            r = cli(what, "import", f)
            assert r.exit_code == 0, r.output
        assert _tables() == before, suffix


def test_formula_looking_text_is_written_as_text(tmp_path):
    from models import sheets
    out = sheets.write_table(tmp_path / "x.xlsx", ["name", "amount"],
                             [["=cmd|' /C calc'!A0", Decimal("12.30")], ["ok", Decimal("-5.00")]])
    with zipfile.ZipFile(out) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet                 # no formula anywhere
    from openpyxl import load_workbook
    ws = load_workbook(out).active
    assert ws["A2"].data_type == "s" and ws["A2"].quotePrefix and ws["A2"].value == "=cmd|' /C calc'!A0"
    assert ws["B2"].value == Decimal("12.30") or ws["B2"].value == 12.3
    assert ws["B3"].data_type == "n"                                 # a negative amount stays a number
    csv_text = sheets.write_table(tmp_path / "x.csv", ["name"], [["=1+1"], ["+2"]]).read_text("utf-8-sig")
    assert "'=1+1" in csv_text and "'+2" in csv_text


def test_ledger_exports_to_xlsx(db, cli, tmp_path):
    from models import sheets
    with session() as s:
        s.add(LedgerEntry(application_id="app-x", clause_id="hz2025-04-tech-insurance-premium",
                          enterprise_code=CODES[0], year=2026, seq=1, amount=Decimal("400000.05"),
                          due=date(2026, 12, 31), label="=SUM(A1)", paid_at=datetime(2026, 12, 31, tzinfo=timezone.utc)))
        s.commit()
    r = cli("ledger", "--xlsx", tmp_path / "l.xlsx")
    assert r.exit_code == 0, r.output
    cols = [sheets.Column(c, 200) for c in ("application_id", "clause_id", "enterprise_code", "year", "seq",
                                             "item_id", "amount", "due", "label", "paid_at")]
    rows, problems = sheets.read_table((tmp_path / "l.xlsx").read_bytes(), "l.xlsx", cols, max_rows=10)
    assert problems == []
    (_, row), = rows
    assert row["amount"] == "400000.05" and row["due"] == "2026-12-31" and row["label"] == "=SUM(A1)"


def test_list_export(harness, db, monkeypatch, tmp_path):
    """`disburse list --xlsx` writes what it shows (the visibility API stubbed: the test server has none)."""
    import cli.main as main
    from models import sheets
    rows = [{"id": "app-1", "clause": "c", "enterprise": CODES[0], "year": 2026, "status": "review",
             "amount": "1234.50", "bureaus": ["杭州市科技局", "杭州市财政局"]}]

    async def listed(client, query, limit):
        return rows
    monkeypatch.setattr(main, "run", lambda fn, *a, **kw: harness.run(listed(None, *a, **kw)))
    r = CliRunner().invoke(main.app, ["list", "--xlsx", str(tmp_path / "a.xlsx")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    cols = [sheets.Column(c, 200) for c in ("id", "clause", "enterprise", "year", "status", "amount", "bureaus")]
    got, _ = sheets.read_table((tmp_path / "a.xlsx").read_bytes(), "a.xlsx", cols, max_rows=10)
    assert got[0][1]["amount"] == "1234.5" and got[0][1]["bureaus"] == "杭州市科技局、杭州市财政局"


# ------------------------------------------------------------------------------------ malformed

def test_a_malformed_workbook_is_refused_row_by_row_and_nothing_imported(db, cli, tmp_path):
    db.add_enterprise(CODES[0], name="原有", qualifications="")
    before = _tables()
    p = _xlsx(tmp_path / "e.xlsx", ("credit_code", "name", "region", "qualifications"), [
        (CODES[1], "好的", HZ, "tech_enterprise:2021-01-01"),              # row 2: good
        ("91330106MA2T00000X", "坏码", "", ""),                             # row 3: check digit
        (CODES[2], "x" * 201, "", ""),                                      # row 4: name too long
        (CODES[3], "坏资质", "", "magic:2021-01-01"),                       # row 5: unknown kind
        (CODES[4], "坏区", "410100", ""),                                   # row 6: region contradicts
        (CODES[1], "重复", "", ""),                                         # row 7: same as row 2
        (None, None, None, None),                                           # row 8: blank, skipped
        (CODES[0], "控制\u202e字符", "", ""),                                # row 9: a bidi override
    ])
    with pytest.raises(db.RegistryError) as e:
        db.import_enterprises_csv(p)
    assert [(x.line, x.field) for x in e.value.problems] == [
        (3, "credit_code"), (4, "name"), (5, "qualifications"), (6, "region"), (7, "credit_code"), (9, "name")]
    assert _tables() == before
    r = cli("enterprises", "import", p)
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 7 and lines[-1].endswith("6 rows refused; nothing was imported")
    assert all(f"{p}: line {n}: " in lines[i] for i, n in enumerate((3, 4, 5, 6, 7, 9)))
    assert _tables() == before


@pytest.mark.parametrize("content, needle", [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls) workbook is not read"),
    (None, "not a readable .xlsx workbook"),                             # a zip that is no workbook
    (b"PK\x03\x04garbage", "not a readable .xlsx workbook"),
])
def test_files_that_are_no_workbook_are_refused_in_one_line(db, tmp_path, content, needle):
    if content is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("hello.txt", "hi")
        content = buf.getvalue()
    p = tmp_path / "r.xlsx"
    p.write_bytes(content)
    with pytest.raises(db.RegistryError) as e:
        db.import_reviewers_csv(p)
    assert needle in str(e.value) and "\n" not in str(e.value) and e.value.line is None


def test_workbook_header_problems_and_empty_sheets(db, tmp_path):
    with pytest.raises(db.RegistryError, match="line 1: operator: unknown column"):
        db.import_reviewers_csv(_xlsx(tmp_path / "a.xlsx", ("reviewer_id", "bureau", "operator"), []))
    with pytest.raises(db.RegistryError, match="empty sheet"):
        db.import_reviewers_csv(_xlsx(tmp_path / "b.xlsx", (), []))
    assert db.import_reviewers_csv(_xlsx(tmp_path / "c.xlsx", ("reviewer_id", "bureau", "name"), [])) == 0
    # numbers and dates typed by Excel read as the text a CSV would hold
    p = _xlsx(tmp_path / "d.xlsx", ("credit_code", "name", "listed_on", "reason"),
              [(CODES[0], 12345, datetime(2025, 1, 2), 3.5)])
    assert db.import_blacklist_csv(p) == 1
    (row,) = db.blacklist_rows()
    assert (row["name"], row["listed_on"], row["reason"]) == ("12345", date(2025, 1, 2), "3.5")
