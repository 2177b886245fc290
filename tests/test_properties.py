"""Property tests over every payable clause: never negative, never above a cap that applies,
never paid twice for one item under 从优、就高、不重复, and growing with the base until a cap bites."""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calc import PriorAward, calculate, calculate_claims, catalogue
from calc.history import AwardHistory
from calc.parameters import value_on
from tests.claims import request_for

CLAUSES = sorted(catalogue().clauses)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("5000000000"), places=2)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _caps(clause_id: str, year: int, history: AwardHistory) -> list[Decimal]:
    """What is left under every cap that applies to this clause for this year."""
    doc, clause = catalogue().clause(clause_id)
    left = []
    for cap in clause.caps:
        v = Decimal(str((value_on(cap.amount, doc.window.start) or cap.amount[0]).value))
        group = catalogue().cap_group(clause_id, cap.group)
        if cap.scope == "per_year":
            left.append(v - history.in_year(group, year))
        elif cap.scope == "per_period":
            left.append(v - history.in_years(group, doc.window.start.year, doc.window.end.year))
        elif cap.scope in ("cumulative", "one_off", "per_item"):
            left.append(v - (history.all_time(group) if cap.scope != "per_item" else 0))
    return left


@pytest.mark.parametrize("clause_id", CLAUSES)
@SETTINGS
@given(base=amounts, prior=st.lists(st.decimals(min_value=0, max_value=Decimal("3000000"), places=2), max_size=3))
def test_never_negative_never_above_a_cap(clause_id, base, prior):
    probe = request_for(clause_id, base)
    awards = [{"clause_id": clause_id, "year": probe.year - i, "amount": str(a)} for i, a in enumerate(prior)]
    req = request_for(clause_id, base, prior_awards=awards)
    result = calculate(req)
    assert result.amount >= 0
    assert result.amount == result.amount.quantize(Decimal("0.01"))
    for left in _caps(clause_id, req.year, AwardHistory.of(req.prior_awards)):
        assert result.amount <= max(left, Decimal(0)), (clause_id, left, result.amount)
    assert sum(t.amount for t in result.schedule) == result.amount


@pytest.mark.parametrize("clause_id", CLAUSES)
@SETTINGS
@given(a=amounts, b=amounts)
def test_grows_with_its_base_until_a_cap_bites(clause_id, a, b):
    lo, hi = sorted((a, b))
    r_lo, r_hi = calculate(request_for(clause_id, lo)), calculate(request_for(clause_id, hi))
    if r_lo.refusal is None and r_hi.refusal is None:
        assert r_lo.amount <= r_hi.amount, (clause_id, lo, hi, r_lo.amount, r_hi.amount)


def _same_item_groups():
    by_kind: dict[str, list[str]] = {}
    for cid, (_, clause) in catalogue().clauses.items():
        if clause.overlap_item != "none":
            by_kind.setdefault((clause.overlap_item, catalogue().document_of(cid).id), []).append(cid)
    return [ids for ids in by_kind.values() if len(ids) > 1]


@pytest.mark.parametrize("group", _same_item_groups(), ids=lambda g: "+".join(g))
@SETTINGS
@given(base=amounts)
def test_one_item_is_paid_once_under_the_overlap_rule(group, base):
    claims = []
    for cid in group:
        r = request_for(cid, base)
        same_item = {"item_id": "ITEM-1"}                 # one item for the whole group
        if r.facts.policy_no is not None:
            same_item.update(policy_no="P-1", period_start=claims[0].facts.period_start if claims else r.facts.period_start)
        if r.facts.loans:
            same_item["loans"] = claims[0].facts.loans if claims and claims[0].facts.loans else r.facts.loans
        claims.append(r.model_copy(update={"facts": r.facts.model_copy(update=same_item)}))
    claims = [c.model_copy(update={"year": claims[0].year, "enterprise": claims[0].enterprise}) for c in claims]
    results = calculate_claims(claims)
    paid = [r for r in results if r.amount > 0]
    assert len(paid) <= 1
    alone = [calculate(c).amount for c in claims]
    assert results[0].amount == max(alone)
    # and once paid, a later claim for the same item under another clause tops up at most to the best
    if paid:
        chosen = paid[0]
        for c in claims:
            if c.clause_id == chosen.clause_id:
                continue
            assert chosen.items and sum(chosen.items.values()) == chosen.amount
            later = c.model_copy(update={"prior_awards": tuple(PriorAward(
                clause_id=chosen.clause_id, year=c.year, amount=a, item_id=k) for k, a in chosen.items.items())})
            again = calculate(later)
            assert chosen.amount + again.amount <= max(alone)
