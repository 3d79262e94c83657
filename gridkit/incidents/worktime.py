"""Working time (工作时): the one rule adding a time limit to a start, and the working time between two instants.

Digital city-management standards count a case's limits in working hours, except categories that run around
the clock (突发事件: gridkit.models.IncidentCategory.around_the_clock). A `WorkCalendar` is the deployment's
data (tables work_calendar_hours and work_calendar_day, gridkit.incidents.calendar): working hours per ISO
weekday in local time, and dated exceptions: a holiday (no work) or an adjusted working day (调休). A city's 调休
notice declares a weekend day a working day: it follows the normal working-day schedule, so an adjusted day works
the hours the calendar gives it (its own spans, or those of the weekday it stands for: 按星期五上班), else the
standard working day's (the hours most weekdays work; Monday's on ties, and by default).

The rule works on arrays (numpy, epoch microseconds), so deadlines of a file of 300,000 cases cost a few
binary searches, not a loop per case per hour: the calendar's working spans over the days concerned are laid
end to end with the working time before each (a "working clock"); a start reads the clock, the limit is
added, and the instant where the clock reaches the sum is found by a binary search. Local times are turned
into instants with the calendar's zone (zoneinfo), so a day with a daylight-saving change is right too.

- A start outside working hours counts from the next working instant: Friday 17:00 + 8 h is Monday 18:00
  with the default hours; Saturday 10:00 + 1 h is Monday 10:00.
- A deadline falling on the end of a span stays there (12:00, not 14:00).
- A limit of 0 leaves the start as it is.

Durations shown to people (how long a case is overdue, how long it has left) are read on the same clock:
`working_us_until` gives the signed working time from one instant to another (an overdue case's is negative).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from gridkit.errors import ValidationError
from gridkit.rules import local_tz

__all__ = [
    "DEFAULT_HOURS",
    "WorkCalendar",
    "add_working_time",
    "add_working_us",
    "working_time_between",
    "working_time_until",
    "working_us_between",
    "working_us_until",
]

# Monday to Friday, 09:00-12:00 and 14:00-18:00 (minutes after midnight): the hours of a new deployment.
DEFAULT_HOURS: dict[int, tuple[tuple[int, int], ...]] = {
    day: ((9 * 60, 12 * 60), (14 * 60, 18 * 60)) for day in range(1, 6)
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = 1_000_000
# Days of calendar laid out beyond the last start at most: a limit that reaches no working hour within
# them (a calendar whose every day is a holiday) is refused instead of searched for ever.
_HORIZON_DAYS = 3660


@dataclass(frozen=True)
class WorkCalendar:
    """Working hours per ISO weekday ({1: ((540, 720), (840, 1080)), …} in minutes, local time), dated
    exceptions ({date: "holiday" | "workday"}), the hours of adjusted working days that say theirs ({date: spans,
    or the ISO weekday whose hours it works}) and the zone local times are read in. A span may end at 1440 (24:00)."""

    hours: dict = field(default_factory=lambda: dict(DEFAULT_HOURS))
    exceptions: dict = field(default_factory=dict)
    tz: ZoneInfo = field(default_factory=local_tz)
    adjusted: dict = field(default_factory=dict)

    def day_hours(self, day: date) -> tuple:
        """Return the working spans (minutes) of one local day, its exception applied."""
        kind = self.exceptions.get(day)
        if kind == "holiday":
            return ()
        if kind == "workday":
            given = self.adjusted.get(day)
            if isinstance(given, int):
                given = self.hours.get(given)
            return tuple(given or ()) or self.workday_hours
        return self.hours.get(day.isoweekday(), ())

    @property
    def workday_hours(self) -> tuple:
        """Return the spans of the standard working day, which an adjusted working day (调休) works unless the
        calendar says otherwise: the hours most weekdays work (the earliest such weekday's on ties)."""
        worked = [tuple(self.hours[d]) for d in sorted(self.hours) if self.hours[d]]
        return max(worked, key=worked.count) if worked else ()

    def spans(self, first: date, last: date) -> tuple[np.ndarray, np.ndarray]:
        """Return (starts, ends) in epoch microseconds of the working spans of the days first … last."""
        starts, ends = [], []
        day = first
        while day <= last:
            for start, end in self.day_hours(day):
                starts.append(_local_us(day, start, self.tz))
                ends.append(_local_us(day, end, self.tz))
            day += timedelta(days=1)
        return np.array(starts, dtype=np.int64), np.array(ends, dtype=np.int64)


class _Clock:
    """The working spans of a period laid end to end: working microseconds before each span."""

    def __init__(self, calendar: WorkCalendar, first: date, last: date):
        self.starts, self.ends = calendar.spans(first, last)
        self.lengths = self.ends - self.starts
        before = np.concatenate(([0], np.cumsum(self.lengths)[:-1])) if len(self.lengths) else np.zeros(0, np.int64)
        self.before, self.after = before, before + self.lengths

    def read(self, instants: np.ndarray) -> np.ndarray:
        """Return the working microseconds from the period's start to each instant."""
        i = np.searchsorted(self.starts, instants, side="right") - 1
        span = np.maximum(i, 0)
        inside = np.clip(instants - self.starts[span], 0, None)
        read = self.before[span] + np.minimum(inside, self.lengths[span])
        return np.where(i < 0, 0, read)

    def instant(self, readings: np.ndarray) -> np.ndarray:
        """Return the first instant at which the clock reads each value (> 0, at most the clock's end)."""
        j = np.searchsorted(self.after, readings, side="left")
        return self.starts[j] + (readings - self.before[j])


def add_working_us(starts, limits, calendar: WorkCalendar) -> np.ndarray:
    """Return start + limit in working time for arrays of starts (epoch µs) and limits (µs ≥ 0), in epoch µs."""
    starts = np.asarray(starts, dtype=np.int64)
    limits = np.asarray(limits, dtype=np.int64)
    if starts.size == 0:
        return starts.copy()
    if not any(calendar.hours.get(d) for d in range(1, 8)):
        raise ValidationError("worktime.no_hours")
    first = _local_day(int(starts.min()), calendar.tz) - timedelta(days=1)
    last_start = _local_day(int(starts.max()), calendar.tz)
    weekly = sum(e - s for d in range(1, 8) for s, e in calendar.hours.get(d, ())) * 60 * _US
    days = int(limits.max()) // max(weekly, 1) * 7 + 14
    while True:
        clock = _Clock(calendar, first, last_start + timedelta(days=days))
        targets = clock.read(starts) + limits
        if len(clock.after) and targets.max() <= clock.after[-1]:
            break
        if days > _HORIZON_DAYS:
            raise ValidationError("worktime.no_hours")
        days *= 2
    due = clock.instant(np.maximum(targets, 1))
    return np.where(limits > 0, due, starts)


def working_us_between(starts, ends, calendar: WorkCalendar) -> np.ndarray:
    """Return the working microseconds from each start to its end (0 where the end is not after the start)."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    if starts.size == 0:
        return starts.copy()
    first = _local_day(int(min(starts.min(), ends.min())), calendar.tz) - timedelta(days=1)
    last = _local_day(int(max(starts.max(), ends.max())), calendar.tz) + timedelta(days=1)
    clock = _Clock(calendar, first, last)
    return np.maximum(clock.read(ends) - clock.read(starts), 0)


def working_us_until(starts, ends, calendar: WorkCalendar) -> np.ndarray:
    """Return the signed working microseconds from each start to its end: negative where the end is before the
    start (a deadline already passed, read from now: how long the case is overdue)."""
    starts = np.asarray(starts, dtype=np.int64)
    ends = np.asarray(ends, dtype=np.int64)
    ahead = working_us_between(starts, ends, calendar)
    return np.where(ends >= starts, ahead, -working_us_between(ends, starts, calendar))


def add_working_time(start: datetime, limit: timedelta | float, calendar: WorkCalendar | None) -> datetime:
    """Return `start` + `limit` (a timedelta, or hours) counted in working time, around the clock when
    `calendar` is None; in the start's zone (a naive start is read in local time)."""
    limit = limit if isinstance(limit, timedelta) else timedelta(hours=limit)
    if limit < timedelta(0):
        raise ValueError(f"a time limit is not negative: {limit}")
    if calendar is None:
        return start + limit
    start = _aware(start, calendar.tz)
    due = add_working_us([epoch_us(start)], [_delta_us(limit)], calendar)[0]
    return from_epoch_us(due).astimezone(start.tzinfo)


def working_time_between(start: datetime, end: datetime, calendar: WorkCalendar | None) -> timedelta:
    """Return the working time from `start` to `end` (all of it when `calendar` is None; 0 if end ≤ start)."""
    if calendar is None:
        return max(end - start, timedelta(0))
    us = working_us_between([epoch_us(_aware(start, calendar.tz))], [epoch_us(_aware(end, calendar.tz))], calendar)
    return timedelta(microseconds=int(us[0]))


def working_time_until(start: datetime, end: datetime, calendar: WorkCalendar | None) -> timedelta:
    """Return the signed working time from `start` to `end` (all of it when `calendar` is None): negative when
    `end` is before `start`, as `working_us_until` counts it."""
    if calendar is None:
        return end - start
    us = working_us_until([epoch_us(_aware(start, calendar.tz))], [epoch_us(_aware(end, calendar.tz))], calendar)
    return timedelta(microseconds=int(us[0]))


def _aware(value: datetime, tz: ZoneInfo) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


def epoch_us(value: datetime) -> int:
    """Return an aware time as epoch microseconds, the unit of the vectorised functions here."""
    return _delta_us(value - _EPOCH)


def from_epoch_us(us: int) -> datetime:
    """Return epoch microseconds as a UTC time."""
    return _EPOCH + timedelta(microseconds=int(us))


def _delta_us(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * _US + value.microseconds


def _local_us(day: date, minute: int, tz: ZoneInfo) -> int:
    """Return the epoch microseconds of a local time on `day` (minutes after midnight): 09:00 is 09:00 on the
    wall clock, also on a day whose clocks change; 1440 is the next midnight)."""
    if minute >= 1440:
        day, minute = day + timedelta(days=1), minute - 1440
    return epoch_us(datetime.combine(day, time(minute // 60, minute % 60), tz))


def _local_day(us: int, tz: ZoneInfo) -> date:
    return from_epoch_us(us).astimezone(tz).date()
