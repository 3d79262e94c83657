"""The demo city as a first-time user meets it, in a real Chromium (Playwright, offline): on a
390 × 844 phone the supervisor's dashboard shows its map first, within the first screen, and the
lists below it in the one scrolling page; on a laptop the panel stays beside the map."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from factories_web import served
from test_browser import chromium  # noqa: F401 - the fixture is used by name

from gridkit import db
from gridkit.demo import DEMO_PASSWORD, load_demo
from web import create_app

SHOTS = Path(tempfile.gettempdir()) / "gridkit-browser-demo"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

pytestmark = pytest.mark.browser


@pytest.fixture
def demo_site(fresh_settings):
    """The demo city loaded and served."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        load_demo(session, b"test-key")
    with served(create_app(fresh_settings)) as url:
        SHOTS.mkdir(exist_ok=True)
        yield url


def _signed_in(chromium, base_url, name, viewport):  # noqa: F811
    context = chromium.new_context(viewport=viewport, locale="zh-CN")
    page = context.new_page()
    page.set_default_timeout(20000)
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    page.goto(f"{base_url}/login")
    page.fill("#name", name)
    page.fill("#password", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_load_state("networkidle")
    return context, page


def _box(page, selector):
    return page.evaluate(
        "s => { const b = document.querySelector(s).getBoundingClientRect();"
        " return [b.left, b.top, b.width, b.height]; }",
        selector,
    )


def test_demo_supervisor_on_a_phone_sees_the_map_first(chromium, demo_site):  # noqa: F811
    context, page = _signed_in(chromium, demo_site, "supervisor", PHONE)
    page.goto(f"{demo_site}/supervisor")
    page.wait_for_selector("#overdue-list li")
    page.screenshot(path=str(SHOTS / "supervisor-390.png"))
    left, top, width, height = _box(page, ".map-wrap")
    topbar_bottom = _box(page, ".topbar")[1] + _box(page, ".topbar")[3]
    # The map right under the top bar, the phone's width, and its whole height on the first screen.
    assert topbar_bottom - 1 <= top <= topbar_bottom + 1
    assert width >= PHONE["width"] - 2 and top + height <= PHONE["height"] and height >= 0.5 * PHONE["height"]
    # The demo's long lists come below it, in the one page that scrolls (not a box of its own).
    assert _box(page, "#overdue-list")[1] > top + height
    assert page.evaluate("getComputedStyle(document.querySelector('.sup-panel')).overflowY") == "visible"
    page.locator("#overdue-list li a").last.scroll_into_view_if_needed()
    assert 0 <= _box(page, "#overdue-list li:last-child")[1] < PHONE["height"]
    context.close()
    # A laptop: the panel beside the map, as before.
    context, page = _signed_in(chromium, demo_site, "supervisor", LAPTOP)
    page.goto(f"{demo_site}/supervisor")
    panel, map_box = _box(page, ".sup-panel"), _box(page, ".map-wrap")
    assert panel[0] + panel[2] <= map_box[0] + 1 and abs(panel[1] - map_box[1]) <= 1
    context.close()
