"""The `disburse` CLI without a Temporal server: registries, input errors, the examples."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CATALOGUE_CLAUSES = (
    "hz2025-01-tech-loan-interest", "hz2025-02-ecosystem-equipment-loan-interest",
    "hz2025-02-future-industry-loan-interest", "hz2025-03-computing-infra-loan-interest",
    "hz2025-04-tech-insurance-premium", "hz2025-05-ip-overseas-insurance-premium",
    "hz2025-05-ip-other-insurance-premium", "hz2025-06-first-set-equipment-insurance",
    "hz2025-06-first-batch-materials-insurance", "hz2025-09-vc-early-stage-reward",
    "hz2025-12-bank-ip-pledge-ranking", "hz2025-12-ip-pledge-service-reward",
    "hz2025-12-ip-securitization-manager-reward", "hz2025-13-guarantee-small-micro-subsidy",
    "hz2025-13-guarantee-tech-award", "hz2025-15-agri-leafy-veg-price-insurance",
    "hz2025-15-agri-other-insurance", "hz2025-15-agri-county-pilot-insurance",
    "hu2023-04-ip-pledge-loan-interest", "hu2023-04-ip-insurance-premium",
    "hu2023-04-guarantee-tech-reward", "hu2023-05-ip-securitization-subsidy", "hu2023-06-listing-reward",
    "zz2025-2.1-new-tech-finance-institution", "zz2025-2.2-tech-insurance-premium",
    "zz2025-3.1-bank-tech-loan-growth", "zz2025-3.3-ip-securitization-issuer",
    "py2024-05-use-first-transfer-insurance",
)


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run `disburse ARGS...` in-process against a fresh SQLite file; returns the result."""
    monkeypatch.setenv("DISBURSE_DB_URL", f"sqlite:///{tmp_path / 'disburse.db'}")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:1")      # nothing listens there
    monkeypatch.delenv("DISBURSE_DEBUG", raising=False)
    from cli.main import app
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)
    return run


def _application_input_model():
    try:
        from models import ApplicationInput
    except ImportError:
        pytest.skip("models.ApplicationInput has not landed yet")
    return ApplicationInput


def _one_line_error(result, *needles: str) -> str:
    assert result.exit_code != 0, result.output
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in result.output
    for n in needles:
        assert n in err, err
    return err


# ------------------------------------------------------------------------------------ registries

def test_reviewers_add_and_list(cli):
    assert cli("reviewers", "add", "hz-kjj", "--bureau", "杭州市科技局", "--name", "王科技").exit_code == 0
    assert cli("reviewers", "add", "hz-czj", "--bureau", "杭州市财政局").exit_code == 0
    assert cli("reviewers", "add", "hz-kjj", "--bureau", "杭州市科技局", "--name", "王科").exit_code == 0  # update
    out = cli("reviewers", "list")
    assert out.exit_code == 0
    assert "hz-kjj" in out.stdout and "杭州市财政局" in out.stdout and "王科" in out.stdout
    assert out.stdout.count("hz-kjj") == 1


def test_reviewers_add_refuses_an_unknown_bureau(cli):
    r = cli("reviewers", "add", "hz-x", "--bureau", "杭州市科技厅")
    assert r.exit_code != 0
    assert "杭州市科技厅" in r.output and "not a responsible bureau" in r.output
    assert "hz-x" not in cli("reviewers", "list").stdout


def test_reviewers_add_needs_a_bureau(cli):
    r = cli("reviewers", "add", "hz-kjj")
    assert r.exit_code != 0
    assert "--bureau" in r.output


def test_blacklist_import_and_list(cli):
    r = cli("blacklist", "import", EXAMPLES / "blacklist.csv")
    assert r.exit_code == 0, r.output
    first = (EXAMPLES / "blacklist.csv").read_text(encoding="utf-8").splitlines()[1].split(",")[0]
    listed = cli("blacklist", "list")
    assert listed.exit_code == 0 and first in listed.stdout
    assert cli("blacklist", "import", EXAMPLES / "blacklist.csv").exit_code == 0   # idempotent


