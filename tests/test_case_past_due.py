"""A case reworked after its own deadline shows that it is past it: the rework starts the step's clock again (the
step is not overdue), the case's deadline does not move. A closed case is past nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories_incidents import IN_C1, SUPERVISOR, coordinator_actor, make_incident_world

from gridkit.incidents import workflow as wf
from gridkit.incidents.queries import show_incident
from gridkit.rules import now


@pytest.fixture
def world(session):
    return make_incident_world(session)  # a calendar working every hour: limits in plain hours


def _late_case(session, world):
    """A case reported three days ago and fed back long after its deadline (0101: 8 h to handle, 8 to verify)."""
    t0 = now() - timedelta(days=3)
    case = wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失", actor=SUPERVISOR, reported_at=t0
    )
    incident_id = case.incident.id
    wf.accept(session, incident_id, SUPERVISOR, at=t0 + timedelta(minutes=10))
    wf.classify(session, incident_id, SUPERVISOR, category="0101", at=t0 + timedelta(minutes=20))
    wf.dispatch(session, incident_id, SUPERVISOR, at=t0 + timedelta(minutes=30))
    wf.feedback(session, incident_id, coordinator_actor(world, 1), note="已处理", at=t0 + timedelta(days=2))
    return incident_id


def test_a_reworked_case_past_its_deadline_says_so(session, world):
    incident_id = _late_case(session, world)
    wf.rework(session, incident_id, SUPERVISOR, note="井盖仍未盖好")
    shown = show_incident(session, incident_id, SUPERVISOR)
    assert shown["state"] == "dispatched" and not shown["overdue"]  # the handling clock started again
    assert shown["past_due"]  # the case's own deadline (a day after the report) did not move


def test_a_closed_case_is_past_nothing(session, world):
    incident_id = _late_case(session, world)
    wf.close(session, incident_id, SUPERVISOR)
    assert not show_incident(session, incident_id, SUPERVISOR)["past_due"]
