"""The home map draws admin outlines from the admin-units vector tiles wherever it draws base
cells (from the cells' first zoom), so that they lie on cell edges; below it, the light GeoJSON
outlines. Real Chromium, offline."""

from __future__ import annotations

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture
from test_tiles import CENTRE
from test_tiles_browser import COUNT_PIXELS, tile_server  # noqa: F401 - the fixture

from gridkit import tiles as tiles_service

pytestmark = pytest.mark.browser


def set_zoom(page, zoom: int) -> None:
    page.evaluate(
        "([lat, lon, z]) => window.gridkit.map.setView([lat, lon], z, {animate: false})",
        [CENTRE[1], CENTRE[0], zoom],
    )


def test_admin_outlines_come_from_tiles_where_cells_are_drawn(chromium, tile_server):  # noqa: F811
    page, _, errors = _offline_page(chromium, tile_server)
    requested = []
    page.on("response", lambda r: requested.append((r.url, r.status)) if "/tiles/admin-units/" in r.url else None)
    page.goto(tile_server + "/")
    page.wait_for_function("() => window.gridkit && window.gridkit.tiles")
    page.wait_for_function("() => window.gridkit.layers.community.getLayers().length > 0")
    first = tiles_service.MIN_ZOOM["base-cells"]

    set_zoom(page, first - 2)
    page.wait_for_timeout(300)
    requested.clear()  # the first view, fitted to the grid, is zoomed in
    page.evaluate("() => window.gridkit.map.panBy([40, 40], {animate: false})")
    page.wait_for_timeout(500)
    assert page.evaluate("() => window.gridkit.map.hasLayer(window.gridkit.layers.community)")
    assert not requested  # no outline tiles below the cells' zoom

    set_zoom(page, first + 2)
    page.wait_for_function("() => !window.gridkit.map.hasLayer(window.gridkit.layers.community)")
    assert not page.evaluate("() => window.gridkit.map.hasLayer(window.gridkit.layers.district)")
    page.wait_for_function(f"() => ({COUNT_PIXELS})('gk-communities').drawn > 50")
    assert any(f"/tiles/admin-units/{first + 2}/" in url and status == 200 for url, status in requested), requested

    set_zoom(page, first - 2)
    page.wait_for_function("() => window.gridkit.map.hasLayer(window.gridkit.layers.community)")
    assert not errors, errors
