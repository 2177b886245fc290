"""Working days on the official Chinese calendar: weekends, statutory holidays and the adjusted
working days (调休, a Saturday or Sunday worked in exchange for a bridged holiday), from the
maintained `chinesecalendar` package (import name `chinese_calendar`), which publishes each year's
State Council arrangement.

A day outside the years the installed package knows is refused with `CalendarError`, never
counted as if weekends were the only days off: a period that runs into next year before its
arrangement is published cannot be computed (upgrade the package: `pip install -U chinesecalendar`).
"""
from __future__ import annotations

from datetime import date, timedelta


class CalendarError(ValueError):
    """A day the installed calendar does not cover; the message says which and what to do."""


def known_years() -> tuple[int, int]:
    """The first and last year the installed calendar package covers."""
    from chinese_calendar.constants import holidays
    years = [d.year for d in holidays]
    return min(years), max(years)


def is_working_day(day: date) -> bool:
    """Whether `day` is a working day in mainland China (调休 Saturdays and Sundays included)."""
    import chinese_calendar
    first, last = known_years()
    if not first <= day.year <= last:
        raise CalendarError(
            f"{day.isoformat()}: the official calendar of {day.year} is not known to the installed chinesecalendar "
            f"package (it covers {first}–{last}); upgrade it (`pip install -U chinesecalendar`) once the State "
            "Council has published that year's holiday arrangement, then resume the application")
    return bool(chinese_calendar.is_workday(day))


def working_days_after(day: date, count: int) -> list[date]:
    """The `count` working days that follow `day` (`day` itself not counted), in order."""
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    out: list[date] = []
    d = day
    while len(out) < count:
        d += timedelta(days=1)
        if is_working_day(d):
            out.append(d)
    return out
