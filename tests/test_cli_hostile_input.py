"""The CLI against hostile input and hostile stored text: registry refusals are one bounded line on
stderr with exit 2; names and comments carrying rich markup or terminal control sequences are shown
literally and visibly, never interpreted, never sent raw to the terminal."""
from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calc.credit_code import make as make_code

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CODE_A = make_code("91330106MA2KX0A01")
CODE_B = make_code("91330106MA2KX0A02")
HOSTILE = ["[/x]", "[bold red]x", "\x1b[31m红色\x1b[0m", "a\x00b", "[link=file:///etc/passwd]点我[/link]",
           "乙\u202e丙", ":smile:", "回车\r覆盖"]


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """`disburse ARGS...` in-process against a fresh SQLite file (stdout and stderr apart)."""
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.delenv("DISBURSE_DEBUG", raising=False)
    from cli.main import app
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return run


def _one_line_error(result, *needles: str, code: int = 2) -> str:
    assert result.exit_code == code, (result.exit_code, result.output)
    err = result.stderr
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("error: "), err
    assert "Traceback" not in result.output
    assert "\x1b" not in err and "\x00" not in err and "\r" not in err
    for n in needles:
        assert n in err, err
    return err.strip()


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# ------------------------------------------------------------------------------ registry errors

def test_a_refused_import_is_one_line_naming_file_line_field_with_exit_2(cli, tmp_path):
    p = _write(tmp_path, "ent.csv", f"credit_code,name,region,qualifications\n{CODE_A},甲,,\n{CODE_B},乙,410105,\n")
    err = _one_line_error(cli("enterprises", "import", p))
    assert err.startswith(f"error: {p}: line 3: region: 410105 contradicts")
    assert "enterprises: empty" in cli("enterprises", "list").stdout          # nothing written


def test_reviewers_import_command(cli, tmp_path):
    r = cli("reviewers", "import", EXAMPLES / "reviewers.csv")
    assert r.exit_code == 0, r.output
    n = len((EXAMPLES / "reviewers.csv").read_text(encoding="utf-8").strip().splitlines()) - 1
    assert f"reviewers: {n} imported" in r.stdout
    assert "hz-kjj" in cli("reviewers", "list").stdout
    dup = _write(tmp_path, "rev.csv", "reviewer_id,bureau,name\nhz-a,杭州市科技局,甲\nhz-a,杭州市财政局,甲\n")
    _one_line_error(cli("reviewers", "import", dup), "line 3", "reviewer_id", "line 2")


@pytest.mark.parametrize("what, header", [("enterprises", "credit_code,name"), ("reviewers", "reviewer_id,bureau"),
                                          ("blacklist", "credit_code,listed_on")])
def test_a_header_only_file_says_nothing_was_imported(cli, tmp_path, what, header):
    r = cli(what, "import", _write(tmp_path, "h.csv", header + "\n"))
    assert r.exit_code == 0, r.output
    assert "no rows" in r.stdout and "nothing imported" in r.stdout


def test_a_directory_and_an_empty_file_are_one_line(cli, tmp_path):
    (tmp_path / "d").mkdir()
    _one_line_error(cli("blacklist", "import", tmp_path / "d"), "is a directory")
    _one_line_error(cli("blacklist", "import", _write(tmp_path, "e.csv", "")), "empty file")


def test_utf16_file_names_the_expected_encoding(cli, tmp_path):
    p = tmp_path / "u16.csv"
    p.write_bytes(f"credit_code,name\n{CODE_A},杭州\n".encode("utf-16"))
    _one_line_error(cli("enterprises", "import", p), "u16.csv", "UTF-16", "CSV UTF-8")


def test_describe_gives_a_registry_error_exit_2_and_one_line():
    from cli.errors import describe
    from models.registry import RegistryError
    msg, code = describe(RegistryError("bad\nthing \x1b[2J", path="f.csv", line=3, field="name"))
    assert code == 2
    assert msg.startswith("f.csv: line 3: name: bad") and "\n" not in msg and "\x1b" not in msg


def test_reviewers_add_with_a_control_character_is_refused(cli):
    err = _one_line_error(cli("reviewers", "add", "hz-\x1b[2Jx", "--bureau", "杭州市科技局"), "reviewer_id")
    assert "U+001B" in err
    assert "hz-" not in cli("reviewers", "list").stdout


# ------------------------------------------------------------------------------ echoes are bounded

def test_a_huge_reviewer_id_is_not_echoed_whole(cli):
    err = _one_line_error(cli("reviewers", "add", "x" * 1_000_000, "--bureau", "杭州市科技局"))
    assert len(err) < 400


