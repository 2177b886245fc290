"""cli/safe_text.py: user-supplied text made harmless for a terminal and a spreadsheet."""
from __future__ import annotations

import pytest

from cli import safe_text


@pytest.mark.parametrize("raw, want", [
    ("plain 杭州", "plain 杭州"), ("a\x1b[31mb", "a\\x1b[31mb"), ("\x00", "\\x00"), ("a\nb", "a\\nb"),
    ("\x9b", "\\x9b"), ("\x7f", "\\x7f"), ("a\u202eb", "a\\u202eb"), ("\u2028", "\\u2028"), ("[bold]", "[bold]"),
])
def test_visible(raw, want):
    assert safe_text.visible(raw) == want


def test_visible_keeps_what_it_is_told_to():
    assert safe_text.visible("a\nb\tc\x1b", keep="\n\t") == "a\nb\tc\\x1b"


def test_first_unsafe_and_codepoint():
    assert safe_text.first_unsafe("ok") is None
    assert safe_text.first_unsafe("ab\x1bc") == (2, "\x1b")
    assert safe_text.first_unsafe("a\tb", keep="\t") is None
    assert safe_text.codepoint("\x1b") == "U+001B"
    assert safe_text.codepoint("\u202e") == "U+202E RIGHT-TO-LEFT OVERRIDE"


def test_shown_clips_long_values_and_says_how_long():
    assert safe_text.shown("x" * 80) == "x" * 80
    out = safe_text.shown("x" * 10_000_000)
    assert out == "x" * 80 + "… (10,000,000 chars)"
    assert safe_text.shown(None) == ""


def test_one_line_is_one_bounded_line():
    out = safe_text.one_line("error\nsecond line\r\x1b[2J" + "y" * 10_000)
    assert "\n" not in out and "\r" not in out and "\x1b" not in out
    assert len(out) < safe_text.MESSAGE_LIMIT + 40


def test_inert_is_literal_text():
    from rich.console import Console
    from rich.text import Text
    t = safe_text.inert("[bold red]x[/] [/x] :smile: \x1b[31m")
    assert isinstance(t, Text) and t.plain == "[bold red]x[/] [/x] :smile: \\x1b[31m"
    c = Console(record=True, width=200, color_system=None)
    c.print(t)
    assert c.export_text().strip() == "[bold red]x[/] [/x] :smile: \\x1b[31m"
    assert safe_text.inert("a\nb\tc").plain == "a\\nb\\tc"
    assert safe_text.inert("a\nb\tc\x00", multiline=True).plain == "a\nb\tc\\x00"
    assert safe_text.inert(None).plain == ""


def test_json_text_escapes_unsafe_characters_to_the_same_value():
    import json
    value = {"name": "杭州\x9b\u202e\u2028\x1b", "list": [1, "x"]}
    text = safe_text.json_text(json.dumps(value, ensure_ascii=False, indent=2))
    assert safe_text.first_unsafe(text, keep="\n") is None
    assert "杭州" in text and json.loads(text) == value


@pytest.mark.parametrize("raw, want", [
    ("=HYPERLINK(\"http://evil\",\"点\")", "'=HYPERLINK(\"http://evil\",\"点\")"),
    ("+1+2", "'+1+2"), ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("\x00=1", "'\x00=1"), ("＝1+1", "'＝1+1"),
    ("杭州云栖", "杭州云栖"), ("a=b", "a=b"), ("", ""), (None, ""), ("'already", "'already"),
])
def test_spreadsheet_cell_neutralises_formulas(raw, want):
    assert safe_text.spreadsheet_cell(raw) == want


def test_spreadsheet_cell_leaves_numbers_alone():
    from decimal import Decimal
    assert safe_text.spreadsheet_cell(Decimal("-350000.00")) == Decimal("-350000.00")
    assert safe_text.spreadsheet_cell(-3) == -3
    assert safe_text.spreadsheet_cell(True) == "True"


def test_spreadsheet_cells_through_the_csv_writer():
    import csv
    import io
    buf = io.StringIO()
    csv.writer(buf).writerow([safe_text.spreadsheet_cell(v) for v in ('=1+1,"x"', "ok", -5)])
    assert buf.getvalue() == '"\'=1+1,""x""",ok,-5\r\n'
