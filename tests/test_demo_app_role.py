"""`gridkit demo` loads the demo city as the application role, as it runs: the case history is append-only for
that role (migration 20261208_pii9g), so nothing in the load may rewrite it (the demo's coordinator account was
matched to cases by renaming history actors, which the database refused)."""

from __future__ import annotations

from factories_app_role import app_role_engine, rolled_back_session
from sqlalchemy import select

from gridkit.demo import DEMO_COORDINATOR, load_demo
from gridkit.models import Incident, IncidentHistory, User
from gridkit.rules import IncidentState


def test_the_demo_loads_as_the_application_role(pg_server):
    with (
        app_role_engine(pg_server, "gridkit_demo_app_role", port=5481) as engine,
        rolled_back_session(engine) as session,
    ):
        counts = load_demo(session, b"test-key")
        assert counts["incidents"] > 0 and counts["users"] > 0
        account = session.scalar(select(User).where(User.name == DEMO_COORDINATOR))
        waiting = session.scalars(
            select(Incident.id).where(
                Incident.status == IncidentState.DISPATCHED, Incident.coordinator_id == account.coordinator_id
            )
        ).all()
        assert waiting  # the demo's coordinator signs in to cases in hand
        users = {u.name: u.coordinator_id for u in session.scalars(select(User))}
        fed_back = session.execute(
            select(IncidentHistory.actor, Incident.coordinator_id)
            .join(Incident)
            .where(IncidentHistory.to_status == IncidentState.FED_BACK)
        ).all()
        assert fed_back and all(users[actor] == coordinator for actor, coordinator in fed_back)
