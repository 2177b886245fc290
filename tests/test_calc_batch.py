"""calc.batch.evaluate_many: every request evaluated as `calculate` would, in input order, on
worker processes; an InputError in place of a request its clause cannot evaluate."""
from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from calc import InputError, calculate, catalogue
from calc.batch import award, evaluate_many
from tests.claims import request_for

CLAUSES = sorted(catalogue().clauses)


def _requests():
    reqs = []
    for i, cid in enumerate(CLAUSES * 3):
        req = request_for(cid, Decimal(10_000 + 7_919 * i), realistic=bool(i % 2))
        if i % 5 == 0:     # one enterprise's claims sharing their prior awards
            req = req.model_copy(update={"prior_awards": reqs[-1].prior_awards if reqs else ()})
        reqs.append(req)
    # a claim missing a fact its clause needs: InputError in its place
    needy = next(c for c in CLAUSES if catalogue().clause(c)[1].required_facts)
    name = catalogue().clause(needy)[1].required_facts[0]
    bad = request_for(needy, Decimal(1000))
    reqs.insert(7, bad.model_copy(update={"facts": bad.facts.model_copy(update={name: None})}))
    return reqs


def _expected(req):
    try:
        return calculate(req).to_json_dict()
    except InputError as e:
        return ("input_error", e.field, e.rule)


def _got(x):
    return ("input_error", x.field, x.rule) if isinstance(x, InputError) else x.to_json_dict()


@pytest.mark.parametrize("processes", [1, 2])
def test_results_are_calculates_in_input_order(processes):
    reqs = _requests()
    got = evaluate_many(reqs, processes=processes, chunksize=10)
    assert [_got(x) for x in got] == [_expected(r) for r in reqs]
    assert any(isinstance(x, InputError) for x in got)


def test_a_summary_is_applied_in_the_workers():
    reqs = _requests()
    got = evaluate_many(reqs, processes=2, summary=award, chunksize=16)
    for req, x in zip(reqs, got):
        expected = _expected(req)
        if isinstance(expected, tuple):
            assert _got(x) == expected
        else:
            assert x == (expected["clause_id"], Decimal(expected["amount"]),
                         expected["refusal"]["code"] if expected["refusal"] else None)


def test_small_batches_and_bad_chunks():
    reqs = _requests()[:3]
    assert [_got(x) for x in evaluate_many(reqs)] == [_expected(r) for r in reqs]
    assert evaluate_many([]) == []
    with pytest.raises(ValueError):
        evaluate_many(reqs, chunksize=0)


def test_an_input_error_survives_pickling():
    e = pickle.loads(pickle.dumps(InputError("facts.premium", "needed")))
    assert (e.field, e.rule, str(e)) == ("facts.premium", "needed", "facts.premium: needed")