def test_blacklist_import_bad_credit_code(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("credit_code,name\n91330106MA2KX0D01A,坏代码\n", encoding="utf-8")
    _one_line_error(cli("blacklist", "import", bad), "line 2", "credit_code", "check digit")


def test_blacklist_import_missing_column(cli, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("code,name\nX,Y\n", encoding="utf-8")
    _one_line_error(cli("blacklist", "import", bad), "credit_code")


def test_missing_file_is_one_line(cli, tmp_path):
    _one_line_error(cli("blacklist", "import", tmp_path / "nope.csv"), "nope.csv", "no such file")
    _one_line_error(cli("submit", tmp_path / "nope.json"), "nope.json", "no such file")


def test_enterprises_import(cli):
    r = cli("enterprises", "import", EXAMPLES / "enterprises.csv")
    assert r.exit_code == 0, r.output
    n = len((EXAMPLES / "enterprises.csv").read_text(encoding="utf-8").strip().splitlines()) - 1
    assert str(n) in r.stdout


# ------------------------------------------------------------------------------------ input errors

def test_submit_invalid_json_is_one_line(cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    _one_line_error(cli("submit", bad), "bad.json", "not valid JSON")


def test_submit_validation_error_names_the_field(cli, tmp_path):
    _application_input_model()
    data = json.loads((EXAMPLES / "hz2025-04-tech-insurance-premium.json").read_text(encoding="utf-8"))
    data["facts"]["premium"] = -5
    bad = tmp_path / "negative.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    _one_line_error(cli("submit", bad), "premium")


@pytest.mark.parametrize("change, field", [
    ({"clause_id": "hz2025-99-none"}, "clause_id"),
    ({"facts": {"policy_no": "P-1", "period_start": "2026-01-10"}}, "facts.premium"),
    ({"enterprise_code": "91330106MA2KX0A01X"}, "enterprise_code"),
])
def test_submit_refuses_before_connecting(cli, tmp_path, change, field):
    data = json.loads((EXAMPLES / "hz2025-04-tech-insurance-premium.json").read_text(encoding="utf-8"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**data, **change}), encoding="utf-8")
    r = cli("submit", bad)                       # no Temporal server runs: the input is refused first
    _one_line_error(r, field)
    assert "server" not in r.output


def test_approve_lowering_needs_a_reason(cli):
    _one_line_error(cli("approve", "APP-1", "--reviewer", "hz-czj", "--amount", "1000"), "--reason")


def test_server_not_running_is_one_line(cli):
    err = _one_line_error(cli("status", "APP-1"), "not running")
    assert "make run" in err


def test_list_builds_a_visibility_query():
    from cli.backend import visibility_query
    q = visibility_query(status="review", clause="hz2025-04-tech-insurance-premium", bureau="杭州市科技局",
                         enterprise='91"X')
    assert q == ('ApplicationStatus = "review" AND ClauseId = "hz2025-04-tech-insurance-premium" '
                 'AND Bureau = "杭州市科技局" AND EnterpriseCode = "91\\"X"')
    assert visibility_query() == ""


def test_help_lists_the_commands(cli):
    out = cli("--help").stdout
    for cmd in ("up", "worker", "submit", "status", "list", "approve", "reject", "request-info",
                "provide-info", "evidence", "confirm-year", "withdraw", "revoke", "blacklist",
                "enterprises", "reviewers", "ledger"):
        assert cmd in out


# ------------------------------------------------------------------------------------ examples

def test_one_example_per_payable_clause():
    have = {p.stem for p in EXAMPLES.glob("*.json")}
    assert set(CATALOGUE_CLAUSES) <= have, sorted(set(CATALOGUE_CLAUSES) - have)
    for p in EXAMPLES.glob("*.json"):
        assert json.loads(p.read_text(encoding="utf-8"))["clause_id"] == p.stem


@pytest.mark.parametrize("clause", CATALOGUE_CLAUSES)
def test_examples_validate_as_application_input(clause):
    model = _application_input_model()
    from cli.backend import application_input, load_json
    inp = application_input(load_json(EXAMPLES / f"{clause}.json"), source=clause)
    assert isinstance(inp, model)
    assert inp.clause_id == clause


def test_example_credit_codes_are_valid():
    import csv
    from calc.credit_code import validate as credit_code_validate
    for name in ("enterprises.csv", "blacklist.csv"):
        with open(EXAMPLES / name, encoding="utf-8") as f:
            for row in csv.DictReader(f):
                assert credit_code_validate(row["credit_code"]) == row["credit_code"]
    regions = {row["credit_code"][2:8] for row in csv.DictReader(open(EXAMPLES / "enterprises.csv", encoding="utf-8"))}
    assert {"330106", "330502", "410105", "330326"} <= regions


def test_enterprises_import_not_utf8_is_one_line(cli, tmp_path):
    bad = tmp_path / "gbk.csv"
    bad.write_bytes("credit_code,name\n91330106MA2KX0A01W,杭州\n".encode("gbk"))
    _one_line_error(cli("enterprises", "import", bad), "not UTF-8 text")
