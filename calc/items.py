"""One item key for what an award pays for, used by formulas, caps, 不重复 and the award book alike.

An item is the thing a subsidy is paid *for*, in the period it is paid for:

    loan:{loan_id}@{support year}              one loan, for the interest of one year
    policy:{policy_no}@{period_start}          one insurance policy, for one insured year
    investment:{investee_id}@{invested_on}     one investment in one investee
    item:{item_id}                             anything else the claim names (an ABS issue, ...)

The part before "@" is the item's *group* (the loan, the policy, the investee): per-investee caps
and the programme year of a first-set policy are counted over the group. The same item key can be
paid only once, by any clause, in any support year: that is 不重复.
"""
from __future__ import annotations

from datetime import date

SEP = "@"


def loan(loan_id: str, year: int) -> str:
    return f"loan:{loan_id}{SEP}{year}"


def policy(policy_no: str, period_start: date | None) -> str:
    return f"policy:{policy_no}" + (f"{SEP}{_iso(period_start)}" if period_start else "")


def investment(investee_id: str, invested_on: date) -> str:
    return f"investment:{investee_id}{SEP}{_iso(invested_on)}"


_ISO: dict[date, str] = {}


def _iso(day: date) -> str:
    """day.isoformat(), memoised: the days of claims repeat (the start of a policy year, of an
    investment), and formatting one cost more than the rest of the key."""
    text = _ISO.get(day)
    if text is None:
        if len(_ISO) > 100_000:
            _ISO.clear()
        text = _ISO[day] = day.isoformat()
    return text


def named(item_id: str) -> str:
    return f"item:{item_id}"


def group(key: str) -> str:
    """The item's group: the loan, the policy or the investee, without the period."""
    return key.split(SEP, 1)[0]


def investee(investee_id: str) -> str:
    """The group of every investment in one investee."""
    return f"investment:{investee_id}"
