"""Without JavaScript, a form's refusal speaks the page's language, not the browser's: every form is served
`novalidate` (gridkit-forms.js turns the browser's checks back on, with the catalogue's messages), so a
required field left empty or a value of the wrong form goes to the server, whose check answers from the
catalogue, instead of being stopped by a browser bubble in the browser's language ("Please fill out this
field." in an English Chromium on a Chinese page). A real Chromium with JavaScript off, in one language,
reads pages in the other."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from factories_incidents import IN_C1, PASSWORD, SUPERVISOR, make_incident_world
from factories_web import served
from test_browser import CHROMIUM, CHROMIUM_ARGS

from gridkit import db
from gridkit.errors import ValidationError
from gridkit.incidents import workflow as wf
from gridkit.messages import Message, catalogue
from web import create_app
from web.errors import web_sentence

pytestmark = pytest.mark.browser
TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
PAIRS = [("en-US", "zh-CN"), ("zh-CN", "en")]


@pytest.fixture
def site(fresh_settings):
    """A case dispatched to coord1: their page has the feedback form, whose note is required."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失", category="0101", actor=SUPERVISOR
        ).incident
        wf.accept(session, case.id, SUPERVISOR)
        wf.classify(session, case.id, SUPERVISOR, category="0101", severity="normal")
        wf.dispatch(session, case.id, SUPERVISOR)
    with served(create_app(fresh_settings)) as url:
        yield url


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}-browser-{p[1]}-page")
def no_js_page(request):
    """A page of a Chromium in one language with JavaScript off."""
    from playwright.sync_api import sync_playwright

    browser_lang, page_lang = request.param
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--lang={browser_lang}"])
        context = browser.new_context(locale=browser_lang, java_script_enabled=False)
        page = context.new_page()
        page.set_default_timeout(20000)
        yield page, page_lang
        browser.close()


def _sign_in(page, base_url, name, lang):
    page.goto(f"{base_url}/login?lang={lang}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()


def _said(error: ValidationError, lang: str) -> str:
    return web_sentence(error, lang)


def test_without_javascript_the_server_refuses_in_the_page_language(site, no_js_page):
    page, lang = no_js_page
    say = catalogue(lang)

    # Nothing typed: the server asks for both, in the page's language (no bubble stopped the form).
    page.goto(f"{site}/login?lang={lang}")
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    assert page.locator(".form-error").inner_text() == say["login.missing"]
    _sign_in(page, site, "coord1", lang)
    assert "/login" not in page.url  # an empty try is no failed attempt

    # The feedback's note is required: left empty, the server's refusal in the page's language.
    page.goto(f"{site}/coordinator/cases")
    page.locator(".feedback-form button[type=submit]").first.click()
    page.wait_for_load_state()
    missing = ValidationError("incident.note_missing", action=Message("incident.action.feedback"))
    assert page.locator(".error-card .message").inner_text() == _said(missing, lang)

    # A date that is no day, in the supervisor's filters: refused by the server, not by a bubble.
    page.context.clear_cookies()
    _sign_in(page, site, "super1", lang)
    page.goto(f"{site}/supervisor")
    page.fill('#sup-filters input[name="from"]', "2026-02-30")
    page.locator("#sup-filters button[type=submit]").click()
    page.wait_for_load_state()
    assert "from=2026-02-30" in page.url
    assert page.locator(".error-card .message").inner_text() == _said(
        ValidationError("time.not_iso", field="from", value="2026-02-30"), lang
    )

    # A user name of the wrong form (the field's pattern), for the administrator.
    page.context.clear_cookies()
    _sign_in(page, site, "admin1", lang)
    page.goto(f"{site}/admin")
    page.fill("#add-name", "a b")
    page.fill("#add-password", "long-enough-1")
    page.locator("#gk-add-user button[type=submit]").click()
    page.wait_for_load_state()
    assert page.locator(".error-card .message").inner_text() == _said(
        ValidationError("users.bad_name", name="a b"), lang
    )


def test_every_form_is_served_novalidate():
    """A form without it would show the browser's bubble, in the browser's language, when JavaScript is off."""
    forms = [
        (path.name, tag)
        for path in sorted(TEMPLATES.glob("*.html"))
        for tag in re.findall(r"<form\b[^>]*>", path.read_text(encoding="utf-8"))
    ]
    assert len(forms) >= 18
    assert [(name, tag) for name, tag in forms if "novalidate" not in tag] == []
