"""Grids drawn in a projected CRS (EPSG:4547, CGCS2000 3° Gauss-Kruger 114°E) import and validate clean.

Real-shaped data: admin units and base cells that tile exactly in EPSG:4547, with T-junctions (a
neighbour's vertex in the middle of a ~950 m edge, a community's corner in the middle of its
street's edge), written as shapefiles with their .prj, imported through the importers and validated.
Without densifying before reprojection these overlap by ~1.5 cm slivers of several m² each.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pyproj
import pytest
import shapely
from shapely import wkt
from shapely.geometry import box
from sqlalchemy import select

from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.grids.editions import publish_edition
from gridkit.grids.import_admin import import_admin_units
from gridkit.grids.import_cells import import_base_cells
from gridkit.grids.tolerance import DENSIFY_M, LocalPlane, densify_projected, snap_together
from gridkit.grids.validate import validate_base_grid
from gridkit.grids.validate_admin import validate_admin_units
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import EditionState

# 30 km east of the central meridian (false easting 500 km), about 22.5°N: Shenzhen.
X, Y = 530_000.0, 2_490_000.0
EDGE = 950.0
STREET = "440304001"
C1, C2 = f"{STREET}001", f"{STREET}002"
GK = "EPSG:4547"


def write_layer(path: Path, records: list[dict], crs: str = GK) -> Path:
    """Write records (with "geometry") as a shapefile with its .prj, UTF-8 with a .cpg; return the .shp path."""
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs=crs)
    frame.to_file(path, driver="ESRI Shapefile", encoding="utf-8")
    assert path.with_suffix(".prj").exists()
    return path


def rect(x0: float, y0: float, x1: float, y1: float):
    """Return a rectangle in metres relative to (X, Y), with only its four corners as vertices."""
    return box(X + x0, Y + y0, X + x1, Y + y1)


def admin_files(tmp_path: Path, *, community_shift: float = 0.0) -> tuple[Path, Path]:
    """Write city/district/street (one rectangle 3800 × 1900 m, four corners) and two communities.

    The communities meet at x = 1900, a vertex in the middle of the street's long edges.
    `community_shift` pushes community 2's east edge out of its street by that many metres.
    """
    outline = rect(0, 0, 2 * 2 * EDGE, 2 * EDGE)
    upper = write_layer(
        tmp_path / "upper.shp",
        [
            {"code": "440300", "name": "深圳市", "geometry": outline},
            {"code": "440304", "name": "福田区", "geometry": outline},
            {"code": STREET, "name": "园岭街道", "geometry": outline},
        ],
    )
    communities = write_layer(
        tmp_path / "communities.shp",
        [
            {"code": C1, "name": "一社区", "households": 1200, "geometry": rect(0, 0, 2 * EDGE, 2 * EDGE)},
            {
                "code": C2,
                "name": "二社区",
                "households": 800,
                "geometry": rect(2 * EDGE, 0, 4 * EDGE + community_shift, 2 * EDGE),
            },
        ],
    )
    return upper, communities


def brick_cells(community: str, x_offset: float) -> list[dict]:
    """Return the cells of one community (1900 × 1900 m) in two rows laid like bricks.

    North row: two 950 m cells; south row: 475, 950, 475 m. Every vertex where two rows meet lies
    in the middle of an edge of the other row (T-junctions), and the cells' outer vertices lie in
    the middle of the community's edges.
    """
    rows = [
        (EDGE, [(0, EDGE), (EDGE, 2 * EDGE)]),
        (0.0, [(0, EDGE / 2), (EDGE / 2, 1.5 * EDGE), (1.5 * EDGE, 2 * EDGE)]),
    ]
    cells, seq = [], 0
    for y0, spans in rows:
        for a, b in spans:
            seq += 1
            cells.append(
                {
                    "code": f"{community}{seq:03d}",
                    "name": f"{community[-3:]}-{seq}号网格",
                    "owner": "测绘院",
                    "area_ha": round((b - a) * EDGE / 10_000, 2),
                    "geometry": rect(x_offset + a, y0, x_offset + b, y0 + EDGE),
                }
            )
    return cells


def all_cells() -> list[dict]:
    return brick_cells(C1, 0.0) + brick_cells(C2, 2 * EDGE)


def import_admin(session, tmp_path, settings=None, **kwargs):
    upper, communities = admin_files(tmp_path, **kwargs)
    import_admin_units(session, upper, level=None, code_field="code", name_field="name", settings=settings)
    return import_admin_units(
        session, communities, level="community", code_field="code", name_field="name", settings=settings
    )


def test_densify_only_projected():
    line = shapely.LineString([(0, 0), (950, 0)])
    (dense,) = densify_projected([line], pyproj.CRS(GK))
    assert len(dense.coords) == 11 and max(b[0] - a[0] for a, b in zip(dense.coords, dense.coords[1:])) <= DENSIFY_M
    (same,) = densify_projected([line], pyproj.CRS("EPSG:4490"))
    assert same.equals_exact(line, 0)


def test_clean_grid_drawn_in_4547_validates_clean_and_publishes(session, tmp_path):
    result = import_admin(session, tmp_path)
    assert result.created == 2 and any(n["kind"] == "densified" for n in result.notes)
    assert validate_admin_units(session) == []

    path = write_layer(tmp_path / "cells.shp", all_cells())
    result = import_base_cells(session, path, code_field="code", name_field="name", edition="GK")
    assert result.created == 10
    # Nothing was wider than noise, and nothing was left after snapping.
    assert not [n for n in result.notes if n["kind"] == "snapped" or n["kind"].startswith("thin_")]
    edition = session.get(BaseGridEdition, result.edition_id)
    notes: list = []
    assert validate_base_grid(session, edition, notes=notes) == []
    assert notes == []
    published = publish_edition(session, edition)
    assert published["edition"] == "GK" and edition.status == EditionState.PUBLISHED

    cell = session.scalar(select(BaseCell).where(BaseCell.code == f"{C1}001"))
    assert cell.name == "001-1号网格"
    assert cell.attributes == {"owner": "测绘院", "area_ha": 90.25}
    community = session.get(AdminUnit, C2)
    assert community.attributes == {"households": 800}


def test_without_densifying_the_same_grid_overlaps(session, tmp_path):
    """The control: the slivers the issue saw are real when edges are reprojected by their ends only."""
    import_admin(session, tmp_path)
    frame = gpd.GeoDataFrame(all_cells(), geometry="geometry", crs=GK).to_crs(4490)
    path = tmp_path / "cells_4490.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = import_base_cells(
        session, path, code_field="code", edition="ends only", settings=Settings(sliver_tolerance_m=0.0)
    )
    edition = session.get(BaseGridEdition, result.edition_id)
    problems = validate_base_grid(session, edition, tolerance_m=0.0)
    assert {p.type for p in problems} & {"overlap", "gap", "crosses_community"}
    assert all(p.width_m < 0.05 for p in problems if p.width_m is not None)
    # With the default tolerance they are noise: notes, not errors.
    notes: list = []
    assert validate_base_grid(session, edition, notes=notes) == []
    assert notes and all(n.key == "geometry.validate.within_tolerance" for n in notes)
    assert "reprojection noise" in notes[0].message and "投影转换误差" in notes[0].render("zh-CN")


def test_same_grid_in_lon_lat_is_snapped_on_import(session, tmp_path):
    """Reprojected elsewhere without densifying (a lon/lat file): the import snaps the slivers away."""
    import_admin(session, tmp_path)
    frame = gpd.GeoDataFrame(all_cells(), geometry="geometry", crs=GK).to_crs(4490)
    path = tmp_path / "cells_4490.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = import_base_cells(session, path, code_field="code", edition="lonlat")
    edition = session.get(BaseGridEdition, result.edition_id)
    notes: list = []
    assert validate_base_grid(session, edition, notes=notes, tolerance_m=0.0) == []
    kinds = {n["kind"] for n in result.notes}
    assert "snapped" in kinds or "vertices_shared" in kinds


def test_noise_of_two_centimetres_is_snapped_and_noted(session, tmp_path):
    import_admin(session, tmp_path)
    cells = all_cells()
    # The first cell's east edge reaches 2 cm into its neighbour.
    cells[0]["geometry"] = rect(0, EDGE, EDGE + 0.02, 2 * EDGE)
    path = write_layer(tmp_path / "noisy.shp", cells)
    result = import_base_cells(session, path, code_field="code", edition="noisy")
    snapped = {n["code"]: n["message"] for n in result.notes if n["kind"] == "snapped"}
    # File order decides: the first cell stays, the cells after it meet its edge.
    assert "2.0 cm" in snapped[f"{C1}002"] and f"cell {C1}001" in snapped[f"{C1}002"]
    assert f"{C1}001" not in snapped
    edition = session.get(BaseGridEdition, result.edition_id)
    assert validate_base_grid(session, edition, tolerance_m=0.0) == []


def test_one_metre_overlap_is_still_an_error_with_its_location(session, tmp_path):
    import_admin(session, tmp_path)
    cells = all_cells()
    cells[0]["geometry"] = rect(0, EDGE, EDGE + 1.0, 2 * EDGE)
    path = write_layer(tmp_path / "overlap.shp", cells)
    result = import_base_cells(session, path, code_field="code", edition="overlap")
    assert not [n for n in result.notes if n["kind"] == "snapped"]
    edition = session.get(BaseGridEdition, result.edition_id)
    problems = validate_base_grid(session, edition)
    overlaps = [p for p in problems if p.type == "overlap"]
    assert [p.codes for p in overlaps] == [[f"{C1}001", f"{C1}002"]]
    (overlap,) = overlaps
    assert overlap.area_m2 == pytest.approx(EDGE, rel=0.01) and overlap.width_m == pytest.approx(1.0, rel=0.01)
    where = gpd.GeoSeries([wkt.loads(overlap.location)], crs=4490).to_crs(GK).iloc[0]
    assert where.centroid.distance(rect(EDGE, EDGE, EDGE + 1, 2 * EDGE).centroid) < 0.05
    assert "950.0 m²" in overlap.message and "重叠" in overlap.render("zh-CN")
    with pytest.raises(ValidationError, match="1 validation problems"):
        publish_edition(session, edition)


def test_community_drawn_in_4547_inside_its_street(session, tmp_path):
    """The community's corners lie in the middle of the street's edges; 3 cm out is noise, 2 m is not."""
    import_admin(session, tmp_path, community_shift=0.03)
    assert validate_admin_units(session, tolerance_m=0.0) == []
    assert session.get(AdminUnit, C2) is not None


def test_community_two_metres_outside_its_street_is_an_error(session, tmp_path):
    result = import_admin(session, tmp_path, community_shift=2.0)
    assert not [n for n in result.notes if n["kind"] == "snapped"]
    problems = validate_admin_units(session)
    (outside,) = [p for p in problems if p.type == "outside_parent"]
    assert outside.codes == [C2, STREET] and outside.width_m == pytest.approx(2.0, rel=0.01)
    assert outside.area_m2 == pytest.approx(2 * 2 * EDGE, rel=0.01)


def test_snap_together_joins_t_junctions_without_moving_anything():
    a = box(0, 0, 2, 1)
    b, c = box(0, 1, 1, 2), box(1, 1, 2, 2)  # their shared vertex (1, 1) lies in the middle of a's top edge
    plane = LocalPlane(114.0, 22.5)
    geoms = plane.to_degrees([a, b, c])
    snapped, changed = snap_together(geoms, tolerance_m=0.05)
    assert [s.index for s in changed] == [0] and changed[0].moved_m < 1e-6
    assert len(snapped[0].exterior.coords) == 6  # (1, 1) inserted into a's top edge
    assert snapped[1].equals_exact(geoms[1], 0) and snapped[2].equals_exact(geoms[2], 0)

    def vertices(g):
        return set(map(tuple, shapely.get_coordinates(g)))

    # (0, 1) and the inserted (1, 1) are bit-identical to b's, not just nearly equal
    assert len(vertices(snapped[0]) & vertices(snapped[1])) == 2
    assert len(vertices(snapped[0]) & vertices(snapped[2])) == 2


def test_settings_come_from_the_caller(session, tmp_path):
    """Settings come from the caller: with a tolerance of zero the same 2 cm noise is not snapped."""
    import_admin(session, tmp_path)
    cells = all_cells()
    cells[0]["geometry"] = rect(0, EDGE, EDGE + 0.02, 2 * EDGE)
    path = write_layer(tmp_path / "noisy.shp", cells)
    result = import_base_cells(
        session, path, code_field="code", edition="strict", settings=Settings(sliver_tolerance_m=0.0)
    )
    assert not [n for n in result.notes if n["kind"] == "snapped"]
    edition = session.get(BaseGridEdition, result.edition_id)
    strict = validate_base_grid(session, edition, tolerance_m=0.0)
    assert [p.codes for p in strict if p.type == "overlap"] == [[f"{C1}001", f"{C1}002"]]
    notes: list = []
    assert validate_base_grid(session, edition, notes=notes) == []
    assert [n.codes for n in notes if n.type == "overlap"] == [[f"{C1}001", f"{C1}002"]]


def test_cli_imports_a_4547_grid_with_names_validates_clean_and_refuses_a_damaged_zip(fresh_settings, tmp_path):
    """The whole path a city's IT staff takes: shapefiles with .prj in EPSG:4547 through the CLI."""
    from click.testing import CliRunner
    from sqlalchemy.orm import Session

    from gridkit import db
    from gridkit.cli import main

    def run(*args):
        return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(
            main, list(args), obj=fresh_settings, catch_exceptions=False
        )

    upper, communities = admin_files(tmp_path)
    for path, level in ((upper, None), (communities, "community")):
        args = ["admin", "import", str(path), "--code-field", "code", "--name-field", "name"]
        result = run(*args, *(["--level", level] if level else []))
        assert result.exit_code == 0, result.output
    cells = write_layer(tmp_path / "cells.shp", all_cells())
    result = run(
        "basegrid", "import", str(cells), "--code-field", "code", "--name-field", "name", "--edition", "GK", "--json"
    )
    assert result.exit_code == 0, result.output
    assert run("admin", "validate").exit_code == 0
    validated = run("basegrid", "validate", "--edition", "GK")
    assert validated.exit_code == 0, validated.output
    assert run("basegrid", "publish", "--edition", "GK").exit_code == 0
    with Session(db.engine_for(fresh_settings)) as session:
        cell = session.scalar(select(BaseCell).where(BaseCell.code == f"{C2}005"))
        assert cell.name == "002-5号网格" and cell.attributes["owner"] == "测绘院"

    damaged = Path(__file__).resolve().parent / "data" / "bad" / "damaged_member.zip"
    result = run("basegrid", "import", str(damaged), "--code-field", "code", "--edition", "broken")
    assert result.exit_code == 1
    assert "member 'cells.dbf' is damaged" in result.output and "Report:" in result.output
    zh = CliRunner(env={"GRIDKIT_LANG": "zh-CN"}).invoke(
        main, ["basegrid", "import", str(damaged), "--code-field", "code"], obj=fresh_settings
    )
    assert zh.exit_code == 1 and "已损坏" in zh.output
