"""TraceStep and Tranche are tuple records (calc/model.py `_Record`), built in one C call by the
engine; to every reader they must be what the frozen dataclasses they replaced were: the same
JSON object (keys, order, values), the same validation from JSON and from dicts, the same schema,
the same equality, repr, immutability and pickling; the workflow receives the same JSON."""
from __future__ import annotations

import copy
import dataclasses
import json
import pickle
from datetime import date
from decimal import Decimal

import pytest
from pydantic import ValidationError

from calc import CalcResult, TraceStep, Tranche, calculate, catalogue
from calc.model import _TraceStepShape, _TrancheShape, trace_step, tranche
from tests.claims import request_for

CLAUSES = sorted(catalogue().clauses)


def _results():
    return [calculate(request_for(cid, Decimal(base), realistic=True)) for cid in CLAUSES
            for base in ("0.40", "123456.78", "25000000")]


def _as_shapes(result: CalcResult) -> dict:
    """The result's JSON as it was when TraceStep and Tranche were the frozen dataclasses."""
    out = json.loads(result.model_dump_json())
    out["trace"] = [json.loads(json.dumps(dataclasses.asdict(_TraceStepShape(*s)), default=str))
                    for s in result.trace]
    out["schedule"] = [json.loads(json.dumps(dataclasses.asdict(_TrancheShape(*t)), default=str))
                       for t in result.schedule]
    return out


def test_json_is_the_dataclass_json_key_by_key():
    for result in _results():
        dumped = json.loads(result.model_dump_json())
        assert dumped == _as_shapes(result)
        for step in dumped["trace"]:
            assert list(step) == ["clause_id", "step", "formula", "inputs", "result", "rule", "cite"]
        for t in dumped["schedule"]:
            assert list(t) == ["seq", "due", "amount", "label"]


def test_python_dump_gives_dicts_as_the_dataclass_did():
    result = next(r for r in _results() if r.schedule and r.trace)
    dumped = result.model_dump()
    assert dumped["trace"][0] == {name: getattr(result.trace[0], name) for name in TraceStep._fields}
    assert dumped["schedule"][0] == {"seq": 1, "due": result.schedule[0].due, "amount": result.amount
                                     if len(result.schedule) == 1 else result.schedule[0].amount,
                                     "label": result.schedule[0].label}
    # options reach inside the records, as they did inside the dataclasses
    assert "rule" not in result.model_dump(exclude_none=True)["trace"][-1]


def test_round_trip_through_json_gives_records_again():
    for result in _results():
        back = CalcResult.model_validate_json(result.model_dump_json())
        assert all(type(s) is TraceStep for s in back.trace)
        assert all(type(t) is Tranche for t in back.schedule)
        assert back.model_dump_json() == result.model_dump_json()
        again = CalcResult.model_validate(result.model_dump())    # python mode, from dicts
        assert again.model_dump_json() == result.model_dump_json()


def test_validation_refuses_what_the_dataclass_refused():
    good = calculate(request_for(CLAUSES[0], Decimal("1000"), realistic=True)).model_dump(mode="json")
    bad = json.loads(json.dumps(good))
    bad["trace"][0]["clause_id"] = 12
    with pytest.raises(ValidationError) as e:
        CalcResult.model_validate_json(json.dumps(bad))
    assert e.value.errors()[0]["loc"][:3] == ("trace", 0, "clause_id")
    bad = json.loads(json.dumps(good))
    del bad["trace"][0]["step"]
    with pytest.raises(ValidationError):
        CalcResult.model_validate_json(json.dumps(bad))
    bad = json.loads(json.dumps(good))
    bad["schedule"] = [{"seq": "x", "due": "2026-01-01", "amount": "1"}]
    with pytest.raises(ValidationError):
        CalcResult.model_validate_json(json.dumps(bad))


def test_schema_is_the_dataclass_schema():
    schema = CalcResult.model_json_schema()
    assert set(schema["$defs"]["TraceStep"]["properties"]) == set(TraceStep._fields)
    assert schema["$defs"]["TraceStep"]["required"] == ["clause_id", "step"]
    assert set(schema["$defs"]["Tranche"]["properties"]) == set(Tranche._fields)


def test_fields_defaults_equality_repr_immutability_pickle():
    s = TraceStep("c", "round")
    assert (s.clause_id, s.step, s.formula, s.inputs, s.result, s.rule, s.cite) == ("c", "round", "", {}, "", None,
                                                                                      None)
    assert TraceStep("c", "x").inputs is not TraceStep("c", "x").inputs        # default_factory=dict
    full = trace_step("c", "cap:per_year", "f", {"cap": Decimal("5")}, Decimal("1.00"), "cap:per_year", "cite")
    assert full == TraceStep(clause_id="c", step="cap:per_year", formula="f", inputs={"cap": Decimal("5")},
                             result=Decimal("1.00"), rule="cap:per_year", cite="cite")
    assert full != TraceStep("c", "cap:per_year")
    assert full != tuple(full) and tuple(full) != full and not full == tuple(full)   # only its own class
    assert full != _TraceStepShape(*full)
    assert repr(full) == repr(_TraceStepShape(*full))  # printed as the dataclass was
    with pytest.raises(AttributeError):
        full.rule = None                              # type: ignore[misc]
    assert pickle.loads(pickle.dumps(full)) == full and type(pickle.loads(pickle.dumps(full))) is TraceStep
    assert copy.deepcopy(full) == full
    t = tranche(1, date(2026, 12, 31), Decimal("5.00"), "x 2026")
    assert t == Tranche(seq=1, due=date(2026, 12, 31), amount=Decimal("5.00"), label="x 2026")
    assert Tranche(1, date(2026, 1, 1), Decimal(1)).label == ""
    assert repr(t) == repr(_TrancheShape(*t))
    assert pickle.loads(pickle.dumps(t)) == t
