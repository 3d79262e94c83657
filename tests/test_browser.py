"""The home page in a real Chromium (Playwright), offline: every non-localhost request is aborted.

Needs Debian's chromium at /usr/bin/chromium; without it the test fails (it does not skip).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from factories import STREET, X0, Y0, D, make_base_grid
from factories_web import served

from gridkit import db, layers
from tests.factories import STREET, X0, Y0, D, make_base_grid
from web import create_app
from web.mapview import MIN_CELL_ZOOM
from web.params import parse_bbox

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOT = Path("/tmp/gridkit-home.png")
SCREENSHOT_ZOOMED = Path("/tmp/gridkit-home-zoomed.png")
COMMUNITY = f"{STREET}001"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium():
    """A headless Chromium driven by Playwright; fails with advice if either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: run `bash scripts/setup.sh`.")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: run `bash scripts/setup.sh`.")
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure means the same advice
            pytest.fail(f"Chromium at {CHROMIUM} did not start ({exc}): run `bash scripts/setup.sh`.")
        yield browser
        browser.close()


@pytest.fixture
def server(fresh_settings):
    """The app with a 3×3 base grid, served by werkzeug on a free localhost port in a thread."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_base_grid(session)
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings


def _offline_page(browser, base_url):
    """Return (page, blocked URLs, errors): a page that may reach only localhost."""
    page = browser.new_page(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    blocked, errors = [], []

    def route(route_):
        if urlsplit(route_.request.url).hostname in LOCAL_HOSTS:
            route_.continue_()
        else:
            blocked.append(route_.request.url)
            route_.abort("internetdisconnected")

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))

    def console(message):
        # Aborted tiles log "Failed to load resource"; that is the network, not our code.
        if message.type == "error" and "Failed to load resource" not in message.text:
            errors.append(f"console: {message.text}")

    page.on("console", console)
    page.set_default_timeout(15000)
    return page, blocked, errors


def _wait_for_cells(page, loads_before: int) -> dict:
    page.wait_for_function(
        "n => window.gridkit && window.gridkit.state.loads > n && !window.gridkit.state.busy", arg=loads_before
    )
    return page.evaluate("() => Object.assign({}, window.gridkit.state)")


def _expected_cells(settings, bbox_text: str) -> list[str]:
    with db.session_factory(db.engine_for(settings))() as session:
        collection = layers.base_cells_geojson(session, bbox=parse_bbox(bbox_text))
    return [f["properties"]["code"] for f in collection["features"]]


def test_home_page_map_offline(chromium, server):
    base_url, settings = server
    page, blocked, errors = _offline_page(chromium, base_url)
    response = page.goto(base_url + "/")
    assert response.status == 200

    # The map is there: Leaflet from our static files, admin outlines and base cells drawn as SVG.
    page.wait_for_selector(".folium-map.leaflet-container")
    state = _wait_for_cells(page, 0)
    expected = _expected_cells(settings, state["bbox"])
    assert len(expected) == 9, "the fitted view shows the whole test grid"
    cells = page.locator("svg path.gk-base-cell")
    assert cells.count() == state["count"] == len(expected)
    drawn = sorted(cells.evaluate_all("paths => paths.map(p => p.getAttribute('data-code'))"))
    assert drawn == sorted(expected)
    page.wait_for_function("() => window.gridkit.layers.community.getLayers().length === 1")
    page.wait_for_function("() => window.gridkit.layers.communityHover.getLayers().length === 1")
    page.wait_for_function("() => window.gridkit.layers.district.getLayers().length === 1")
    assert "9" in page.locator(".gk-status").inner_text()
    assert page.locator('[data-count="base_cells"]').inner_text() == "9"

    # Hovering a cell shows its code and community in a tooltip.
    code = f"{COMMUNITY}005"
    page.hover(f'path.gk-base-cell[data-code="{code}"]')
    tooltip = page.locator(".leaflet-tooltip.gk-tooltip")
    tooltip.wait_for(state="visible")
    assert code in tooltip.inner_text()
    assert "测试1社区" in tooltip.inner_text()
    page.screenshot(path=str(SCREENSHOT))

    # Zoom into the south-west cell: only the cells in the new view are fetched and drawn.
    loads = state["loads"]
    page.evaluate(
        "([lat, lon]) => window.gridkit.map.setView([lat, lon], 19, {animate: false})", [Y0 + D * 0.3, X0 + D * 0.3]
    )
    state = _wait_for_cells(page, loads)
    expected = _expected_cells(settings, state["bbox"])
    assert 1 <= len(expected) < 9
    assert page.locator("svg path.gk-base-cell").count() == len(expected) == state["count"]
    # Zoomed in this far, each cell carries its full code as a permanent label.
    labels = page.locator(".gk-cell-label").all_inner_texts()
    assert sorted(labels) == sorted(expected)
    page.screenshot(path=str(SCREENSHOT_ZOOMED))

    # Zoomed out below the cell zoom, no cells are drawn and the status asks to zoom in.
    loads = state["loads"]
    page.evaluate("() => window.gridkit.map.setZoom(11, {animate: false})")
    _wait_for_cells(page, loads)
    assert page.locator("svg path.gk-base-cell").count() == 0
    assert str(MIN_CELL_ZOOM) in page.locator(".gk-status").inner_text()

    # Offline: nothing but the tile server was asked for, and our code logged no errors.
    assert all(urlsplit(url).hostname == "tile.openstreetmap.org" for url in blocked), blocked
    assert not errors, errors
    page.close()


def test_home_page_in_english(chromium, server):
    base_url, _ = server
    page, _, errors = _offline_page(chromium, base_url)
    page.goto(base_url + "/?lang=en")
    _wait_for_cells(page, 0)
    assert "base cells in view" in page.locator(".gk-status").inner_text()
    assert page.locator(".leaflet-control-layers").count() == 1
    page.hover(".leaflet-control-layers")
    assert "Base cells" in page.locator(".leaflet-control-layers").inner_text()
    assert not errors, errors
    page.close()