def test_a_huge_bureau_is_not_echoed_whole(cli):
    err = _one_line_error(cli("reviewers", "add", "hz-a", "--bureau", "局" * 1_000_000))
    assert len(err) < 400


def test_a_huge_clause_id_is_not_echoed_whole(cli, tmp_path):
    data = json.loads((EXAMPLES / "hz2025-04-tech-insurance-premium.json").read_text(encoding="utf-8"))
    p = _write(tmp_path, "big.json", json.dumps({**data, "clause_id": "hz" + "9" * 10_000_000}))
    err = _one_line_error(cli("submit", p), "clause_id")
    assert len(err) < 1000


def test_a_huge_credit_code_is_not_echoed_whole(cli, tmp_path):
    data = json.loads((EXAMPLES / "hz2025-04-tech-insurance-premium.json").read_text(encoding="utf-8"))
    # 2.4 MB of JSON: under the 5 MB file limit, so the field itself is refused (and not echoed whole)
    p = _write(tmp_path, "big.json", json.dumps({**data, "enterprise_code": "Ｘ\x1b" * 200_000}))
    err = _one_line_error(cli("submit", p), "enterprise_code")
    assert len(err) < 1000


@pytest.mark.parametrize("exc", [ValueError("bad \x1b[2J\nsecond line " + "y" * 1_000_000),
                                 RuntimeError("boom \x1b\x00 " + "z" * 1_000_000 + "\nsecond line")])
def test_describe_bounds_any_message_to_one_line(exc):
    from cli.errors import describe
    msg, _ = describe(exc)
    assert "\n" not in msg and "\r" not in msg and "\x1b" not in msg and "\x00" not in msg
    assert len(msg) < 600 and "chars)" in msg


# ------------------------------------------------------------------------------ stored text shown inertly

def _store(tmp_path, *rows) -> None:
    """Rows written straight into the database, as an older version or another writer might have."""
    import os
    os.environ["DISBURSE_DB_URL"] = f"sqlite:///{tmp_path / 'disburse.db'}"   # the cli fixture's, restored by it
    from models.db import session
    with session() as s:
        for r in rows:
            s.add(r)
        s.commit()


def _assert_inert(stdout: str) -> None:
    assert "\x1b" not in stdout and "\x00" not in stdout and "\r" not in stdout and "\u202e" not in stdout
    assert "[/x]" in stdout and "[bold red]x" in stdout and ":smile:" in stdout
    assert "\\x1b[31m红色\\x1b[0m" in stdout and "a\\x00b" in stdout and "乙\\u202e丙" in stdout
    assert "[link=file:///etc/passwd]点我[/link]" in stdout and "回车\\r覆盖" in stdout


def test_enterprises_list_shows_hostile_names_literally(cli, tmp_path):
    from models.tables import EnterpriseRow
    codes = [make_code(f"91330106MA2KX1{i:03d}") for i in range(len(HOSTILE))]
    _store(tmp_path, *[EnterpriseRow(credit_code=c, name=n, region="[bold]", qualifications="\x1b[2J")
                       for c, n in zip(codes, HOSTILE)])
    r = cli("enterprises", "list")
    assert r.exit_code == 0, r.output
    _assert_inert(r.stdout)
    assert "\\x1b[2J" in r.stdout


def test_markup_names_go_in_through_the_import_and_come_out_literally(cli, tmp_path):
    p = _write(tmp_path, "ent.csv", f'credit_code,name\n{CODE_A},[/x]\n{CODE_B},"[bold red]x"\n')
    assert cli("enterprises", "import", p).exit_code == 0
    r = cli("enterprises", "list")
    assert r.exit_code == 0, r.output
    assert "[/x]" in r.stdout and "[bold red]x" in r.stdout


def test_reviewers_list_shows_hostile_names_literally(cli, tmp_path):
    from models.tables import Reviewer
    _store(tmp_path, *[Reviewer(reviewer_id=f"hz-{i}", bureau="杭州市科技局", name=n) for i, n in enumerate(HOSTILE)])
    r = cli("reviewers", "list")
    assert r.exit_code == 0, r.output
    _assert_inert(r.stdout)


def test_blacklist_list_shows_hostile_text_literally(cli, tmp_path):
    from models.tables import BlacklistEntry
    codes = [make_code(f"91330106MA2KX2{i:03d}") for i in range(len(HOSTILE))]
    _store(tmp_path, *[BlacklistEntry(credit_code=c, name=n, reason=n, listed_on=date(2025, 1, 1))
                       for c, n in zip(codes, HOSTILE)])
    r = cli("blacklist", "list")
    assert r.exit_code == 0, r.output
    _assert_inert(r.stdout)


