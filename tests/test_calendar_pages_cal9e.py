"""The supervisor's and the coordinator's pages show deadlines counted in working time as they are: absolute
times in Beijing time (a case dispatched on Friday evening is due on Tuesday afternoon, not on Saturday)."""

from __future__ import annotations

from datetime import date, datetime

from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from factories_web import commit, sign_in

from gridkit.incidents import workflow as wf
from gridkit.rules import local_tz
from web import create_app

FRIDAY = date(2026, 11, 27)


def bj(hour: int, minute: int = 0) -> datetime:
    return datetime(FRIDAY.year, FRIDAY.month, FRIDAY.day, hour, minute, tzinfo=local_tz())


def _friday_case(session) -> int:
    make_incident_world(session, hours=())  # Monday-Friday 09:00-12:00, 14:00-18:00
    case = wf.report_incident(
        session,
        lon=IN_C1[0],
        lat=IN_C1[1],
        description="无证掘路",
        category="E0305",
        reported_at=bj(16),
        actor=SUPERVISOR,
    ).incident
    wf.accept(session, case.id, SUPERVISOR, at=bj(16, 30))
    wf.classify(session, case.id, SUPERVISOR, category="E0305", at=bj(17))
    wf.dispatch(session, case.id, SUPERVISOR, at=bj(17, 30))
    return case.id


def test_pages_show_the_working_time_deadline(fresh_settings):
    case_id = commit(fresh_settings, _friday_case)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    # Dispatch due Monday 12:00 (4 working hours from Friday 17:00), handling 8 working hours later: Tuesday 15:00.
    sign_in(client, "super1")
    page = client.get(f"/supervisor/incidents/{case_id}").get_data(as_text=True)
    assert "2026-12-01 15:00" in page and "2026-11-28" not in page
    listed = client.get("/supervisor/cases").get_data(as_text=True)
    assert "2026-12-01 15:00" in listed
    client = app.test_client()
    sign_in(client, "coord1")
    mine = client.get("/coordinator/cases?lang=en").get_data(as_text=True)
    assert "2026-12-01 15:00" in mine
