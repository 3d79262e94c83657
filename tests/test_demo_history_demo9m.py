"""The demo city's case history reads as real use writes it: every actor is a name the workflow
could record (a user account's name, or a public channel's for a report), never a made-up one;
loaded on any later day, its cases are of the two months before it, none in the future."""

from __future__ import annotations

from datetime import date, timedelta

import pyogrio
from sqlalchemy import func, select

from gridkit.demo import DEMO_CASES_END, DEMO_DIR, demo_shift, load_demo
from gridkit.incidents.queries import overdue_cases
from gridkit.models import Incident, IncidentHistory, User
from gridkit.rules import local_tz, now

KEY = b"test-key"
# The public channels the demo's reports come in by (scripts/demodata/names.py PUBLIC_REPORTERS).
PUBLIC_CHANNELS = {"12345热线", "市民随手拍", "街道巡查队"}


def test_every_demo_history_actor_is_one_the_workflow_could_write(session):
    load_demo(session, KEY)
    users = {u.name: u for u in session.scalars(select(User).where(User.active.is_(True)))}
    rows = session.execute(select(IncidentHistory, Incident).join(Incident)).all()
    assert len(rows) > 150
    channels = set()
    for history, case in rows:
        if history.to_status == "reported" and history.actor not in users:
            # Only a public channel may report without an account (gridkit.incidents.actors.public_channel).
            channels.add(history.actor)
            continue
        user = users.get(history.actor)
        assert user is not None, (case.code, history.to_status, history.actor)
        if history.to_status == "fed_back":
            # Feedback by the case's own coordinator, under their account.
            assert user.role == "coordinator" and user.coordinator_id == case.coordinator_id, case.code
        elif history.to_status != "reported":
            assert user.role == "supervisor", (case.code, history.to_status, history.actor)
    assert channels == PUBLIC_CHANNELS
    # Coordinators' own reports are under their accounts, not their names.
    reported_by_account = {h.actor for h, _ in rows if h.to_status == "reported" and h.actor in users}
    assert reported_by_account and all(users[a].role == "coordinator" for a in reported_by_account)
    # Every coordinator has the account they act under; only the demo's `coordinator` may sign in.
    accounts = [u for u in users.values() if u.role == "coordinator"]
    assert len({u.coordinator_id for u in accounts}) == len(accounts) >= 40
    assert [u.name for u in accounts if u.password_hash] == ["coordinator"]


def test_demo_cases_are_of_the_two_months_before_the_day_it_is_loaded(session):
    today = now().astimezone(local_tz()).date()
    assert today > DEMO_CASES_END  # the machine's clock: otherwise this test checks nothing
    load_demo(session, KEY)
    cases = session.scalars(select(Incident).order_by(Incident.reported_at)).all()
    reported = [c.reported_at.astimezone(local_tz()) for c in cases]
    # The newest reported yesterday, the oldest within the 60 days before; each at its hour of the file.
    assert reported[-1].date() == today - timedelta(days=1)
    assert reported[0].date() >= today - timedelta(days=61)
    written = pyogrio.read_dataframe(DEMO_DIR / "incidents.geojson").sort_values("reported_at")
    assert [r.strftime("%H:%M:%S") for r in reported] == [
        r.astimezone(local_tz()).strftime("%H:%M:%S") for r in written["reported_at"]
    ]
    # Codes follow the (moved) report date; none repeats.
    assert all(c.code[2:10] == f"{r:%Y%m%d}" for c, r in zip(cases, reported, strict=True))
    assert len({c.code for c in cases}) == len(cases)
    # No step in the future; no case late by more than the two months.
    assert session.scalar(select(func.max(IncidentHistory.at))) <= now()
    overdue = overdue_cases(session)
    assert overdue["total"] > 0
    assert max(c["hours_late"] for c in overdue["cases"]) <= 62 * 24
    # Every state of the workflow's path is there, closed cases too.
    assert {c.status for c in cases} >= {"reported", "accepted", "classified", "dispatched", "fed_back", "closed"}


def test_demo_shift_is_whole_days_and_never_back():
    assert demo_shift(DEMO_CASES_END - timedelta(days=30)) == timedelta(0)
    assert demo_shift(DEMO_CASES_END) == timedelta(0)
    assert demo_shift(date(2027, 3, 1)) == timedelta(days=120)
