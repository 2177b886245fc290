"""Fuzzing the calculation core's front door with hostile requests (hypothesis).

`parse_request` + `calculate` on anything a caller could send: junk of every JSON and Python type,
and valid claims of every clause with their values, lists and keys mutated (wrong types, nested
junk, huge and negative numbers, full-width digits, exponents, unicode, duplicated items,
missing and unknown keys). The invariant, whatever the input:

    an InputError (naming a one-line field and a rule), or a CalcResult whose amount is
    non-negative, to the fen, paid in tranches that add up, never above a cap that applies
    (nor above a reviewer's lowering), zero with a refusal naming its rule (cap_exhausted only
    for a cap or limit) or positive without one, and printable as UTF-8 JSON — never any other
    exception.

CI runs a few thousand examples (< 20 s); `scripts/fuzz_calc.py --examples N --seed S` runs more.
"""
from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calc import CalcResult, InputError, calculate, catalogue, parse_request
from calc.history import AwardHistory
from calc.parameters import value_on
from tests.claims import enterprise_for, facts_for, support_year

CAT = catalogue()
CLAUSES = sorted(CAT.clauses)
FEN = Decimal("0.01")
# the limits besides caps that may exhaust an award: ≤ 50% of interest paid, ≤ the county's subsidy
LIMITS = {"interest_paid_share"} | {c.second_limit for _, c in CAT.clauses.values() if c.second_limit}

# ------------------------------------------------------------------------------ strategies

NASTY_TEXT = ["", " ", "８００", "٨٠٠", "1e30", "1E+3", "-0", "NaN", "Infinity", "0x10", "1_000", "+5", " 5",
              "2026", "２０２６", "2026-02-30", "2026-13-01", "0000-01-01", "9999-12-31", "2026-1-1",
              "\ud800", "a\x00b", "a\nb", "\u202eevil", "\u200b", "x" * 65, "名" * 201, "null", "true",
              "hz2025-01-tech-loan-interest", "91330106MA2H00001E", "91330106ma2h00001e"]
scalars = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(min_value=-10, max_value=10 ** 13),
    st.sampled_from([0, 1, -1, 10 ** 12, 10 ** 12 + 1, 2 ** 63]),
    st.floats(), st.decimals(), st.decimals(allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from([Decimal("1E+30"), Decimal("-0"), Decimal("NaN"), Decimal("sNaN"), Decimal("1E-30")]),
    st.text(max_size=12), st.sampled_from(NASTY_TEXT),
    st.dates().map(str), st.dates(),
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8) | st.sampled_from(["loans", "premium", "year"]), inner,
                                      max_size=4), max_leaves=12)

flat_junk = scalars | st.lists(scalars, max_size=3) | st.dictionaries(st.text(max_size=6), scalars, max_size=3)

valid_money = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10) ** 9, allow_nan=False, places=2).map(str),
    st.integers(min_value=1, max_value=10 ** 10),
    st.sampled_from(["0", "0.01", "0.0001", "0.004", "0.005", "999999999999.9999", "1000000000000"]),
)
hostile_money = st.one_of(
    valid_money, valid_money,
    st.decimals(min_value=Decimal("-100"), max_value=Decimal(10) ** 13, allow_nan=False, places=2),
    st.decimals(min_value=Decimal(0), max_value=Decimal(1000), allow_nan=False, places=4).map(str),
    st.integers(min_value=-1, max_value=10 ** 13),
    st.sampled_from(["８００", "1e6", "-0.01", "1000000000000.01", "0.00001"]),
)
clean_day = st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31))
hostile_day = (clean_day | st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))).map(str)
clean_ids = st.sampled_from(["L-1", "L-2", "l-1", "Ｌ-1", "L-3", "91330106MA2H00003L", "91330106MA2A00001C"])
hostile_ids = clean_ids | st.text(min_size=1, max_size=8)
rates = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("6"), places=2).map(str)


