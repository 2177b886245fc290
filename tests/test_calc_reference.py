"""The optimised calculation core (calc/) against the reference kept in tests/calc_reference/
(the engine before the performance work): on every claim — valid, edgy and hostile, drawn by the
fuzzer's strategies, and a fixed sweep of every clause with growing award histories — both give the
same InputError, or results equal in every field: amount, schedule, refusal, items, and the trace
step by step (JSON-rendered, so every Decimal keeps its exact digits)."""
from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from calc import InputError, calculate, calculate_claims, catalogue, parse_request
from calc.history import AwardHistory
from tests.calc_reference import engine as ref
from tests.calc_reference.history import AwardHistory as RefHistory
from tests.claims import request_for
from tests.test_fuzz_calc import claims, requests

CLAUSES = sorted(catalogue().clauses)


def _outcome(fn, *args) -> Any:
    try:
        result = fn(*args)
    except InputError as e:
        return ("input_error", e.field, e.rule)
    if isinstance(result, list):
        return [json.dumps(r.to_json_dict(), ensure_ascii=False, sort_keys=True) for r in result]
    return json.dumps(result.to_json_dict(), ensure_ascii=False, sort_keys=True)


def same(data: Any) -> str:
    try:
        req = parse_request(data)
    except InputError as e:
        with pytest.raises(InputError) as ref_e:
            ref.parse_request(data)
        assert (ref_e.value.field, ref_e.value.rule) == (e.field, e.rule)
        return "input_error"
    new = _outcome(calculate, req)
    assert new == _outcome(ref.calculate, req)
    # the engine's history index, built once and passed in, as the ledger and the batch do
    assert _outcome(calculate, req, AwardHistory.of(req.prior_awards)) == new
    return new if isinstance(new, str) else new[0]


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=claims())
def test_same_as_the_reference_on_claims(data):
    same(data)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=requests)
def test_same_as_the_reference_on_anything(data):
    same(data)


def _history(clause_id: str, year: int, n: int) -> list[dict]:
    """n prior awards around the claim: its own clause and year, other years, its items."""
    out = []
    for i in range(n):
        cid = CLAUSES[(CLAUSES.index(clause_id) + i) % len(CLAUSES)] if i % 3 else clause_id
        item = [None, f"loan:L-{clause_id}@{year}", f"policy:P-{clause_id}", f"item:ITEM-{clause_id}"][i % 4]
        out.append({"clause_id": cid, "year": year - (i % 4), "amount": str(Decimal(1000 + 7919 * i) / 100),
                    **({"item_id": item} if item else {})})
    return out


@pytest.mark.parametrize("clause_id", CLAUSES)
def test_same_as_the_reference_on_every_clause(clause_id):
    for base in ("0.01", "0.40", "1000", "123456.78", "25000000", "9000000000"):
        for n in (0, 1, 2, 5, 40):
            req = request_for(clause_id, Decimal(base), realistic=bool(n % 2))
            req = req.model_copy(update={"prior_awards": tuple(
                parse_request({**req.model_dump(mode="json"), "prior_awards": _history(clause_id, req.year, n)})
                .prior_awards)})
            assert _outcome(calculate, req) == _outcome(ref.calculate, req), (clause_id, base, n)


@pytest.mark.parametrize("clause_id", CLAUSES)
def test_same_as_the_reference_on_overlap_groups(clause_id):
    others = [c for c in CLAUSES if c != clause_id][:3]
    req = request_for(clause_id, Decimal("250000"))
    group = [req] + [req.model_copy(update={"clause_id": c}) for c in others]
    assert _outcome(calculate_claims, group, AwardHistory()) == _outcome(ref.calculate_claims, group, RefHistory())
