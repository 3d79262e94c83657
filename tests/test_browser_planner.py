"""The work grid editor and the base grid page in a real Chromium (Playwright), offline.

A planner signs in, opens a draft of a 2-community test grid, moves cells by click, by box and by a
drawn polygon, publishes, and reads the diff; the database is checked after each step. Screenshots
go to /tmp/gridkit-planner-*.png and /tmp/gridkit-basegrid-*.png.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from factories_web import served
from test_browser import _offline_page, chromium  # noqa: F401 (a fixture)

from gridkit import db
from gridkit.grids import work
from gridkit.models import WorkGridVersion
from tests.factories import X0, Y0, D
from tests.factories_planner import (
    C1,
    C2,
    DEPT,
    NEW,
    PASSWORD,
    A,
    B,
    cell,
    commit,
    make_overlapping_edition,
    make_planner_data,
    members,
    read,
)
from web import create_app

SHOTS = Path("/tmp")

pytestmark = pytest.mark.browser


@pytest.fixture
def server(fresh_settings):
    """The app with the planner test data, served by werkzeug on a free localhost port in a thread."""
    ids = commit(fresh_settings, make_planner_data)
    app = create_app(fresh_settings)
    with served(app) as url:
        yield url, fresh_settings, ids


def sign_in(page, base_url, name="planner1", then="/planner"):
    page.goto(f"{base_url}/login?next={then}")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}{then}")


def wait_ready(page, loads_before=0, saves=None):
    """Wait until the editor has (re)loaded its cells and legend and nothing is in flight."""
    page.wait_for_function(
        "([n, saves]) => window.gridkit && window.gridkit.state.loads > n && !window.gridkit.state.busy"
        " && window.gridkit.state.overview && (saves === null || window.gridkit.state.saves >= saves)",
        arg=[loads_before, saves],
    )
    return page.evaluate(
        "() => ({loads: window.gridkit.state.loads, saves: window.gridkit.state.saves,"
        " revision: window.gridkit.state.revision})"
    )


def point(page, lon, lat):
    """Return the page coordinates (x, y) of a lon/lat point on the map."""
    p = page.evaluate(
        "([lat, lon]) => { const pt = window.gridkit.map.latLngToContainerPoint([lat, lon]);"
        " const r = window.gridkit.map.getContainer().getBoundingClientRect();"
        " return [r.left + pt.x, r.top + pt.y]; }",
        [lat, lon],
    )
    return p[0], p[1]


def cell_attr(page, code, name):
    return page.get_attribute(f'path[data-code="{code}"]', name)


def legend_count(page, work_cell):
    return int(page.get_attribute(f'#gk-work-cells [data-work-cell="{work_cell}"]', "data-count"))


def after_save(page, state):
    """Wait for the save that was just started and for the reload after it."""
    return wait_ready(page, state["loads"], state["saves"] + 1)


def test_planner_edits_publishes_and_compares(chromium, server):
    base_url, settings, ids = server
    page, blocked, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url)
    page.wait_for_selector(f'[data-draft="{ids["draft"]}"]')
    page.screenshot(path=str(SHOTS / "gridkit-planner-list.png"), full_page=True)
    page.click(f'[data-draft="{ids["draft"]}"]')
    page.wait_for_url(f"{base_url}/planner/version/{ids['draft']}")
    state = wait_ready(page)
    assert page.locator("svg path.gk-work-base-cell").count() == 18
    assert legend_count(page, A) == 9 and legend_count(page, B) == 9
    colour_a, colour_b = cell_attr(page, cell(C1, 3), "fill"), cell_attr(page, cell(C2, 1), "fill")
    assert colour_a != colour_b and colour_a.startswith("#")
    assert page.locator("#gk-problems-status").get_attribute("data-errors") == "0"
    page.screenshot(path=str(SHOTS / "gridkit-planner-editor.png"))
    state = _move_two_cells_by_click(page, settings, ids, state, (colour_a, colour_b))
    state = _move_a_row_by_box_to_a_new_work_cell(page, settings, ids, state)
    state = _move_a_column_by_polygon(page, settings, ids, state)
    _problem_highlights_its_cells(page)
    _publish(page, settings, ids)
    _diff_highlights_the_moved_cells(page, base_url, settings)
    _roll_back_to_version_1(page, settings, ids)
    assert all(urlsplit(url).hostname == "tile.openstreetmap.org" for url in blocked), blocked
    assert not errors, errors
    page.close()


def _move_two_cells_by_click(page, settings, ids, state, colours) -> dict:
    """Step 1: Click two cells of A and move them to B (whose colour they take)."""
    colour_a, colour_b = colours
    page.click(f'path[data-code="{cell(C1, 3)}"]')
    page.click(f'path[data-code="{cell(C1, 6)}"]')
    assert cell_attr(page, cell(C1, 3), "data-selected") == "true"
    assert page.get_attribute("#gk-selection-count", "data-count") == "2"
    page.select_option("#gk-target", B)
    page.screenshot(path=str(SHOTS / "gridkit-planner-selected.png"))
    page.click("#gk-move")
    state = after_save(page, state)
    assert state["revision"] == 1
    assert cell_attr(page, cell(C1, 3), "data-work-cell") == B
    assert cell_attr(page, cell(C1, 6), "data-work-cell") == B
    assert cell_attr(page, cell(C1, 3), "fill") == colour_b != colour_a
    assert cell_attr(page, cell(C1, 3), "data-selected") == "false"
    assert legend_count(page, A) == 7 and legend_count(page, B) == 11
    assert members(settings, ids["draft"])[cell(C1, 3)] == B
    assert "已将 2 个基础网格移入工作网格" in page.inner_text("#gk-notice")
    return state


def _move_a_row_by_box_to_a_new_work_cell(page, settings, ids, state) -> dict:
    """Step 2: Box select (Shift+drag) community 1's south row, move it to a new work cell."""
    x0, y0 = point(page, X0 + 0.3 * D, Y0 + 0.8 * D)
    x1, y1 = point(page, X0 + 2.7 * D, Y0 + 0.2 * D)
    centre_before = page.evaluate("() => window.gridkit.map.getCenter()")
    page.keyboard.down("Shift")
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")
    assert page.evaluate("() => window.gridkit.map.getCenter()") == centre_before, "a box drag does not pan"
    selected = sorted(page.evaluate("() => Object.keys(window.gridkit.state.selected)"))
    assert selected == [cell(C1, 7), cell(C1, 8), cell(C1, 9)]
    page.select_option("#gk-target", "__new__")
    assert page.input_value("#gk-new-code") == NEW, "the next free code of the community is suggested"
    page.fill("#gk-new-name", "三号网格")
    page.click("#gk-move")
    state = after_save(page, state)
    assert legend_count(page, NEW) == 3 and legend_count(page, A) == 4
    assert all(cell_attr(page, code, "data-work-cell") == NEW for code in selected)
    assert {members(settings, ids["draft"])[code] for code in selected} == {NEW}
    return state


