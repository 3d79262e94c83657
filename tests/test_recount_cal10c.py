"""A calendar changed later: open cases' deadlines and step times are counted again at once, as a case handled
after the change would be; finished cases keep their evaluated times until `gridkit calendar recount [--since]`
(audited, one transaction) counts them again; the evaluation's rollup stays the one a full rebuild makes."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, SUPERVISOR, coordinator_actor, make_incident_world
from factories_web import commit
from sqlalchemy import select, text

from gridkit import db
from gridkit.cli import main
from gridkit.incidents import workflow as wf
from gridkit.incidents.calendar import import_calendar_days, load_calendar, remove_calendar_days, set_hours
from gridkit.incidents.recount import recount_cases
from gridkit.models import AuditLog, Incident
from gridkit.rules import local_tz, parse_time

FRIDAY = date(2026, 11, 27)
MONDAY = FRIDAY + timedelta(days=3)
STEPS = ("accept", "classify", "dispatch", "handle", "verify", "total")


def bj(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local_tz())


def _classified(session, description: str) -> Incident:
    case = wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], description=description, reported_at=bj(FRIDAY, 16), actor=SUPERVISOR
    ).incident
    wf.accept(session, case.id, SUPERVISOR, at=bj(FRIDAY, 16, 30))
    wf.classify(session, case.id, SUPERVISOR, category="E0305", at=bj(FRIDAY, 17))
    return case


def _reworked(session, world, description: str) -> Incident:
    case = _classified(session, description)
    wf.dispatch(session, case.id, SUPERVISOR, at=bj(FRIDAY, 17, 30))
    wf.feedback(session, case.id, coordinator_actor(world, 1), note="好了", at=bj(MONDAY, 9, 30))
    wf.rework(session, case.id, SUPERVISOR, note="没好", at=bj(MONDAY, 10))
    return case


def _closed(session, world, description: str) -> Incident:
    case = _reworked(session, world, description)
    wf.feedback(session, case.id, coordinator_actor(world, 1), note="好了", at=bj(MONDAY + timedelta(days=2), 10))
    wf.close(session, case.id, SUPERVISOR, at=bj(MONDAY + timedelta(days=2), 11))
    return case


def _deadlines(case: Incident) -> dict:
    return {
        **{k: parse_time(v) for k, v in case.deadlines.items()},
        "deadline": case.deadline,
        "step": case.step_deadline,
    }


def _times(case: Incident) -> dict:
    return {s: getattr(case, f"{s}_work_us") for s in STEPS}


def _rollup(session) -> list:
    """The rollup's rows that count something (the triggers leave a key emptied by a case moving, all zeros)."""
    rows = session.execute(text("SELECT * FROM incident_eval ORDER BY 1, 2, 3, 4, 5")).all()
    return [r for r in rows if any(r[5:])]


@pytest.mark.as_owner(
    "the rollup is compared with the owner's recount, gridkit_rebuild_incident_eval(), in the same transaction"
)
def test_open_cases_are_counted_again_as_if_handled_after_the_change(session, tmp_path):
    world = make_incident_world(session, hours=())  # Monday-Friday 09:00-12:00, 14:00-18:00
    classified, reworked = _classified(session, "a"), _reworked(session, world, "b")
    closed = _closed(session, world, "c")
    closed_before = (_deadlines(closed), _times(closed))
    path = tmp_path / "h.csv"
    path.write_text(f"date,kind,name\n{MONDAY},holiday,补录假日\n{MONDAY + timedelta(days=1)},holiday,补录假日\n")
    assert import_calendar_days(session, path).recounted == 2
    session.expire_all()
    # The same cases handled after the change: their deadlines and times are the recounted ones.
    fresh_classified, fresh_reworked = _classified(session, "d"), _reworked(session, world, "e")
    assert _deadlines(classified) == _deadlines(fresh_classified)
    assert _deadlines(reworked) == _deadlines(fresh_reworked) and _times(reworked) == _times(fresh_reworked)
    assert classified.step_deadline == bj(MONDAY + timedelta(days=2), 12)  # dispatch: 4 working hours
    # The closed case keeps what it was evaluated with.
    assert (_deadlines(closed), _times(closed)) == closed_before
    rollup = _rollup(session)
    session.execute(text("SELECT gridkit_rebuild_incident_eval()"))
    assert _rollup(session) == rollup
    # Removing the holidays and changing hours count the open ones again too.
    assert remove_calendar_days(session, [str(MONDAY), str(MONDAY + timedelta(days=1))])["recounted"] == 4
    session.expire_all()
    assert classified.step_deadline == bj(MONDAY, 12)
    assert set_hours(session, ["1="])["recounted"] == 4
    session.expire_all()
    assert classified.step_deadline == bj(MONDAY + timedelta(days=1), 12)  # no work on Mondays


@pytest.mark.as_owner(
    "the rollup is compared with the owner's recount, gridkit_rebuild_incident_eval(), in the same transaction"
)
def test_recount_counts_finished_cases_again_and_keeps_the_rollup(session):
    world = make_incident_world(session, hours=())
    closed = _closed(session, world, "c")
    evaluated = _times(closed)
    before = load_calendar(session)
    session.execute(
        text("INSERT INTO work_calendar_day (day, kind, name) VALUES (:d, 'holiday', '补录')"), {"d": MONDAY}
    )
    assert before.day_hours(MONDAY) and not load_calendar(session).day_hours(MONDAY)
    assert _times(closed) == evaluated
    assert recount_cases(session, load_calendar(session), since=bj(MONDAY + timedelta(days=10), 0)) == {
        "cases": 0,
        "changed": 0,
    }
    assert recount_cases(session, load_calendar(session), since=bj(MONDAY, 0)) == {"cases": 1, "changed": 1}
    session.expire_all()
    recounted = _times(closed)
    assert recounted["handle"] == evaluated["handle"] - 7 * 3600 * 10**6  # Monday's 7 working hours
    assert recounted["accept"] == evaluated["accept"]
    rollup = _rollup(session)
    session.execute(text("SELECT gridkit_rebuild_incident_eval()"))
    assert _rollup(session) == rollup


@pytest.fixture
def closed_case(fresh_settings):
    def fill(session):
        world = make_incident_world(session, hours=())
        case = _closed(session, world, "c")
        session.execute(
            text("INSERT INTO work_calendar_day (day, kind, name) VALUES (:d, 'holiday', '补录')"), {"d": MONDAY}
        )
        return case.id, case.handle_work_us

    return fresh_settings, *commit(fresh_settings, fill)


def test_cli_recount_is_audited_and_says_what_changed(closed_case):
    settings, case_id, evaluated = closed_case

    def run(*args, lang="zh-CN"):
        return CliRunner().invoke(main, [str(a) for a in args], obj=settings, env={"GRIDKIT_LANG": lang})

    later = run("calendar", "recount", "--since", "2026-12-31")
    assert later.exit_code == 0 and "0 件案件" in later.output
    result = run("calendar", "recount", "--since", str(MONDAY), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"cases": 1, "changed": 1}
    assert "1 cases' step times counted again, 0 changed" in run("calendar", "recount", lang="en").output
    with db.session_factory(db.engine_for(settings))() as session:
        assert session.get(Incident, case_id).handle_work_us == evaluated - 7 * 3600 * 10**6
        audits = session.scalars(select(AuditLog).where(AuditLog.action == "calendar.recount")).all()
        assert [a.detail for a in audits] == [
            {"since": "2026-12-31", "cases": 0, "changed": 0},
            {"since": str(MONDAY), "cases": 1, "changed": 1},
            {"since": None, "cases": 1, "changed": 0},
        ]
