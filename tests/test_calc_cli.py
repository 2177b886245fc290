"""`disburse calc`, `disburse policies`, `disburse check` from the shell (no Temporal)."""
from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cli.calc_cmds import register

ROOT = Path(__file__).resolve().parent.parent
app = typer.Typer()
register(app)
runner = CliRunner()


def run(*args):
    return runner.invoke(app, list(args))


def test_calc_prints_amount_schedule_trace_as_json():
    r = run("calc", str(ROOT / "examples/calc/hz2025-01-tech-loan-interest.json"))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["amount"] == "60493.15"
    assert out["refusal"] is None
    assert out["schedule"] == [{"seq": 1, "due": "2026-12-31", "amount": "60493.15",
                                "label": "hz2025-01-tech-loan-interest 2026"}]
    steps = {s["step"]: s for s in out["trace"]}
    assert steps["interest"]["inputs"]["days"] == 184
    assert "1%" in steps["interest"]["cite"]
    assert all(s["clause_id"] == "hz2025-01-tech-loan-interest" for s in out["trace"])


def test_calc_overlap_names_the_chosen_clause_and_the_alternatives():
    out = json.loads(run("calc", str(ROOT / "examples/calc/overlap-hz2025-01-vs-02.json")).stdout)
    assert out["amount"] == "220000.00"
    assert out["chosen_clause"] == "hz2025-02-ecosystem-equipment-loan-interest"
    assert out["alternatives"] == {"hz2025-01-tech-loan-interest": "200000.00",
                                   "hz2025-02-ecosystem-equipment-loan-interest": "220000.00"}


def test_calc_bad_input_is_one_line_naming_the_field(tmp_path):
    data = json.loads((ROOT / "examples/calc/hz2025-06-first-set-year2.json").read_text(encoding="utf-8"))
    del data["facts"]["insured_amount"]
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(data), encoding="utf-8")
    r = run("calc", str(f))
    assert r.exit_code == 2
    assert "facts.insured_amount" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_calc_unparseable_json(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text("{not json", encoding="utf-8")
    r = run("calc", str(f))
    assert r.exit_code == 2 and "not valid JSON" in r.stderr


def test_policies_lists_clauses_with_names_bureaus_validity():
    r = runner.invoke(app, ["policies", "--json"])
    assert r.exit_code == 0
    docs = {d["doc"]: d for d in json.loads(r.stdout)}
    hz = docs["hz2025"]
    assert hz["window"] == ["2025-12-11", "2027-12-31"]
    first = hz["clauses"][0]
    assert first["id"] == "hz2025-01-tech-loan-interest" and first["bureaus"][0] == "市经信局"
    assert any("not payable by rule" in n["reason"] for n in hz["not_payable_by_rule"])
    table = runner.invoke(app, ["policies", "--doc", "hu2023"])
    assert table.exit_code == 0 and "hu2023-06-listing-reward" in table.stdout
    assert runner.invoke(app, ["policies", "--doc", "xx9999"]).exit_code == 2


def test_check_limits():
    r = run("check", str(ROOT / "examples/calc/limits-guarantee.json"))
    assert r.exit_code == 0, r.output
    limits = {x["limit"]: x for x in json.loads(r.stdout)}
    assert limits["hz2021-3.2-guarantee-fee-cap"]["ok"] is True
    assert limits["zz2025-5.3-tech-guarantee-fee"]["ok"] is True
    assert limits["wh2025-16-guarantee-in-force-limit"]["ok"] is True


def test_check_a_broken_limit_exits_1(tmp_path):
    f = tmp_path / "f.json"
    f.write_text(json.dumps({"facts": {"guarantee_fee_rate_pct": "1.2"}}), encoding="utf-8")
    r = run("check", str(f))
    assert r.exit_code == 1
    assert {x["limit"] for x in json.loads(r.stdout) if not x["ok"]} == {
        "hz2021-3.2-guarantee-fee-cap", "zz2025-5.3-tech-guarantee-fee"}
