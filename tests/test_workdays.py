"""The official working-day calendar (calc/workdays.py, the `chinesecalendar` package): statutory
holidays, adjusted working days (调休) and a refusal, never a guess, outside the known years."""
from __future__ import annotations

from datetime import date

import pytest

from calc.workdays import CalendarError, is_working_day, known_years, working_days_after


@pytest.mark.parametrize("day, working", [
    (date(2026, 10, 1), False),      # 国庆
    (date(2026, 10, 7), False),
    (date(2026, 9, 20), True),       # a Sunday worked for 国庆 (调休)
    (date(2026, 10, 10), True),      # a Saturday worked for 国庆 (调休)
    (date(2026, 10, 11), False),     # an ordinary Sunday
    (date(2026, 2, 14), True),       # a Saturday worked for 春节
    (date(2026, 2, 16), False),      # 春节
    (date(2026, 11, 30), True),      # an ordinary Monday
    (date(2026, 11, 28), False),     # an ordinary Saturday
])
def test_the_official_calendar(day, working):
    assert is_working_day(day) is working


def test_counting_skips_holidays_and_weekends_and_counts_adjusted_days():
    assert working_days_after(date(2026, 9, 29), 5) == [date(2026, 9, 30), date(2026, 10, 8), date(2026, 10, 9),
                                                          date(2026, 10, 10), date(2026, 10, 12)]
    # 春节 2026: Saturday 02-14 is worked, 02-15..02-23 off
    assert working_days_after(date(2026, 2, 12), 3) == [date(2026, 2, 13), date(2026, 2, 14), date(2026, 2, 24)]
    assert working_days_after(date(2026, 11, 27), 1) == [date(2026, 11, 30)]


def test_a_day_beyond_the_known_years_is_refused_with_what_to_do():
    first, last = known_years()
    assert first <= 2026 <= last
    with pytest.raises(CalendarError, match=rf"calendar of {last + 1} is not known.*pip install -U chinesecalendar"):
        is_working_day(date(last + 1, 1, 5))
    # a period that would run into that year is refused too, not counted on weekends alone
    with pytest.raises(CalendarError):
        working_days_after(date(last, 12, 28), 5)
    with pytest.raises(CalendarError):
        is_working_day(date(first - 1, 6, 1))


def test_a_count_below_one_is_a_programming_error():
    with pytest.raises(ValueError):
        working_days_after(date(2026, 11, 27), 0)
