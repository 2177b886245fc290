"""The registry imports (enterprises, reviewers, blacklist) treat a CSV file as a claim: every row is
checked before anything is written, a refusal is one RegistryError naming file, line, field and
rule, and a refused import leaves the tables exactly as they were."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from calc.credit_code import make as make_code
from models.db import session
from models.tables import BlacklistEntry, EnterpriseRow, Reviewer

HZ = "330106"
CODE_A = make_code(f"91{HZ}MA2KX0A01"[:17])
CODE_B = make_code(f"91{HZ}MA2KX0A02"[:17])
CODE_C = make_code(f"91{HZ}MA2KX0A03"[:17])

ENTERPRISE_HEADER = "credit_code,name,region,qualifications"
REVIEWER_HEADER = "reviewer_id,bureau,name"
BLACKLIST_HEADER = "credit_code,name,listed_on,reason"


def _csv(tmp_path: Path, text: str, name: str = "in.csv", encoding: str = "utf-8") -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode(encoding))
    return p


def _tables() -> dict:
    """Everything the imports can touch, as plain data (to compare before and after)."""
    with session() as s:
        return {model.__tablename__: sorted(tuple(sorted(r.model_dump().items())) for r in s.exec(select(model)))
                for model in (EnterpriseRow, Reviewer, BlacklistEntry)}


def _refused(db, fn, path: Path, *, line: int | None, field: str | None, rule: str | None = None):
    """Run an import that must be refused: a RegistryError naming file, line and field, one line of
    text, and no table changed."""
    before = _tables()
    with pytest.raises(db.RegistryError) as info:
        fn(path)
    e = info.value
    assert isinstance(e, ValueError)
    text = str(e)
    assert "\n" not in text and "\r" not in text, text
    assert e.path == str(path)
    assert text.startswith(f"{path}: "), text
    assert e.line == line, text
    if line is not None:
        assert f": line {line}: " in text, text
    assert e.field == field, text
    if field is not None:
        assert f": {field}: " in text, text
    if rule is not None:
        assert rule in e.rule, text
    assert _tables() == before, "a refused import changed the tables"
    return e


# ------------------------------------------------------------------------------ the error type

def test_registry_error_has_path_line_field_rule(db):
    e = db.RegistryError("must not be empty", path="x.csv", line=3, field="name")
    assert isinstance(e, ValueError)
    assert (e.path, e.line, e.field, e.rule) == ("x.csv", 3, "name", "must not be empty")
    assert str(e) == "x.csv: line 3: name: must not be empty"
    assert str(db.RegistryError("bad", field="bureau")) == "bureau: bad"
    assert str(db.RegistryError("empty file", path="y.csv")) == "y.csv: empty file"


# ------------------------------------------------------------------------------ 5. the CSV reader

def test_utf16_with_bom_names_the_expected_encoding(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},杭州,,\n", encoding="utf-16")
    e = _refused(db, db.import_enterprises_csv, p, line=None, field=None)
    assert "UTF-16" in e.rule and "UTF-8" in e.rule and "CSV UTF-8" in e.rule


def test_gbk_names_the_line_and_the_expected_encoding(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},ok,,\n{CODE_B},杭州,,\n", encoding="gbk")
    e = _refused(db, db.import_enterprises_csv, p, line=3, field=None)
    assert "not UTF-8 text" in e.rule and "CSV UTF-8" in e.rule


def test_utf8_bom_is_accepted(db, tmp_path):
    p = _csv(tmp_path, f"\ufeff{ENTERPRISE_HEADER}\n{CODE_A},杭州,,\n")
    assert db.import_enterprises_csv(p) == 1


def test_a_directory_is_refused(db, tmp_path):
    d = tmp_path / "dir.csv"
    d.mkdir()
    e = _refused(db, db.import_enterprises_csv, d, line=None, field=None)
    assert "directory" in e.rule


def test_a_missing_file_is_refused(db, tmp_path):
    e = _refused(db, db.import_reviewers_csv, tmp_path / "nope.csv", line=None, field=None)
    assert "no such file" in e.rule


@pytest.mark.parametrize("content", ["", "   \n\n", "\ufeff"])
def test_an_empty_file_is_refused(db, tmp_path, content):
    e = _refused(db, db.import_blacklist_csv, _csv(tmp_path, content), line=None, field=None)
    assert "empty" in e.rule and "credit_code" in e.rule      # says which header it expected


@pytest.mark.parametrize("fn, header", [
    ("import_enterprises_csv", ENTERPRISE_HEADER), ("import_reviewers_csv", REVIEWER_HEADER),
    ("import_blacklist_csv", BLACKLIST_HEADER)])
def test_a_header_only_file_imports_nothing(db, tmp_path, fn, header):
    before = _tables()
    assert getattr(db, fn)(_csv(tmp_path, header + "\n")) == 0
    assert _tables() == before


def test_missing_column_names_it(db, tmp_path):
    _refused(db, db.import_enterprises_csv, _csv(tmp_path, "credit_code,region\nX,Y\n"), line=1, field="name",
             rule="missing column")


def test_duplicate_and_unknown_columns_are_refused(db, tmp_path):
    _refused(db, db.import_enterprises_csv, _csv(tmp_path, "credit_code,name,name\nA,B,C\n"), line=1,
             field="name", rule="twice")
    e = _refused(db, db.import_blacklist_csv, _csv(tmp_path, "credit_code,listed_0n\nA,B\n"), line=1,
                 field="listed_0n", rule="unknown column")
    assert "listed_on" in e.rule                                  # says what was expected


def test_short_row_is_refused(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,{HZ},\n{CODE_B},乙\n")
    _refused(db, db.import_enterprises_csv, p, line=3, field="region", rule="2 cells")


def test_over_long_row_is_refused(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-a,杭州市科技局,甲\nhz-b,杭州市科技局,乙,extra\n")
    _refused(db, db.import_reviewers_csv, p, line=3, field="column 4", rule="4 cells")


def test_blank_lines_are_skipped_and_lines_counted(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\n\nhz-a,杭州市科技局,甲\n\nhz-b,杭州市科技厅,乙\n")
    _refused(db, db.import_reviewers_csv, p, line=5, field="bureau", rule="not a responsible bureau")


def test_malformed_quoting_is_refused(db, tmp_path):
    p = _csv(tmp_path, f'{REVIEWER_HEADER}\nhz-a,杭州市科技局,"甲"x\n')
    _refused(db, db.import_reviewers_csv, p, line=2, field=None, rule="malformed CSV")


@pytest.mark.parametrize("bad, shown", [
    ("\x00", "U+0000"), ("\x1b[31m红\x1b[0m", "U+001B"), ("a\tb", "U+0009"), ("\x7f", "U+007F"),
    ("\x9b31m", "U+009B"), ("a\u202eb", "U+202E"), ("a\u2028b", "U+2028"), ("a\rb", "U+000D")])
def test_control_characters_in_a_cell_are_refused(db, tmp_path, bad, shown):
    p = _csv(tmp_path, f'{ENTERPRISE_HEADER}\n{CODE_A},甲,,\n{CODE_B},"乙{bad}",,\n')
    e = _refused(db, db.import_enterprises_csv, p, line=3, field="name", rule=shown)
    assert "\x1b" not in str(e) and "\x00" not in str(e)


def test_control_character_in_the_header_is_refused(db, tmp_path):
    _refused(db, db.import_reviewers_csv, _csv(tmp_path, "reviewer_id,bureau\x1b,name\n"), line=1,
             field="column 2", rule="U+001B")


def test_over_long_cells_are_refused(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},{'名' * 201},,\n")
    e = _refused(db, db.import_enterprises_csv, p, line=2, field="name", rule="200")
    assert len(str(e)) < 300
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\n{'a' * 65},杭州市科技局,甲\n")
    _refused(db, db.import_reviewers_csv, p, line=2, field="reviewer_id", rule="64")


def test_a_huge_cell_is_refused_without_echoing_it(db, tmp_path):
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{'9' * 1_000_000},x,,\n")
    e = _refused(db, db.import_blacklist_csv, p, line=2, field="credit_code")
    assert len(str(e)) < 300


def test_file_size_and_row_limits(db, tmp_path, monkeypatch):
    monkeypatch.setattr(db, "MAX_ROWS", 2)
    rows = "".join(f"hz-{i},杭州市科技局,x\n" for i in range(3))
    _refused(db, db.import_reviewers_csv, _csv(tmp_path, REVIEWER_HEADER + "\n" + rows), line=4, field=None,
             rule="more than 2 rows")
    monkeypatch.setattr(db, "MAX_FILE_BYTES", 100)
    e = _refused(db, db.import_reviewers_csv, _csv(tmp_path, REVIEWER_HEADER + "\n" + "x" * 200), line=None,
                 field=None)
    assert "larger than" in e.rule


# ------------------------------------------------------------------------------ 1. all-or-nothing

def test_reviewers_import_is_all_or_nothing(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-new1,杭州市科技局,甲\nhz-new2,杭州市科技局,乙\n"
                       f"hz-czj,杭州市科技局,moved\nhz-new3,杭州市科技厅,丙\n")
    _refused(db, db.import_reviewers_csv, p, line=5, field="bureau", rule="not a responsible bureau")
    ids = {r["reviewer_id"] for r in db.list_reviewers()}
    assert not ids & {"hz-new1", "hz-new2", "hz-new3"}
    assert db.reviewer_snapshot()["hz-czj"] == "杭州市财政局"


def test_enterprises_import_is_all_or_nothing(db, tmp_path):
    db.add_enterprise(CODE_A, name="原名", region=HZ)
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},新名,{HZ},\n{CODE_B},乙,{HZ},\n{CODE_C[:-1]}0,丙,,\n")
    _refused(db, db.import_enterprises_csv, p, line=4, field="credit_code", rule="check digit")
    assert [(r["credit_code"], r["name"]) for r in db.enterprise_rows()] == [(CODE_A, "原名")]


def test_blacklist_import_is_all_or_nothing(db, tmp_path):
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,2025-01-01,r\n{CODE_B},乙,2025-13-01,r\n")
    _refused(db, db.import_blacklist_csv, p, line=3, field="listed_on", rule="not a date")
    assert db.blacklist_rows() == []


def test_the_first_problem_is_named_and_the_others_counted(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-a,杭州市科技厅,甲\nhz-b\nhz-c,杭州市科技局,丙\nhz-d,,丁\n")
    e = _refused(db, db.import_reviewers_csv, p, line=2, field="bureau")
    assert e.more == 2 and "(and 2 more problems in the file)" in str(e)


def test_a_good_import_writes_every_row(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-new1,杭州市科技局,甲\n  hz-new2 , 杭州市财政局 ,乙 \n")
    assert db.import_reviewers_csv(p) == 2
    snap = db.reviewer_snapshot()
    assert snap["hz-new1"] == "杭州市科技局" and snap["hz-new2"] == "杭州市财政局"


# ------------------------------------------------------------------------------ 2. duplicates in a file

def test_duplicate_reviewer_in_a_file_is_refused_naming_both_lines(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-new,杭州市科技局,甲\nhz-other,杭州市财政局,乙\nhz-new,杭州市财政局,甲\n")
    e = _refused(db, db.import_reviewers_csv, p, line=4, field="reviewer_id", rule="line 2")
    assert "hz-new" in e.rule
    assert "hz-new" not in db.reviewer_snapshot()


def test_duplicate_credit_code_in_an_enterprise_file_is_refused(db, tmp_path):
    # the same code, once in lower case: still the same enterprise
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,,\n{CODE_B},乙,,\n{CODE_A.lower()},丙,,\n")
    e = _refused(db, db.import_enterprises_csv, p, line=4, field="credit_code", rule="line 2")
    assert CODE_A in e.rule


def test_duplicate_credit_code_in_a_blacklist_file_is_refused(db, tmp_path):
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,2025-01-01,r1\n{CODE_A},甲,2025-02-01,r2\n")
    _refused(db, db.import_blacklist_csv, p, line=3, field="credit_code", rule="line 2")


# ------------------------------------------------------------------------------ 3. enterprise rows

@pytest.mark.parametrize("region, rule", [
    ("abc", "6 digits"), ("33010", "6 digits"), ("３３０１０６", "6 digits"), ("330100", "contradicts"),
    ("410105", "contradicts")])
def test_enterprise_region_must_be_the_credit_codes(db, tmp_path, region, rule):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,{HZ},\n{CODE_B},乙,{region},\n")
    e = _refused(db, db.import_enterprises_csv, p, line=3, field="region", rule=rule)
    if rule == "contradicts":
        assert HZ in e.rule                                  # says what the credit code carries


def test_enterprise_region_empty_or_matching_is_accepted(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,{HZ},\n{CODE_B},乙,,\n")
    assert db.import_enterprises_csv(p) == 2
    ent = db.enterprise(CODE_B)
    assert ent.region_code == HZ


def test_add_enterprise_refuses_a_contradicting_region(db):
    with pytest.raises(db.RegistryError) as info:
        db.add_enterprise(CODE_A, name="甲", region="410105")
    assert info.value.field == "region" and str(info.value).startswith("region: ")
    with pytest.raises(db.RegistryError):
        db.add_enterprise(CODE_A, name="甲", region="abc")
    assert db.enterprise_rows() == []


@pytest.mark.parametrize("quals, rule", [
    ("tech_enterprize:2021-01-01", "unknown qualification kind"),
    ("high_tech:2026-05-31:2023-06-01", "before"),
    ("high_tech:2023-6-1", "not a date"),
    ("high_tech:20230601", "not a date"),
    ("high_tech:2023-02-30", "not a date"),
    ("high_tech:2023-W01-1", "not a date"),
    ("high_tech", "kind:from[:to]"),
    ("high_tech:2021-01-01:2022-01-01:2023-01-01", "kind:from[:to]"),
])
def test_enterprise_qualifications_are_checked(db, tmp_path, quals, rule):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,,tech_enterprise:2021-01-01\n{CODE_B},乙,,{quals}\n")
    _refused(db, db.import_enterprises_csv, p, line=3, field="qualifications", rule=rule)


def test_enterprise_qualifications_are_stored_canonically_and_load(db, tmp_path):
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n{CODE_A},甲,, high_tech : 2023-06-01 : 2026-05-31 ;small_micro:2020-01-01:;\n")
    assert db.import_enterprises_csv(p) == 1
    assert db.enterprise_rows()[0]["qualifications"] == "high_tech:2023-06-01:2026-05-31;small_micro:2020-01-01"
    ent = db.enterprise(CODE_A)
    assert ent.qualified(["high_tech"], date(2024, 1, 1)) and not ent.qualified(["high_tech"], date(2026, 6, 1))


def test_add_enterprise_refuses_an_unknown_qualification(db):
    with pytest.raises(db.RegistryError) as info:
        db.add_enterprise(CODE_A, name="甲", qualifications="bogus:2020-01-01")
    assert info.value.field == "qualifications"
    assert db.enterprise_rows() == []


def test_malformed_listed_on_is_refused(db, tmp_path):
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,20250101,r\n")
    _refused(db, db.import_blacklist_csv, p, line=2, field="listed_on", rule="not a date")


def test_non_ascii_credit_code_is_refused(db, tmp_path):
    # 'ﬀ' upper-cases to 'FF': a code must be refused as written, not repaired into a valid one
    p = _csv(tmp_path, f"{ENTERPRISE_HEADER}\n91330106MA2KX0A0ﬀ,甲,,\n")
    _refused(db, db.import_enterprises_csv, p, line=2, field="credit_code", rule="non-ASCII")


def test_rows_stored_before_the_checks_still_load(db):
    # an earlier import took any ISO 8601 date: such a row must not stop the calculation now
    with session() as s:
        s.add(EnterpriseRow(credit_code=CODE_A, name="甲", qualifications="high_tech:20230601"))
        s.commit()
    assert db.enterprise(CODE_A).qualified(["high_tech"], date(2024, 1, 1))


# ------------------------------------------------------------------------------ 3. blacklist dates

def test_china_day_is_asia_shanghai(db):
    from datetime import datetime, timezone
    assert db.china_day(datetime(2026, 1, 1, 15, 59, tzinfo=timezone.utc)) == date(2026, 1, 1)
    assert db.china_day(datetime(2026, 1, 1, 16, 0, tzinfo=timezone.utc)) == date(2026, 1, 2)
    assert db.china_day(date(2026, 3, 4)) == date(2026, 3, 4)
    with pytest.raises(TypeError):
        db.china_day(datetime(2026, 1, 1, 12, 0))            # naive: which zone? refused
    assert db.today_cn() in (date.today() - timedelta(days=1), date.today(), date.today() + timedelta(days=1))


def test_blacklist_listed_in_the_future_is_refused(db, tmp_path):
    today = db.today_cn()
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,2025-01-01,r\n{CODE_B},乙,2099-01-01,r\n")
    e = _refused(db, db.import_blacklist_csv, p, line=3, field="listed_on", rule="future")
    assert str(today) in e.rule and "Asia/Shanghai" in e.rule
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_B},乙,{today + timedelta(days=2)},r\n")
    _refused(db, db.import_blacklist_csv, p, line=2, field="listed_on", rule="future")
    with pytest.raises(db.RegistryError) as info:
        db.add_blacklist(CODE_A, reason="r", listed_on=date(2099, 1, 1))
    assert info.value.field == "listed_on"
    assert db.blacklist_rows() == []


def test_blacklist_entry_counts_from_its_listed_on_date(db, tmp_path):
    today = db.today_cn()
    tomorrow = today + timedelta(days=1)                      # within the tolerance: accepted
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,{tomorrow},r\n{CODE_B},乙,{today},r\n{CODE_C},丙,,r\n")
    assert db.import_blacklist_csv(p) == 3
    assert db.blacklist_entry(CODE_A) is None                 # not yet: listed tomorrow (China time)
    assert db.blacklist_entry(CODE_A, on=today) is None
    assert db.blacklist_entry(CODE_A, on=tomorrow)["reason"] == "r"
    assert db.blacklist_entry(CODE_A, tomorrow + timedelta(days=400)) is not None
    assert db.blacklist_entry(CODE_B) is not None and db.blacklist_entry(CODE_B, on=today - timedelta(days=1)) is None
    assert db.blacklist_entry(CODE_C, on=date(1990, 1, 1)) is not None   # no date: listed without a start


def test_blacklist_entry_takes_an_aware_moment_as_china_day(db):
    from datetime import datetime, timezone
    db.add_blacklist(CODE_A, reason="r", listed_on=date(2026, 1, 2), today=date(2026, 1, 1))
    assert db.blacklist_entry(CODE_A, on=datetime(2026, 1, 1, 15, 59, tzinfo=timezone.utc)) is None
    assert db.blacklist_entry(CODE_A, on=datetime(2026, 1, 1, 16, 0, tzinfo=timezone.utc)) is not None


def test_blacklist_import_takes_the_day_to_judge_the_future_by(db, tmp_path):
    p = _csv(tmp_path, f"{BLACKLIST_HEADER}\n{CODE_A},甲,2030-01-02,r\n")
    _refused(db, lambda path: db.import_blacklist_csv(path, today=date(2029, 12, 31)), p, line=2, field="listed_on")
    assert db.import_blacklist_csv(p, today=date(2030, 1, 1)) == 1


# ------------------------------------------------------------------------------ 4. reviewer ids and names

@pytest.mark.parametrize("rid, rule", [
    ("", "empty"), ("   ", "empty"), ("hz kjj", "letters, digits"), ("hz/kjj", "letters, digits"),
    ("王科", "letters, digits"), ("-hz", "letters, digits"), ("hz;drop", "letters, digits"),
    ("hz-kjj\x1b[2J", "U+001B"), ("hz\x00", "U+0000"), ("a" * 65, "64"), ("ｈｚ", "letters, digits")])
def test_reviewer_id_is_refused(db, rid, rule):
    before = db.reviewer_snapshot()
    with pytest.raises(db.RegistryError) as info:
        db.add_reviewer(rid, "杭州市科技局", "x")
    assert info.value.field == "reviewer_id" and rule in info.value.rule
    assert db.reviewer_snapshot() == before


@pytest.mark.parametrize("rid", ["hz-kjj2", "a.b@c_d-1", "A" * 64, "1"])
def test_reviewer_id_is_accepted(db, rid):
    db.add_reviewer(rid, "杭州市科技局", "x")
    assert db.reviewer_snapshot()[rid] == "杭州市科技局"


def test_reviewer_name_with_control_characters_is_refused(db):
    with pytest.raises(db.RegistryError) as info:
        db.add_reviewer("hz-new", "杭州市科技局", "王\x1b[31m科")
    assert info.value.field == "name"
    with pytest.raises(db.RegistryError) as info:
        db.add_reviewer("hz-new", "杭州市科技局", "王" * 201)
    assert info.value.field == "name"
    assert "hz-new" not in db.reviewer_snapshot()


def test_reviewer_id_charset_in_an_import(db, tmp_path):
    p = _csv(tmp_path, f"{REVIEWER_HEADER}\nhz-ok,杭州市科技局,甲\nhz ok,杭州市科技局,乙\n")
    _refused(db, db.import_reviewers_csv, p, line=3, field="reviewer_id", rule="letters, digits")
