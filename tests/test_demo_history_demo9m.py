"""The demo city's case history reads as real use writes it: every actor is a name the workflow
could record (a user account's name, or a public channel's for a report), never a made-up one."""

from __future__ import annotations

from sqlalchemy import select

from gridkit.demo import load_demo
from gridkit.models import Incident, IncidentHistory, User

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
