"""The import of drawn work cells on the planner's draft page, in a real Chromium (Playwright), offline.

A planner uploads a zipped shapefile written by GDAL (EPSG:4547, GBK, no .cpg), chooses its fields from those
the page read from it, imports it, reads the counts, sees the new work cells on the map and downloads the
report. Screenshot: /tmp/gridkit-planner-import.png.
"""

from __future__ import annotations

import csv
import io

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 (a fixture)
from test_browser_planner import SHOTS, cell_attr, legend_count, server, sign_in, wait_ready  # noqa: F401
from test_web_planner_import_wgw10f import PLAN, zipped_shapefile

from tests.factories_planner import C1, C2, NEW, A, B, cell, members

pytestmark = pytest.mark.browser


def test_planner_imports_a_zipped_shapefile(chromium, server, tmp_path):  # noqa: F811
    base_url, settings, ids = server
    draft = ids["draft"]
    path = zipped_shapefile(tmp_path / "file", PLAN)
    page, blocked, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, then=f"/planner/draft/{draft}")
    state = wait_ready(page)
    assert legend_count(page, A) == 9

    page.click("#gk-import-details summary")
    page.set_input_files("#gk-import-file", str(path))
    page.wait_for_selector("#gk-import-fields[data-fields]")
    assert page.get_attribute("#gk-import-fields", "data-fields") == "WGBM,网格名称"
    assert "工作网格.zip" in page.inner_text("#gk-import-fields")
    options = page.eval_on_selector_all("#gk-import-field-list option", "os => os.map(o => o.value)")
    assert options == ["WGBM", "网格名称"]
    page.fill("#gk-import-code", "WGBM")
    page.fill("#gk-import-name", "网格名称")
    assert page.input_value("#gk-import-share") == "50"
    page.click("#gk-import-submit")
    page.wait_for_selector('#gk-import-result[data-state="success"]')
    wait_ready(page, state["loads"])
    page.wait_for_function("() => window.gridkit.state.revision > 0 && !window.gridkit.state.busy")

    counts = {
        name: page.inner_text(f'#gk-import-result [data-count="{name}"]')
        for name in ("work_cells", "base_cells_assigned", "split", "unassigned", "work_cells_removed")
    }
    assert counts == {
        "work_cells": "2",
        "base_cells_assigned": "15",
        "split": "0",
        "unassigned": "3",
        "work_cells_removed": "1",
    }
    assert "工作网格.zip 已导入：2 个工作网格" in page.inner_text("#gk-import-result")
    # The map: the drawn work cells, in their colours; the eastern column in none.
    page.wait_for_function(
        "code => document.querySelector(`#gk-work-cells [data-work-cell='${code}']`) !== null", arg=NEW
    )
    assert legend_count(page, NEW) == 6 and legend_count(page, B) == 9
    assert page.locator(f'#gk-work-cells [data-work-cell="{A}"]').count() == 0
    assert cell_attr(page, cell(C1, 1), "data-work-cell") == NEW
    assert cell_attr(page, cell(C2, 2), "data-work-cell") == B
    assert cell_attr(page, cell(C2, 3), "data-work-cell") in (None, "")
    assert cell_attr(page, cell(C1, 1), "fill") != cell_attr(page, cell(C2, 2), "fill")
    assert members(settings, draft)[cell(C1, 2)] == NEW
    page.screenshot(path=str(SHOTS / "gridkit-planner-import.png"))

    with page.expect_download() as info:
        page.click("#gk-import-report")
    download = info.value
    assert download.suggested_filename.endswith("-workgrid-import.csv")
    rows = list(csv.DictReader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert sorted(r["code"] for r in rows if r["kind"] == "below_share") == [cell(C2, n) for n in (3, 6, 9)]
    assert not errors, errors
    assert all("openstreetmap" in url for url in blocked), blocked
    page.close()
