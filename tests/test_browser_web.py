"""Role workspaces in a real Chromium (Playwright, Debian's /usr/bin/chromium), offline: the
coordinator's cells on a 375 px phone, "who is responsible here" on a click, search by code and by
address, and a walk over every page in zh-CN that finds no untranslated string. Screenshots are
kept under a temporary directory (printed) as test artifacts."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from factories_web import (
    ADDRESS_A,
    BUILDING_A,
    C1,
    PASSWORD,
    POINT_A,
    RESIDENT_NAMES,
    A,
    B,
    base_cell,
    make_web_city,
    served,
)
from sqlalchemy import text
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name

from gridkit import db
from web import create_app

SHOTS = Path(tempfile.gettempdir()) / "gridkit-browser-web"
PHONE = {"width": 375, "height": 740}

pytestmark = pytest.mark.browser


@pytest.fixture
def server(fresh_settings):
    """The app on the web city, served by werkzeug on a free localhost port in a thread."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        ids = make_web_city(session)
    app = create_app(fresh_settings)
    with served(app) as url:
        SHOTS.mkdir(exist_ok=True)
        yield url, fresh_settings, ids


def sign_in(page, base_url, name, then):
    page.goto(f"{base_url}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{then}")


def test_coordinator_on_a_phone(chromium, server):  # noqa: F811
    base_url, _, _ = server
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    sign_in(page, base_url, "coord_a", "/coordinator")
    page.wait_for_function("() => window.gridkitCoordinator && window.gridkitCoordinator.state.loads > 0")
    assert page.evaluate("() => window.gridkitCoordinator.state.error") is None
    assert "红荔一号网格" in page.inner_text("#gk-cells")
    assert page.inner_text('[data-count="residents"]') == "2"
    table = page.inner_text("#gk-residents")
    assert RESIDENT_NAMES[0] in table and RESIDENT_NAMES[2] not in table
    # Nothing cut off at 375 px: no sideways scrolling of the page; the layer list starts collapsed.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator(".leaflet-control-layers-expanded").count() == 0
    assert page.locator(".leaflet-control-layers").count() == 1
    assert page.locator("path.leaflet-interactive").count() >= 9
    page.screenshot(path=str(SHOTS / "coordinator-375.png"), full_page=True)
    # Another coordinator's cell: refused, in Chinese.
    refused = page.evaluate(
        """code => fetch('/api/work-cells/' + code).then(r => r.json().then(b => [r.status, b.message]))""", B
    )
    assert refused[0] == 403 and "不在您负责" in refused[1]
    assert not errors, errors


def _click_map_at(page, lon, lat):
    point = page.evaluate(
        """([lon, lat]) => {
        var c = JSON.parse(document.querySelector('[data-map-config]').textContent);
        var p = window[c.mapName].latLngToContainerPoint([lat, lon]); return [p.x, p.y]; }""",
        [lon, lat],
    )
    box = page.locator(".folium-map").bounding_box()
    page.mouse.click(box["x"] + point[0], box["y"] + point[1])


def test_who_is_responsible_here_on_click(chromium, server):  # noqa: F811
    base_url, _, _ = server
    page, _, errors = _offline_page(chromium, base_url)
    page.goto(f"{base_url}/")
    page.wait_for_function("() => window.gridkitLocate && window.gridkit && window.gridkit.state.loads > 0")
    page.evaluate(
        """([lon, lat]) => { var c = JSON.parse(document.querySelector('[data-map-config]').textContent);
        window[c.mapName].setView([lat, lon], 17, {animate: false}); }""",
        list(POINT_A),
    )
    page.wait_for_function("() => !window.gridkit.state.busy")
    _click_map_at(page, *POINT_A)
    page.wait_for_selector(".gk-whois")
    text = page.inner_text(".gk-whois")
    assert base_cell(C1, 5) in text and "城市管理" in text and A in text and "王芳" in text
    assert "138" not in text  # a visitor sees no phone
    page.screenshot(path=str(SHOTS / "whois.png"))
    assert not errors, errors


