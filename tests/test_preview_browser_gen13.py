"""The HTML preview of generated cells opens offline: Leaflet inlined from gridkit's one copy, the map drawn.

Needs Debian's chromium at /usr/bin/chromium (see tests/test_browser.py); it fails, not skips, without it.
"""

from __future__ import annotations

import re

import pytest
from shapely.geometry import LineString, Polygon, box

from gridkit.grids.generate import Road
from gridkit.grids.generate.preview import PreviewCell, write_preview
from gridkit.messages import Message
from gridkit.vendor import LEAFLET_DIR, leaflet_inline
from tests.test_browser import chromium  # noqa: F401 - the fixture

pytestmark = pytest.mark.browser

X, Y, D = 121.485, 31.230, 0.002


def preview_cells() -> list[PreviewCell]:
    """Four cells in a 2 × 2 block: one in the target, one below, one above, one water."""
    statuses = ["ok", "below", "above", "water"]
    cells = []
    for k, status in enumerate(statuses):
        x, y = X + (k % 2) * D, Y - (k // 2) * D
        reason = None if status == "ok" else Message(f"generate.preview.{status}")
        cells.append(PreviewCell(box(x, y, x + D, y + D), f"31010100100100{k + 1}", status, reason, [], 10 * k))
    return cells


def write(tmp_path, name="cells.html"):
    roads = [
        Road(LineString([(X - 0.001, Y + D), (X + 3 * D, Y + D)]), major=True, name="中山东一路</script>"),
        Road(LineString([(X + D, Y - D - 0.001), (X + D, Y + 2 * D)]), name="滇池路"),
    ]
    water = [box(X + D, Y - D, X + 2 * D, Y)]
    buildings = [box(X + 0.0002, Y + 0.0002, X + 0.0005, Y + 0.0005), Polygon()]
    return write_preview(
        tmp_path / name, preview_cells(), roads=roads, water=water, buildings=buildings[:1], lang="zh-CN"
    )


def test_preview_html_names_no_network_resource(tmp_path):
    page = write(tmp_path).read_text(encoding="utf-8")
    sources = re.findall(r"<script[^>]*\ssrc=\"([^\"]*)\"", page) + re.findall(r"<link[^>]*\shref=\"([^\"]*)\"", page)
    assert sources == []
    assert not re.search(r"(src|href)\s*=\s*[\"']?https?://", page.split("<script>", 1)[0])
    css, js = leaflet_inline()
    assert js in page and css in page and "Leaflet 1.9.4" in page
    assert "url(images/" not in css and "data:image/png;base64," in css
    assert "BSD 2-Clause" in (LEAFLET_DIR / "LICENSE").read_text()
    # A name with '</script>' stays inside the data.
    assert "中山东一路<\\/script>" in page


def test_preview_opens_offline_with_the_map_drawn(chromium, tmp_path):  # noqa: F811 - the fixture
    path = write(tmp_path)
    page = chromium.new_page(viewport={"width": 1000, "height": 800}, locale="zh-CN")
    requests, errors = [], []

    def route(route_):
        requests.append(route_.request.url)
        if route_.request.url.startswith("file://"):
            route_.continue_()
        else:
            route_.abort("internetdisconnected")

    page.route("**/*", route)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(path.as_uri())
    page.wait_for_function("() => window.gridkitPreview && window.L && L.version === '1.9.4'")
    counts = page.evaluate(
        "() => Object.fromEntries(Object.entries(window.gridkitPreview.layers)"
        ".map(([k, l]) => [k, l.getLayers().length]))"
    )
    assert counts == {"cells": 4, "water": 1, "buildings": 1, "roads": 2}
    statuses = page.evaluate(
        "() => window.gridkitPreview.layers.cells.getLayers().map(l => l.feature.properties.status)"
    )
    assert sorted(statuses) == ["above", "below", "ok", "water"]
    # Drawn: a canvas renderer in the map pane, the legend with its four rows.
    assert page.locator(".leaflet-container canvas").count() >= 1
    assert page.locator(".legend div").count() == 4
    assert "在目标范围内" in page.locator(".legend").inner_text()
    assert [u for u in requests if not u.startswith("file://")] == [] and errors == []


def test_names_in_the_preview_are_text_never_html(chromium, tmp_path):  # noqa: F811 - the fixture
    # Road names come from the roads file (OpenStreetMap, a city's survey): hostile text must stay text.
    hostile = '<img src=x onerror="window.gkInjected=1">__TITLE__'
    roads = [Road(LineString([(X - 0.001, Y + D), (X + 3 * D, Y + D)]), major=True, name=hostile)]
    cells = preview_cells()
    cells[0].notes.append(Message("generate.note.elongated", pp=0.1, why=hostile))
    path = write_preview(tmp_path / "hostile.html", cells, roads=roads, water=[], buildings=[], lang="en")
    page_text = path.read_text(encoding="utf-8")
    assert page_text.count(Message("generate.preview.title").render("en")) == 1  # the name's placeholder kept
    page = chromium.new_page(viewport={"width": 1000, "height": 800})
    page.goto(path.as_uri())
    page.wait_for_function("() => window.gridkitPreview && window.L")
    shown = page.evaluate(
        """() => {
        const layers = window.gridkitPreview.layers;
        const road = layers.roads.getLayers()[0];
        layers.roads.openTooltip(road.getCenter());
        const cell = layers.cells.getLayers().find(l => l.feature.properties.notes.length);
        cell.openPopup();
        return [document.querySelector('.leaflet-tooltip').textContent,
                document.querySelector('.leaflet-popup-content').textContent];
        }"""
    )
    assert shown[0] == hostile
    assert hostile in shown[1]
    assert page.evaluate("() => window.gkInjected") is None
    assert page.locator(".leaflet-tooltip img, .leaflet-popup-content img").count() == 0