def _move_a_column_by_polygon(page, settings, ids, state) -> dict:
    """Step 3: Draw a polygon over community 2's east column (and 30 % of the middle one)."""
    page.click('[data-tool="polygon"]')
    corners = [
        (X0 + 4.7 * D, Y0 + 0.05 * D),
        (X0 + 5.95 * D, Y0 + 0.05 * D),
        (X0 + 5.95 * D, Y0 + 2.95 * D),
        (X0 + 4.7 * D, Y0 + 2.95 * D),
    ]
    for lon, lat in corners[:-1]:
        page.mouse.click(*point(page, lon, lat))
    page.mouse.dblclick(*point(page, *corners[-1]))
    page.wait_for_function("() => Object.keys(window.gridkit.state.selected).length === 3")
    selected = sorted(page.evaluate("() => Object.keys(window.gridkit.state.selected)"))
    assert selected == [cell(C2, 3), cell(C2, 6), cell(C2, 9)]
    assert page.locator("path.gk-drawn-polygon").count() == 1
    page.screenshot(path=str(SHOTS / "gridkit-planner-polygon.png"))
    page.select_option("#gk-target", "__new__")
    polygon_cell = f"{DEPT}{C2}01"  # the first community-coded cell of community 2
    assert page.input_value("#gk-new-code") == polygon_cell
    page.click("#gk-move")
    state = after_save(page, state)
    assert legend_count(page, polygon_cell) == 3 and legend_count(page, B) == 8
    assert {members(settings, ids["draft"])[code] for code in selected} == {polygon_cell}
    assert page.locator("#gk-problems-status").get_attribute("data-errors") == "0"
    return state


