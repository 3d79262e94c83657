"""The coordinator's phone page and the supervisor's case page in a real Chromium with hostile case
text (aud10k): markup and script in a description stay text, a long unbroken description does not
push the phone page sideways, and a feedback form left open from before a rework is refused."""

from __future__ import annotations

import pytest
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from factories_web import served
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture
from test_browser_incidents import read, sign_in

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.models import IncidentHistory
from web import create_app

pytestmark = pytest.mark.browser

HOSTILE = (
    '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    "\u202etxt.exe 井盖 https://example.invalid/" + "a" * 400
)


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        world = make_incident_world(session)
        case = wf.report_incident(
            session,
            lon=IN_C1[0],
            lat=IN_C1[1],
            description=HOSTILE,
            category="0101",
            actor=SUPERVISOR,
            reporter='"><svg onload=window.__pwned=3>',
        ).incident
        wf.accept(session, case.id, SUPERVISOR, note="<b>受理</b>")
        wf.classify(session, case.id, SUPERVISOR, category="0101")
        wf.dispatch(session, case.id, SUPERVISOR)
        case_id, code, coordinator = case.id, case.code, world["coord1"].id
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings, case_id, code, coordinator


def test_hostile_text_and_a_stale_feedback_on_the_phone(chromium, site):  # noqa: F811
    base_url, settings, case_id, code, coordinator = site
    phone = chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
    phone.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(phone, base_url, "coord1")
    phone.goto(base_url + "/coordinator/cases")
    card = phone.locator(f'article.case-card[data-code="{code}"]')
    assert HOSTILE[:40] in card.inner_text()
    assert phone.evaluate("() => window.__pwned") is None
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 375  # no sideways scrolling

    # Meanwhile, from another device: feedback given, and the supervisor sends it back.
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        wf.feedback(session, case_id, Actor("coord1", "coordinator", None, coordinator), note="已处理")
        wf.rework(session, case_id, SUPERVISOR, note="未处理好")
    card.locator("textarea[name=note]").fill("已处理")
    card.locator("button").click()
    phone.wait_for_load_state()
    # The old note was recorded as the answer to the rework; now the coordinator is told to reload.
    assert "已被他人处理" in phone.content() and "请刷新后再操作" in phone.content()
    states = read(
        settings,
        lambda s: s.query(IncidentHistory.to_status).filter_by(incident_id=case_id).order_by(IncidentHistory.id).all(),
    )
    assert [s for (s,) in states][-2:] == ["fed_back", "dispatched"]

    desk, _blocked, errors = _offline_page(chromium, base_url)
    sign_in(desk, base_url, "super1")
    desk.goto(f"{base_url}/supervisor/incidents/{case_id}")
    assert HOSTILE[:40] in desk.inner_text("main")
    assert desk.evaluate("() => window.__pwned") is None
    # The run of 400 letters made the page 3,774 px wide: the buttons and history off to the side.
    assert desk.evaluate("() => document.documentElement.scrollWidth") <= 1280
    desk.goto(f"{base_url}/supervisor")
    desk.wait_for_selector(".folium-map.leaflet-container")
    assert desk.evaluate("() => window.__pwned") is None
    assert desk.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert errors == [], errors
