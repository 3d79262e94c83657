"""The demo city's cases carried along the workflow, so that every supervisor view shows something real.

The demo's incidents (data/boundaries/incidents.geojson) are reported in the two months before
the day the demo is loaded (gridkit.demo moves them). Each is moved by the workflow service itself
(accept, classify, dispatch, feedback, close, rework), at fixed times after its report, so its
deadlines are the ones the service computes from its category and severity. A case's fate follows
its age on that day, as in a real city's records: the old cases are closed (a few late, after one
rework) but for a rare one still waiting long overdue; last week's are mostly closed, some still in
hand; the last days' are in progress at every step. Within an age band the fates are taken in turn,
the newest case first. A step whose time has not come yet (after `as_of`) is not taken.
Deterministic: the same file loaded on the same day gives the same cases.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.models import Incident, User
from gridkit.rules import SEVERITIES, IncidentState, now, parse_time

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# The step a case stops at (the last action done to it; "reported": none, "late": closed late after
# one rework), by age on the demo's day: (younger than, the fates taken in turn); the last band has no end.
FATES_BY_AGE = (
    (3 * DAY, ("reported", "accept", "classify", "dispatch", "feedback")),
    (7 * DAY, ("close", "dispatch", "close", "close", "feedback", "close")),
    (
        21 * DAY,
        ("close", "close", "close", "late", "close", "feedback", "close", "close", "close", "dispatch")
        + ("close",) * 4,
    ),
    (
        None,
        ("close", "close", "close", "late", "close", "close", "close", "close", "close", "late") * 2 + ("dispatch",),
    ),
)


def age_band(age: timedelta) -> int:
    """Return the index in FATES_BY_AGE of the band of a case `age` old."""
    return next(i for i, (younger_than, _) in enumerate(FATES_BY_AGE) if younger_than is None or age < younger_than)


def advance_demo_cases(session: Session, supervisor: Actor, as_of: datetime | None = None) -> dict[str, int]:
    """Move every demo case still reported along the workflow to the fate of its age on `as_of`
    (default now); return counts per state.

    `supervisor` takes the supervising steps; feedback is given by the case's own coordinator.
    """
    as_of = min(as_of or now(), now())
    cases = session.scalars(
        select(Incident).where(Incident.status == "reported").order_by(Incident.reported_at.desc(), Incident.code)
    ).all()
    counts: dict[str, int] = {}
    turns: dict[int, int] = {}
    for n, case in enumerate(cases):
        band = age_band(as_of - case.reported_at)
        turn = turns[band] = turns.get(band, -1) + 1
        fates = FATES_BY_AGE[band][1]
        _advance(session, case, fates[turn % len(fates)], SEVERITIES[n % len(SEVERITIES)], supervisor, as_of)
        state = str(case.status)
        counts[state] = counts.get(state, 0) + 1
    session.flush()
    return counts


def _advance(session: Session, case: Incident, fate: str, severity: str, supervisor: Actor, as_of: datetime) -> None:
    """Run the steps up to `fate` at times after the report within each step's time limit; a step
    whose time is still to come is not taken (a case reported yesterday may wait, on time)."""
    if fate == "reported":
        return
    at = case.reported_at + HOUR / 2
    if at > as_of:
        return
    wf.accept(session, case.id, supervisor, at=at, note="演示：已受理")
    if fate == "accept" or (at := at + HOUR / 2) > as_of:
        return
    wf.classify(session, case.id, supervisor, category=case.category_code, severity=severity, at=at)
    if fate == "classify" or (at := at + HOUR) > as_of:
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
        if at + 4 * HOUR > as_of:
            return
        wf.feedback(session, case.id, worker, note="演示：已处理", at=at)
        wf.rework(session, case.id, supervisor, note="演示：现场复核不合格", at=at + HOUR)
        at += 4 * HOUR
        wf.feedback(session, case.id, worker, note="演示：已返工处理", at=at)
        if (closed := max(at, case.deadline) + 6 * HOUR) <= as_of:
            wf.close(session, case.id, supervisor, at=closed, note="演示：超期结案")
        return
    at += (handle_by - at) * 0.6
    if at > as_of:
        return
    wf.feedback(session, case.id, worker, note="演示：已处理完毕", at=at)
    if fate == "close" and at + 2 * HOUR <= as_of:
        wf.close(session, case.id, supervisor, at=at + 2 * HOUR, note="演示：核查通过")


def give_cases_to_account(session: Session, name: str, advance: Callable[[], object]) -> str | None:
    """Let the coordinator account `name` (the demo's, who signs in) meet cases in hand, before `advance` moves
    the cases along the workflow: when the coordinator it acts for would have no case waiting for their feedback,
    it changes places with the account whose coordinator would have the most (then the most fed back, then the
    first). Which that is, a trial of `advance` in a savepoint rolled back tells; the two accounts swap their
    coordinators before the real run, so every step is written under the account of the case's own coordinator
    as it happens (the case history is append-only for the application). Return the account it changed places
    with, else None; the caller then runs `advance`."""
    trial = session.begin_nested()
    try:
        advance()
        pair = _swap_pair(session, name)
    finally:
        trial.rollback()
    if pair is None:
        return None
    account, other = (session.scalar(select(User).where(User.name == n)) for n in pair)
    account.coordinator_id, other.coordinator_id = other.coordinator_id, account.coordinator_id
    session.flush()
    return other.name


def _swap_pair(session: Session, name: str) -> tuple[str, str] | None:
    """Return (name, the account to change places with) as the cases stand, or None (nothing to change)."""
    account = session.scalar(select(User).where(User.name == name))
    if account is None or account.coordinator_id is None:
        return None

    def per_coordinator(state: IncidentState) -> dict[int, int]:
        return dict(
            session.execute(
                select(Incident.coordinator_id, func.count())
                .where(Incident.status == state, Incident.coordinator_id.is_not(None))
                .group_by(Incident.coordinator_id)
            ).all()
        )

    counts = per_coordinator(IncidentState.DISPATCHED)
    if counts.get(account.coordinator_id):
        return None
    fed_back = per_coordinator(IncidentState.FED_BACK)
    ranked = sorted(counts, key=lambda c: (-counts[c], -fed_back.get(c, 0), c))
    other = next(
        (u for c in ranked if (u := session.scalar(select(User).where(User.coordinator_id == c))) is not None),
        None,
    )
    return None if other is None else (account.name, other.name)
