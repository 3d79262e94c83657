"""The workflow's rules: which action leads from which state, which step a case waits for, and its clocks.

Deadlines per step come from the case's category (gridkit.incidents.categories.step_hours) and,
for handling, its severity. Times are aware datetimes; deadlines are kept as ISO 8601 strings in
the case's `deadlines` and the pending one in `step_deadline`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.categories import step_hours
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


def start_clock(incident: Incident, cat: IncidentCategory | None) -> None:
    """Give a newly reported case its first deadline: accept within the category's accept hours."""
    accept_by = incident.reported_at + step_times(cat)["accept"]
    incident.deadlines = {"accept": iso(accept_by)}
    incident.step_deadline = accept_by


def set_deadline(incident: Incident, step: str, when: datetime | None) -> None:
    """Make `step` the pending one: its deadline is `when`, or the one computed at classify."""
    deadlines = dict(incident.deadlines or {})
    if when is not None:
        deadlines[step] = iso(when)
        incident.deadlines = deadlines
    incident.step_deadline = parse_time(deadlines[step]) if deadlines.get(step) else None


def case_category(session: Session, incident: Incident) -> IncidentCategory | None:
    return session.get(IncidentCategory, incident.category_code) if incident.category_code else None


def step_times(cat: IncidentCategory | None, severity: str = "normal") -> dict[str, timedelta]:
    """Return the time allowed per step for a category (defaults without one) and severity."""
    from gridkit.standard.categories import STEP_DEFAULT_HOURS

    hours = step_hours(cat) if cat is not None else {**STEP_DEFAULT_HOURS, "handle": 24}
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
