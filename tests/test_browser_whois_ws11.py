""" "Who is responsible here" on the planner's and the supervisor's maps, in a real Chromium
(Playwright, Debian's /usr/bin/chromium), offline: a click on the map opens the panel with the
base cell, the work cell and its coordinator. In the planner's editor a click still selects base
cells; the whois tool answers instead. Screenshots are kept under a temporary directory."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from factories import X0, D
from factories_web import C1, DEPT, PASSWORD, POINT_A, A, base_cell, make_web_city, served
from sqlalchemy import select, text
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_web import _click_map_at

from gridkit import db
from gridkit.grids import work
from gridkit.grids.editions import publish_edition
from gridkit.messages import render
from gridkit.models import BaseGridEdition
from web import create_app

SHOTS = Path(tempfile.gettempdir()) / "gridkit-browser-whois"

pytestmark = pytest.mark.browser


@pytest.fixture
def server(fresh_settings):
    """The web city (a published work grid with coordinators) plus a draft, served on localhost."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        ids = make_web_city(session)
        ids["draft"] = work.start_draft(session, DEPT, by="setup").id
    app = create_app(fresh_settings)
    with served(app) as url:
        SHOTS.mkdir(exist_ok=True)
        yield url, ids


def sign_in(page, base_url, name):
    page.goto(f"{base_url}/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state()


def zoom_to(page, lon, lat, zoom=17):
    page.evaluate(
        """([lon, lat, zoom]) => { var c = JSON.parse(document.querySelector('[data-map-config]').textContent);
        window[c.mapName].setView([lat, lon], zoom, {animate: false}); }""",
        [lon, lat, zoom],
    )


def whois_text(page) -> str:
    page.wait_for_function("() => window.gridkitLocate && !window.gridkitLocate.state.busy")
    page.wait_for_selector(".gk-whois")
    return page.inner_text(".gk-whois")


def assert_whois_of_point_a(text: str) -> None:
    assert base_cell(C1, 5) in text, text  # base cell
    assert A in text and "红荔一号网格" in text, text  # work cell
    assert "王芳" in text, text  # its coordinator


def click_and_check_whois(page, screenshot: str) -> None:
    """Zoom to point A, click it, check the panel and keep a screenshot."""
    zoom_to(page, *POINT_A)
    _click_map_at(page, *POINT_A)
    assert_whois_of_point_a(whois_text(page))
    page.screenshot(path=str(SHOTS / screenshot))


def planner_ready(page):
    page.wait_for_function("() => window.gridkit && window.gridkit.state.loads > 0 && !window.gridkit.state.busy")
    page.wait_for_function("() => window.gridkitLocate")


def test_whois_on_the_planners_map_of_a_published_version(chromium, server):  # noqa: F811
    base_url, ids = server
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, "planner1")
    page.goto(f"{base_url}/planner/version/{ids['version']}")
    planner_ready(page)
    click_and_check_whois(page, "planner-view-whois.png")
    assert not errors, errors


def test_whois_tool_in_the_planners_editor(chromium, server):  # noqa: F811
    base_url, ids = server
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, "planner1")
    page.goto(f"{base_url}/planner/version/{ids['draft']}")
    planner_ready(page)
    zoom_to(page, *POINT_A)
    # The click tool selects the base cell and asks nobody.
    _click_map_at(page, *POINT_A)
    page.wait_for_function(f"() => window.gridkit.state.selected['{base_cell(C1, 5)}'] === true")
    assert page.locator(".gk-whois").count() == 0
    # The whois tool answers and selects nothing more.
    page.click('[data-tool="whois"]')
    assert page.get_attribute('[data-tool="whois"]', "aria-pressed") == "true"
    _click_map_at(page, *POINT_A)
    assert_whois_of_point_a(whois_text(page))
    assert page.evaluate("() => Object.keys(window.gridkit.state.selected).length") == 1
    page.screenshot(path=str(SHOTS / "planner-edit-whois.png"))
    assert not errors, errors


def test_whois_on_the_supervisors_map(chromium, server):  # noqa: F811
    base_url, _ = server
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, "super1")
    page.goto(f"{base_url}/supervisor")
    page.wait_for_selector(".folium-map.leaflet-container")
    page.wait_for_function("() => window.gridkitLocate")
    click_and_check_whois(page, "supervisor-whois.png")
    assert not errors, errors


def test_whois_of_a_new_cell_says_it_is_not_placed_yet(chromium, fresh_settings):  # noqa: F811
    """After a new base grid edition splits cell 5 of C1 (point A now in new cell 010), the work grid in force
    (drawn on the retired edition) holds no cell of that code: the panel says so, as the publish did."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_web_city(session)
        split_cell_5_of_c1(session)
    with served(create_app(fresh_settings)) as base_url:
        page, _, errors = _offline_page(chromium, base_url)
        sign_in(page, base_url, "super1")
        page.goto(f"{base_url}/supervisor")
        page.wait_for_selector(".folium-map.leaflet-container")
        page.wait_for_function("() => window.gridkitLocate")
        zoom_to(page, *POINT_A)
        _click_map_at(page, *POINT_A)
        text = whois_text(page)
        assert base_cell(C1, 10) in text and A not in text, text
        assert render("locate.unplaced", "zh-CN") in text, text
        assert not errors, errors


def split_cell_5_of_c1(session) -> None:
    """Publish a copy of the edition in force where cell 5 of C1 is split at a quarter of its width: its
    east part (point A) gets the new code 010."""
    edition = BaseGridEdition(name="split")
    session.add(edition)
    session.flush()
    old = session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.status == "published"))
    x = X0 + 1.25 * D
    session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) "
            "SELECT :e, code, community_code, geom FROM base_cell WHERE edition_id = :old AND code <> :five "
            "UNION ALL SELECT :e, :five, community_code, ST_ClipByBox2D(geom, ST_MakeEnvelope(0, 0, :x, 90)) "
            "FROM base_cell WHERE edition_id = :old AND code = :five "
            "UNION ALL SELECT :e, :ten, community_code, ST_ClipByBox2D(geom, ST_MakeEnvelope(:x, 0, 180, 90)) "
            "FROM base_cell WHERE edition_id = :old AND code = :five"
        ),
        {"e": edition.id, "old": old, "five": base_cell(C1, 5), "ten": base_cell(C1, 10), "x": x},
    )
    publish_edition(session, edition)
