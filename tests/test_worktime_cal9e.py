"""The working-time rule (gridkit.incidents.worktime): weekends, lunch breaks, holidays, adjusted working days,
starts outside working hours, the zone, and properties checked over many random starts against a brute-force
walk minute by minute."""

from __future__ import annotations

import random
import time as clock
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from gridkit.errors import ValidationError
from gridkit.incidents.worktime import (
    WorkCalendar,
    add_working_time,
    add_working_us,
    working_time_between,
    working_us_between,
)
from gridkit.rules import local_tz

CAL = WorkCalendar()  # Monday-Friday 09:00-12:00, 14:00-18:00, Beijing time
FRIDAY = date(2026, 12, 4)


def bj(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local_tz())


def plus(day: date, days: int) -> date:
    return day + timedelta(days=days)


def test_friday_evening_case_with_8_hours_is_due_monday_evening():
    assert FRIDAY.isoweekday() == 5
    # 17:00-18:00 Friday (1 h), Monday 09:00-12:00 (3 h) and 14:00-18:00 (4 h).
    assert add_working_time(bj(FRIDAY, 17), 8, CAL) == bj(plus(FRIDAY, 3), 18)
    # Around the clock it would be Saturday 01:00.
    assert add_working_time(bj(FRIDAY, 17), 8, None) == bj(plus(FRIDAY, 1), 1)


@pytest.mark.parametrize(
    ("start", "hours", "expected"),
    [
        (bj(FRIDAY, 17), 1, bj(FRIDAY, 18)),  # ends with the day: 18:00, not Monday 09:00
        (bj(FRIDAY, 11), 1, bj(FRIDAY, 12)),  # ends with the morning: 12:00, not 14:00
        (bj(FRIDAY, 11), 2, bj(FRIDAY, 15)),  # over the lunch break
        (bj(FRIDAY, 12, 30), 1, bj(FRIDAY, 15)),  # a start in the lunch break counts from 14:00
        (bj(FRIDAY, 7), 1, bj(FRIDAY, 10)),  # before work
        (bj(FRIDAY, 20), 1, bj(plus(FRIDAY, 3), 10)),  # after work: the next working morning
        (bj(plus(FRIDAY, 1), 10), 1, bj(plus(FRIDAY, 3), 10)),  # Saturday
        (bj(plus(FRIDAY, 2), 23, 59), 0.5, bj(plus(FRIDAY, 3), 9, 30)),  # Sunday night
        (bj(FRIDAY, 9), 7, bj(FRIDAY, 18)),  # a whole working day
        (bj(FRIDAY, 10), 7, bj(plus(FRIDAY, 3), 10)),  # a working day from 10:00: Monday 10:00
        (bj(FRIDAY, 17), 0, bj(FRIDAY, 17)),  # no limit: the start itself
        (bj(FRIDAY, 20), 0, bj(FRIDAY, 20)),
    ],
)
def test_add_working_time(start, hours, expected):
    assert add_working_time(start, hours, CAL) == expected


def test_a_working_week_from_friday_morning_is_next_friday_morning():
    # 35 h a week: Friday 09:00 + 35 h → the next Friday 09:00 + nothing left, i.e. Thursday 18:00.
    assert add_working_time(bj(FRIDAY, 9), 35, CAL) == bj(plus(FRIDAY, 6), 18)


def test_holidays_and_adjusted_working_days():
    monday, saturday = plus(FRIDAY, 3), plus(FRIDAY, 1)
    holiday = WorkCalendar(exceptions={monday: "holiday"})
    assert add_working_time(bj(FRIDAY, 17), 2, holiday) == bj(plus(FRIDAY, 4), 10)  # Tuesday
    worked = WorkCalendar(exceptions={saturday: "workday"})  # 调休: Saturday worked with Monday's hours
    assert add_working_time(bj(FRIDAY, 17), 2, worked) == bj(saturday, 10)
    # A whole Golden Week: 1-7 October off, Sunday 28 September and Saturday 11 October worked (the pattern of a
    # State Council notice; the dates here are the test's own).
    golden = WorkCalendar(
        exceptions={
            **{date(2025, 10, d): "holiday" for d in range(1, 9)},
            date(2025, 9, 28): "workday",
            date(2025, 10, 11): "workday",
        }
    )
    tuesday = date(2025, 9, 30)
    assert add_working_time(bj(tuesday, 17), 8, golden) == bj(date(2025, 10, 9), 18)
    assert working_time_between(bj(tuesday, 17), bj(date(2025, 10, 9), 18), golden) == timedelta(hours=8)


