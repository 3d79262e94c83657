"""How long a case is overdue, or has left, counts as its limits count: a working-time case due Friday at 17:00
seen on Monday at 09:00 is one working hour late, not 64 hours; a case of a category that runs around the clock
is 64 hours late. The dashboard, the case lists, the case page and `gridkit incident overdue`/`show` say which."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from factories_web import commit, sign_in
from sqlalchemy import text

from gridkit.cli import main
from gridkit.incidents import workflow as wf
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.deadlines import left_many, time_left
from gridkit.incidents.queries import list_incidents, overdue_cases, show_incident
from gridkit.incidents.worktime import WorkCalendar, working_time_between, working_us_until
from gridkit.rules import local_tz
from web import create_app

FRIDAY = date(2026, 11, 27)
MONDAY = FRIDAY + timedelta(days=3)
CAL = WorkCalendar()  # Monday to Friday, 09:00-12:00 and 14:00-18:00


def bj(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local_tz())


def test_friday_17_seen_monday_9_is_one_working_hour_late_not_64():
    left = time_left(bj(FRIDAY, 17), bj(MONDAY, 9), CAL)
    assert left == {"hours": -1.0, "working": True, "day_hours": 7.0}
    assert time_left(bj(FRIDAY, 17), bj(MONDAY, 9), None) == {"hours": -64.0, "working": False, "day_hours": 24.0}
    # Remaining: Friday 16:00 → Monday 10:00 is 2 working hours on Friday and 1 on Monday.
    assert time_left(bj(MONDAY, 10), bj(FRIDAY, 16), CAL)["hours"] == 3.0
    assert time_left(None, bj(FRIDAY, 16), CAL) is None


def test_signed_rule_and_its_vectorised_reading_agree():
    us = 3_600_000_000
    friday17, monday9 = (int(pd.Timestamp(t).value // 1000) for t in (bj(FRIDAY, 17), bj(MONDAY, 9)))
    assert list(working_us_until([monday9, friday17], [friday17, monday9], CAL)) == [-us, us]
    deadlines = pd.Series(pd.to_datetime([bj(FRIDAY, 17), bj(FRIDAY, 17), None], utc=True))
    around = pd.Series([False, True, False])
    left = left_many(deadlines, pd.Timestamp(bj(MONDAY, 9)), around, CAL)
    assert left[0] == -us and left[1] == -64 * us and pd.isna(left[2])


def _overdue_pair(session) -> tuple[int, int]:
    """Two cases 64 hours past their step's deadline: one counting working time, one around the clock."""
    working = wf.report_incident(session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失", actor=SUPERVISOR)
    urgent = wf.report_incident(session, lon=IN_C1[0], lat=IN_C1[1], description="路面塌陷", actor=SUPERVISOR)
    wf.accept(session, urgent.incident.id, SUPERVISOR)
    wf.classify(session, urgent.incident.id, SUPERVISOR, category="E0401")
    ids = (working.incident.id, urgent.incident.id)
    session.execute(
        text("UPDATE incident SET step_deadline = now() - interval '64 hours' WHERE id = ANY(:ids)"), {"ids": list(ids)}
    )
    return ids


def test_overdue_cases_count_as_their_category_counts(session):
    make_incident_world(session, hours=())  # the default working hours
    working, urgent = _overdue_pair(session)
    at = session.scalar(text("SELECT now()"))
    expected = round(working_time_between(at - timedelta(hours=64), at, load_calendar(session)) / timedelta(hours=1), 1)
    cases = {c["id"]: c for c in overdue_cases(session)["cases"]}
    assert cases[working]["working_time"] and cases[working]["hours_late"] == pytest.approx(expected, abs=0.1)
    assert cases[working]["hours_late"] < 64  # 64 hours hold at most 3 working days' hours
    assert not cases[urgent]["working_time"] and cases[urgent]["hours_late"] == pytest.approx(64, abs=0.1)
    escalated = {c["id"] for c in overdue_cases(session)["escalation"]}
    # A day late: 24 hours around the clock, a standard working day's 7 hours in working time.
    assert escalated == {urgent} | ({working} if cases[working]["hours_late"] > 7 else set())
    # The lists and the case page read the same rule.
    items = {c["id"]: c for c in list_incidents(session, overdue=True)["items"]}
    assert items[working]["time_left"] == {"hours": -cases[working]["hours_late"], "working": True, "day_hours": 7}
    assert items[urgent]["time_left"] == {"hours": -cases[urgent]["hours_late"], "working": False, "day_hours": 24}
    assert show_incident(session, urgent, SUPERVISOR)["time_left"] == items[urgent]["time_left"]


def test_a_working_time_case_is_escalated_a_working_day_late(session):
    make_incident_world(session, hours=("1-7=09:00-17:00",))  # every day 8 working hours
    working, _ = _overdue_pair(session)
    session.execute(
        text("UPDATE incident SET step_deadline = now() - interval '30 hours' WHERE id = :i"), {"i": working}
    )
    case = next(c for c in overdue_cases(session)["cases"] if c["id"] == working)
    # 30 hours hold at least 8 working hours of that calendar (8 a day, 24 hours apart), at most 16.
    assert 8 <= case["hours_late"] <= 16
    assert case["escalate"] == (case["hours_late"] > 8)


@pytest.fixture
def overdue_app(fresh_settings):
    ids = commit(fresh_settings, lambda s: (make_incident_world(s, hours=()), _overdue_pair(s))[1])
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def test_pages_and_cli_say_how_the_duration_counts(overdue_app):
    app, settings, (working, urgent) = overdue_app
    client = app.test_client()
    sign_in(client, "super1")
    dashboard = client.get("/supervisor", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "个工作小时" in dashboard and "超期 2 天 16 小时（全天候计时）" in dashboard
    page = client.get(f"/supervisor/incidents/{working}").get_data(as_text=True)
    assert 'id="case-time-left"' in page and "个工作小时" in page
    listed = client.get("/supervisor/cases?overdue=1").get_data(as_text=True)
    assert listed.count('time-left">') == 2
    env = {"GRIDKIT_LANG": "en"}
    result = CliRunner().invoke(main, ["incident", "overdue"], obj=settings, env=env)
    assert result.exit_code == 0, result.output
    assert "working h" in result.output and "h (around the clock)" in result.output
    shown = CliRunner().invoke(main, ["incident", "show", str(urgent)], obj=settings, env=env)
    assert "OVERDUE by 64" in shown.output and "(around the clock)" in shown.output
