"""The demo city's cases carried along the workflow, so that every supervisor view shows something real.

The demo's incidents (data/boundaries/incidents.geojson) are reported in the two months before
2026-11-01. Each is moved by the workflow service itself (accept, classify, dispatch, feedback,
close, rework), at fixed times after its report, so its deadlines are the ones the service
computes from its category and severity. By its place in the file (ten fates in turn), a case is
left waiting at one step (overdue today: its step's deadline passed), closed on time, or closed
late after one rework; a step whose time has not come yet is not taken, so the newest cases wait,
some still within their time limit. Deterministic: the same file gives the same cases.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.models import Incident, User
from gridkit.rules import SEVERITIES, now, parse_time

# The step each case in turn stops at: the last action done to it ("reported": none).
FATES = (
    "reported",
    "accept",
    "classify",
    "dispatch",
    "dispatch",
    "feedback",
    "close",
    "close",
    "late",
    "close",
)
HOUR = timedelta(hours=1)


def advance_demo_cases(session: Session, supervisor: Actor) -> dict[str, int]:
    """Move every demo case still reported along the workflow to its fate; return counts per state.

    `supervisor` takes the supervising steps; feedback is given by the case's own coordinator.
    """
    cases = session.scalars(select(Incident).where(Incident.status == "reported").order_by(Incident.code)).all()
    counts: dict[str, int] = {}
    for n, case in enumerate(cases):
        _advance(session, case, FATES[n % len(FATES)], SEVERITIES[n % len(SEVERITIES)], supervisor)
        state = str(case.status)
        counts[state] = counts.get(state, 0) + 1
    session.flush()
    return counts


def _advance(session: Session, case: Incident, fate: str, severity: str, supervisor: Actor) -> None:
    """Run the steps up to `fate` at times after the report within each step's time limit; a step
    whose time is still to come is not taken (a case reported yesterday may wait, on time)."""
    if fate == "reported":
        return
    at = case.reported_at + HOUR / 2
    if at > now():
        return
    wf.accept(session, case.id, supervisor, at=at, note="演示：已受理")
    if fate == "accept" or (at := at + HOUR / 2) > now():
        return
    wf.classify(session, case.id, supervisor, category=case.category_code, severity=severity, at=at)
    if fate == "classify" or (at := at + HOUR) > now():
        return
    wf.dispatch(session, case.id, supervisor, at=at)
    if fate == "dispatch" or case.coordinator_id is None:
        return
    # Feedback under the account of the case's coordinator, as the web's coordinator page gives it.
    account = session.scalar(select(User).where(User.coordinator_id == case.coordinator_id).order_by(User.id))
    if account is None:
        return
    worker = Actor.of_user(account)
    handle_by = parse_time(case.deadlines["handle"])
    if fate == "late":
        # Fed back after the handling deadline, sent back once, closed after the case's deadline.
        at = handle_by + 3 * HOUR
        if at + 4 * HOUR > now():
            return
        wf.feedback(session, case.id, worker, note="演示：已处理", at=at)
        wf.rework(session, case.id, supervisor, note="演示：现场复核不合格", at=at + HOUR)
        at += 4 * HOUR
        wf.feedback(session, case.id, worker, note="演示：已返工处理", at=at)
        if (closed := max(at, case.deadline) + 6 * HOUR) <= now():
            wf.close(session, case.id, supervisor, at=closed, note="演示：超期结案")
        return
    at += (handle_by - at) * 0.6
    if at > now():
        return
    wf.feedback(session, case.id, worker, note="演示：已处理完毕", at=at)
    if fate == "close" and at + 2 * HOUR <= now():
        wf.close(session, case.id, supervisor, at=at + 2 * HOUR, note="演示：核查通过")
