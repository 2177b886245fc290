"""Every ready application in examples/ computes, with the calculation core, the amount its note
promises for the demo enterprise registry (examples/enterprises.csv)."""
from __future__ import annotations

import csv
import json
import re
from decimal import Decimal
from pathlib import Path

import pytest

from calc import CalcRequest, calculate, catalogue

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _registry() -> dict[str, dict]:
    out = {}
    with open(EXAMPLES / "enterprises.csv", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            quals = []
            for q in filter(None, row["qualifications"].split(";")):
                kind, since, *until = q.split(":")
                quals.append({"kind": kind, "valid_from": since, **({"valid_to": until[0]} if until else {})})
            out[row["credit_code"]] = {"credit_code": row["credit_code"], "name": row["name"],
                                       "region": row["region"] or None, "qualifications": quals}
    return out


FILES = sorted(p for p in EXAMPLES.glob("*.json"))


def test_there_is_an_example_for_every_payable_clause():
    assert {json.loads(p.read_text(encoding="utf-8"))["clause_id"] for p in FILES} == set(catalogue().clauses)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_example_computes_the_amount_in_its_note(path):
    app = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    req = CalcRequest.model_validate({"clause_id": app["clause_id"], "year": app["year"],
                                      "enterprise": _registry()[app["enterprise_code"]], "facts": app["facts"],
                                      "alternatives": app.get("alternatives", [])})
    result = calculate(req)
    assert result.refusal is None, result.refusal
    promised = re.findall(r"(\d[\d,]*\.\d\d)", app["note"])
    assert promised, f"{path.name}: the note names no amount"
    assert result.amount == Decimal(promised[-1].replace(",", "")), app["note"]
