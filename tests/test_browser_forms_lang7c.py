"""Form controls speak the page's language, not the browser's, in a real Chromium: an English browser
on a Chinese page, and a Chinese browser on an English page. The browser's own file button ("Choose
File / No file chosen"), its date field (mm/dd/yyyy) and its validation bubbles ("Please fill out this
field.") follow the browser; gridkit's file button, date field and messages come from the catalogue."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories_incidents import IN_C1, PASSWORD, PNG, SUPERVISOR, make_incident_world
from factories_web import served
from test_browser import CHROMIUM, CHROMIUM_ARGS

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.messages import catalogue
from web import create_app

pytestmark = pytest.mark.browser
SHOTS = Path("/tmp/gridkit-forms-lang7c")
# (the browser's language, the page's language): each the other's.
PAIRS = [("en-US", "zh-CN"), ("zh-CN", "en")]


@pytest.fixture
def site(fresh_settings):
    """A case dispatched to coord1, so that their page has the feedback form with its photo field."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失", category="0101", actor=SUPERVISOR
        ).incident
        wf.accept(session, case.id, SUPERVISOR)
        wf.classify(session, case.id, SUPERVISOR, category="0101", severity="normal")
        wf.dispatch(session, case.id, SUPERVISOR)
    with served(create_app(fresh_settings)) as url:
        SHOTS.mkdir(exist_ok=True)
        yield url


@pytest.fixture(params=PAIRS, ids=lambda p: f"{p[0]}-browser-{p[1]}-page")
def browser_page(request):
    """A page of a Chromium started in one language, its context in that locale too."""
    from playwright.sync_api import sync_playwright

    browser_lang, page_lang = request.param
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, f"--lang={browser_lang}"])
        context = browser.new_context(locale=browser_lang, viewport={"width": 1024, "height": 800})
        page = context.new_page()
        page.set_default_timeout(20000)
        page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
        yield page, page_lang
        browser.close()


def _sign_in(page, base_url, name, lang) -> str:
    """Sign in as `name` on the page in `lang`; return the message a first, empty try was refused with."""
    page.goto(f"{base_url}/login?lang={lang}")
    page.locator("main form button[type=submit]").first.click()  # nothing typed: the browser refuses
    assert page.url.endswith(f"/login?lang={lang}")
    refused = page.eval_on_selector("#name", "e => e.validationMessage")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.locator("main form button[type=submit]").first.click()
    page.wait_for_load_state()
    return refused


def test_form_controls_follow_the_page_language(site, browser_page, tmp_path):
    page, lang = browser_page
    say = catalogue(lang)
    # A required field left empty: the bubble's message is the catalogue's, not "Please fill out this field."
    assert _sign_in(page, site, "super1", lang) == say["form.required"]

    # Dates: YYYY-MM-DD text whose hint and refusal come from the catalogue (no browser mm/dd/yyyy).
    page.goto(f"{site}/supervisor")
    since = page.locator('#sup-filters input[name="from"]')
    assert since.get_attribute("placeholder") == say["form.date.placeholder"]
    assert since.get_attribute("type") == "text"
    since.fill("2026-02-30")  # not a day
    page.locator("#sup-filters button[type=submit]").click()
    assert since.evaluate("e => e.validationMessage") == say["form.date.invalid"]
    assert "from=" not in page.url  # refused in the page, not sent
    since.fill("2026/11/1")  # another common way, tidied when the field is left
    since.press("Tab")
    assert since.input_value() == "2026-11-01" and since.evaluate("e => e.validity.valid") is True
    page.screenshot(path=str(SHOTS / f"supervisor-{lang}.png"))

    # A file: the page's own button and "no file chosen"; the chosen file's name once picked.
    page.context.clear_cookies()
    coordinator = page
    _sign_in(coordinator, site, "coord1", lang)
    coordinator.goto(f"{site}/coordinator/cases")
    form = coordinator.locator(".feedback-form").first
    assert form.locator(".file-button").inner_text() == say["form.file.choose"]
    assert form.locator(".file-name").inner_text() == say["form.file.none"]
    native = form.locator("input[type=file]").bounding_box()
    assert native["width"] <= 1 and native["height"] <= 1  # the browser's own button is not seen
    coordinator.screenshot(path=str(SHOTS / f"my-cases-{lang}.png"), full_page=True)
    form.locator("button[type=submit]").click()  # the note is required
    assert form.locator("textarea[name=note]").evaluate("e => e.validationMessage") == say["form.required"]
    photo = tmp_path / "井盖.png"
    photo.write_bytes(PNG)
    form.locator("input[type=file]").set_input_files(str(photo))
    assert form.locator(".file-name").inner_text() == "井盖.png"
    # A click on the page's button opens the browser's file chooser: the button is the input's label.
    with coordinator.expect_file_chooser() as chooser:
        form.locator(".file-button").click()
    assert chooser.value.element.get_attribute("name") == "photo"


def test_analyst_preview_refuses_a_date_that_is_no_day_in_the_page_language(site, browser_page):
    page, lang = browser_page
    _sign_in(page, site, "analyst1", lang)
    page.goto(f"{site}/analyst")
    since = page.locator('#gk-report input[name="from"]')
    assert since.get_attribute("placeholder") == catalogue(lang)["form.date.placeholder"]
    since.fill("2026-13-01")
    page.click("#gk-report-preview")  # a button of its own, not the form's submit: checked all the same
    assert since.evaluate("e => e.validationMessage") == catalogue(lang)["form.date.invalid"]
    assert page.locator("#gk-report-out").inner_text() == ""  # nothing asked of the server
    since.fill("2026-09-01")
    page.click("#gk-report-preview")
    page.locator("#gk-report-out h3").wait_for()
