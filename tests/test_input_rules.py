"""Input rules of a calculation request (docs/calculation.md, "Input rules"), for what a scenario
file cannot hold: Python floats and Decimal specials, sizes, long and invisible strings, every
number field at once. Each refusal is an InputError naming the field, raised by parse_request."""
from __future__ import annotations

import copy
import time
from decimal import Decimal
from typing import Any

import pytest

from calc import InputError, calculate, parse_request
from calc.errors import shown
from calc.model import Facts, Loan, to_decimal

LOAN = {"loan_id": "L-1", "principal": "8000000", "annual_rate_pct": "2.60", "contract_date": "2025-12-20",
        "term_months": 12, "start": "2026-01-01", "end": "2026-12-31"}
BASE = {"clause_id": "hz2025-01-tech-loan-interest", "year": 2026,
        "enterprise": {"credit_code": "91330106MA2H00001E", "name": "杭州示例科技有限公司",
                       "qualifications": [{"kind": "tech_enterprise", "valid_from": "2020-01-01"}]},
        "facts": {"loans": [LOAN]}}


def _with(path: str, value: Any) -> dict:
    data = copy.deepcopy(BASE)
    *head, last = path.split(".")
    node: Any = data
    for p in head:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def _refused(data: dict) -> InputError:
    with pytest.raises(InputError) as e:
        parse_request(data)
    return e.value


def test_the_base_request_is_paid():
    assert calculate(parse_request(BASE)).amount == Decimal("80000.00")


NUMBER_FIELDS = [name for name, f in Facts.model_fields.items()
                 if "Decimal" in str(f.annotation)] + ["loans.0." + n for n in ("principal", "annual_rate_pct",
                                                                                "interest_paid")]


@pytest.mark.parametrize("field", NUMBER_FIELDS)
@pytest.mark.parametrize("value, says", [
    ("８００", "non-ASCII digits"), ("٨٠٠", "non-ASCII digits"), ("1e3", "exponent"), (Decimal("1E+3"), "exponent"),
    (Decimal("NaN"), "not a number"), (Decimal("Infinity"), "not a number"), ("NaN", "not a decimal number"),
    (0.5, "binary float"), (True, "not a number"), ("0.00001", "decimal places"), (10 ** 13, "10^12"),
    ("1" * 30, "not a decimal number"), ([1], "must be a number"), ({"a": 1}, "must be a number"),
])
def test_every_number_field_refuses(field, value, says):
    path = f"facts.{field}"
    e = _refused(_with(path, value))
    assert e.field == path and says in e.rule, (e.field, e.rule)


@pytest.mark.parametrize("value, expected", [
    (800, Decimal(800)), ("800", Decimal(800)), ("800.5", Decimal("800.5")), (Decimal("800.50"), Decimal("800.50")),
    ("0", Decimal(0)), ("1000000000000", Decimal(10) ** 12), ("1.50000", Decimal("1.50000")),
])
def test_accepted_numbers(value, expected):
    assert to_decimal(value) == expected


def test_a_negative_amount_names_the_field():
    e = _refused(_with("facts.loans.0.principal", "-1"))
    assert e.field == "facts.loans.0.principal" and "greater than 0" in e.rule


@pytest.mark.parametrize("n, ok", [(200, True), (201, False)])
def test_at_most_200_loans(n, ok):
    loans = [{**LOAN, "loan_id": f"L-{i}", "principal": "1000"} for i in range(n)]
    data = _with("facts.loans", loans)
    if ok:
        assert calculate(parse_request(data)).amount == Decimal("2000.00")
    else:
        assert _refused(data).field == "facts.loans"


def test_at_most_200_investments_and_stages():
    inv = {"investee_id": "X", "amount": "1", "stage": "seed", "invested_on": "2024-01-01"}
    data = _with("facts.investments", [{**inv, "investee_id": f"I-{i}"} for i in range(201)])
    assert _refused(data).field == "facts.investments"
    data = _with("facts.stages", {f"s{i}": "2026-01-01" for i in range(201)})
    assert _refused(data).field == "facts.stages"


@pytest.mark.parametrize("path, value", [
    ("facts.loans", [{}] * 300_000), ("facts.investments", [{}] * 300_000),
    ("facts.stages", {f"s{i}": "x" for i in range(300_000)}), ("enterprise.qualifications", [{}] * 300_000),
    ("prior_awards", [{}] * 300_000), ("alternatives", [None] * 300_000),
])
def test_a_huge_list_is_refused_before_its_items_are_read(path, value):
    """Its items are not validated one by one (900,000 loans took 77 s and 7 GB): it is refused on
    its length. A mapping's items read from Python raise; a list's are read by pydantic-core
    without Python's methods, so for lists the clock guards it, with room for a shared machine
    (validating 300,000 items takes about 25 s; the refusal well under 1 s when the machine is idle)."""
    started = time.perf_counter()
    e = _refused(_with(path, _unreadable(value)))
    assert e.field == path and "at most" in e.rule, (e.field, e.rule)
    assert time.perf_counter() - started < 5


