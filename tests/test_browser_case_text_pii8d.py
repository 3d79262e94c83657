"""A case's free text in a real Chromium (pii8d): the citizen's call-back number in the description and a
note, read in clear by the coordinator on their case list and by the supervisor on the case page, each
page view one audit row naming what it showed."""

from __future__ import annotations

import pytest
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from factories_web import served
from test_browser import chromium  # noqa: F401 - the fixture
from test_browser_incidents import read, sign_in

from gridkit import db
from gridkit.audit import PERSONAL_DATA_READ
from gridkit.incidents import workflow as wf
from gridkit.models import AuditLog
from web import create_app

pytestmark = pytest.mark.browser

CALL_BACK = "13900139000"


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description=f"路灯不亮，请回电 {CALL_BACK}", actor=SUPERVISOR
        ).incident
        wf.accept(session, case.id, SUPERVISOR, note=f"已电话联系 {CALL_BACK}")
        wf.classify(session, case.id, SUPERVISOR, category="0101")
        wf.dispatch(session, case.id, SUPERVISOR)
        ids = (case.id, case.code)
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings, ids


def _reads(settings) -> list[tuple]:
    def query(session):
        rows = session.query(AuditLog).filter(AuditLog.action == PERSONAL_DATA_READ).order_by(AuditLog.id).all()
        return [(r.actor, sorted(r.detail["detail_fields"])) for r in rows if r.object_type == "incident"]

    return read(settings, query)


def test_the_call_back_number_is_read_on_the_pages_that_show_it_and_audited(chromium, site):  # noqa: F811
    base_url, settings, (case_id, code) = site
    page = chromium.new_page(locale="zh-CN")
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(page, base_url, "coord1")
    page.goto(f"{base_url}/coordinator/cases")
    assert CALL_BACK in page.locator("main").inner_text()
    assert _reads(settings) == [("coord1", ["description"])]
    supervisor = chromium.new_page(locale="zh-CN")
    supervisor.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(supervisor, base_url, "super1")
    supervisor.goto(f"{base_url}/supervisor/incidents/{case_id}")
    text = supervisor.locator("main").inner_text()
    assert text.count(CALL_BACK) == 2  # the description and the accept note
    assert _reads(settings)[1:] == [("super1", ["description", "name", "notes", "phone", "reporter"])]
    # The supervisor's lists show no description: reading them reads none.
    supervisor.goto(f"{base_url}/supervisor/cases")
    assert code in supervisor.locator("main").inner_text() and CALL_BACK not in supervisor.content()
    supervisor.goto(f"{base_url}/supervisor")
    assert CALL_BACK not in supervisor.content()
    assert len(_reads(settings)) == 2
