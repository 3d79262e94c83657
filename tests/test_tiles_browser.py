"""The home map draws base cells and coloured work cells from vector tiles in a real Chromium,
offline (Leaflet.VectorGrid from our static files); screenshots kept in /tmp."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories_web import served
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture
from test_tiles import CENTRE, DEPT, make_work_grid

from gridkit import db
from web import create_app

SCREENSHOT = Path("/tmp/gridkit-tiles-work-cells.png")

pytestmark = pytest.mark.browser

# Pixels of a pane's canvases that are drawn (alpha > 0), and their distinct opaque-ish colours.
COUNT_PIXELS = """pane => {
  const canvases = Array.from(document.querySelectorAll('.leaflet-' + pane + '-pane canvas'));
  let drawn = 0; const colours = new Set();
  for (const c of canvases) {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] === 0) { continue; }
      drawn += 1;
      if (data[i + 3] > 60) { colours.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]); }
    }
  }
  return {canvases: canvases.length, drawn: drawn, colours: colours.size};
}"""


@pytest.fixture
def tile_server(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_work_grid(session)
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url


def test_home_map_draws_cells_from_vector_tiles(chromium, tile_server):  # noqa: F811
    page, blocked, errors = _offline_page(chromium, tile_server)
    tiles = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles/" in r.url else None)
    page.goto(tile_server + "/")
    page.wait_for_function("() => window.gridkit && window.gridkit.tiles")
    # Zoom 13: far below the GeoJSON cells' zoom; the tiles draw the cells.
    page.evaluate(
        "([lat, lon]) => window.gridkit.map.setView([lat, lon], 13, {animate: false})", [CENTRE[1], CENTRE[0]]
    )
    page.wait_for_function("() => window.gridkit.layers.cells.getLayers().length === 0")
    page.wait_for_function(f"() => ({COUNT_PIXELS})('gk-cells').drawn > 50")
    assert any("/tiles/base-cells/13/" in url and status == 200 for url, status in tiles), tiles

    # The department's work cells: one overlay in the layer control, neighbours in different colours.
    page.wait_for_function(f"() => window.gridkit.tiles.workCells['{DEPT}']")
    page.hover(".leaflet-control-layers")
    assert "工作网格：城市管理" in page.locator(".leaflet-control-layers").inner_text()
    page.evaluate(f"() => window.gridkit.map.addLayer(window.gridkit.tiles.workCells['{DEPT}'])")
    page.wait_for_function(f"() => ({COUNT_PIXELS})('gk-work-cells').drawn > 50")
    page.evaluate(
        "([lat, lon]) => window.gridkit.map.setView([lat, lon], 16, {animate: false})", [CENTRE[1], CENTRE[0]]
    )
    page.wait_for_timeout(500)
    page.wait_for_function(f"() => ({COUNT_PIXELS})('gk-work-cells').colours >= 3")
    # From zoom 15 each work cell carries its name.
    page.wait_for_function("() => document.querySelectorAll('.gk-work-label').length === 6")
    assert "网格" in page.locator(".gk-work-label").first.inner_text()
    assert any("/tiles/work-cells/16/" in url and f"dept={DEPT}" in url for url, _ in tiles), tiles
    page.screenshot(path=str(SCREENSHOT))
    assert not errors, errors
    assert all("openstreetmap" in url for url in blocked), blocked
    page.close()