def test_weekday_hours_are_the_deployments():
    saturdays = WorkCalendar(hours={**CAL.hours, 6: ((9 * 60, 12 * 60),)})
    assert add_working_time(bj(FRIDAY, 17), 2, saturdays) == bj(plus(FRIDAY, 1), 10)
    all_day = WorkCalendar(hours={d: ((0, 1440),) for d in range(1, 8)})
    start = bj(FRIDAY, 17, 13)
    assert add_working_time(start, 31.5, all_day) == start + timedelta(hours=31.5)


def test_the_rule_takes_the_zone():
    # The same instant is Friday 17:00 in Beijing and Friday 10:00 in Berlin: different deadlines.
    start = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    berlin = WorkCalendar(tz=ZoneInfo("Europe/Berlin"))
    assert add_working_time(start, 2, CAL) == bj(plus(FRIDAY, 3), 10)
    assert add_working_time(start, 2, berlin) == datetime(2026, 12, 4, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    # Over Berlin's change to summer time (Sunday 29 March 2026): Monday 10:00 is CEST (+02:00).
    due = add_working_time(datetime(2026, 3, 27, 17, 0, tzinfo=ZoneInfo("Europe/Berlin")), 2, berlin)
    assert due == datetime(2026, 3, 30, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    assert due.utcoffset() == timedelta(hours=2)
    # The result is in the start's zone; a naive start is local time.
    assert add_working_time(start, 2, CAL).tzinfo is UTC
    assert add_working_time(datetime(2026, 12, 4, 17), 1, CAL) == bj(FRIDAY, 18)


def test_a_calendar_without_working_hours_is_refused():
    with pytest.raises(ValidationError) as exc:
        add_working_time(bj(FRIDAY, 17), 1, WorkCalendar(hours={}))
    assert exc.value.code == "worktime.no_hours"
    with pytest.raises(ValueError):
        add_working_time(bj(FRIDAY, 17), -1, CAL)


def _walked(start: datetime, minutes: int, calendar: WorkCalendar) -> datetime:
    """The deadline by walking minute by minute: the reference the fast rule must match."""
    at = start.astimezone(calendar.tz)
    while minutes > 0:
        local = at.astimezone(calendar.tz)
        now_min = local.hour * 60 + local.minute
        if any(s <= now_min < e for s, e in calendar.day_hours(local.date())):
            minutes -= 1
        at += timedelta(minutes=1)
    return at


def _random_calendar(rng: random.Random) -> WorkCalendar:
    days = [date(2026, 12, 1) + timedelta(days=rng.randrange(40)) for _ in range(8)]
    return WorkCalendar(exceptions={d: rng.choice(["holiday", "workday"]) for d in days})


def test_properties_against_a_minute_by_minute_walk():
    rng = random.Random(20261207)
    for _ in range(60):
        calendar = _random_calendar(rng)
        start = bj(date(2026, 12, 1), 0) + timedelta(minutes=rng.randrange(20 * 24 * 60))
        minutes = rng.randrange(0, 30 * 60)
        due = add_working_time(start, timedelta(minutes=minutes), calendar)
        if minutes:
            assert due == _walked(start, minutes, calendar), (start, minutes)
        assert due >= start
        assert working_time_between(start, due, calendar) == timedelta(minutes=minutes)
        more = rng.randrange(1, 600)
        # Adding twice is adding the sum; more time never gives an earlier deadline.
        twice = add_working_time(due, timedelta(minutes=more), calendar)
        assert twice == add_working_time(start, timedelta(minutes=minutes + more), calendar)
        assert twice >= due


def test_arrays_match_the_scalar_rule_and_are_fast():
    rng = np.random.default_rng(7)
    n = 300_000
    base = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) * 1_000_000
    starts = base + rng.integers(0, 365 * 86_400, n, dtype=np.int64) * 1_000_000
    limits = rng.integers(0, 72 * 3600, n, dtype=np.int64) * 1_000_000
    calendar = WorkCalendar(exceptions={date(2026, 10, d): "holiday" for d in range(1, 8)})
    began = clock.perf_counter()
    due = add_working_us(starts, limits, calendar)
    spent = working_us_between(starts, due, calendar)
    assert clock.perf_counter() - began < 5  # a loop per case per hour took minutes
    assert (spent == limits).all() and (due >= starts).all()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for i in range(0, n, 30_001):
        start = epoch + timedelta(microseconds=int(starts[i]))
        expected = add_working_time(start, timedelta(microseconds=int(limits[i])), calendar)
        assert epoch + timedelta(microseconds=int(due[i])) == expected
