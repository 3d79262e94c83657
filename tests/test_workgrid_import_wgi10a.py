"""`gridkit workgrid import`: a department's drawn work cell polygons into a draft in one go.

The files are written by GDAL (pyogrio) as a department delivers them: a shapefile in the Gauss-Kruger zone
EPSG:4547 with GBK attributes and no .cpg, the polygons drawn by hand a few metres off the base cells' edges.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from click.testing import CliRunner
from shapely.geometry import Polygon, box
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.grids import work
from gridkit.grids.work.import_polygons import import_work_cells
from tests.factories import X0, Y0, D, make_base_grid

DEPT = "100001"
ROWS = COLS = 6
COMMUNITIES = ("440304001001", "440304001002")
TO_4547 = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)


def run(settings, *args):
    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def ok_json(settings, *args):
    result = run(settings, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def work_cell(community: str, n: int) -> str:
    return f"{DEPT}{community}{n:02d}"


def cell_code(community: int, row: int, col: int) -> str:
    """The base cell of make_base_grid in community `community` (0-based), row `row` from the south, column `col`."""
    return f"{COMMUNITIES[community]}{(ROWS - 1 - row) * COLS + col + 1:03d}"


def cells_box(community: int, rows: range, cols: range):
    """The outline (EPSG:4490) of a block of base cells."""
    x = X0 + community * COLS * D
    return box(x + cols.start * D, Y0 + rows.start * D, x + cols.stop * D, Y0 + rows.stop * D)


def hand_drawn(geom, rng, noise_m: float = 4.0) -> Polygon:
    """Return `geom` in EPSG:4547 as a planner draws it: a vertex every 20 m, each a few metres off."""
    projected = shapely.segmentize(shapely.transform(geom, lambda xy: np.column_stack(TO_4547.transform(*xy.T))), 20)
    ring = np.asarray(projected.exterior.coords)[:-1]
    return Polygon(ring + rng.uniform(-noise_m, noise_m, ring.shape))


def write_shapefile(folder: Path, rows: list[dict], *, crs=4547) -> Path:
    """Write a shapefile with GBK attributes and no .cpg (as old desktop GIS deliver them) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "网格.shp"
    frame = gpd.GeoDataFrame(
        {"WGBM": [r["code"] for r in rows], "WGMC": [r.get("name") for r in rows]},
        geometry=[r["geom"] for r in rows],
        crs=crs,
    )
    frame.to_file(path, engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    return path


# Each community: four work cells of 3×3 base cells (south-west, south-east, north-west, north-east).
BLOCKS = [
    (range(0, 3), range(0, 3)),
    (range(0, 3), range(3, 6)),
    (range(3, 6), range(0, 3)),
    (range(3, 6), range(3, 6)),
]
NAMES = ["福田一网格", "福田二网格", "园岭三网格", "园岭四网格"]


def planned() -> dict[str, set[str]]:
    """Return {work cell code: its base cell codes} of the department's plan."""
    plan = {}
    for i, community in enumerate(COMMUNITIES):
        for n, (rows, cols) in enumerate(BLOCKS, start=1):
            plan[work_cell(community, n)] = {cell_code(i, r, c) for r in rows for c in cols}
    return plan


@pytest.fixture
def draft(fresh_settings):
    """Two communities of 6×6 base cells, department 100001 over district 440304, and a draft of its work grid."""
    with Session(db.engine_for(fresh_settings)) as session, session.begin():
        make_base_grid(session, ROWS, COLS, communities=2)
    run(fresh_settings, "dept", "add", DEPT, "综治中心", "--jurisdiction", "440304")
    d = ok_json(fresh_settings, "workgrid", "draft", "--dept", DEPT)
    return fresh_settings, d["id"]


def members(settings_or_session, draft_id: int) -> dict[str, set[str]]:
    """Return {work cell code: its base cell codes} of the version `draft_id`."""
    if isinstance(settings_or_session, Session):
        return _members(settings_or_session, draft_id)
    with Session(db.engine_for(settings_or_session)) as session:
        return _members(session, draft_id)


def _members(session, draft_id: int) -> dict[str, set[str]]:
    rows = session.execute(
        text(
            "SELECT w.code, b.code FROM work_cell_member m JOIN work_cell w ON w.id = m.work_cell_id "
            "JOIN base_cell b ON b.id = m.base_cell_id WHERE m.version_id = :v"
        ),
        {"v": draft_id},
    ).all()
    found: dict[str, set[str]] = {}
    for wc, bc in rows:
        found.setdefault(wc, set()).add(bc)
    return found


def report_rows(result: dict) -> list[dict]:
    with open(result["report_csv"], encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


def test_hand_drawn_shapefile_in_4547_with_gbk_names_puts_every_cell_in_its_work_cell(draft, tmp_path):
    settings, draft_id = draft
    # A work cell of the draft the file does not name goes (the file is the whole work grid).
    stale = work_cell(COMMUNITIES[0], 99)
    run(settings, "workgrid", "assign", "--draft", str(draft_id), "--work-cell", stale, "--cells", cell_code(0, 0, 0))
    rng = np.random.default_rng(7)
    rows = []
    for i, community in enumerate(COMMUNITIES):
        for n, (block_rows, block_cols) in enumerate(BLOCKS, start=1):
            geom = hand_drawn(cells_box(i, block_rows, block_cols), rng)
            rows.append({"code": work_cell(community, n), "name": NAMES[n - 1], "geom": geom})
    path = write_shapefile(tmp_path / "drawn", rows)

    result = ok_json(
        settings,
        "workgrid",
        "import",
        "--draft",
        str(draft_id),
        str(path),
        "--code-field",
        "WGBM",
        "--name-field",
        "WGMC",
    )

    assert members(settings, draft_id) == planned()
    assert result["work_cells"] == 8 and result["base_cells_assigned"] == 72
    assert result["split"] == 0 and result["unassigned"] == 0 and result["work_cells_removed"] == 1
    assert result["crs"].startswith("EPSG:4547") and result["encoding"].upper() == "GB18030"
    with Session(db.engine_for(settings)) as session:
        names = dict(
            session.execute(text("SELECT code, name FROM work_cell WHERE version_id = :v"), {"v": draft_id}).all()
        )
    assert names[work_cell(COMMUNITIES[1], 3)] == "园岭三网格"
    removed = [r for r in report_rows(result) if r["kind"] == "work_cell_removed"]
    assert [r["code"] for r in removed] == [stale]
    # The text summary counts and points to the report instead of listing cells.
    again = run(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM")
    assert again.exit_code == 0, again.output
    assert "8 work cells, 72 base cells placed" in again.output and ".csv" in again.output


def test_a_split_cell_goes_to_the_polygon_holding_most_of_it_and_is_reported(draft, tmp_path):
    settings, draft_id = draft
    west, east = work_cell(COMMUNITIES[0], 1), work_cell(COMMUNITIES[0], 2)
    # The border between the two work cells runs through column 3 of community 1, 60 % west of it.
    border = X0 + 3.6 * D
    rows = [
        {"code": east, "geom": box(border, Y0, X0 + 2 * COLS * D, Y0 + ROWS * D)},
        {"code": west, "geom": box(X0, Y0, border, Y0 + ROWS * D)},
    ]
    path = tmp_path / "drawn.gpkg"
    gpd.GeoDataFrame({"code": [r["code"] for r in rows]}, geometry=[r["geom"] for r in rows], crs=4490).to_file(
        path, engine="pyogrio"
    )

    result = ok_json(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "code")

    found = members(settings, draft_id)
    split = {cell_code(0, r, 3) for r in range(ROWS)}
    assert split <= found[west] and not split & found[east]
    assert result["split"] == ROWS and result["unassigned"] == 0
    listed = [r for r in report_rows(result) if r["what"] == "split"]
    assert {r["code"] for r in listed} == split
    assert all(r["row"] == "2" for r in listed)  # the west polygon's feature (GeoPackage fid)
    line = next(r for r in listed if r["code"] == cell_code(0, 2, 3))["message"]
    assert f"{west} 60.0%; {east} 40.0%" in line and f"went to {west}" in line


def test_cells_below_the_share_stay_unassigned_and_are_reported(draft, tmp_path):
    settings, draft_id = draft
    west = work_cell(COMMUNITIES[0], 1)
    # A reservoir left out on purpose stays out; a cell left out that the file places is no longer left out.
    reservoir, placed = cell_code(1, 0, 4), cell_code(0, 0, 0)
    for cell in (reservoir, placed):
        run(settings, "workgrid", "exclude", "--draft", str(draft_id), "--cells", cell, "--reason", "水库")
    # Columns 0–1 of community 1 and 30 % of column 2, and a column west of the city; nothing else is drawn.
    path = write_shapefile(
        tmp_path / "drawn", [{"code": west, "geom": box(X0 - D, Y0, X0 + 2.3 * D, Y0 + ROWS * D)}], crs=4490
    )

    result = ok_json(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM")

    assert members(settings, draft_id) == {west: {cell_code(0, r, c) for r in range(ROWS) for c in (0, 1)}}
    assert result["unassigned"] == 2 * ROWS * COLS - 2 * ROWS - 1
    listed = report_rows(result)
    rows = {r["code"]: r for r in listed if r["what"] == "unassigned"}
    below = rows[cell_code(0, 4, 2)]
    assert below["kind"] == "below_share" and f"{west} 30.0%" in below["message"]
    assert rows[cell_code(1, 0, 5)]["kind"] == "in_no_polygon"
    assert "gridkit workgrid assign" in below["advice"]
    assert reservoir not in rows
    with Session(db.engine_for(settings)) as session:
        excluded = session.scalars(
            text("SELECT b.code FROM work_grid_exclusion x JOIN base_cell b ON b.id = x.base_cell_id")
        ).all()
    assert excluded == [reservoir]
    outside = next(r for r in listed if r["kind"] == "partly_outside")
    assert outside["row"] == "0" and outside["code"] == west and "30.3%" in outside["message"]

    # --share overrides the rule's threshold.
    result = ok_json(
        settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM", "--share", "0.25"
    )
    assert members(settings, draft_id) == {west: {cell_code(0, r, c) for r in range(ROWS) for c in (0, 1, 2)}}


def test_bad_features_refuse_the_whole_import_naming_each_and_change_nothing(draft, tmp_path):
    settings, draft_id = draft
    good = work_cell(COMMUNITIES[0], 1)
    run(settings, "workgrid", "assign", "--draft", str(draft_id), "--work-cell", good, "--cells", cell_code(0, 0, 0))
    before = ok_json(settings, "workgrid", "history", "--dept", DEPT)
    block = cells_box(0, range(0, 3), range(0, 3))
    far = box(X0 + 1, Y0 + 1, X0 + 1 + D, Y0 + 1 + D)  # in China, 100 km from the city
    rows = [
        {"code": good, "geom": block},  # 0
        {"code": good, "geom": cells_box(0, range(3, 6), range(0, 3))},  # 1: the same code again
        {"code": None, "geom": cells_box(0, range(0, 3), range(3, 6))},  # 2: no code
        {
            "code": work_cell(COMMUNITIES[0], 4),
            "geom": Polygon([(X0, Y0), (X0, Y0 + D), (X0, Y0 + 2 * D)]),
        },  # 3: no area
        {"code": "20000144030400100105", "geom": cells_box(1, range(0, 3), range(0, 3))},  # 4: another department's
        {"code": work_cell(COMMUNITIES[1], 6), "geom": far},  # 5: outside the city
        {"code": work_cell(COMMUNITIES[1], 7), "geom": cells_box(1, range(3, 4), range(0, 1)).buffer(-0.3 * D)},  # 6
    ]
    path = write_shapefile(tmp_path / "drawn", rows, crs=4490)

    result = run(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM")

    assert result.exit_code == 1
    assert "Nothing was imported" in result.output and "Report:" in result.output
    report = Path(result.output.split("Report: ")[1].split()[0])
    lines = report.read_text(encoding="utf-8-sig")
    expected = {
        "duplicate_code": (1, good),
        "missing_code": (2, None),
        "degenerate_polygon": (3, work_cell(COMMUNITIES[0], 4)),
        "bad_code": (4, "20000144030400100105"),
    }
    for kind, (index, code) in expected.items():
        line = next(x for x in lines.splitlines() if f"[{kind}]" in x)
        assert f"feature {index}" in line and f"code {code or '-'}" in line, line
    # The polygons that get no base cell are named once the features are right.
    assert ok_json(settings, "workgrid", "history", "--dept", DEPT) == before
    assert members(settings, draft_id) == {good: {cell_code(0, 0, 0)}}

    path = write_shapefile(tmp_path / "second", [rows[0], rows[5], rows[6]], crs=4490)
    result = run(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM")
    assert result.exit_code == 1
    report = Path(result.output.split("Report: ")[1].split()[0]).read_text(encoding="utf-8-sig")
    outside = next(x for x in report.splitlines() if "[outside_jurisdiction]" in x)
    assert "feature 1" in outside and work_cell(COMMUNITIES[1], 6) in outside
    small = next(x for x in report.splitlines() if "[no_base_cell]" in x)
    assert "feature 2" in small and "16.0%" in small and cell_code(1, 3, 0) in small
    assert ok_json(settings, "workgrid", "history", "--dept", DEPT) == before
    assert members(settings, draft_id) == {good: {cell_code(0, 0, 0)}}


def test_a_published_version_refuses_the_import(draft, tmp_path):
    settings, draft_id = draft
    code = work_cell(COMMUNITIES[0], 1)
    run(settings, "workgrid", "assign", "--draft", str(draft_id), "--work-cell", code, "--admin-unit", "440304")
    published = run(settings, "workgrid", "publish", "--draft", str(draft_id))
    assert published.exit_code == 0, published.output
    path = write_shapefile(
        tmp_path / "drawn", [{"code": code, "geom": cells_box(0, range(0, 1), range(0, 1))}], crs=4490
    )

    result = run(settings, "workgrid", "import", "--draft", str(draft_id), str(path), "--code-field", "WGBM")

    assert result.exit_code == 1 and "published" in result.output
    assert len(members(settings, draft_id)[code]) == 2 * ROWS * COLS


def test_a_cell_split_half_and_half_goes_to_the_smaller_work_cell_code(session, tmp_path):
    make_base_grid(session, ROWS, COLS, communities=2)
    work.add_department(session, DEPT, "综治中心", jurisdiction="440304")
    version = work.start_draft(session, DEPT, by="test")
    first, second = work_cell(COMMUNITIES[0], 1), work_cell(COMMUNITIES[0], 2)
    border = X0 + 3.5 * D  # through the middle of column 3
    path = tmp_path / "drawn.geojson"
    gpd.GeoDataFrame(
        {"code": [second, first]},
        geometry=[box(X0, Y0, border, Y0 + ROWS * D), box(border, Y0, X0 + 2 * COLS * D, Y0 + ROWS * D)],
        crs=4490,
    ).to_file(path, engine="pyogrio", driver="GeoJSON")

    result = import_work_cells(session, version, path, code_field="code")

    assert result.assigned == 2 * ROWS * COLS and len(result.split) == ROWS
    found = members(session, version.id)
    assert {cell_code(0, r, 3) for r in range(ROWS)} <= found[first]
    assert found[second] == {cell_code(0, r, c) for r in range(ROWS) for c in range(3)}
