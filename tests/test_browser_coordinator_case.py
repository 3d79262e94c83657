"""A coordinator opens one of their cases on a phone (a real Chromium): its place, deadlines, history and the
photos they sent, and the feedback form while it is dispatched; another coordinator's case and its photos are
refused."""

from __future__ import annotations

import time

import pytest
from factories_incidents import PNG, coordinator_actor, dispatched_case, make_incident_world
from factories_web import served
from test_browser import chromium  # noqa: F401 - the fixture
from test_browser_incidents import sign_in

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.models import Incident, IncidentAttachment
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        world = make_incident_world(session)
        fed_back, waiting = (dispatched_case(session, description) for description in ("路灯不亮", "井盖缺失"))
        wf.feedback(
            session,
            fed_back,
            coordinator_actor(world, 1),
            note="已更换灯泡",
            attachments=[("after.png", PNG)],
            home=fresh_settings.home,
        )
        session.flush()
        photo = session.query(IncidentAttachment).filter_by(incident_id=fed_back).one().id
    with served(create_app(fresh_settings)) as url:
        yield url, fed_back, waiting, photo, fresh_settings


def _drawn(page) -> list[bool]:
    images = page.locator("p.photos img")
    images.last.scroll_into_view_if_needed()  # loaded lazily: once in view
    # Polled from here: wait_for_function evaluates a string in the page, which its content policy forbids.
    deadline = time.monotonic() + 20
    while not images.evaluate_all("imgs => imgs.every(i => i.complete)") and time.monotonic() < deadline:
        time.sleep(0.1)
    return page.evaluate("Array.from(document.querySelectorAll('p.photos img')).map(i => i.naturalWidth > 0)")


def test_a_coordinator_opens_their_case_sends_feedback_and_sees_their_photo(chromium, site):  # noqa: F811
    base_url, fed_back, waiting, photo, settings = site
    page = chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(page, base_url, "coord1")
    page.goto(f"{base_url}/coordinator/cases")
    card = page.locator("article.case-card[data-code] >> text=井盖缺失").locator("xpath=ancestor::article")
    card.locator("p.code a").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/coordinator/cases/{waiting}")
    assert page.locator("#case-state").inner_text() == "已派遣"
    assert page.locator("#case-history tbody tr").count() == 4  # reported, accepted, classified, dispatched
    assert page.locator("section.sheet a[href$='/coordinator/cases']").count() == 1  # back to my cases
    assert page.locator("form[action*='/supervisor/']").count() == 0  # no supervisor's buttons
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, width  # nothing runs off a phone's screen
    form = page.locator("form.feedback-form")
    form.locator("textarea[name=note]").fill("已盖好井盖")
    form.locator("button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator("#mycases-done").count() == 1
    with db.session_factory(db.engine_for(settings))() as session:
        assert session.get(Incident, waiting).status == "fed_back"
    # The case fed back earlier: its history and the photo the coordinator sent, drawn on the page.
    page.goto(f"{base_url}/coordinator/cases/{fed_back}")
    assert "已更换灯泡" in page.locator("#case-history").inner_text()
    assert page.locator("form.feedback-form").count() == 0  # nothing more to send
    assert _drawn(page) == [True]
    sent = page.request.get(f"{base_url}/coordinator/cases/{fed_back}/photos/{photo}")
    assert sent.status == 200 and sent.body() == PNG and "no-store" in sent.headers["cache-control"]
    assert page.request.get(f"{base_url}/coordinator/cases/{waiting}/photos/{photo}").status == 404


def test_another_coordinator_may_not_open_the_case_nor_its_photos(chromium, site):  # noqa: F811
    base_url, fed_back, _, photo, _ = site
    page = chromium.new_page(locale="zh-CN")
    sign_in(page, base_url, "coord2")
    assert page.goto(f"{base_url}/coordinator/cases/{fed_back}").status == 403
    refused = page.request.get(f"{base_url}/coordinator/cases/{fed_back}/photos/{photo}")
    assert refused.status == 403 and refused.body() != PNG
    # Nor through the supervisors' pages.
    assert page.request.get(f"{base_url}/supervisor/incidents/{fed_back}").status == 403