def test_search_by_code_and_by_address(chromium, server):  # noqa: F811
    base_url, _, _ = server
    page, _, errors = _offline_page(chromium, base_url)
    page.goto(f"{base_url}/")
    page.wait_for_function("() => window.gridkitLocate")
    page.fill("#gk-search-input", A)
    page.press("#gk-search-input", "Enter")
    page.wait_for_selector('.gk-search-hit[data-kind="work_cell"]')
    page.click('.gk-search-hit[data-kind="work_cell"]')
    assert page.locator('[data-highlight="work_cell"]').count() == 1
    page.fill("#gk-search-input", "红荔路88")
    page.press("#gk-search-input", "Enter")
    page.wait_for_selector('.gk-search-hit[data-kind="address"]')
    assert ADDRESS_A in page.inner_text("#gk-search-results")
    page.click('.gk-search-hit[data-kind="address"]')
    assert page.locator('[data-highlight="address"]').count() == 1
    page.fill("#gk-search-input", BUILDING_A)
    page.press("#gk-search-input", "Enter")
    page.wait_for_selector('.gk-search-hit[data-kind="building"]')
    page.screenshot(path=str(SHOTS / "search.png"))
    assert not errors, errors


# Words a Chinese page may show in Latin letters: names and codes that are data, brands, units.
ALLOWED_WORDS = {
    "gridkit",
    "EN",
    "OpenStreetMap",
    "Leaflet",
    "CGCS2000",
    "EPSG",
    "GeoJSON",
    "WGS84",
    "GCJ",
    "coord_a",
    "admin1",
    "planner1",
    "super1",
    "super_c2",
    "analyst1",
    "coord_b",
    "m",
    "km",
    "X",
    "GCJ-02",
    "OSM",
    "contributors",
    "setup",
    "DB11",
    "CJ",
}
LATIN = re.compile(r"[A-Za-z][A-Za-z0-9_.@-]*")

# Raw data (audit rows) is marked translate="no" and left out; so is the map's attribution (brand names).
VISIBLE_TEXT = """() => {
  document.querySelectorAll('[translate="no"], .leaflet-control-attribution').forEach(function (e) { e.remove(); });
  var parts = [document.body.innerText, document.title];
  document.querySelectorAll('[placeholder],[title],[aria-label],input[type=submit],button').forEach(function (e) {
    ['placeholder', 'title', 'aria-label'].forEach(function (a) {
      if (e.getAttribute(a)) { parts.push(e.getAttribute(a)); }
    });
  });
  return parts.join('\\n');
}"""


def _untranslated(text: str) -> list[str]:
    words = []
    for word in LATIN.findall(text):
        if word in ALLOWED_WORDS or re.fullmatch(r"[A-Z]?-?\d[\w-]*|[0-9A-Z]{6,}", word):
            continue
        words.append(word)
    return words


def test_every_page_in_chinese_has_no_untranslated_string(chromium, server):  # noqa: F811
    base_url, _, ids = server
    pages = {
        None: ["/", "/basegrid", "/login", "/no/such/page"],
        "coord_a": ["/coordinator"],
        "admin1": ["/admin", "/planner", f"/planner/version/{ids['version']}", "/basegrid"],
    }
    found = {}
    for user, paths in pages.items():
        page, _, errors = _offline_page(chromium, base_url)
        if user:
            sign_in(page, base_url, user, "/coordinator" if user == "coord_a" else "/admin")
        for path in paths:
            page.goto(f"{base_url}{path}")
            page.wait_for_load_state("networkidle")
            assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
            words = _untranslated(page.evaluate(VISIBLE_TEXT))
            if words:
                found[(user, path)] = sorted(set(words))
            name = re.sub(r"\W+", "_", f"{user}{path}").strip("_") or "home"
            page.screenshot(path=str(SHOTS / f"zh-{name}.png"))
        assert not errors, errors
        page.close()
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())
    print(f"screenshots in {SHOTS}")


HOSTILE = '<img src=x onerror="window.gkInjected=1">'


def test_addresses_in_the_coordinator_map_are_text_never_html(chromium, server):  # noqa: F811
    # An address is imported data: a hostile one shows as text in the building's tooltip, nothing runs.
    base_url, settings, _ = server
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        session.execute(
            text("UPDATE building SET address = :a WHERE code = :c"), {"a": HOSTILE + ADDRESS_A, "c": BUILDING_A}
        )
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, "coord_a", "/coordinator")
    page.wait_for_function("() => window.gridkitCoordinator && window.gridkitCoordinator.state.loads > 0")
    page.wait_for_function("() => window.gridkitCoordinator.layers.buildings.getLayers().length > 0")
    shown = page.evaluate(
        """() => window.gridkitCoordinator.layers.buildings.getLayers().map(l => {
            l.openTooltip(); return l.getTooltip().getElement().textContent; })"""
    )
    assert f"{BUILDING_A} {HOSTILE}{ADDRESS_A}" in shown
    assert page.evaluate("() => window.gkInjected") is None
    assert page.locator(".leaflet-tooltip img").count() == 0
    assert errors == []