def _problem_highlights_its_cells(page):
    """Step 4: A problem in the validation panel highlights its cells."""
    page.click('#gk-problem-list [data-type="no_coordinator"]')
    assert page.locator('path[data-highlighted="true"]').count() == 18
    page.click('[data-tool="click"]')
    page.screenshot(path=str(SHOTS / "gridkit-planner-edited.png"))


def confirm(page, question=None):
    """Answer the page's own confirmation dialog (its buttons in the page's language, not the browser's)."""
    dialog = page.locator("dialog.gk-confirm[open]")
    dialog.wait_for()
    if question is not None:
        assert dialog.locator("p").inner_text() == question
    assert dialog.locator("button").all_inner_texts() == ["取消", "确定"]
    dialog.locator('button[value="ok"]').click()


def _publish(page, settings, ids):
    """Step 5: Publish: the page becomes the read-only published version."""
    page.click("#gk-publish")
    confirm(page, "确定发布第 2 版？发布后不可修改。")
    page.wait_for_selector("#gk-version-status.status-published")
    assert read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]).status) == "published"
    wait_ready(page)
    assert page.locator("#gk-move").count() == 0
    page.wait_for_selector('#gk-history [data-number="2"] .history-diff')
    assert page.get_attribute('#gk-history [data-number="1"]', "data-status") == "retired"
    page.screenshot(path=str(SHOTS / "gridkit-planner-published.png"))


def _diff_highlights_the_moved_cells(page, base_url, settings):
    """Step 6: The diff with the previous version highlights the moved base cells."""
    page.click('#gk-history [data-number="2"] .history-diff')
    page.wait_for_url(f"{base_url}/planner/diff/{DEPT}/1/2")
    wait_ready(page)
    with db.session_factory(db.engine_for(settings))() as session:
        diff = work.diff_versions(session, DEPT, 1, 2)
    moved = sorted(m["base_cell"] for m in diff["moved"])
    assert len(moved) == 8
    drawn = sorted(
        page.locator('path[data-moved="true"]').evaluate_all("paths => paths.map(p => p.getAttribute('data-code'))")
    )
    assert drawn == moved
    assert page.locator("#gk-moved-list li").count() == 8
    assert page.inner_text('[data-count="moved"]') == "8"
    assert page.get_attribute(f'path[data-code="{cell(C1, 1)}"]', "data-moved") is None
    page.click(f'#gk-moved-list li[data-code="{cell(C1, 3)}"]')
    assert cell_attr(page, cell(C1, 3), "data-highlighted") == "true"
    page.hover(f'path[data-code="{cell(C1, 6)}"]')
    tooltip = page.locator(".leaflet-tooltip.gk-tooltip")
    tooltip.wait_for(state="visible")
    assert A in tooltip.inner_text() and B in tooltip.inner_text()
    page.screenshot(path=str(SHOTS / "gridkit-planner-diff.png"))


def _roll_back_to_version_1(page, settings, ids):
    """Step 7: Roll back to version 1 from the history list: a copy of it is published as version 3."""
    page.click('#gk-history [data-number="1"] .history-rollback')
    confirm(page, "将第 1 版复制为新版本并立即发布？")
    page.wait_for_selector("#gk-version-status.status-published")
    wait_ready(page)
    assert "第 3 版" in page.inner_text(".version-line")
    with db.session_factory(db.engine_for(settings))() as session:
        restored = work.version_by_number(session, DEPT, 3)
        assert (restored.status, restored.note) == ("published", "rollback to version 1")
        restored_id = restored.id
    assert members(settings, restored_id) == members(settings, ids["published"])
    assert cell_attr(page, cell(C1, 3), "data-work-cell") == A


