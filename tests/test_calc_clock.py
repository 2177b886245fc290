"""The calculation core never reads the machine clock: `as_of` and the window boundaries are
policy dates (docs/calculation.md, input rules). A result depends on the request alone."""
from __future__ import annotations

import ast
from datetime import date
from pathlib import Path

import pytest

from calc import calculate, parse_request

CALC = Path(__file__).resolve().parent.parent / "calc"
CLOCK_CALLS = {"today", "now", "utcnow", "time", "time_ns", "monotonic", "perf_counter", "localtime", "gmtime",
               "ctime", "process_time"}
CLOCK_MODULES = {"time", "zoneinfo"}


def _clock_uses(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_CALLS:
            found.append(f"{path.name}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Import):
            found += [f"{path.name}:{node.lineno}: import {a.name}" for a in node.names if a.name in CLOCK_MODULES]
        elif isinstance(node, ast.ImportFrom) and node.module in CLOCK_MODULES:
            found.append(f"{path.name}:{node.lineno}: from {node.module} import ...")
    return found


@pytest.mark.parametrize("path", sorted(CALC.glob("*.py")), ids=lambda p: p.name)
def test_no_clock_in_calc(path):
    assert not _clock_uses(path)


def test_the_default_as_of_is_the_end_of_the_support_year_not_today():
    req = parse_request({
        "clause_id": "hz2025-04-tech-insurance-premium", "year": 2026,
        "enterprise": {"credit_code": "91330106MA2H00001E",
                       "qualifications": [{"kind": "tech_enterprise", "valid_from": "2020-01-01"}]},
        "facts": {"premium": "800000", "policy_no": "P-1", "period_start": "2026-01-10"}})
    assert req.as_of is None
    result = calculate(req)
    assert [t.due for t in result.schedule] == [date(2026, 12, 31)]
    assert calculate(req) == result
