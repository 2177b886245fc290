"""Property: whatever a registry CSV file holds (random unicode with control characters, markup,
long strings, missing and extra cells, duplicate keys, bad dates and regions), an import ends in
exactly one of two ways: a clean RegistryError with the tables untouched, or every row imported as
written. Never another exception, never part of a file."""
from __future__ import annotations

import csv
import io
import re
import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlmodel import select

from calc.credit_code import make as make_code
from cli.safe_text import first_unsafe
from models.db import session
from models.tables import BlacklistEntry, EnterpriseRow, Reviewer

TODAY = date(2026, 6, 15)
SETTINGS = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

CODES = [make_code(f"91{region}MA2KX{n:04d}"[:17]) for region in ("330106", "330502") for n in range(4)]
HOSTILE = st.one_of(
    st.text(max_size=12),                                                    # any unicode, controls included
    st.sampled_from(["[/x]", "[bold red]x", "\x1b[31m红\x1b[0m", "a\x00b", "a\r\nb", "\u202e", "\ufeff", '"', ",",
                     "=1+1", " ", "", "\t", "\x85", "９１", ";", ":", "[link=x]y[/link]"]),
    st.text(st.sampled_from("名ab[]\x1b "), min_size=190, max_size=260),     # around the name limit
)


def _valid(column: str) -> st.SearchStrategy:
    """Cells for a column: mostly good, some subtly wrong (wrong check digit, contradicting region,
    unknown qualification, future date, bad id)."""
    good, bad = {
        "credit_code": (CODES + [c.lower() for c in CODES[:2]] + [f" {CODES[3]} "], [CODES[0][:-1] + "0", "91X"]),
        "name": (["杭州云栖智能科技有限公司", "[/x]", "王科技", "", " 甲 ", "=cmd|' /C calc'!A0", "e\u0301"], ["名" * 201]),
        "region": (["", "", "330106", "330502"], ["330100", "abc", "３３０１０６"]),
        "qualifications": (["", "tech_enterprise:2021-01-01", "high_tech:2023-06-01:2026-05-31;small_micro:2020-01-01:"],
                           ["bogus:2020-01-01", "high_tech:2026-01-01:2020-01-01", "high_tech:20230601"]),
        "listed_on": (["", "2025-08-01", str(TODAY), str(TODAY + timedelta(days=1))],
                      [str(TODAY + timedelta(days=2)), "2099-01-01", "2025-13-01", "20250801"]),
        "reason": (["严重失信", "", "[bold]x"], ["r" * 1001]),
        "reviewer_id": (["hz-a", "hz-b", "hz-c", "a.b@c_d", "X" * 64], ["hz a", "-x", "王", "x" * 65]),
        "bureau": (["杭州市科技局", "杭州市财政局", "湖州市财政局"], ["杭州市科技厅"]),
    }[column]
    return st.sampled_from(good * 6 + bad)


KINDS = {
    "enterprises": (("credit_code", "name"), ("region", "qualifications"), "import_enterprises_csv"),
    "reviewers": (("reviewer_id", "bureau"), ("name",), "import_reviewers_csv"),
    "blacklist": (("credit_code",), ("name", "listed_on", "reason"), "import_blacklist_csv"),
}


@st.composite
def csv_files(draw, kind: str) -> tuple[list[str], list[list[str]], str]:
    required, optional, _ = KINDS[kind]
    header = list(required) + [c for c in optional if draw(st.booleans())]
    header = draw(st.permutations(header))
    if draw(st.integers(0, 19)) == 0:
        header.append(draw(st.sampled_from(["extra", header[0], " "])))          # unknown, duplicate, blank
    hostile = draw(st.sampled_from([0, 0, 1, 3]))                 # in tenths: how many cells are hostile text
    rows = []
    for _ in range(draw(st.integers(0, 5))):
        row = [draw(HOSTILE) if draw(st.integers(0, 9)) < hostile or c not in KINDS[kind][0] + KINDS[kind][1]
               else draw(_valid(c)) for c in header]
        change = draw(st.sampled_from([0] * 30 + [-1, 1]))            # a short or an over-long row
        row = row[:change] if change < 0 else row + [draw(HOSTILE)] * change
        rows.append(row)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return header, rows, ("\ufeff" if draw(st.integers(0, 9)) == 0 else "") + buf.getvalue()