def test_stale_draft_is_reloaded_and_publish_refused(chromium, server):
    base_url, settings, ids = server
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, then=f"/planner/draft/{ids['draft']}")
    state = wait_ready(page)

    # Someone else saves the draft meanwhile.
    def other_planner(session):
        draft = work.draft(session, ids["draft"])
        work.set_members(session, draft, A, [cell(C2, 1)], expected_revision=0, by="planner2")

    commit(settings, other_planner)

    page.click(f'path[data-code="{cell(C1, 3)}"]')
    page.select_option("#gk-target", B)
    page.click("#gk-move")
    # First "conflict, reloading", then, once reloaded, who changed the draft and when.
    page.wait_for_function("() => document.querySelector('#gk-notice').innerText.includes('已被 planner2')")
    wait_ready(page, state["loads"])
    notice = page.inner_text("#gk-notice")
    assert "已被 planner2" in notice and "修订 1" in notice
    assert page.evaluate("() => window.gridkit.state.revision") == 1
    # The reloaded draft shows the other planner's change; the refused move was not written.
    assert cell_attr(page, cell(C2, 1), "data-work-cell") == A
    assert members(settings, ids["draft"])[cell(C1, 3)] == A
    page.screenshot(path=str(SHOTS / "gridkit-planner-conflict.png"))
    # The selection survives the reload, so the planner can redo the move; here it is dropped.
    assert cell_attr(page, cell(C1, 3), "data-selected") == "true"
    page.click("#gk-clear")
    assert page.get_attribute("#gk-selection-count", "data-count") == "0"

    # Community 1's north-west cell put into B leaves B in two pieces: an error blocks publishing.
    state = page.evaluate("() => ({loads: window.gridkit.state.loads, saves: window.gridkit.state.saves})")
    page.click(f'path[data-code="{cell(C1, 1)}"]')
    page.select_option("#gk-target", B)
    page.click("#gk-move")
    after_save(page, state)
    assert page.locator("#gk-problems-status").get_attribute("data-errors") == "1"
    page.click('#gk-problem-list [data-type="multipart_work_cell"]')
    assert page.locator('path[data-highlighted="true"]').count() == 9  # all of B
    page.click("#gk-publish")  # asked, then cancelled: nothing is sent
    page.locator('dialog.gk-confirm[open] button[value="cancel"]').click()
    page.locator("dialog.gk-confirm").wait_for(state="detached")
    assert "发布被拒绝" not in page.inner_text("#gk-notice")
    page.click("#gk-publish")
    confirm(page)
    page.wait_for_function("() => document.querySelector('#gk-notice').innerText.includes('发布被拒绝')")
    assert "工作网格不连通" in page.inner_text("#gk-notice")
    assert read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]).status) == "draft"
    page.screenshot(path=str(SHOTS / "gridkit-planner-refused.png"))
    assert not errors, errors
    page.close()


def test_basegrid_page_lists_and_draws_problems(chromium, server):
    base_url, settings, _ = server
    commit(settings, make_overlapping_edition)
    page, blocked, errors = _offline_page(chromium, base_url)
    page.goto(f"{base_url}/basegrid?edition=2027-draft")
    # Validation is for signed-in users: a visitor is offered the sign-in instead.
    assert page.locator("#gk-problems-status a").count() == 1
    sign_in(page, base_url, then="/basegrid?edition=2027-draft")
    page.wait_for_function("() => window.gridkit && window.gridkit.problems && window.gridkit.problems.state.loaded")
    page.wait_for_function("() => !window.gridkit.state.busy && window.gridkit.state.loads > 0")
    items = page.locator("#gk-problem-list .problem-item")
    assert items.count() >= 1
    overlap = page.locator('#gk-problem-list .problem-item[data-type="overlap"]')
    assert overlap.count() == 1
    assert "重叠" in overlap.inner_text() and cell(C1, 5) in overlap.inner_text()
    assert page.locator("path.gk-problem[data-type=overlap]").count() == 1
    assert page.locator("path.gk-base-cell").count() == 18
    assert "发现" in page.inner_text("#gk-problems-status")
    zoom = page.evaluate("() => window.gridkit.map.getZoom()")
    overlap.click()
    assert "active" in overlap.get_attribute("class")
    assert page.evaluate("() => window.gridkit.map.getZoom()") > zoom
    page.hover("path.gk-problem[data-type=overlap]")
    page.screenshot(path=str(SHOTS / "gridkit-basegrid-problem.png"))

    # The picker switches editions; the published one is clean.
    page.select_option("#gk-edition", "2026")
    page.wait_for_url(f"{base_url}/basegrid?edition=2026")
    page.wait_for_function("() => window.gridkit.problems && window.gridkit.problems.state.loaded")
    assert page.locator("#gk-problem-list .problem-item").count() == 0
    assert "未发现问题" in page.inner_text("#gk-problems-status")
    page.screenshot(path=str(SHOTS / "gridkit-basegrid-clean.png"))
    assert all(urlsplit(url).hostname == "tile.openstreetmap.org" for url in blocked), blocked
    assert not errors, errors
    page.close()
