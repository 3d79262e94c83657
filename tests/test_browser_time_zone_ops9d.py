"""Times a page shows are the city's (GRIDKIT_TIME_ZONE), in a browser whatever its own zone: the planner's
list of drafts writes its times again in the reader's language in the page, which used the browser's zone
(a planner's laptop on UTC, or abroad, saw other hours than every other page and report)."""

from __future__ import annotations

import pytest
from factories_web import served
from test_browser import CHROMIUM, CHROMIUM_ARGS

from tests.factories_planner import PASSWORD, commit, make_planner_data
from web import create_app

pytestmark = pytest.mark.browser


def test_the_planners_list_shows_times_in_the_citys_zone_not_the_browsers(fresh_settings):
    from playwright.sync_api import sync_playwright

    commit(fresh_settings, make_planner_data)
    with served(create_app(fresh_settings)) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(locale="en-US", timezone_id="America/New_York").new_page()
        page.goto(f"{url}/login?next=/planner&lang=en")
        page.fill("#name", "planner1")
        page.fill("#password", PASSWORD)
        page.click("main form button[type=submit]")
        page.wait_for_url(f"{url}/planner")
        shown = page.eval_on_selector_all(
            "time[datetime]",
            """nodes => nodes.map(n => {
                const at = new Date(n.getAttribute("datetime")), style = {dateStyle: "medium", timeStyle: "short"};
                return [n.textContent, at.toLocaleString("en", {...style, timeZone: "Asia/Shanghai"}),
                        at.toLocaleString("en", style)];
            })""",
        )
        browser.close()
    assert shown
    for text, city, browsers in shown:
        assert text == city and text != browsers  # New York is 12 or 13 hours behind
