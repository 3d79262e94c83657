"""The supervisor's case page in a real Chromium (priv7b): who reported a case, in clear for a
supervisor who may read it there and each view audited, as the JSON API gives it (one rule)."""

from __future__ import annotations

import pytest
from factories_incidents import IN_C1, make_incident_world
from factories_web import served
from test_browser import chromium  # noqa: F401 - the fixture
from test_browser_incidents import read, sign_in

from gridkit import db
from gridkit.audit import PERSONAL_DATA_READ
from gridkit.incidents import workflow as wf
from gridkit.incidents.queries import show_incident
from gridkit.models import AuditLog
from web import create_app

pytestmark = pytest.mark.browser

REPORTER = "王 小明 / wang@example.cn / 13800138000"


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description="井盖破损", actor="open311", reporter=REPORTER
        ).incident
        case_id = case.id
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings, case_id


def _reads(settings, case_code):
    def query(session):
        rows = session.query(AuditLog).filter(AuditLog.action == PERSONAL_DATA_READ).order_by(AuditLog.id).all()
        return [(r.actor, r.object_id, sorted(r.detail["detail_fields"])) for r in rows if r.object_id == case_code]

    return read(settings, query)


def test_the_case_page_shows_the_reporter_to_a_supervisor_and_audits_each_view(chromium, site):  # noqa: F811
    base_url, settings, case_id = site
    code = read(settings, lambda s: show_incident(s, case_id)["code"])
    page = chromium.new_page(locale="zh-CN")
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    sign_in(page, base_url, "super1")
    page.goto(f"{base_url}/supervisor/incidents/{case_id}")
    assert page.locator("#case-reporter").inner_text() == REPORTER
    assert "报告人" in page.locator("dl.case-facts").inner_text()
    page.reload()
    assert _reads(settings, code) == [("super1", code, ["reporter"])] * 2
    # The JSON API gives the same, audited the same way: one rule, one more row.
    api = page.request.get(f"{base_url}/api/incidents/{case_id}").json()
    assert api["reporter"] == REPORTER
    assert len(_reads(settings, code)) == 3
    # Read without an actor who may (a caller naming none), the reporter is masked by that same rule.
    assert read(settings, lambda s: show_incident(s, case_id)["reporter"]) == "王" + "*" * (len(REPORTER) - 1)
