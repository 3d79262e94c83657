"""The demo city's cases, loaded by the demo loader, carry the deadlines the workflow computes and
include overdue cases at every step, closed cases on time and late."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from gridkit.demo import DEMO_CASES_END, load_demo
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.categories import step_hours
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.queries import overdue_cases
from gridkit.incidents.workflow import SEVERITY_FACTOR
from gridkit.incidents.worktime import add_working_time, working_time_between
from gridkit.models import Incident, IncidentCategory, IncidentHistory
from gridkit.rules import now, parse_time

KEY = b"test-key"


def test_demo_cases_have_service_deadlines_and_some_are_overdue(session):
    # Loaded as on the day after the newest report's: the cases at the dates of the file.
    counts = load_demo(session, KEY, today=DEMO_CASES_END)
    cases = session.scalars(select(Incident).order_by(Incident.code)).all()
    assert len(cases) == counts["incidents"] == 150
    assert sum(counts["incident_states"].values()) == 150
    assert set(counts["incident_states"]) == {"reported", "accepted", "classified", "dispatched", "fed_back", "closed"}
    categories = {c.code: c for c in session.scalars(select(IncidentCategory))}
    calendar = load_calendar(session)
    classified = 0
    for case in cases:
        cat = categories[case.category_code]
        hours = step_hours(cat)

        def after(start, limit, cat=cat):
            # In working time on the demo's calendar (the default hours), or around the clock (突发事件).
            return add_working_time(start, timedelta(hours=limit), None if cat.around_the_clock else calendar)

        assert parse_time(case.deadlines["accept"]) == after(case.reported_at, hours["accept"])
        if case.classified_at is None:
            assert case.step_deadline == parse_time(case.deadlines[{"reported": "accept"}.get(case.status, "classify")])
            continue
        classified += 1
        # The classify rule: dispatch, then handling × severity, then verification.
        dispatch_by = after(case.classified_at, hours["dispatch"])
        handle_by = after(dispatch_by, hours["handle"] * SEVERITY_FACTOR[case.severity])
        verify_by = after(handle_by, hours["verify"])
        assert parse_time(case.deadlines["dispatch"]) == dispatch_by
        assert case.deadline == verify_by
        if case.rework_count == 0:
            assert parse_time(case.deadlines["handle"]) == handle_by
        if case.status != "closed":
            assert case.step_deadline is not None
    assert classified >= 100
    assert {c.severity for c in cases if c.severity} == {"low", "normal", "high", "urgent"}
    # Every case's history is the workflow's: one row per step, in time order (a case closed late here).
    late = next(c for c in cases if c.rework_count == 1 and c.status == "closed")
    history = session.scalars(select(IncidentHistory).where(IncidentHistory.incident_id == late.id)).all()
    assert [h.to_status for h in sorted(history, key=lambda h: h.at)] == [
        "reported",
        "accepted",
        "classified",
        "dispatched",
        "fed_back",
        "dispatched",
        "fed_back",
        "closed",
    ]
    overdue = overdue_cases(session)
    assert set(overdue["per_step"]) == {"accept", "classify", "dispatch", "handle", "verify"}
    assert overdue["total"] == sum(n for s, n in counts["incident_states"].items() if s != "closed")
    assert overdue["escalation"]
    figures = evaluate(session, by="department", from_="2026-09-01", to="2026-11-01")["total"]
    assert figures["cases"] == 150 and 0 < figures["on_time_rate"] < 1 and 0 < figures["rework_rate"] < 1
    assert figures["overdue"] == overdue["total"]


def test_demo_case_fates_follow_their_age(session):
    # A real city's record: the old cases closed, last week's mostly, the last days' in progress, a few
    # overdue. The fates used to rotate by place in the file: two-month-old cases still waiting at "reported".
    load_demo(session, KEY)
    as_of = now()
    cases = session.scalars(select(Incident)).all()
    by_age = {"old": [], "week": [], "recent": []}
    for case in cases:
        age = as_of - case.reported_at
        by_age["old" if age >= timedelta(days=21) else "week" if age >= timedelta(days=3) else "recent"].append(case)
    assert len(by_age["old"]) >= 60 and len(by_age["week"]) >= 30 and len(by_age["recent"]) >= 4
    old_open = [c for c in by_age["old"] if c.status != "closed"]
    assert {c.status for c in by_age["old"]} <= {"closed", "dispatched"}
    assert 0 < len(old_open) <= 0.08 * len(by_age["old"])
    # The few left behind are overdue, but for a case whose handling limit, counted in working time, is longer
    # than the working time it has had (a 168-hour limit × 1.5 for a low severity is some seven weeks of work).
    assert any(c.step_deadline < as_of for c in old_open)
    calendar = load_calendar(session)
    for case in old_open:
        if case.step_deadline >= as_of:
            limit = step_hours(session.get(IncidentCategory, case.category_code))["handle"]
            limit *= SEVERITY_FACTOR[case.severity]
            assert working_time_between(case.dispatched_at, as_of, calendar) < timedelta(hours=limit)
    week_closed = sum(c.status == "closed" for c in by_age["week"])
    assert 0.5 * len(by_age["week"]) <= week_closed < len(by_age["week"])
    assert all(c.status != "closed" for c in by_age["recent"])
    assert {c.status for c in by_age["recent"]} >= {"reported", "accepted", "classified", "dispatched"}
    # Late closures (one rework) are among the closed, old and recent weeks alike.
    assert any(c.rework_count == 1 and c.status == "closed" for c in by_age["old"])
    overdue = overdue_cases(session)["total"]
    assert 0 < overdue <= 0.15 * len(cases)
