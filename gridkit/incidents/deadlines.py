"""The workflow's rules: which action leads from which state, which step a case waits for, and its clocks.

Deadlines per step come from the case's category (gridkit.incidents.categories.step_hours) and,
for handling, its severity. Times are aware datetimes; deadlines are kept as ISO 8601 strings in
the case's `deadlines` and the pending one in `step_deadline`.

Limits count in working time (gridkit.incidents.worktime, on the deployment's calendar), except a
category's that runs around the clock (around_the_clock: 突发事件). A deadline is computed when its
step's clock starts and then stored: a case keeps the deadlines it was given whatever its category becomes
later; when the calendar changes, an open case's deadlines are counted again with the same working time on the
new calendar (gridkit.incidents.recount).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.categories import step_hours
from gridkit.incidents.worktime import WorkCalendar, add_working_time, working_time_between, working_time_until
from gridkit.models import Incident, IncidentCategory
from gridkit.rules import IncidentState, now, parse_time

S = IncidentState
# action → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset, IncidentState]] = {
    "accept": (frozenset({S.REPORTED}), S.ACCEPTED),
    "reject": (frozenset({S.REPORTED}), S.REJECTED),
    "duplicate": (frozenset({S.REPORTED, S.ACCEPTED}), S.DUPLICATE),
    "classify": (frozenset({S.ACCEPTED}), S.CLASSIFIED),
    # From dispatched too: a case whose coordinator stopped (or sent to the wrong department) is dispatched again.
    "dispatch": (frozenset({S.CLASSIFIED, S.DISPATCHED}), S.DISPATCHED),
    "feedback": (frozenset({S.DISPATCHED}), S.FED_BACK),
    "close": (frozenset({S.FED_BACK}), S.CLOSED),
    "rework": (frozenset({S.FED_BACK}), S.DISPATCHED),
}


# The step a case in a state waits for (its deadline is step_deadline); finished states wait for none.
PENDING_STEP = {
    S.REPORTED: "accept",
    S.ACCEPTED: "classify",
    S.CLASSIFIED: "dispatch",
    S.DISPATCHED: "handle",
    S.FED_BACK: "verify",
}


# Handling time scales with severity: urgent cases get half the category's time limit.
SEVERITY_FACTOR = {"low": 1.5, "normal": 1.0, "high": 0.75, "urgent": 0.5}


# A client clock a little ahead of ours is not "the future".
CLOCK_SKEW = timedelta(minutes=5)


def allowed_actions(state: str) -> list[str]:
    """Return the actions the workflow allows from `state`."""
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


def start_clock(incident: Incident, cat: IncidentCategory | None, calendar: WorkCalendar) -> None:
    """Give a newly reported case its first deadline: accept within the category's accept hours (in working time
    on `calendar`, the deployment's, unless the category runs around the clock)."""
    accept_by = due(incident.reported_at, step_times(cat)["accept"], clock_of(cat, calendar))
    incident.deadlines = {"accept": iso(accept_by)}
    incident.step_deadline = accept_by


def set_deadline(incident: Incident, step: str, when: datetime | None) -> None:
    """Make `step` the pending one: its deadline is `when`, or the one computed at classify."""
    deadlines = dict(incident.deadlines or {})
    if when is not None:
        deadlines[step] = iso(when)
        incident.deadlines = deadlines
    incident.step_deadline = parse_time(deadlines[step]) if deadlines.get(step) else None


def clock_of(cat: IncidentCategory | None, calendar: WorkCalendar) -> WorkCalendar | None:
    """Return the calendar a category's limits count in: None when they run around the clock."""
    return None if cat is not None and cat.around_the_clock else calendar


def case_clock(session: Session, cat: IncidentCategory | None) -> WorkCalendar | None:
    """Return the calendar a case of category `cat` counts its limits in (None: around the clock)."""
    return clock_of(cat, load_calendar(session))


def due(start: datetime, limit: timedelta, clock: WorkCalendar | None) -> datetime:
    """Return the deadline of a step whose clock starts at `start` (the one rule: worktime.add_working_time)."""
    return add_working_time(start, limit, clock)


def due_many(starts, hours, around_the_clock, calendar: WorkCalendar):
    """Return the deadlines of many clocks at once (the rule of `due`, vectorised): pandas Series of UTC starts,
    limits in hours, and whether each runs around the clock; a Series of UTC times (NaT where the start is)."""
    import numpy as np
    import pandas as pd

    from gridkit.incidents.worktime import add_working_us

    epoch = pd.Timestamp(0, tz="UTC")
    known = starts.notna().to_numpy()
    start_us = _epoch_us(starts)
    limit_us = np.round(hours.to_numpy(dtype=float) * 3.6e9).astype(np.int64)
    plain = around_the_clock.to_numpy(dtype=bool) | ~known
    result = start_us + limit_us
    if (~plain).any():
        result[~plain] = add_working_us(start_us[~plain], limit_us[~plain], calendar)
    out = pd.Series(epoch + pd.to_timedelta(result, unit="us"), index=starts.index)
    return out.where(known)


