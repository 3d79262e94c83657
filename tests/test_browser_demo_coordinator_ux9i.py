"""The demo's coordinator, as they meet it on a 375 px phone in a real Chromium (Playwright, offline):
signed in, "my cases" holds cases waiting for their feedback (not an empty list), and feedback with a
photo taken on the phone is given from the case's card. The demo's history still reads as real use
writes it: every feedback under the account of the case's own coordinator."""

from __future__ import annotations

import pytest
from factories_incidents import PNG
from sqlalchemy import select
from test_browser import chromium  # noqa: F401 - the fixture is used by name
from test_browser_demo9m import SHOTS, _signed_in, demo_site  # noqa: F401 - the fixture is used by name

from gridkit.demo import DEMO_COORDINATOR, load_demo
from gridkit.incidents.cases import coordinator_case
from gridkit.messages import catalogue
from gridkit.models import Incident, IncidentHistory, User
from gridkit.rules import IncidentState

PHONE = {"width": 375, "height": 740}


def test_the_demo_coordinator_has_cases_waiting_for_feedback(session):
    load_demo(session, b"test-key")
    account = session.scalar(select(User).where(User.name == DEMO_COORDINATOR))
    waiting = session.scalars(
        select(Incident).where(
            Incident.status == IncidentState.DISPATCHED, Incident.coordinator_id == account.coordinator_id
        )
    ).all()
    assert waiting and all(coordinator_case(session, account.coordinator_id, c.id) for c in waiting)
    # Every feedback (the demo account's included) is under the account of the case's own coordinator.
    users = {u.name: u for u in session.scalars(select(User))}
    rows = session.execute(
        select(IncidentHistory.actor, Incident.coordinator_id)
        .join(Incident)
        .where(IncidentHistory.to_status == IncidentState.FED_BACK)
    ).all()
    assert rows and all(users[actor].coordinator_id == coordinator for actor, coordinator in rows)
    # Loading again changes nothing.
    assert load_demo(session, b"test-key").get("already")
    assert session.scalar(select(User.coordinator_id).where(User.name == DEMO_COORDINATOR)) == account.coordinator_id


@pytest.mark.browser
def test_the_demo_coordinator_gives_feedback_with_a_photo_from_a_phone(chromium, demo_site, tmp_path):  # noqa: F811
    context, page = _signed_in(chromium, demo_site, DEMO_COORDINATOR, PHONE)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{demo_site}/coordinator/cases")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / "coordinator-cases-375.png"), full_page=True)
    zh = catalogue("zh-CN")
    cards = page.locator("article.case-card:has(form)")
    assert cards.count() >= 1
    card = cards.first
    code = card.get_attribute("data-code")
    photo = tmp_path / "photo.png"
    photo.write_bytes(PNG)
    card.locator("textarea").fill("已到现场处理完毕")
    card.locator("input[type=file]").set_input_files(str(photo))
    card.locator("button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / "coordinator-fed-back-375.png"), full_page=True)
    assert code in page.inner_text("main")
    assert page.locator(f"article.case-card[data-code='{code}'] .state").inner_text() == zh["incident.state.fed_back"]
    assert errors == []
    context.close()
