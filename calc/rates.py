"""LPR and deposit benchmark tables (policies/rates.yaml) — provisional lead version."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

LPR = [  # since, 1Y, 5Y
    (date(2023, 6, 20), Decimal("3.55"), Decimal("4.20")),
    (date(2023, 8, 21), Decimal("3.45"), Decimal("4.20")),
    (date(2024, 2, 20), Decimal("3.45"), Decimal("3.95")),
    (date(2024, 7, 22), Decimal("3.35"), Decimal("3.85")),
    (date(2024, 10, 21), Decimal("3.10"), Decimal("3.60")),
    (date(2025, 5, 20), Decimal("3.00"), Decimal("3.50")),
]
DEPOSIT = [(3, Decimal("1.10")), (6, Decimal("1.30")), (12, Decimal("1.50")), (24, Decimal("2.10")), (36, Decimal("2.75"))]


def lpr_on(day: date, term_months: int) -> tuple[Decimal, str]:
    found = None
    for since, one, five in LPR:
        if since <= day:
            found = (since, one, five)
    if found is None:
        raise LookupError(f"no LPR before {LPR[0][0]}")
    since, one, five = found
    if term_months <= 60:
        return one, f"LPR 1Y {one} since {since}"
    return five, f"LPR 5Y {five} since {since}"


def deposit_rate(term_months: int) -> tuple[Decimal, str]:
    for months, r in DEPOSIT:
        if term_months <= months:
            return r, f"deposit {months}m {r}"
    return DEPOSIT[-1][1], f"deposit 36m {DEPOSIT[-1][1]} (longer terms)"
