"""A supervisor sees the feedback's photos on the case page to verify the work (a real Chromium): each photo
drawn from its own URL, sent only to a supervisor who may see the case, never another case's photo."""

from __future__ import annotations

import time

import pytest
from factories_incidents import PNG, coordinator_actor, dispatched_case, make_incident_world
from factories_web import served
from test_browser import chromium  # noqa: F401 - the fixture
from test_browser_incidents import sign_in

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.models import IncidentAttachment
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        world = make_incident_world(session)
        ids = []
        for description in ("路灯不亮", "井盖缺失"):
            case_id = dispatched_case(session, description)
            wf.feedback(
                session,
                case_id,
                coordinator_actor(world, 1),
                note="已处理",
                attachments=[("before.png", PNG), ("after.png", PNG)],
                home=fresh_settings.home,
            )
            ids.append(case_id)
        session.flush()
        stored = session.query(IncidentAttachment).order_by(IncidentAttachment.id).all()
        photos = {i: [a.id for a in stored if a.incident_id == i] for i in ids}
    with served(create_app(fresh_settings)) as url:
        yield url, ids, photos


def test_the_supervisor_sees_the_feedback_photos_and_only_those_of_cases_they_may_see(chromium, site):  # noqa: F811
    base_url, (case_id, other_id), photos = site
    page = chromium.new_page(locale="zh-CN")
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(page, base_url, "super1")
    page.goto(f"{base_url}/supervisor/incidents/{case_id}")
    images = page.locator("p.photos img")
    assert images.count() == 2 and images.first.get_attribute("alt") == "反馈照片 1"
    images.last.scroll_into_view_if_needed()  # loaded lazily: once in view
    # Polled from here: wait_for_function evaluates a string in the page, which its content policy forbids.
    deadline = time.monotonic() + 20
    while not images.evaluate_all("imgs => imgs.every(i => i.complete)") and time.monotonic() < deadline:
        time.sleep(0.1)
    # Drawn: the browser fetched and decoded each (the page's content policy lets them in).
    assert page.evaluate("Array.from(document.querySelectorAll('p.photos img')).map(i => i.naturalWidth > 0)") == [
        True,
        True,
    ]
    sent = page.request.get(f"{base_url}/supervisor/incidents/{case_id}/photos/{photos[case_id][0]}")
    assert sent.status == 200 and sent.headers["content-type"] == "image/png" and sent.body() == PNG
    assert "no-store" in sent.headers["cache-control"]
    # Another case's photo under this case's URL, and a photo that does not exist: not found.
    for photo in (photos[other_id][0], 999_999, 2**31):
        assert page.request.get(f"{base_url}/supervisor/incidents/{case_id}/photos/{photo}").status == 404
    # A supervisor of another community may not see the case, nor its photos.
    street = chromium.new_page(locale="zh-CN")
    sign_in(street, base_url, "street_super")
    refused = street.request.get(f"{base_url}/supervisor/incidents/{case_id}/photos/{photos[case_id][0]}")
    assert refused.status in (403, 404) and refused.body() != PNG
