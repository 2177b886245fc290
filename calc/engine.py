"""Evaluation of one clause for one claim (stub: being written)."""
from __future__ import annotations

from typing import Any

from calc.errors import InputError
from calc.model import CalcRequest, CalcResult


def parse_request(data: Any) -> CalcRequest:
    raise NotImplementedError


def calculate(request: CalcRequest) -> CalcResult:
    raise NotImplementedError


def calculate_claims(requests: list[CalcRequest]) -> list[CalcResult]:
    raise NotImplementedError
