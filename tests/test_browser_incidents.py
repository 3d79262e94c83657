"""The supervisor's path and the coordinator's feedback in a real Chromium (Playwright), offline.

Supervisor: sign in, the dashboard draws density bins fetched from the aggregated heatmap API,
open a case from the list, accept / classify / dispatch it with the buttons. Coordinator: on a
375 px wide screen, "my cases" shows the case; send the feedback with a note and a photo.
"""

from __future__ import annotations

import pytest
from factories_incidents import (
    IN_C1,
    IN_C2,
    PASSWORD,
    PNG,
    SUPERVISOR,
    make_incident_world,
)
from factories_web import served
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.models import Incident, IncidentAttachment
from web import create_app

pytestmark = pytest.mark.browser


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失，急需处理", category="0101", actor=SUPERVISOR
        ).incident
        wf.report_incident(
            session, lon=IN_C2[0], lat=IN_C2[1], description="暴露垃圾", category="E0101", actor=SUPERVISOR
        )
        case_id, code = case.id, case.code
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings, case_id, code


def sign_in(page, base_url, name):
    page.goto(base_url + "/login")
    page.fill('input[name="name"]', name)
    page.fill('input[name="password"]', PASSWORD)
    page.locator('form button[type="submit"]').first.click()
    page.wait_for_load_state()


def read(settings, query):
    with db.session_factory(db.engine_for(settings))() as session:
        return query(session)


def test_supervisor_path_then_coordinator_feedback(chromium, site, tmp_path):  # noqa: F811
    base_url, settings, case_id, code = site
    page, blocked, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, "super1")
    assert page.goto(base_url + "/supervisor").status == 200
    page.wait_for_selector(".folium-map.leaflet-container")
    page.wait_for_function("() => Number(document.querySelector('.folium-map').getAttribute('data-bins')) > 0")
    assert "2" in page.locator("#sup-status").inner_text()
    assert page.locator("#evaluation tr.total").count() == 1

    page.locator("#recent-list a", has_text=code).click()
    page.wait_for_selector("#case-state")
    assert page.locator("#case-state").inner_text() == "已上报"
    page.locator('form[data-action="accept"] button').click()
    page.wait_for_selector("#case-done")
    assert page.locator("#case-state").inner_text() == "已受理"
    form = page.locator('form[data-action="classify"]')
    form.locator('select[name="category"]').select_option("0101")
    form.locator('select[name="severity"]').select_option("urgent")
    form.locator("button").click()
    page.wait_for_selector('form[data-action="dispatch"]')
    page.locator('form[data-action="dispatch"] button').click()
    page.wait_for_selector("#case-done")
    assert page.locator("#case-state").inner_text() == "已派遣"
    assert page.locator("#case-history tbody tr").count() == 4
    assert errors == [], errors

    phone = chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
    phone.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(phone, base_url, "coord1")
    phone.goto(base_url + "/coordinator/cases")
    card = phone.locator(f'article.case-card[data-code="{code}"]')
    assert card.count() == 1
    wide = phone.evaluate("""() => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > 376)
        .map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right)).slice(0, 12)""")
    phone.screenshot(path="/tmp/gridkit-my-cases.png", full_page=True)
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= 375, wide  # no sideways scrolling
    photo = tmp_path / "after.png"
    photo.write_bytes(PNG)
    card.locator("textarea[name=note]").fill("已补装井盖")
    card.locator("input[type=file]").set_input_files(str(photo))
    box = card.locator("button").bounding_box()
    assert box["width"] <= 375 and box["height"] >= 40  # a thumb-sized button
    card.locator("button").click()
    phone.wait_for_selector("#mycases-done")
    assert code in phone.locator("#mycases-done").inner_text()
    assert read(settings, lambda s: s.get(Incident, case_id).status) == "fed_back"
    assert read(settings, lambda s: s.query(IncidentAttachment).count()) == 1
    assert all("127.0.0.1" not in url for url in blocked)
