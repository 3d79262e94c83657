"""The base grid page draws a generated draft against its target, in a real Chromium (Playwright), offline.

A planner opens a draft generated to 2–40 buildings: its cells come coloured within the target / too
small, with the counts; a target typed in the form draws them again. Screenshot:
/tmp/gridkit-basegrid-target.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from factories_web import served
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select

from gridkit import db
from gridkit.grids.generate import Target
from gridkit.grids.generate.layer import edition_target
from gridkit.models import SRID, BaseCell, Building
from gridkit.users import add_user
from tests.factories import make_base_grid
from tests.test_browser import _offline_page, chromium  # noqa: F401 - the fixture
from web import create_app

PASSWORD = "correct-horse-13"
SHOT = Path("/tmp/gridkit-basegrid-target.png")

pytestmark = pytest.mark.browser


def make_draft(session) -> None:
    """A 3×3 draft 'generated' to 2–40 buildings, two buildings in its first cell, and a planner."""
    edition = make_base_grid(session, rows=3, cols=3, edition="gen-draft", status="draft")
    edition.note = f"generated along roads, target {Target.buildings(2, 40).describe()}"
    first = to_shape(
        session.scalars(select(BaseCell.geom).where(BaseCell.edition_id == edition.id).order_by(BaseCell.code)).first()
    )
    x, y = first.centroid.x, first.centroid.y
    footprint = MultiPolygon([box(first.bounds[0] - 0.0001, y, first.bounds[0] + 0.0003, y + 0.0001)])
    session.add_all(
        [
            Building(code="p", geom=from_shape(Point(x, y), srid=SRID)),
            Building(code="f", footprint=from_shape(footprint, srid=SRID)),
        ]
    )
    add_user(session, "planner13", "planner", password=PASSWORD)


@pytest.fixture
def server(fresh_settings):
    with db.transaction(fresh_settings) as session:
        make_draft(session)
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings


def wait_target(page, loads_before: int) -> dict:
    page.wait_for_function(
        "n => window.gridkit && window.gridkit.target && window.gridkit.target.state.loads > n"
        " && !window.gridkit.target.state.busy",
        arg=loads_before,
    )
    return page.evaluate("() => Object.assign({}, window.gridkit.target.state)")


def drawn(page) -> dict:
    """Return {status: number of cells drawn} of the target layer's SVG paths."""
    statuses = page.locator("path.gk-target-cell").evaluate_all("ps => ps.map(p => p.getAttribute('data-status'))")
    return {s: statuses.count(s) for s in sorted(set(statuses))}


def test_the_generated_target_is_read_from_the_draft(fresh_settings):
    with db.transaction(fresh_settings) as session:
        make_draft(session)
        edition = session.scalars(select(BaseCell.edition_id)).first()
        assert edition_target(session, edition) == Target.buildings(2, 40)


def test_basegrid_page_draws_a_draft_against_its_target(chromium, server):  # noqa: F811 - the fixture
    base_url, settings = server
    page, blocked, errors = _offline_page(chromium, base_url)
    page.goto(f"{base_url}/basegrid?edition=gen-draft")
    assert page.locator("#gk-target-form").count() == 0  # visitors see no planner tools
    page.goto(f"{base_url}/login?next=/basegrid?edition=gen-draft")
    page.fill("#name", "planner13")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/basegrid?edition=gen-draft")

    # Drawn at once with the target the draft was generated to: 1 cell within it, 8 too small.
    state = wait_target(page, 0)
    assert state["error"] is None and state["count"] == 9
    assert state["counts"] == {"ok": 1, "above": 0, "below": 8}
    assert page.locator("path.gk-target-cell").count() == 9
    assert drawn(page) == {"below": 8, "ok": 1}
    assert page.input_value("#gk-target-range") == "2-40"
    counts = page.locator("#gk-target-counts li").evaluate_all(
        "items => items.map(i => [i.getAttribute('data-status'), i.getAttribute('data-count')])"
    )
    assert counts == [["ok", "1"], ["above", "0"], ["below", "8"]]
    status = page.inner_text("#gk-target-status")
    assert "共 9 个网格" in status and "1 个在目标范围内" in status and "8 个过小" in status
    page.hover("path.gk-target-cell[data-status=ok]")
    assert "2 栋建筑" in page.locator(".leaflet-tooltip.gk-tooltip").last.inner_text()
    page.screenshot(path=str(SHOT))

    # Another target from the form: by area every cell is within 1–2,000,000 m².
    page.select_option("#gk-target-measure", "area")
    page.fill("#gk-target-range", "1-2000000")
    page.click("#gk-target-form button[type=submit]")
    state = wait_target(page, state["loads"])
    assert state["counts"] == {"ok": 9, "above": 0, "below": 0}
    assert drawn(page) == {"ok": 9}

    # A bad range is refused by the server, in the page's language.
    page.fill("#gk-target-range", "40-2")
    page.click("#gk-target-form button[type=submit]")
    state = wait_target(page, state["loads"])
    assert state["error"] and page.locator("path.gk-target-cell").count() == 0
    assert "下限" in page.inner_text("#gk-target-status") or "最小" in page.inner_text("#gk-target-status")
    assert all(urlsplit(url).hostname == "tile.openstreetmap.org" for url in blocked), blocked
    assert not [e for e in errors if "400" not in e], errors
    page.close()