def spent_many(starts, ends, around_the_clock, calendar: WorkCalendar):
    """Return the times from many starts to their ends (pandas Series of UTC times) in microseconds, counted as
    `record_step_times` counts them: working time, or around the clock where `around_the_clock`; <NA> where a
    time is missing."""
    import numpy as np
    import pandas as pd

    from gridkit.incidents.worktime import working_us_between

    known = (starts.notna() & ends.notna()).to_numpy()
    start_us, end_us = _epoch_us(starts), _epoch_us(ends)
    result = np.maximum(end_us - start_us, 0)
    working = known & ~around_the_clock.to_numpy(dtype=bool)
    if working.any():
        result[working] = working_us_between(start_us[working], end_us[working], calendar)
    return pd.Series(pd.array(result, dtype="Int64"), index=starts.index).where(known)


def left_many(deadlines, at, around_the_clock, calendar: WorkCalendar):
    """Return the time each case has left before its deadline at `at` (pandas Series of UTC deadlines; a UTC
    Timestamp), in microseconds counted as its limits count (working time, or around the clock where
    `around_the_clock`): negative for a case overdue (by as much), <NA> where there is no deadline. The one
    reading of remaining and overdue durations (worktime.working_us_until)."""
    import numpy as np
    import pandas as pd

    from gridkit.incidents.worktime import working_us_until

    known = deadlines.notna().to_numpy()
    due_us = _epoch_us(deadlines)
    at_us = np.full(len(due_us), (pd.Timestamp(at) - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1))
    result = due_us - at_us
    working = known & ~around_the_clock.to_numpy(dtype=bool)
    if working.any():
        result[working] = working_us_until(at_us[working], due_us[working], calendar)
    return pd.Series(pd.array(result, dtype="Int64"), index=deadlines.index).where(known)


def time_left(deadline: datetime | None, at: datetime, clock: WorkCalendar | None) -> dict | None:
    """Return what a case has left before `deadline` at `at`, for a reader: {"hours": signed hours, one decimal
    (negative: overdue), "working": counted in working hours, "day_hours": a day of that clock}; None without a
    deadline."""
    if deadline is None:
        return None
    return _left(working_time_until(at, deadline, clock) // timedelta(microseconds=1), clock)


def times_left(calendar: WorkCalendar | None, deadlines: list, around: list[bool], at) -> list[dict | None]:
    """Return what each case has left before its deadline at `at` (time_left's form, vectorised: left_many),
    counted as its limits count (`around`: its category runs around the clock); None where there is none."""
    import pandas as pd

    if not deadlines:
        return []
    due = pd.Series(pd.to_datetime(list(deadlines), utc=True))
    left = left_many(due, pd.Timestamp(at), pd.Series(around, dtype=bool), calendar)
    return [
        None if pd.isna(us) else _left(int(us), None if a else calendar) for us, a in zip(left, around, strict=True)
    ]


def day_hours(clock: WorkCalendar | None) -> float:
    """Return how many hours make a day of a clock: 24 around the clock (None), the standard working day's
    working hours on a calendar (WorkCalendar.workday_hours: 7 with the default hours)."""
    if clock is None:
        return 24.0
    return sum(end - start for start, end in clock.workday_hours) / 60


def _left(us: int, clock: WorkCalendar | None) -> dict:
    """Return a time left (µs, negative: overdue) for a reader: hours with one decimal, whether they are working
    hours, and how many hours make a day of that clock (day_hours)."""
    return {"hours": round(us / 3.6e9, 1), "working": clock is not None, "day_hours": day_hours(clock)}


def _epoch_us(times):
    """Return a pandas Series of UTC times as epoch microseconds (numpy int64; 0 where a time is missing)."""
    import numpy as np
    import pandas as pd

    return ((times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)).fillna(0).to_numpy(np.int64)


# Each step's time: (the timestamp it ends at, the one it starts at); the evaluation reads the same (evaluate.STEPS).
STEP_TIMES = {
    "accept": ("accepted_at", "reported_at"),
    "classify": ("classified_at", "accepted_at"),
    "dispatch": ("dispatched_at", "classified_at"),
    "handle": ("fed_back_at", "dispatched_at"),
    "verify": ("closed_at", "fed_back_at"),
    "total": ("closed_at", "reported_at"),
}


def record_step_times(session: Session, incident: Incident) -> None:
    """Set the case's step times (`<step>_work_us`) from its timestamps, counted as its limits count: in working
    time, or around the clock for a category that runs so; None for a step not done."""
    clock = case_clock(session, case_category(session, incident))
    for step, (end_field, start_field) in STEP_TIMES.items():
        start, end = getattr(incident, start_field), getattr(incident, end_field)
        spent = working_time_between(start, end, clock) if start is not None and end is not None else None
        setattr(incident, f"{step}_work_us", None if spent is None else spent // timedelta(microseconds=1))


def case_category(session: Session, incident: Incident) -> IncidentCategory | None:
    return session.get(IncidentCategory, incident.category_code) if incident.category_code else None


def step_times(cat: IncidentCategory | None, severity: str = "normal") -> dict[str, timedelta]:
    """Return the time allowed per step for a category (defaults without one) and severity."""
    from gridkit.standard.categories import STEP_DEFAULT_HOURS

    hours = step_hours(cat) if cat is not None else {**STEP_DEFAULT_HOURS, "handle": 8}
    result = {step: timedelta(hours=h) for step, h in hours.items()}
    result["handle"] = result["handle"] * SEVERITY_FACTOR[severity]
    return result


def past_time(value, field_name: str) -> datetime | None:
    when = parse_time(value, field=field_name)
    if when is not None and when > now() + CLOCK_SKEW:
        raise ValidationError("incident.future_time", field=field_name, value=iso(when))
    return when


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