def _rendered(fn, *args) -> str:
    import io

    from rich.console import Console
    buf = io.StringIO()
    fn(Console(file=buf, width=300, color_system=None, highlight=False, soft_wrap=True), *args)
    return buf.getvalue()


def test_status_shows_hostile_names_and_comments_literally():
    from cli import show
    st = {"application_id": "app-[/x]", "status": "review", "overdue": True, "clause_id": "[bold]c",
          "enterprise_name": " ".join(HOSTILE), "enterprise_code": CODE_A, "year": 2026,
          "required_bureaus": ["[/x]局"], "awarded": "0", "note": "\x1b]8;;http://evil\x1b\\点\x1b]8;;\x1b\\",
          "decisions": [{"when": "2026-01-01T00:00:00", "kind": "approve", "who": "hz-kjj", "bureau": "[/x]",
                         "comment": "\n".join(HOSTILE), "amount": None}],
          "tranches": [{"year": 2026, "seq": 1, "due": "2026-02-01", "amount": "1", "state": "[/x]",
                        "clause_id": "[bold red]x"}]}
    calculation = {"clause_id": "[/x]", "year": 2026, "refusal": {"code": "[/x]", "reason": "\x1b[31m[bold]"},
                   "trace": [{"step": "[/x]", "formula": "[bold red]x", "result": "\x00", "rule": "[/]", "cite": "[/x]"}]}
    out = _rendered(show.application, st, calculation)
    _assert_inert(out)
    assert "OVERDUE" in out and "app-[/x]" in out and "[/x]局" in out and "\\x1b]8;;http://evil" in out
    assert "refused: [/x]: \\x1b[31m[bold]" in out


def test_applications_table_shows_hostile_values_literally():
    from cli import show
    rows = [{"id": "app-[/x]", "status": "\x1b[31mreview", "amount": "12", "bureaus": ["[bold red]x"]}]
    out = _rendered(show.applications, rows, 'ClauseId = "[/x]"')
    assert "app-[/x]" in out and "\\x1b[31mreview" in out and "[bold red]x" in out and 'ClauseId = "[/x]"' in out
    assert "\x1b" not in out
    assert "no applications match" in _rendered(show.applications, [], "")


@pytest.mark.parametrize("args", [
    ("approve", "app-[/x]\x1b[2J", "--reviewer", "[bold]r"),
    ("reject", "app-[/x]", "--reviewer", "[bold]r", "--comment", "no"),
    ("request-info", "app-[/x]", "--reviewer", "r", "--comment", "more"),
    ("confirm-year", "app-[/x]", "--reviewer", "r"),
    ("withdraw", "app-[/x]", "--operator", "r"),
    ("revoke", "app-[/x]", "--reviewer", "r", "--reason", "x"),
])
def test_confirmation_messages_echo_ids_literally(cli, monkeypatch, args):
    import cli.main as main
    monkeypatch.setattr(main, "run", lambda *a, **k: None)          # no Temporal server: the message only
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert "app-[/x]" in r.stdout and "\x1b" not in r.stdout


def test_json_output_escapes_terminal_controls_losslessly(cli, tmp_path):
    from datetime import datetime, timezone
    from decimal import Decimal

    from models.tables import LedgerEntry
    label = "\x9b31m红\u202e\x1b[0m\u2028"
    _store(tmp_path, LedgerEntry(application_id="app-1", clause_id="c", enterprise_code=CODE_A, year=2026, seq=1,
                                 item_id="[/x]", amount=Decimal("1.00"), label=label,
                                 paid_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    r = cli("ledger", "--json")
    assert r.exit_code == 0, r.output
    for ch in ("\x9b", "\u202e", "\x1b", "\u2028"):
        assert ch not in r.stdout
    assert json.loads(r.stdout)[0]["label"] == label                 # the same value, escaped
    assert "红" in r.stdout                                           # still readable
    table = cli("ledger")
    assert table.exit_code == 0 and "[/x]" in table.stdout and "\x9b" not in table.stdout


def test_list_query_echo_is_visible(cli, monkeypatch):
    import cli.main as main
    monkeypatch.setattr(main, "run", lambda *a, **k: [])
    r = cli("list", "--clause", "a\x1b[2Jb", "--query")
    assert r.exit_code == 0, r.output
    assert "\x1b" not in r.stderr and "\x1b" not in r.stdout and "a\\x1b[2Jb" in r.stderr