@st.composite
def _loan(draw, hostile: bool) -> dict[str, Any]:
    """A loan; a clean one runs start..end in order, contract on or before the start."""
    if hostile:
        loan = {"loan_id": draw(hostile_ids), "principal": draw(hostile_money),
                "annual_rate_pct": draw(rates | st.decimals(min_value=-1, max_value=101, places=2) | hostile_money),
                "contract_date": draw(hostile_day),
                "term_months": draw(st.integers(min_value=-1, max_value=700) | st.sampled_from(["12", True])),
                "start": draw(hostile_day), "end": draw(hostile_day)}
    else:
        start = draw(clean_day)
        end = start + timedelta(days=draw(st.integers(min_value=0, max_value=1500)))
        contract = start - timedelta(days=draw(st.integers(min_value=0, max_value=400)))
        loan = {"loan_id": draw(clean_ids), "principal": draw(valid_money.filter(lambda m: m != "0")),
                "annual_rate_pct": draw(rates), "contract_date": str(contract),
                "term_months": draw(st.sampled_from([3, 6, 12, 24, 36, 60, 61, 72, 120])),
                "start": str(start), "end": str(min(end, date(2100, 12, 31)))}
    if draw(st.booleans()):
        loan["interest_paid"] = draw(hostile_money if hostile else valid_money)
    return loan


def _facts(hostile: bool) -> dict[str, Any]:
    money, day, ids = (hostile_money, hostile_day, hostile_ids) if hostile else (valid_money, clean_day.map(str),
                                                                                  clean_ids)
    investments = st.lists(st.fixed_dictionaries({
        "investee_id": ids, "amount": money,
        "stage": st.sampled_from(["seed", "startup", "growth", "mature"] + (["Seed", ""] if hostile else [])),
        "invested_on": day}, optional={"held_until": day | st.none()}), min_size=1, max_size=3)
    return {
        "loans": st.lists(_loan(hostile), min_size=1, max_size=3), "investments": investments,
        "premium": money, "insured_amount": money, "interest_paid": money, "fixed_asset_investment": money,
        "project_total_investment": money, "county_subsidy": money, "guarantee_balance_daily_avg_last_year": money,
        "guarantee_balance_daily_avg_this_year": money, "new_tech_loans": money, "new_tech_guarantee_total": money,
        "financing_amount": money, "review_amount": money, "avg_guarantee_fee_rate_pct": rates,
        "period_start": day, "event_date": day, "programme_year": st.integers(min_value=1, max_value=10),
        "ranking": st.integers(min_value=1, max_value=10), "policy_no": ids, "item_id": ids,
        "institution_type": st.sampled_from(["service_centre", "division", "specialised_branch", "bank"]),
        "stages": st.dictionaries(st.sampled_from(["filing_accepted", "approved", "listed"]), day,
                                  min_size=1, max_size=3),
        "balance_grew_this_year": st.booleans(), "balance_grew_last_year": st.booleans(),
    } | ({"loans": st.lists(_loan(True), max_size=3), "programme_year": st.integers(min_value=-1, max_value=12),
          "ranking": st.integers(min_value=-1, max_value=10), "avg_guarantee_fee_rate_pct": money,
          "stages": st.dictionaries(st.sampled_from(["filing_accepted", "approved", "listed", "other"]), day,
                                    max_size=4)} if hostile else {})


FACTS = {False: _facts(False), True: _facts(True)}
FACT_NAMES = sorted(FACTS[False])
ENTERPRISES = [enterprise_for(d) for d in ("hz2025", "hu2023", "zz2025", "py2024")]
BARE = {d: enterprise_for(d, kinds=()) for d in CAT.documents}
OWN = {d: enterprise_for(d) for d in CAT.documents}
ITEMS = ["loan:L-1", "policy:P-1", "91330106MA2H00003L", "91330106MA2Q00001G"]
PRIOR_AWARDS = {
    False: st.lists(st.fixed_dictionaries({
        "clause_id": st.sampled_from(CLAUSES), "year": st.integers(min_value=2018, max_value=2030),
        "amount": st.decimals(min_value=0, max_value=Decimal(10) ** 7, places=2).map(str)},
        optional={"item_id": st.sampled_from(ITEMS)}), max_size=3),
    True: st.lists(st.fixed_dictionaries({
        "clause_id": st.sampled_from(CLAUSES) | st.text(max_size=5),
        "year": st.integers(min_value=2018, max_value=2030) | st.integers(min_value=1985, max_value=2105),
        "amount": hostile_money}, optional={"item_id": hostile_ids | st.sampled_from(ITEMS)}), max_size=2),
}


