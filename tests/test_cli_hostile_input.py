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
    p = _write(tmp_path, "big.json", json.dumps({**data, "enterprise_code": "Ｘ\x1b" * 5_000_000}))
    err = _one_line_error(cli("submit", p), "enterprise_code")
    assert len(err) < 1000


@pytest.mark.parametrize("exc", [ValueError("bad \x1b[2J\nsecond line " + "y" * 1_000_000),
                                 RuntimeError("boom \x1b\x00 " + "z" * 1_000_000 + "\nsecond line")])
def test_describe_bounds_any_message_to_one_line(exc):
    from cli.errors import describe
    msg, _ = describe(exc)
    assert "\n" not in msg and "\r" not in msg and "\x1b" not in msg and "\x00" not in msg
    assert len(msg) < 600 and "chars)" in msg
