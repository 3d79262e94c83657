"""The analyst page in a real Chromium (Playwright), offline: choropleth, report preview, a download."""

from __future__ import annotations

from urllib.parse import urlsplit

import pyogrio
import pytest
from factories_exports import make_city
from factories_web import served
from sqlalchemy import text
from test_browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, chromium  # noqa: F401 - the browser fixture

from gridkit import db
from gridkit.users import add_user
from web import create_app

PASSWORD = "correct horse battery"
pytestmark = pytest.mark.browser


@pytest.fixture
def server(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
        add_user(session, "ana", "analyst", password=PASSWORD)
    with served(create_app(fresh_settings)) as url:
        yield url


def open_analyst_page(page, server) -> list[str]:
    """Sign the analyst in (offline: only local hosts answer) and wait for the choropleth of both
    communities; return the list the page's script errors are collected into."""
    page.route(
        "**/*",
        lambda route: route.continue_() if urlsplit(route.request.url).hostname in LOCAL_HOSTS else route.abort(),
    )
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{server}/login?next=/analyst/&lang=en")
    page.fill("input[name=name]", "ana")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/analyst/")
    page.wait_for_selector("#gk-map[data-features='2']", timeout=20000)
    return errors


def test_analyst_page(chromium, server, tmp_path):  # noqa: F811 - pytest fixture
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    # The choropleth draws both communities without any basemap.
    errors = open_analyst_page(page, server)
    assert page.locator("#gk-map path.leaflet-interactive").count() == 2
    assert "Range 18 – 18" in page.inner_text("#gk-legend")
    page.select_option("#gk-count", "incidents")
    page.select_option("#gk-level", "cell")
    page.click("#gk-map-go")
    page.wait_for_selector("#gk-map[data-features='18']", timeout=20000)
    # Report preview: header block, chart and table.
    page.select_option("#gk-report-name", "incidents")
    page.click("#gk-report-preview")
    page.wait_for_selector("#gk-report-out svg.report-chart", timeout=20000)
    assert "Incidents by state" in page.inner_text("#gk-report-out")
    assert page.locator("#gk-report-out table.report").count() == 3
    # Export download.
    page.select_option("#gk-layer", "buildings")
    page.select_option("#gk-format", "gpkg")
    page.select_option("#gk-crs", "EPSG:4547")
    with page.expect_download() as info:
        page.click("#gk-export-go")
    target = tmp_path / "b.gpkg"
    info.value.save_as(target)
    frame = pyogrio.read_dataframe(target)
    assert len(frame) == 18 and frame.crs.to_epsg() == 4547
    page.screenshot(path="/tmp/gridkit-analyst.png", full_page=True)
    assert errors == []
    context.close()


def test_names_in_the_choropleth_are_text_never_html(chromium, server, fresh_settings):  # noqa: F811 - pytest fixture
    # Admin unit names are imported data: a hostile one shows as text in the tooltip, nothing runs.
    hostile = '<img src=x onerror="window.gkInjected=1">'
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        session.execute(text("UPDATE admin_unit SET name = :n || name WHERE level = 'community'"), {"n": hostile})
    page = chromium.new_page()
    errors = open_analyst_page(page, server)
    page.hover("#gk-map path.leaflet-interactive >> nth=0")
    tip = page.wait_for_selector(".leaflet-tooltip")
    assert tip.inner_text().startswith(hostile)
    assert page.evaluate("() => window.gkInjected") is None
    assert page.locator(".leaflet-tooltip img").count() == 0 and errors == []
