"""The supervisor's overdue summary names the steps in the workflow's order (accept, classify,
dispatch, handle, verify), never in whatever order the database happened to group them."""

from __future__ import annotations

from gridkit.demo import load_demo
from gridkit.incidents.deadlines import PENDING_STEP
from gridkit.incidents.queries import open_states, overdue_cases
from gridkit.rules import IncidentState


def test_overdue_steps_follow_the_workflow(session):
    load_demo(session, b"test-key")
    per_step = overdue_cases(session)["per_step"]
    workflow = [PENDING_STEP[IncidentState(s)] for s in open_states()]
    assert len(per_step) >= 3
    assert list(per_step) == [step for step in workflow if step in per_step]
