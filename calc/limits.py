"""Limits that constrain loans and guarantees (not awards): guarantee fee caps, the 4222
risk-sharing split, loan size and term caps. Evaluated against facts by `disburse check`."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from calc.catalogue import Catalogue, catalogue
from calc.context import cite_text
from calc.parameters import value_on
from calc.rules import OPS


def check_limits(facts: dict[str, Any], doc: str | None = None, on: date | None = None,
                 cat: Catalogue | None = None) -> list[dict[str, Any]]:
    """Each limit whose fact is given: {limit, doc, fact, value, limit_value, ok, rule, cite}."""
    cat = cat or catalogue()
    out = []
    for d in cat.documents.values():
        if doc and d.id != doc:
            continue
        day = on or d.window.start
        for lim in d.limits:
            if lim.fact not in facts:
                continue
            dated = value_on(lim.value, day) or lim.value[0]
            limit = Decimal(str(dated.value))
            actual = facts[lim.fact]
            out.append({"limit": lim.id, "doc": d.id, "fact": lim.fact, "value": str(actual),
                        "limit_value": str(limit), "op": lim.op, "ok": bool(OPS[lim.op](actual, limit)),
                        "rule": lim.rule, "cite": cite_text(dated.cite)})
    return out
