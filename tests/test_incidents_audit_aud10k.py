"""The incident workflow audited as tired coordinators and hostile users would use it (aud10k): a
stopped coordinator's list, two supervisors linking two cases as duplicates of each other at the
same moment, descriptions too long, a period of dates read as whole days everywhere."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from factories import CITY
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.heatmap import choropleth, heatmap, parse_filters
from gridkit.incidents.queries import list_incidents, overdue_cases, show_incident
from gridkit.incidents.report import DESCRIPTION_MAX
from gridkit.models import Incident, IncidentHistory
from gridkit.reports import run_report
from gridkit.rules import now


@pytest.fixture
def world(session):
    return make_incident_world(session)


def report(session, **kw):
    kw.setdefault("description", "井盖破损")
    return wf.report_incident(session, lon=IN_C1[0], lat=IN_C1[1], category="0101", actor=SUPERVISOR, **kw)


def test_a_stopped_coordinator_lists_no_case(session, world):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    mine = world["coord1"].id
    assert list_incidents(session, coordinator_id=mine)["total"] == 1
    world["coord1"].active = False
    session.flush()
    # The case view refused them, but "my cases" still listed every case of the cells, descriptions and places.
    assert list_incidents(session, coordinator_id=mine) == {"total": 0, "limit": 100, "offset": 0, "items": []}


def test_a_description_too_long_is_refused(session, world):
    with pytest.raises(ValidationError) as refused:
        report(session, description="井" * (DESCRIPTION_MAX + 1))
    assert refused.value.code == "incident.description_too_long"
    assert session.scalar(select(Incident.id)) is None
    assert report(session, description="井" * DESCRIPTION_MAX).incident.description == "井" * DESCRIPTION_MAX


def test_two_supervisors_marking_two_cases_duplicates_of_each_other_at_the_same_moment(engine, pg_server):
    """Both requests lock their own case, then each links it to the other: the database found a
    deadlock and one supervisor got a 500 (DeadlockDetected) instead of being told why."""
    url = pg_server.create_database("gridkit_duplicate_deadlock", template="gridkit_test_template")
    eng = db.make_engine(url)
    try:
        with Session(eng) as s, s.begin():
            make_incident_world(s, users=False)
            a, b = (report(s, description=f"井盖破损{n}").incident.id for n in (1, 2))
        both_locked = threading.Barrier(2, timeout=2)
        outcomes = {}

        def run(case, of):
            with Session(eng) as s:
                paused = []

                def meet(conn, cursor, statement, *args):
                    # Each request waits here once it holds its first row lock, until the other holds its own.
                    if "FOR UPDATE" in statement and not paused:
                        paused.append(1)
                        try:
                            both_locked.wait()
                        except threading.BrokenBarrierError:
                            pass  # the other request waits for this one before it locks anything

                try:
                    with s.begin():
                        event.listen(s.connection(), "after_cursor_execute", meet)
                        wf.mark_duplicate(s, case, SUPERVISOR, of=of)
                    outcomes[case] = "won"
                except ValidationError as exc:
                    outcomes[case] = exc.code
                except Exception as exc:  # noqa: BLE001 (what the user would have got: a 500)
                    outcomes[case] = type(exc).__name__

        threads = [threading.Thread(target=run, args=pair) for pair in ((a, b), (b, a))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(outcomes.values()) == ["incident.duplicate_of_itself", "won"], outcomes
        with Session(eng) as s:
            duplicates = s.scalars(select(Incident).where(Incident.status == "duplicate")).all()
            assert len(duplicates) == 1 and duplicates[0].duplicate_of_id in (a, b)
    finally:
        eng.dispose()
        pg_server.drop_database("gridkit_duplicate_deadlock")


def test_a_period_of_dates_reads_as_whole_days_in_the_evaluation_the_map_and_the_reports(session, world):
    # Reported at 09:30 Beijing time on 5 November (01:30 UTC), the last day the supervisor picked.
    report(session, reported_at="2026-11-05T09:30:00+08:00")
    # The supervisor's period 1-5 November left the 5th out (the analyst's report counted it), and
    # "from the 5th to the 5th" failed the whole page (400: the period ends before it starts).
    one_day = evaluate(session, by="department", from_="2026-11-05", to="2026-11-05")["total"]
    assert one_day["cases"] == 1
    week = evaluate(session, by="community", from_="2026-11-01", to="2026-11-05")["total"]
    reported = run_report(session, "incidents", by="community", date_from="2026-11-01", date_to="2026-11-05")
    assert week["cases"] == 1 == sum(row["incidents"] for row in reported.main.rows)
    on_map = heatmap(session, parse_filters(from_="2026-11-05", to="2026-11-05"))
    assert on_map["total"] == 1


def test_a_city_scoped_supervisor_finds_its_cases_in_every_list_and_figure(session, world):
    # Scoped to the city 440300: its districts' codes start 4403, not 440300.
    case = report(session, reported_at=now() - timedelta(days=3)).incident
    city = Actor("city_super", "supervisor", CITY)
    assert show_incident(session, case.id, city)["code"] == case.code  # the case page always opened
    # ... but its lists, overdue counts, evaluation and maps were all empty: the cases were nowhere to be found.
    assert list_incidents(session, actor=city)["total"] == 1
    assert overdue_cases(session, actor=city)["total"] == 1
    assert evaluate(session, actor=city)["total"]["cases"] == 1
    assert heatmap(session, parse_filters(), city)["total"] == 1
    assert [f["properties"]["count"] for f in choropleth(session, parse_filters(), city)["features"]] == [1]
    # A scope elsewhere still sees none of them.
    other = Actor("other_super", "supervisor", "440100")
    assert list_incidents(session, actor=other)["total"] == 0 == evaluate(session, actor=other)["total"]["cases"]


@pytest.mark.parametrize("zero", ["\u0660", "\uff10", None])  # Arabic-Indic, full-width digits; '²'
def test_an_id_of_other_digits_is_no_case(session, world, zero):
    case = report(session).incident
    ident = "²" if zero is None else "".join(chr(ord(zero) + int(d)) for d in str(case.id))
    # '²' raised ValueError (a 500 on every page and API naming a case); '٣' or '３' opened case 3.
    with pytest.raises(NotFound):
        show_incident(session, ident)
    assert show_incident(session, str(case.id))["code"] == case.code


@pytest.mark.parametrize("ending", ["close", "reject"])
def test_a_case_reported_again_after_the_original_ended_is_no_duplicate(session, world, ending):
    original = report(session).incident
    if ending == "reject":
        wf.reject(session, original.id, SUPERVISOR)
    else:
        wf.accept(session, original.id, SUPERVISOR)
        wf.classify(session, original.id, SUPERVISOR, category="0101")
        wf.dispatch(session, original.id, SUPERVISOR)
        wf.feedback(session, original.id, Actor("coord1", "coordinator", None, world["coord1"].id), note="已修")
        wf.close(session, original.id, SUPERVISOR)
    again = report(session, description="井盖又坏了").incident
    # It was taken: the recurring problem left every open list and the backlog, handled by no one.
    with pytest.raises(InvalidTransition) as refused:
        wf.mark_duplicate(session, again.id, SUPERVISOR, of=original.id)
    assert refused.value.code == "incident.duplicate_of_finished"
    assert again.status == "reported" and list_incidents(session, open_only=True)["total"] == 1


def test_a_case_linked_to_an_original_closed_at_the_same_moment_is_refused(engine, pg_server):
    url = pg_server.create_database("gridkit_duplicate_close_race", template="gridkit_test_template")
    eng = db.make_engine(url)
    try:
        with Session(eng) as s, s.begin():
            world = make_incident_world(s, users=False)
            original = report(s).incident.id
            wf.accept(s, original, SUPERVISOR)
            wf.classify(s, original, SUPERVISOR, category="0101")
            wf.dispatch(s, original, SUPERVISOR)
            wf.feedback(s, original, Actor("coord1", "coordinator", None, world["coord1"].id), note="已修")
            again = report(s, description="井盖破损，再报").incident.id
        closed = threading.Event()
        outcomes = {}

        def close():
            with Session(eng) as s, s.begin():
                wf.close(s, original, SUPERVISOR)
                closed.set()
                threading.Event().wait(1.5)  # the other supervisor acts before this commits

        def link():
            closed.wait(10)
            with Session(eng) as s:
                try:
                    with s.begin():
                        wf.mark_duplicate(s, again, SUPERVISOR, of=original)
                    outcomes["link"] = "won"
                except InvalidTransition as exc:
                    outcomes["link"] = exc.code

        threads = [threading.Thread(target=close), threading.Thread(target=link)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        # The link read the original still fed back, waited for its row, and was written once it was closed.
        assert outcomes == {"link": "incident.duplicate_of_finished"}
        with Session(eng) as s:
            assert (s.get(Incident, again).status, s.get(Incident, original).status) == ("reported", "closed")
    finally:
        eng.dispose()
        pg_server.drop_database("gridkit_duplicate_close_race")


@pytest.mark.parametrize("typed", ["138 0013 8002", "+86 13800138002", "138-0013-8002"])
def test_a_coordinator_named_by_a_phone_typed_with_spaces_is_found(session, world, typed):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    # 'No coordinator with phone 138 0013 8002', while 李四's phone is 13800138002.
    wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone=typed, reason="张三休假")
    assert case.coordinator_id == world["coord2"].id


def test_a_case_whose_coordinator_stopped_is_dispatched_again(session, world):
    case = report(session).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    first, handle_by = case.dispatched_at, case.step_deadline
    world["coord1"].active = False  # 张三 leaves; nobody else covers the cell
    session.flush()
    # No one could answer the case and no step led out of 'dispatched': it waited for ever.
    with pytest.raises(ValidationError) as refused:
        wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone="13800138002")
    assert refused.value.code in ("incident.redispatch_reason", "incident.reason_missing")
    wf.dispatch(session, case.id, SUPERVISOR, coordinator_phone="13800138002", reason="张三离职")
    assert case.status == "dispatched" and case.coordinator_id == world["coord2"].id
    assert (case.dispatched_at, case.step_deadline) == (first, handle_by)  # the clock does not start again
    wf.feedback(session, case.id, Actor("coord2", "coordinator", None, world["coord2"].id), note="已修")
    assert case.status == "fed_back"
    notes = session.scalars(
        select(IncidentHistory.note).where(IncidentHistory.incident_id == case.id).order_by(IncidentHistory.id)
    ).all()
    assert "张三离职" in notes[-2]
