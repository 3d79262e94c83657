"""The coordinator's map has a legend in a real Chromium (Playwright, offline), on a phone and a
desktop, in zh-CN and en: the work cell's outline, its base cells and the buildings' dots are named in
the page's language, and the legend lies clear of the map's other controls."""

from __future__ import annotations

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_workspaces_ui5k import OVERLAPPING_MAP_CONTROLS, SHOTS, _sign_in, site  # noqa: F401

from gridkit.messages import catalogue

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
@pytest.mark.parametrize("viewport", [{"width": 375, "height": 740}, {"width": 1366, "height": 900}])
def test_the_coordinators_map_has_a_legend(chromium, site, lang, viewport):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(viewport)
    _sign_in(page, base_url, "coord1", lang)
    page.goto(f"{base_url}/coordinator")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"ux9i-coordinator-legend-{lang}-{viewport['width']}.png"))
    legend = page.locator(".leaflet-container .gk-coordinator-legend")
    assert legend.is_visible()
    words = catalogue(lang)
    rows = legend.locator("div:has(.gk-swatch)").all_inner_texts()
    assert [r.strip() for r in rows] == [
        words["coordinator.layer.cell"],
        words["coordinator.layer.base_cells"],
        words["coordinator.layer.buildings"],
    ]
    assert legend.locator(".gk-legend-title").inner_text() == words["map.legend.title"]
    # Each row's symbol is drawn (a line, a box, a dot), not an empty span.
    sizes = legend.locator(".gk-swatch").evaluate_all(
        "ss => ss.map(s => { const r = s.getBoundingClientRect(); return r.width > 0 && r.height > 0; })"
    )
    assert sizes == [True, True, True]
    assert page.evaluate(OVERLAPPING_MAP_CONTROLS) == []
    assert errors == []
    page.close()
