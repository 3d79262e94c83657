"""Importing buildings: every format and encoding, bad rows, replacing, waiting for an edition, real OSM buildings."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from geoalchemy2.shape import from_shape, to_shape
from openpyxl import Workbook
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, insert, select

from gridkit.errors import ValidationError
from gridkit.io.subjects import import_buildings, import_entities, import_residents, parse_mapping
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition, Building, Resident
from tests.data.make_subject_files import BUILDINGS, centre, citizen_id
from tests.factories import PUBLISHED_AT, make_base_grid
from tests.factories_import_subjects import (
    BUND,
    DATA,
    KEY,
    buildings,
    by_kind,
    cell_code,
    cell_of,
    grid,  # noqa: F401 - fixtures used by name
    refused,
    write_csv,
)

# -- buildings: every format -----------------------------------------------------------------------------


def test_buildings_csv_utf8_are_imported_and_assigned(session, grid):
    result = buildings(session)
    assert (result.created, result.updated, result.assigned, result.unassigned) == (6, 0, 5, 1)
    # B006 lies outside the grid: kept, listed with its CSV line, never dropped.
    assert result.unassigned_rows == [{"row": 7, "id": result.unassigned_rows[0]["id"], "code": "B006"}]
    assert session.scalar(select(Building.base_cell_id).where(Building.code == "B006")) is None
    for code, address, floors, (lon, lat) in BUILDINGS[:5]:
        building = session.scalar(select(Building).where(Building.code == code))
        assert (building.address, building.floors) == (address, floors)
        assert to_shape(building.geom).equals_exact(shapely.Point(lon, lat), 1e-9)
        assert building.footprint is None
    assert cell_of(session, Building, code="B001") == cell_code(0, 0)
    assert cell_of(session, Building, code="B005") == cell_code(5, 2)
    summary = result.summary()
    assert summary["kind"] == "buildings" and summary["rows"] == 6 and summary["unassigned_rows"] == [7]
    assert summary["encoding"] == "UTF-8" and summary["crs"].startswith("EPSG:4490")


def test_buildings_csv_gbk_without_bom_read_as_gb18030(session, grid):
    result = import_buildings(session, DATA / "buildings_gbk.csv")
    assert result.created == 3 and result.source["encoding"] == "GB18030"
    assert "encoding" in [n["kind"] for n in result.notes]
    assert session.scalar(select(Building.address).where(Building.code == "G003")) == "园岭街道鹏益花园10栋"
    assert cell_of(session, Building, code="G003") == cell_code(4, 2)


def test_buildings_csv_with_bom_and_chinese_column_names(session, grid):
    result = import_buildings(session, DATA / "buildings_bom.csv")
    assert result.created == 2 and result.source["encoding"] == "UTF-8-SIG"
    aliases = {n["field"] for n in result.notes if n["kind"] == "field_alias"}
    assert aliases == {"编码", "地址", "层数", "经度", "纬度"}
    assert session.scalar(select(Building.floors).where(Building.code == "U002")) == 9


def test_buildings_forced_wrong_encoding_is_refused_per_line(session, grid):
    error = refused(session, import_buildings, DATA / "buildings_gbk.csv", encoding="utf-8")
    undecodable = by_kind(error)["undecodable_text"]
    assert [p["index"] for p in undecodable] == [2, 3, 4]
    assert "line 2" in undecodable[0]["message"] and "--encoding" in undecodable[0]["message"]


def test_file_mixing_utf8_and_gbk_is_refused(session, grid, tmp_path):
    lon, lat = centre(0)
    path = tmp_path / "mixed.csv"
    path.write_bytes(
        b"code,address,lon,lat\n"
        + f"M1,\u4e00\u53f7\u697c,{lon},{lat}\n".encode()
        + f"M2,\u4e8c\u53f7\u697c,{lon},{lat}\n".encode("gbk")
    )
    error = refused(session, import_buildings, path)
    assert [p["kind"] for p in error.problems] == ["mixed_encoding"]
    assert "lines 2 are UTF-8 and lines 3 are not" in error.problems[0]["message"]


def test_mapping_overrides_default_columns(session, grid):
    error = refused(session, import_buildings, DATA / "buildings_custom.csv")
    problem = by_kind(error)["missing_field"][0]
    assert "楼号, 门牌地址, 楼层, X坐标, Y坐标" in problem["message"] and "--map code=" in problem["message"]
    result = import_buildings(
        session,
        DATA / "buildings_custom.csv",
        mapping=parse_mapping(["code=楼号", "address=门牌地址", "floors=楼层", "lon=X坐标", "lat=Y坐标"]),
    )
    assert result.created == 2 and result.assigned == 2
    assert session.scalar(select(Building.address).where(Building.code == "C002")) == "红岭中路1002号"
    assert cell_of(session, Building, code="C002") == cell_code(3, 2)


def test_unknown_mapping_field_and_missing_column_are_one_clear_error(session, grid):
    error = refused(session, import_buildings, DATA / "buildings.csv", mapping={"storeys": "floors", "address": "addr"})
    found = by_kind(error)
    assert "buildings have no field 'storeys'" in found["unknown_field"][0]["message"]
    assert "code, address, floors, lon, lat" in found["unknown_field"][0]["message"]
    assert "has no column 'addr'" in found["missing_field"][0]["message"]
    assert "Its columns are: code, address, floors, lon, lat." in found["missing_field"][0]["message"]
    with pytest.raises(ValidationError, match="FIELD=COLUMN"):
        parse_mapping(["code"])


def test_gcj02_points_are_converted(session, grid):
    # Without --src-crs the Amap points are ~500 m off: outside this small grid.
    shifted = import_buildings(session, DATA / "buildings_gcj02.csv")
    assert (shifted.assigned, shifted.unassigned) == (0, 2)
    session.rollback()
    make_base_grid(session, rows=3, cols=3, communities=2)
    result = import_buildings(session, DATA / "buildings_gcj02.csv", src_crs="gcj02")
    assert (result.assigned, result.unassigned) == (2, 0)
    assert "gcj02" in [n["kind"] for n in result.notes]
    point = to_shape(session.scalar(select(Building.geom).where(Building.code == "J001")))
    assert abs(point.x - centre(1, 2)[0]) < 1e-6 and abs(point.y - centre(1, 2)[1]) < 1e-6
    assert cell_of(session, Building, code="J002") == cell_code(5, 0)


def test_projected_src_crs_for_xy_columns(session, grid, tmp_path):
    to_gk = pyproj.Transformer.from_crs(4490, 4547, always_xy=True)
    x, y = to_gk.transform(*centre(4, 1))
    path = write_csv(tmp_path / "gk.csv", ["code", "x", "y"], [["K001", f"{x:.3f}", f"{y:.3f}"]])
    result = import_buildings(session, path, src_crs="EPSG:4547")
    assert result.assigned == 1 and result.source["crs"].startswith("EPSG:4547")
    assert cell_of(session, Building, code="K001") == cell_code(4, 1)
    # x and y written the wrong way round are recognised as swapped in a projected CRS too.
    swapped = write_csv(tmp_path / "gk_swapped.csv", ["code", "x", "y"], [["K002", f"{y:.3f}", f"{x:.3f}"]])
    error = refused(session, import_buildings, swapped, src_crs="EPSG:4547")
    assert [p["kind"] for p in error.problems] == ["axes_swapped"]


def test_buildings_geojson_points(session, grid):
    result = import_buildings(session, DATA / "buildings_points.geojson")
    assert (result.created, result.assigned, result.unassigned) == (3, 2, 1)
    assert result.unassigned_rows[0]["row"] == 2 and result.unassigned_rows[0]["code"] == "P003"  # feature 2
    assert session.scalar(select(Building.floors).where(Building.code == "P002")) is None
    assert cell_of(session, Building, code="P002") == cell_code(5, 1)


def test_buildings_geojson_footprints_go_to_the_cell_holding_most(session, grid):
    result = import_buildings(session, DATA / "buildings_footprints.geojson")
    assert (result.created, result.assigned) == (3, 3) and result.extra["footprints"] == 3
    assert "crs_default" in [n["kind"] for n in result.notes]  # no crs member: WGS 84 by RFC 7946
    f002 = session.scalar(select(Building).where(Building.code == "F002"))
    footprint = to_shape(f002.footprint)
    assert isinstance(footprint, MultiPolygon) and footprint.intersects(
        to_shape(session.scalar(select(BaseCell.geom).where(BaseCell.code == cell_code(3, 1))))
    )
    assert cell_of(session, Building, code="F002") == cell_code(2, 1)  # 0.55 of it there, 0.05 next door
    assert to_shape(f002.geom).within(footprint)  # its location: a point inside


def test_buildings_shapefile_footprints(session, grid):
    result = import_buildings(session, DATA / "buildings_shp" / "buildings.shp")
    assert (result.created, result.assigned) == (2, 2) and result.source["driver"] == "ESRI Shapefile"
    assert session.scalar(select(Building.address).where(Building.code == "S002")) == "园岭街道形2号"
    assert cell_of(session, Building, code="S001") == cell_code(1, 1)
    assert cell_of(session, Building, code="S002") == cell_code(5, 2)


def test_buildings_xlsx_and_sheet_choice(session, grid, tmp_path):
    workbook = Workbook()
    workbook.active.title = "说明"
    workbook.active.append(["本表为楼栋清单"])
    sheet = workbook.create_sheet("楼栋")
    sheet.append(["code", "address", "floors", "lon", "lat"])
    sheet.append(["X001", "表格路1号", 5, *centre(0, 1)])
    sheet.append([None, None, None, None, None])  # an empty row is skipped, numbering kept
    sheet.append(["X002", "表格路2号", 6.0, *centre(1, 1)])
    path = tmp_path / "buildings.xlsx"
    workbook.save(path)
    error = refused(session, import_buildings, path)  # the first sheet has no code column
    assert "missing_field" in by_kind(error)
    result = import_buildings(session, path, sheet="楼栋")
    assert (result.created, result.assigned) == (2, 2) and result.source["sheet"] == "楼栋"
    assert session.scalar(select(Building.floors).where(Building.code == "X002")) == 6
    error = refused(session, import_buildings, path, sheet="Sheet9")
    assert "its sheets are: 说明, 楼栋" in error.problems[0]["message"]


def test_building_row_problems_are_all_reported(session, grid, tmp_path):
    lon, lat = centre(0)
    path = write_csv(
        tmp_path / "bad.csv",
        ["code", "address", "floors", "lon", "lat"],
        [
            ["B1", "ok", "3", lon, lat],
            ["B1", "again", "3", lon, lat],  # line 3: duplicate code
            ["", "no code", "3", lon, lat],  # line 4
            ["B4", "no coordinates", "", "", ""],  # line 5
            ["B5", "swapped", "", lat, lon],  # line 6
            ["B6", "Paris", "", 2.35, 48.85],  # line 7
            ["B7", "text", "", "abc", lat],  # line 8
            ["B8", "floors", "三层", lon, lat],  # line 9
            ["B9", "only lon", "", lon, ""],  # line 10
            ["B" * 41, "too long", "", lon, lat],  # line 11
        ],
    )
    error = refused(session, import_buildings, path)
    got = [(p["index"], p["kind"], p["field"]) for p in error.problems]
    # Sorted by line, as the user fixes them.
    assert got == [
        (3, "duplicate_code", "code"),
        (4, "missing_value", "code"),
        (5, "missing_coordinates", "lon"),
        (6, "axes_swapped", "lon"),
        (7, "outside_china", "lon"),
        (8, "bad_coordinate", "lon"),
        (9, "bad_number", "floors"),
        (10, "missing_coordinates", "lat"),
        (11, "too_long", "code"),
    ]
    assert "first at line 2" in error.problems[0]["message"]
    assert error.message.startswith("bad.csv: 9 problems, nothing was imported.")


def test_existing_building_codes_are_refused_unless_replace(session, grid, tmp_path):
    buildings(session)
    error = refused(session, import_buildings, DATA / "buildings.csv")
    assert [p["kind"] for p in error.problems] == ["exists"] * 6
    assert "--replace" in error.problems[0]["message"]
    # Replacing moves B006 into the grid and re-assigns its residents with it.
    lon, lat = centre(3, 1)
    moved = write_csv(tmp_path / "moved.csv", ["code", "address", "lon", "lat"], [["B006", "搬进来了", lon, lat]])
    path = write_csv(
        tmp_path / "r.csv",
        ["id_number", "name", "population_type", "building_code"],
        [[citizen_id(90), "住户", "registered", "B006"]],
    )
    import_residents(session, path, pii_key=KEY)
    assert cell_of(session, Resident, name="住户") is None
    result = import_buildings(session, moved, replace=True)
    assert (result.created, result.updated, result.assigned) == (0, 1, 1)
    building = session.scalar(select(Building).where(Building.code == "B006"))
    assert (building.address, building.floors) == ("搬进来了", 2)  # the file has no floors column: kept
    assert cell_of(session, Resident, name="住户") == cell_code(3, 1)


def test_subjects_before_any_edition_wait_unassigned_and_publishing_assigns_them(session, tmp_path):
    # A new city: buildings and residents first, the base grid after (issue 13).
    draft = make_base_grid(session, communities=2, status="draft")
    result = buildings(session)
    assert (result.created, result.assigned, result.unassigned) == (6, 0, 6)
    assert result.summary()["unassigned_rows"] == [2, 3, 4, 5, 6, 7]
    residents = import_residents(session, DATA / "residents.csv", pii_key=KEY)
    entities = import_entities(session, DATA / "entities.csv")
    assert residents.assigned == entities.assigned == 0
    assert session.scalar(select(func.count()).select_from(Resident).where(Resident.base_cell_id.isnot(None))) == 0
    from gridkit.grids.editions import publish_edition

    published = publish_edition(session, draft)
    assert published["subjects"]["buildings"]["assigned"] == 5
    assert published["subjects"]["residents"]["assigned"] == 5
    assert cell_of(session, Building, code="B001") == cell_code(0, 0)
    assert cell_of(session, Resident, name="王小明") == cell_code(0, 0)  # through its building
    assert cell_of(session, Resident, name="钱多多") == cell_code(4, 1)  # by its own point
    assert published["subjects"]["entities"]["assigned"] == 2


# -- real buildings: Shanghai, the Bund and Lujiazui (OSM) ----------------------------------------------------


def make_bund_grid(session) -> tuple[BaseGridEdition, list]:
    """Make 上海市 › 黄浦区 › one street › 4 communities (2×2) over most of the Bund data's bbox, with 0.002° cells.

    The grid stops 0.004° short of the bbox's east edge so that some buildings lie outside it.
    Returns the edition and the cells' (code, polygon) list.
    """
    x0, y0, x1, y1 = 121.4800, 31.2260, 121.5170, 31.2520
    step = 0.002
    nx, ny = round((x1 - x0) / step), round((y1 - y0) / step)
    x1, y1 = x0 + nx * step, y0 + ny * step
    outline = MultiPolygon([box(x0, y0, x1, y1)])
    session.add_all(
        [
            AdminUnit(code="310000", name="上海市", level="city", geom=from_shape(outline, srid=SRID)),
            AdminUnit(
                code="310101",
                name="黄浦区",
                level="district",
                parent_code="310000",
                geom=from_shape(outline, srid=SRID),
            ),
            AdminUnit(
                code="310101001",
                name="外滩街道",
                level="street",
                parent_code="310101",
                geom=from_shape(outline, srid=SRID),
            ),
        ]
    )
    edition = BaseGridEdition(name="外滩测试网格", status="published", published_at=PUBLISHED_AT)
    session.add(edition)
    session.flush()
    half_x, half_y = nx // 2, ny // 2
    cells, rows = [], []
    for k, (cols, rows_) in enumerate(
        [
            ((0, half_x), (0, half_y)),
            ((half_x, nx), (0, half_y)),
            ((0, half_x), (half_y, ny)),
            ((half_x, nx), (half_y, ny)),
        ],
        start=1,
    ):
        community = f"310101001{k:03d}"
        geom = box(x0 + cols[0] * step, y0 + rows_[0] * step, x0 + cols[1] * step, y0 + rows_[1] * step)
        session.add(
            AdminUnit(
                code=community,
                name=f"外滩{k}社区",
                level="community",
                parent_code="310101001",
                geom=from_shape(MultiPolygon([geom]), srid=SRID),
            )
        )
        session.flush()
        seq = 0
        for j in reversed(range(*rows_)):
            for i in range(*cols):
                seq += 1
                cell = box(x0 + i * step, y0 + j * step, x0 + (i + 1) * step, y0 + (j + 1) * step)
                code = f"{community}{seq:03d}"
                cells.append((code, cell))
                rows.append(
                    {
                        "edition_id": edition.id,
                        "code": code,
                        "community_code": community,
                        "geom": from_shape(cell, srid=SRID),
                    }
                )
    session.execute(insert(BaseCell), rows)
    return edition, cells


def test_real_bund_buildings_each_get_one_cell_or_are_listed(session):
    _, cells = make_bund_grid(session)
    started = time.perf_counter()
    result = import_buildings(session, BUND, mapping={"code": "osm_id", "address": "name"})
    elapsed = time.perf_counter() - started
    frame = gpd.read_file(BUND)
    assert result.created == len(frame) == 1450
    assert result.assigned + result.unassigned == 1450
    assert result.unassigned > 0 and result.assigned > 1000
    assert elapsed < 30, f"importing 1450 footprints took {elapsed:.1f} s"
    stored = {
        code: (cell, to_shape(fp))
        for code, cell, fp in session.execute(
            select(Building.code, BaseCell.code, Building.footprint).outerjoin(
                BaseCell, BaseCell.id == Building.base_cell_id
            )
        )
    }
    assert len(stored) == 1450
    geoms = np.array([g for _, g in cells], dtype=object)
    codes = [c for c, _ in cells]
    tree = shapely.STRtree(geoms)
    unassigned_codes = {r["code"] for r in result.unassigned_rows}
    assert len(unassigned_codes) == result.unassigned
    for code, (cell, footprint) in stored.items():
        hits = tree.query(footprint, predicate="intersects")
        if cell is None:
            # Listed, and truly outside every cell (touching an edge at most).
            assert code in unassigned_codes
            assert all(shapely.intersection(geoms[h], footprint).area == 0 for h in hits)
            continue
        # Exactly one cell: the one holding the largest part of the footprint (ties: smallest code).
        areas = {codes[h]: shapely.intersection(geoms[h], footprint).area for h in hits}
        best = max(areas.values())
        assert areas[cell] >= best * (1 - 1e-6), (code, cell, areas)
    rows = {r["row"] for r in result.unassigned_rows}
    assert rows <= set(int(i) for i in frame.index)


@pytest.mark.parametrize("n", [100_000])
def test_bulk_import_of_many_rows_takes_seconds(session, grid, tmp_path, n):
    rng = np.random.default_rng(5)
    lon = np.round(114.05 + rng.random(n) * 0.006, 7)
    lat = np.round(22.53 + rng.random(n) * 0.003, 7)
    path = tmp_path / "many.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("code,address,floors,lon,lat\n")
        fh.writelines(f"M{i:06d},批量路{i}号,{i % 30 + 1},{x},{y}\n" for i, (x, y) in enumerate(zip(lon, lat)))
    started = time.perf_counter()
    result = import_buildings(session, path)
    elapsed = time.perf_counter() - started
    assert result.created == n and result.assigned + result.unassigned == n
    assert elapsed < 60, f"importing {n} buildings took {elapsed:.1f} s"