BASES = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10) ** 10, places=2)
OVERLAID = st.lists(st.sampled_from(FACT_NAMES), max_size=2, unique=True)
FEW = st.sampled_from([0, 0, 0, 1, 2])
BLACKLISTED = st.sampled_from([False] * 5 + [True])
ADJUSTMENT = {
    False: st.fixed_dictionaries({
        "max_amount": st.sampled_from(["0", "0.01", "100", "150000"])
        | st.decimals(min_value=0, max_value=10 ** 6, places=2).map(str),
        "reason": st.sampled_from(["银行确认部分贷款", "lowered"])}),
    True: st.fixed_dictionaries({"max_amount": hostile_money,
                                 "reason": st.sampled_from(["银行确认部分贷款", "lowered"]) | st.text(max_size=6)}),
}
AS_OF = {False: clean_day.map(str), True: hostile_day}
ONE_IN_FOUR = st.integers(min_value=0, max_value=3)


@lru_cache(maxsize=None)
def _for_clause(clause_id: str, hostile: bool) -> dict[str, Any]:
    """The strategies that depend on the clause, built once (building them per example is slow)."""
    doc = CAT.document_of(clause_id)
    years = [support_year(doc.id)] * 3 + [doc.window.start.year, doc.window.end.year, doc.window.end.year + 1]
    return {
        "year": st.sampled_from(years) | st.integers(min_value=1985, max_value=2105) if hostile
        else st.sampled_from(years),
        "enterprise": st.sampled_from([OWN[doc.id]] * 6 + ENTERPRISES + [BARE[doc.id]]),
        "filling": st.lists(st.fixed_dictionaries({                      # prior awards filling the caps
            "clause_id": st.just(clause_id), "year": st.sampled_from([0, -1]),
            "amount": st.sampled_from(["150000", "200000", "1000000", "1500000", "5000000", "0.01"])},
            optional={"item_id": st.sampled_from(ITEMS)}), max_size=2),
        "alternatives": st.lists(st.sampled_from(CLAUSES), max_size=3) if hostile
        else st.lists(st.sampled_from([c for c in CLAUSES if c != clause_id]), max_size=3, unique=True),
    }


@st.composite
def claims(draw) -> dict[str, Any]:
    """A valid claim of a random clause with its facts changed: half the time with clean but
    edgy values (zero amounts, sub-fen amounts, loans across years and windows, prior awards
    filling caps, reviewers' ceilings, alternatives), half the time hostile (any value anywhere
    replaced by junk, keys dropped or added, the same loan or investee twice, bad numbers)."""
    hostile = draw(st.booleans())
    clause_id = draw(st.sampled_from(CLAUSES))
    own = _for_clause(clause_id, hostile)
    year = draw(own["year"])
    facts = facts_for(clause_id, draw(BASES), year if 1990 <= year <= 2100 else 2026)
    for name in draw(OVERLAID):
        facts[name] = draw(FACTS[hostile][name])
    if hostile:
        names = sorted(facts)
        for _ in range(draw(FEW)):
            facts.pop(names[draw(st.integers(min_value=0, max_value=len(names) - 1))], None)
        if facts.get("loans") and draw(st.booleans()):
            facts["loans"] = facts["loans"] + [dict(facts["loans"][0])]          # the same loan again
        if facts.get("investments") and draw(st.booleans()):
            facts["investments"] = facts["investments"] + [dict(facts["investments"][0])]
    filling = [{**a, "year": year + a["year"]} for a in draw(own["filling"])]
    data: dict[str, Any] = {
        "clause_id": clause_id, "year": year, "enterprise": copy.deepcopy(draw(own["enterprise"])),
        "facts": facts, "prior_awards": draw(PRIOR_AWARDS[hostile]) + filling, "blacklisted": draw(BLACKLISTED),
    }
    if draw(st.booleans()):
        data["as_of"] = draw(AS_OF[hostile])
    if draw(ONE_IN_FOUR) == 0:
        data["adjustment"] = draw(ADJUSTMENT[hostile])
    if draw(ONE_IN_FOUR) == 0:
        data["alternatives"] = draw(own["alternatives"])
    if hostile:
        for _ in range(draw(FEW)):
            _mutate(draw, data)
    return data