def _tables() -> dict:
    with session() as s:
        return {m.__tablename__: {tuple(sorted(r.model_dump().items())) for r in s.exec(select(m))}
                for m in (EnterpriseRow, Reviewer, BlacklistEntry)}


def _stored(s: str) -> str:
    return unicodedata.normalize("NFC", s.strip())


def _check_success(db, kind: str, header: list[str], rows: list[list[str]], n: int, before: dict, after: dict) -> None:
    """The import said yes: every row is in, as written, and nothing it should have refused is."""
    rows = [r for r in rows if r]                                      # an empty row is a blank line: skipped
    assert n == len(rows)
    cells = [dict(zip(header, r)) for r in rows]
    for row in rows:
        assert len(row) == len(header)
        for cell in row:
            assert first_unsafe(cell) is None, cell
    from models.clauses import known_bureaus
    if kind == "reviewers":
        keys = [_stored(c["reviewer_id"]) for c in cells]
        got = {r["reviewer_id"]: r for r in db.list_reviewers()}
        for c, key in zip(cells, keys):
            assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}", key)
            assert got[key]["bureau"] == _stored(c["bureau"]) and _stored(c["bureau"]) in known_bureaus()
            assert got[key]["name"] == _stored(c.get("name", ""))
        table, key_of = "reviewer", (lambda r: dict(r)["reviewer_id"])
    else:
        keys = [_stored(c["credit_code"]).upper() for c in cells]
        if kind == "enterprises":
            got = {r["credit_code"]: r for r in db.enterprise_rows()}
            for c, key in zip(cells, keys):
                region = _stored(c.get("region", ""))
                assert region in ("", key[2:8])
                assert got[key]["name"] == _stored(c["name"]) and got[key]["region"] == region
                assert len(got[key]["name"]) <= 200
                db.enterprise(key)                                          # loads for the calculation
            table = "enterprise"
        else:
            got = {r["credit_code"]: r for r in db.blacklist_rows()}
            for c, key in zip(cells, keys):
                listed = got[key]["listed_on"]
                assert listed is None or listed <= TODAY + timedelta(days=1)
                assert str(listed or "") == _stored(c.get("listed_on", ""))
                assert got[key]["reason"] == _stored(c.get("reason", ""))
            table = "blacklist"
        key_of = (lambda r: dict(r)["credit_code"])
    assert len(set(keys)) == len(keys), "duplicate keys imported"
    for name, rows_before in before.items():                           # rows not in the file: untouched
        untouched = {r for r in rows_before if name != table or key_of(r) not in set(keys)}
        assert untouched <= after[name]
    assert len(after[table]) == len({key_of(r) for r in before[table]} | set(keys))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_import_is_all_or_nothing_whatever_the_file(db, tmp_path, kind):
    path = tmp_path / "hostile.csv"
    fn = getattr(db, KINDS[kind][2])

    @SETTINGS
    @given(data=csv_files(kind))
    def check(data):
        header, rows, text = data
        path.write_bytes(text.encode("utf-8"))
        before = _tables()
        try:
            n = fn(path, today=TODAY) if kind == "blacklist" else fn(path)
        except db.RegistryError as e:
            event(f"refused: {e.field or e.rule.split(' ')[0]}")
            assert _tables() == before, "a refused import changed the tables"
            message = str(e)
            assert e.path == str(path) and message.startswith(str(path))
            assert first_unsafe(message) is None and len(message) < 2000, message
            return
        event(f"imported {min(n, 2)}{'+' if n > 1 else ''} rows")
        _check_success(db, kind, header, rows, n, before, _tables())

    check()