class _UnreadableList(list):
    """A list whose length is known and whose items cannot be read."""

    def _read(self, *args):
        raise AssertionError("an item of a list longer than its limit was read")

    __iter__ = __getitem__ = __reversed__ = __contains__ = _read


class _UnreadableDict(dict):
    """A mapping whose length is known and whose items cannot be read."""

    def _read(self, *args):
        raise AssertionError("an item of a mapping larger than its limit was read")

    __iter__ = __getitem__ = keys = values = items = get = __contains__ = _read


def _unreadable(value):
    return _UnreadableDict(value) if isinstance(value, dict) else _UnreadableList(value)


@pytest.mark.parametrize("path", ["facts", "enterprise", "", "facts.loans.0"])
def test_a_mass_of_unknown_keys_is_refused_at_once(path):
    data = copy.deepcopy(BASE)
    node = data
    for p in filter(None, path.split(".")):
        node = node[int(p)] if isinstance(node, list) else node[p]
    node.update({f"k{i}": 1 for i in range(300_000)})
    started = time.perf_counter()
    e = _refused(data)
    assert e.field.startswith(f"{path}.k".lstrip(".")) and "unknown" in e.rule, (e.field, e.rule)
    assert time.perf_counter() - started < 5          # a guard on complexity, with room for a shared machine


def test_sizes_of_the_other_lists():
    q = {"kind": "tech_enterprise", "valid_from": "2020-01-01"}
    assert _refused(_with("enterprise.qualifications", [q] * 101)).field == "enterprise.qualifications"
    awards = [{"clause_id": "hz2025-01-tech-loan-interest", "year": 2020, "amount": "1"}] * 10_001
    assert _refused(_with("prior_awards", awards)).field == "prior_awards"
    assert _refused(_with("alternatives", [f"c-{i}" for i in range(31)])).field == "alternatives"


@pytest.mark.parametrize("path, limit", [
    ("facts.loans.0.loan_id", 64), ("facts.policy_no", 64), ("facts.item_id", 64), ("facts.institution_type", 64),
    ("clause_id", 64), ("enterprise.name", 200),
])
def test_string_lengths(path, limit):
    e = _refused(_with(path, "x" * (limit + 1)))
    assert e.field == path and str(limit) in e.rule


def test_a_10mb_clause_id_is_never_echoed():
    e = _refused(_with("clause_id", "x" * 10_000_000))
    assert e.field == "clause_id" and len(str(e)) < 200


@pytest.mark.parametrize("bad", ["\x00", "\n", "\x1b[31m", "\u202e", "\u200b", "\ud800", "\u2028"])
def test_no_control_invisible_or_surrogate_characters_in_ids_and_names(bad):
    for path in ("facts.loans.0.loan_id", "enterprise.name", "facts.policy_no"):
        e = _refused(_with(path, f"A{bad}B"))
        assert e.field == path and "\n" not in str(e) and "\x1b" not in str(e), (path, e)


def test_a_huge_unknown_key_is_clipped_in_the_field():
    e = _refused(_with("facts." + "k" * 100_000, 1))
    assert e.field.startswith("facts.kkk") and "(100000 chars)" in e.field and len(e.field) < 120


def test_a_prior_award_item_may_be_a_composite_key():
    item = "loan:" + "+".join(f"L-{i:060d}" for i in range(200))      # 200 loans of 62 characters
    data = _with("prior_awards", [{"clause_id": "hz2025-01-tech-loan-interest", "year": 2025, "amount": "1",
                                   "item_id": item}])
    assert parse_request(data).prior_awards[0].item_id == item


def test_unknown_clause_ids_are_echoed_whole_when_short():
    e = _refused(_with("clause_id", "hz2025-99-" + "x" * 54))
    assert e.field == "clause_id" and "x" * 54 in e.rule


def test_duplicate_loans_through_the_model_directly():
    with pytest.raises(ValueError, match="listed twice"):
        Facts.model_validate({"loans": [LOAN, {**LOAN, "loan_id": " L-1"[1:]}]})
    Facts.model_validate({"loans": [LOAN, {**LOAN, "loan_id": "L-2"}]})
    Loan.model_validate(LOAN)


def test_shown_clips_and_escapes():
    assert shown("x" * 100) == "x" * 80 + "… (100 chars)"
    assert shown("a\nb") == "a\\nb"
    assert shown("名" * 10) == "名" * 10
