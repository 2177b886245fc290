"""One generic test runs every scenario file under tests/scenarios/ (openfisca-style): inputs
and the expected award (or refusal, or input error) per clause. Policy cases are data.

expect: {amount: "…", bit: rule, not_bit: rule, chosen: clause, schedule: [[due, amount]…]}
     or {refusal: code, rule: rule, reason_contains: text, cite_contains: text}
     or {error: field, error_contains: text}   (an InputError raised by parse_request)"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from calc import InputError, calculate, calculate_claims, catalogue, parse_request
from calc.parameters import load_yaml

HERE = Path(__file__).parent / "scenarios"
ENTERPRISES = load_yaml((HERE / "enterprises.yaml").read_text(encoding="utf-8"))


def _cases():
    for path in sorted(HERE.glob("*.yaml")):
        if path.name == "enterprises.yaml":
            continue
        for i, case in enumerate(load_yaml(path.read_text(encoding="utf-8"))):
            yield pytest.param(case, id=f"{path.stem}:{i}:{case['name']}")


def _request(case: dict, clause: str | None = None) -> dict:
    ent = case.get("enterprise", "HZ1")
    data = {
        "clause_id": clause or case["clause"],
        "year": case["year"],
        "enterprise": ENTERPRISES[ent] if isinstance(ent, str) else ent,
        "facts": case.get("facts", {}),
        "prior_awards": case.get("prior_awards", []),
        "blacklisted": case.get("blacklisted", False),
    }
    for key in ("as_of", "adjustment", "alternatives"):
        if key in case:
            data[key] = case[key]
    return data


@pytest.mark.parametrize("case", list(_cases()))
def test_scenario(case):
    expect = case["expect"]
    if "error" in expect:
        with pytest.raises(InputError) as e:
            parse_request(_request(case))
        assert e.value.field == expect["error"], str(e.value)
        if "error_contains" in expect:
            assert expect["error_contains"] in str(e.value)
        return
    if "claims" in case:   # several clauses claimed for one item: 从优、就高、不重复
        results = calculate_claims([parse_request(_request(case, c)) for c in case["claims"]])
        result = results[0]
    else:
        result = calculate(parse_request(_request(case)))
    if "refusal" in expect:
        assert result.refusal is not None, f"expected refusal {expect['refusal']}, got {result.amount}"
        assert result.refusal.code == expect["refusal"], result.refusal
        assert result.amount == 0 and result.schedule == ()
        if "reason_contains" in expect:
            assert expect["reason_contains"] in result.refusal.reason, result.refusal.reason
        if "rule" in expect:   # the rule that bit, as named in the refusal
            assert result.refusal.rule == expect["rule"], result.refusal
        if "cite_contains" in expect:   # the refusal step of the trace cites the sentence
            cites = [s.cite or "" for s in result.trace if s.step == "refusal"]
            assert cites and expect["cite_contains"] in cites[-1], cites
        return
    assert result.refusal is None, result.refusal
    assert result.amount == Decimal(expect["amount"]), [s._asdict() for s in result.trace]
    assert str(result.amount) == expect["amount"]          # to the fen, as a decimal string
    assert sum(t.amount for t in result.schedule) == result.amount
    if "chosen" in expect:
        assert result.chosen_clause == expect["chosen"]
        assert set(result.alternatives) >= set(case.get("claims", [])) | set(case.get("alternatives", []))
    if "bit" in expect:   # the cap or rule that bit must be in the trace
        assert expect["bit"] in [s.rule for s in result.trace], [s.rule for s in result.trace]
    if "not_bit" in expect:
        assert expect["not_bit"] not in [s.rule for s in result.trace]
    if "schedule" in expect:
        assert [(str(t.due), str(t.amount)) for t in result.schedule] == [tuple(x) for x in expect["schedule"]]
    for step in result.trace:
        assert step.clause_id in catalogue().clauses


def test_every_payable_clause_has_scenarios():
    covered = set()
    for path in HERE.glob("*.yaml"):
        if path.name != "enterprises.yaml":
            for case in load_yaml(path.read_text(encoding="utf-8")):
                covered.add(case.get("clause"))
                covered.update(case.get("claims", []))
    missing = set(catalogue().clauses) - covered
    assert not missing, f"clauses without a scenario: {sorted(missing)}"