def _mutate(draw, data: dict[str, Any]) -> None:
    """Replace one value anywhere in the request by junk, or add an unknown key."""
    paths: list[tuple[Any, Any]] = []
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for k, v in items:
            paths.append((node, k))
            stack.append(v)
    if not paths:
        return
    node, key = paths[draw(st.integers(min_value=0, max_value=len(paths) - 1))]
    if isinstance(node, dict) and draw(st.booleans()):
        node[draw(st.text(max_size=6))] = draw(flat_junk)
    else:
        node[key] = draw(flat_junk)


requests = st.one_of(junk, claims(), claims())   # two thirds near-valid: the deep paths get exercised

# ------------------------------------------------------------------------------ the invariant


def _cap_bounds(result: CalcResult, year: int, history: AwardHistory, n_items: int) -> list[Decimal]:
    """What is left under every cap of the paying clause (per item: the cap times the items)."""
    doc, clause = CAT.clause(result.clause_id)
    bounds = []
    for cap in clause.caps:
        v = (value_on(cap.amount, doc.window.start) or cap.amount[0]).value
        group = CAT.cap_group(result.clause_id, cap.group)
        if cap.scope == "per_year":
            bounds.append(v - history.in_year(group, year))
        elif cap.scope == "per_period":
            bounds.append(v - history.in_years(group, doc.window.start.year, doc.window.end.year))
        elif cap.scope in ("cumulative", "one_off"):
            bounds.append(v - history.all_time(group))
        else:
            bounds.append(v * max(n_items, 1))
    return bounds


def check(data: Any) -> str:
    """Run one request through the front door; assert the invariant; return the outcome's name."""
    try:
        req = parse_request(data)
    except InputError as e:
        assert isinstance(e.field, str) and isinstance(e.rule, str) and e.field and e.rule
        message = f"{e.field}: {e.rule}"
        assert "\n" not in message and "\r" not in message, message
        assert len(e.field) <= 400, e.field
        return "input_error"
    result = calculate(req)
    assert isinstance(result, CalcResult)
    amount = result.amount
    assert amount >= 0 and amount == amount.quantize(FEN), amount
    assert sum((t.amount for t in result.schedule), Decimal(0)) == amount
    if result.refusal is not None:
        assert amount == 0 and result.schedule == () and result.refusal.rule, result.refusal
        assert result.refusal.rule != "zero", result.refusal            # a zero names what made it zero
        if result.refusal.code == "cap_exhausted":                       # only when a cap or limit bit
            assert result.refusal.rule.startswith("cap:") or result.refusal.rule in LIMITS, result.refusal
    else:
        assert amount > 0, result
        n_items = len(req.facts.investments or ()) + len(req.facts.loans or ())
        for left in _cap_bounds(result, req.year, AwardHistory.of(req.prior_awards), n_items):
            assert amount <= max(left, Decimal(0)), (result.clause_id, left, amount)
        if req.adjustment is not None:
            assert amount <= req.adjustment.max_amount
    json.dumps(result.to_json_dict(), ensure_ascii=False).encode("utf-8")
    return "paid" if result.refusal is None else f"refused:{result.refusal.code}:{result.refusal.rule}"


@settings(max_examples=2000, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=requests)
def test_the_front_door_holds(data):
    check(data)


def test_the_fuzzing_reaches_past_the_input_rules():
    """Guard against a fuzzer that only ever produces input errors: a fixed sample of claims()
    must produce awards and refusals too (so the invariant is exercised on real calculations)."""
    seen: Counter = Counter()

    @settings(max_examples=200, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=claims())
    def sample(data):
        seen[check(data).split(":")[0]] += 1

    sample()
    assert seen["paid"] > 0 and seen["refused"] > 0 and seen["input_error"] > 0, seen
