"""Importing buildings, residents, legal entities and coordinators: every format, bad input, real Shanghai buildings."""

from __future__ import annotations

import csv
import json
import time
import warnings
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely
from geoalchemy2.shape import from_shape, to_shape
from openpyxl import Workbook
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, insert, select, text

from gridkit.errors import ValidationError
from gridkit.grids.importer import ImportRefused
from gridkit.grids.work import add_department, list_coordinators, publish, set_members, start_draft
from gridkit.io.report import ADVICE
from gridkit.io.subjects import (
    FIELDS,
    SUBJECT_ADVICE,
    SubjectImportRefused,
    import_buildings,
    import_coordinators,
    import_entities,
    import_residents,
    import_subjects,
    parse_mapping,
)
from gridkit.models import (
    SRID,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Building,
    Coordinator,
    CoordinatorAssignment,
    LegalEntity,
    Resident,
)
from gridkit.pii import hash_citizen_id
from gridkit.subjects import subject_stats
from tests.conftest import SHARED_DATA
from tests.data.make_subject_files import (
    BAD_RESIDENT_LINES,
    BUILDINGS,
    COMMUNITIES,
    DEPARTMENTS,
    ENTITIES,
    RESIDENTS,
    centre,
    citizen_id,
    credit_code,
    phone,
    work_cell,
)
from tests.factories import PUBLISHED_AT, make_base_grid

DATA = Path(__file__).resolve().parent / "data" / "subjects"
BUND = SHARED_DATA / "shanghai-bund-osm" / "buildings_polygons.geojson"
KEY = b"test-personal-data-key"
PROBLEM_KEYS = {"index", "code", "field", "kind", "message"}


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def grid(session):
    """6×3 base cells in two communities (see tests/data/make_subject_files.py)."""
    return make_base_grid(session, rows=3, cols=3, communities=2)


@pytest.fixture
def work_grids(session, grid):
    """Departments 100001 and 200001, each with one published work cell per community."""
    for dept, name in DEPARTMENTS:
        add_department(session, dept, name)
        draft = start_draft(session, dept)
        for i, community in enumerate(COMMUNITIES, start=1):
            set_members(session, draft, work_cell(dept, i), [f"{community}{seq:03d}" for seq in range(1, 10)])
        publish(session, draft)
    return grid


def cell_code(col: int, row: int) -> str:
    """Return the code of base cell (col 0-5 west→east, row 0-2 south→north) of the `grid` fixture."""
    community, c = divmod(col, 3)
    return f"{COMMUNITIES[community]}{(2 - row) * 3 + c + 1:03d}"


MODELS = (Building, Resident, LegalEntity, Coordinator, CoordinatorAssignment)


def counts(session) -> tuple[int, ...]:
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in MODELS)


def refused(session, function, *args, **kwargs) -> SubjectImportRefused:
    """Run an import that must be refused; check it wrote nothing and its problems have the standard shape."""
    before = counts(session)
    with pytest.raises(SubjectImportRefused) as info:
        function(session, *args, **kwargs)
    session.flush()
    assert counts(session) == before, "a refused import wrote something"
    error = info.value
    assert isinstance(error, ImportRefused) and isinstance(error, ValidationError)
    assert error.problems and all(set(p) - {"key", "params"} == PROBLEM_KEYS for p in error.problems)
    return error


def by_kind(error) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for p in error.problems:
        found.setdefault(p["kind"], []).append(p)
    return found


def cell_of(session, model, **where) -> str | None:
    """Return the base cell code of the one subject of `model` whose columns equal `where` (None: unassigned)."""
    query = (
        select(BaseCell.code)
        .select_from(model)
        .outerjoin(BaseCell, BaseCell.id == model.base_cell_id)
        .where(*(getattr(model, k) == v for k, v in where.items()))
    )
    return session.scalar(query)


def write_csv(path: Path, header: list[str], rows: list[list], encoding: str = "utf-8") -> Path:
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def buildings(session):
    """Import tests/data/subjects/buildings.csv (B001-B006)."""
    return import_buildings(session, DATA / "buildings.csv")


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
    assert (building.address, building.floors) == ("搬进来了", None)
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


# -- residents -------------------------------------------------------------------------------------------


def test_residents_csv_store_only_hash_and_mask(session, grid):
    buildings(session)
    result = import_residents(session, DATA / "residents.csv", pii_key=KEY)
    assert (result.created, result.assigned, result.unassigned) == (6, 5, 1)
    assert result.extra == {"registered": 3, "floating": 3, "in_buildings": 4}
    assert result.unassigned_rows[0]["row"] == 7 and result.unassigned_rows[0]["code"] == "4403**********0062"
    for number, name, _tel, household, kind, building, point in RESIDENTS:
        resident = session.scalar(select(Resident).where(Resident.id_number_hash == hash_citizen_id(KEY, number)))
        assert resident.id_number_masked == number[:4] + "*" * 10 + number[-4:]
        # The birth date (digits 7-14) is kept, for age bands; the ID itself is not.
        assert resident.birth_date == date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
        assert resident.name == name and resident.household == (household or None)
        assert resident.population_type == {"户籍": "registered", "流动": "floating"}.get(kind, kind)
        if building:
            assert cell_of(session, Resident, id=resident.id) == cell_of(session, Building, code=building)
        else:
            assert to_shape(resident.geom).equals_exact(shapely.Point(point), 1e-9)
    assert session.scalar(select(Resident.phone).where(Resident.name == "孙悟")) == "0755-83001234"
    # No citizen ID in clear anywhere in the table.
    dump = json.dumps([list(map(str, r)) for r in session.execute(text("SELECT * FROM resident"))])
    assert not any(number in dump for number, *_ in RESIDENTS)


def test_residents_xlsx(session, grid):
    buildings(session)
    result = import_residents(session, DATA / "residents.xlsx", pii_key=KEY)
    assert (result.created, result.assigned) == (3, 3) and result.source["sheet"] == "名单"
    households = set(session.scalars(select(Resident.household)))
    assert households == {"1001", "1002"}  # Excel numbers as text, without ".0"
    assert session.scalar(select(func.count()).select_from(Resident).where(Resident.population_type == "floating")) == 2
    assert cell_of(session, Resident, name="张无忌") == cell_of(session, Building, code="B004")


def test_residents_attach_by_building_address(session, grid, tmp_path):
    buildings(session)
    import_buildings(
        session,
        write_csv(
            tmp_path / "twin.csv", ["code", "address", "lon", "lat"], [["B007", "园岭街道八卦路5号", *centre(5, 1)]]
        ),
    )
    path = write_csv(
        tmp_path / "r.csv",
        ["id_number", "name", "population_type", "building_address"],
        [
            [citizen_id(61), "甲", "registered", "园岭街道红荔路2号"],
            [citizen_id(62), "乙", "registered", "园岭街道八卦路5号"],  # two buildings have it
            [citizen_id(63), "丙", "registered", "不存在的路1号"],
        ],
    )
    error = refused(session, import_residents, path, pii_key=KEY)
    assert [(p["index"], p["kind"]) for p in error.problems] == [(3, "ambiguous_building"), (4, "unknown_building")]
    write_csv(
        path,
        ["id_number", "name", "population_type", "building_address"],
        [[citizen_id(61), "甲", "registered", "园岭街道红荔路2号"]],
    )
    import_residents(session, path, pii_key=KEY)
    assert cell_of(session, Resident, name="甲") == cell_of(session, Building, code="B002")


def test_resident_rows_each_get_their_specific_error(session, grid):
    buildings(session)
    error = refused(session, import_residents, DATA / "residents_bad.csv", pii_key=KEY)
    got = {(p["index"], p["kind"]) for p in error.problems}
    assert got == {(line, kind) for line, (kind, _) in BAD_RESIDENT_LINES.items()}
    assert len(error.problems) == len(BAD_RESIDENT_LINES)
    found = {p["index"]: p for p in error.problems}
    assert found[3]["code"] == "4403**********0410" and "check character" in found[3]["message"]
    assert "first at line 2" in found[4]["message"]
    assert "B999" in found[5]["message"] and "常住" in found[6]["message"]
    assert "12345" not in found[7]["message"] and "'*****'" in found[7]["message"]  # phones are masked
    assert found[12]["message"].endswith("Its birth date (digits 7-14) is not a real date. Correct it.")
    assert found[9]["code"] == "4403**********0476"  # every problem of a row names its (masked) person
    # Personal data stays masked: no ID number and no birth date in clear anywhere in the problems.
    dump = json.dumps(error.problems, ensure_ascii=False) + error.message
    with (DATA / "residents_bad.csv").open(encoding="utf-8") as fh:
        numbers = [row["id_number"] for row in csv.DictReader(fh)]
    assert not any(number in dump for number in numbers)
    assert "19901332" not in dump and "440304199001" not in dump
    # Residents' coordinates are not quoted either.
    assert "2.3522" not in dump and "114.0505" not in dump


def test_undecodable_line_is_refused_naming_the_line(session, grid):
    buildings(session)
    error = refused(session, import_residents, DATA / "residents_undecodable.csv", pii_key=KEY)
    assert [(p["index"], p["kind"]) for p in error.problems] == [(3, "undecodable_text")]
    assert "line 3" in error.problems[0]["message"] and "ff fe" in error.problems[0]["message"]


def test_duplicate_residents_against_the_database_match_by_keyed_hash(session, grid, tmp_path):
    buildings(session)
    import_residents(session, DATA / "residents.csv", pii_key=KEY)
    # The same person typed with a lower-case x or spaces is the same person.
    number = citizen_id(3, birth="19851231")
    path = write_csv(
        tmp_path / "again.csv",
        ["id_number", "name", "population_type", "building_code"],
        [[f" {number} ", "李大力", "floating", "B003"]],
    )
    error = refused(session, import_residents, path, pii_key=KEY)
    assert [p["kind"] for p in error.problems] == ["exists"]
    assert error.problems[0]["code"] == number[:4] + "*" * 10 + number[-4:] and number not in error.message
    result = import_residents(session, path, pii_key=KEY, replace=True)
    assert (result.created, result.updated) == (0, 1)
    assert cell_of(session, Resident, name="李大力") == cell_of(session, Building, code="B003")
    with pytest.raises(ValueError, match="personal-data key"):
        import_residents(session, path, pii_key=b"")


def test_id_numbers_mangled_by_excel_are_explained(session, grid, tmp_path):
    buildings(session)
    workbook = Workbook()
    workbook.active.append(["id_number", "name", "population_type", "building_code"])
    workbook.active.append([float(citizen_id(71)), "数值", "registered", "B001"])  # Excel keeps 15 digits
    workbook.active.append([citizen_id(72), "文本", "registered", "B001"])
    path = tmp_path / "numbers.xlsx"
    workbook.save(path)
    error = refused(session, import_residents, path, pii_key=KEY)
    assert [(p["index"], p["kind"]) for p in error.problems] == [(2, "number_precision")]
    assert "Format the column as text" in error.problems[0]["message"]
    scientific = write_csv(
        tmp_path / "sci.csv",
        ["id_number", "name", "population_type", "building_code"],
        [["4.40304E+17", "科学计数", "registered", "B001"]],
    )
    error = refused(session, import_residents, scientific, pii_key=KEY)
    assert [p["kind"] for p in error.problems] == ["number_precision"]


def test_residents_geojson_points_and_building_without_geometry(session, grid, tmp_path):
    buildings(session)
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"id_number": citizen_id(81), "name": "点", "population_type": "floating"},
                "geometry": {"type": "Point", "coordinates": list(centre(2, 1))},
            },
            {
                "type": "Feature",
                "properties": {
                    "id_number": citizen_id(82),
                    "name": "楼",
                    "population_type": "户籍",
                    "building_code": "B005",
                },
                "geometry": None,
            },
        ],
    }
    path = tmp_path / "residents.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    result = import_residents(session, path, pii_key=KEY)
    assert (result.created, result.assigned) == (2, 2)
    assert cell_of(session, Resident, name="点") == cell_code(2, 1)
    assert cell_of(session, Resident, name="楼") == cell_code(5, 2)


# -- legal entities ----------------------------------------------------------------------------------------


def test_entities_csv_and_xlsx(session, grid):
    result = import_entities(session, DATA / "entities.csv")
    assert (result.created, result.assigned, result.unassigned) == (3, 2, 1)
    assert result.unassigned_rows[0]["code"] == ENTITIES[2][0]
    assert cell_of(session, LegalEntity, credit_code=ENTITIES[1][0]) == cell_code(4, 0)
    assert session.scalar(select(LegalEntity.address).where(LegalEntity.credit_code == ENTITIES[2][0])) is None
    result = import_entities(session, DATA / "entities.xlsx")
    assert (result.created, result.assigned) == (2, 2)
    assert cell_of(session, LegalEntity, credit_code=credit_code(12)) == cell_code(5, 1)


def _write_entities(path: Path, format_: str) -> Path:
    """Write ENTITIES (two inside the grid, one outside) as `format_` and return the path to import."""
    header = ["credit_code", "name", "address", "lon", "lat"]
    rows = [[c, n, a or None, lon, lat] for c, n, a, (lon, lat) in ENTITIES]
    if format_ in ("csv-utf8", "csv-gbk"):
        return write_csv(
            path / "e.csv",
            header,
            [[v if v is not None else "" for v in r] for r in rows],
            encoding="utf-8" if format_ == "csv-utf8" else "gbk",
        )
    if format_ == "tsv":
        return _tsv(path / "e.tsv", header, rows)
    if format_ == "xlsx":
        workbook = Workbook()
        workbook.active.append(header)
        for row in rows:
            workbook.active.append(row)
        workbook.save(path / "e.xlsx")
        return path / "e.xlsx"
    frame = gpd.GeoDataFrame(
        {"credit_code": [r[0] for r in rows], "name": [r[1] for r in rows], "address": [r[2] for r in rows]},
        geometry=gpd.points_from_xy([r[3] for r in rows], [r[4] for r in rows]),
        crs=4490,
    )
    target = {"geojson": path / "e.geojson", "gpkg": path / "e.gpkg", "shp": path / "shp" / "e.shp"}[format_]
    target.parent.mkdir(exist_ok=True)
    with warnings.catch_warnings():  # "credit_code" becomes "credit_cod" in a shapefile: gridkit copes
        warnings.simplefilter("ignore")
        frame.to_file(target, engine="pyogrio", **({"encoding": "GBK"} if format_ == "shp" else {}))
    return target.parent if format_ == "shp" else target


def _tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    lines = ["\t".join(header)] + ["\t".join("" if v is None else str(v) for v in r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("format_", ["csv-utf8", "csv-gbk", "tsv", "xlsx", "geojson", "gpkg", "shp"])
def test_entities_in_every_format(session, grid, tmp_path, format_):
    result = import_entities(session, _write_entities(tmp_path, format_))
    assert (result.created, result.assigned, result.unassigned) == (3, 2, 1)
    stored = dict(session.execute(select(LegalEntity.credit_code, LegalEntity.name)).all())
    assert stored == {c: n for c, n, _, _ in ENTITIES}  # Chinese names intact in every encoding
    assert cell_of(session, LegalEntity, credit_code=ENTITIES[0][0]) == cell_code(0, 1)
    assert result.unassigned_rows[0]["code"] == ENTITIES[2][0]


def test_entity_rows_each_get_their_specific_error(session, grid):
    import_entities(session, DATA / "entities.csv")
    error = refused(session, import_entities, DATA / "entities_bad.csv")
    got = [(p["index"], p["kind"]) for p in error.problems]
    assert got == [
        (2, "exists"),
        (3, "bad_credit_code"),
        (4, "duplicate_code"),
        (5, "axes_swapped"),
        (6, "missing_coordinates"),
        (7, "bad_coordinate"),
    ]
    found = {p["index"]: p for p in error.problems}
    assert "check character is wrong" in found[3]["message"]
    assert "(22.5305, 114.0535) look swapped" in found[5]["message"]
    assert "--map lon=lat --map lat=lon" in found[5]["message"]


# -- coordinators ----------------------------------------------------------------------------------------


def test_coordinators_one_person_several_departments(session, work_grids):
    result = import_coordinators(session, DATA / "coordinators.csv")
    assert (result.created, result.updated) == (2, 0)
    assert result.extra == {"assignments": 4, "departments": 2}
    rows = list_coordinators(session)
    zhang = [r for r in rows if r["name"] == "张三"]
    assert {r["dept_code"]: r["work_cells"] for r in zhang} == {
        "100001": [work_cell("100001", 1), work_cell("100001", 2)],
        "200001": [work_cell("200001", 1)],
    }
    assert len({r["id"] for r in zhang}) == 1 and zhang[0]["phone"] == phone(21)
    # Importing the roster again changes nothing: people are matched by phone, assignments kept.
    again = import_coordinators(session, DATA / "coordinators.csv")
    assert (again.created, again.updated, again.extra["assignments"]) == (0, 2, 0)
    assert session.scalar(select(func.count()).select_from(Coordinator)) == 2


def test_coordinators_xlsx(session, work_grids, tmp_path):
    workbook = Workbook()
    workbook.active.append(["name", "phone", "dept", "work_cells"])
    workbook.active.append(["周八", int(phone(41)), 100001, work_cell("100001", 2)])  # numbers as numbers
    workbook.save(tmp_path / "c.xlsx")
    result = import_coordinators(session, tmp_path / "c.xlsx")
    assert (result.created, result.extra["assignments"]) == (1, 1)
    assert [r["work_cells"] for r in list_coordinators(session, "100001")] == [[work_cell("100001", 2)]]


def test_coordinator_department_by_name_and_cells_with_other_separators(session, work_grids, tmp_path):
    path = write_csv(
        tmp_path / "c.csv",
        ["姓名", "手机", "部门", "工作网格"],
        [["王五", "138 0000 0031", "城管", f"{work_cell('200001', 1)}；{work_cell('200001', 2)}"]],
    )
    result = import_coordinators(session, path)
    assert result.created == 1 and result.extra["assignments"] == 2
    assert session.scalar(select(Coordinator.phone).where(Coordinator.name == "王五")) == phone(31)


def test_coordinator_rows_each_get_their_specific_error(session, work_grids):
    import_coordinators(session, DATA / "coordinators.csv")
    error = refused(session, import_coordinators, DATA / "coordinators_bad.csv")
    got = [(p["index"], p["kind"]) for p in error.problems]
    assert got == [(3, "unknown_department"), (4, "unknown_work_cell"), (5, "bad_phone"), (6, "phone_conflict")]
    found = {p["index"]: p for p in error.problems}
    assert "100001, 200001" in found[3]["message"]
    assert "10000144030400100199" in found[4]["message"] and found[4]["code"] == "138****0024"
    assert found[6]["code"] == "138****0021" and phone(21) not in json.dumps(error.problems)
    assert "is on line 2 with another name" in found[6]["message"]


def test_coordinator_matched_against_the_database_by_phone(session, work_grids, tmp_path):
    import_coordinators(session, DATA / "coordinators.csv")
    path = write_csv(
        tmp_path / "c.csv",
        ["name", "phone", "dept", "work_cells"],
        [
            ["张三丰", phone(21), "200001", work_cell("200001", 2)],  # 张三's phone, another name
            ["李四", phone(22), "100001", work_cell("100001", 1)],
            ["李四", phone(22), "100001", work_cell("100001", 2)],
        ],
    )  # twice for one department
    error = refused(session, import_coordinators, path)
    assert [(p["index"], p["kind"]) for p in error.problems] == [(2, "phone_conflict"), (4, "duplicate_row")]
    assert "belongs to another coordinator in the database" in error.problems[0]["message"]


def test_coordinators_need_a_published_work_grid(session, grid, tmp_path):
    add_department(session, "300001", "民政")
    path = write_csv(
        tmp_path / "c.csv",
        ["name", "phone", "dept", "work_cells"],
        [["甲", phone(1), "300001", "30000144030400100101"], ["甲", phone(1), "300001", "30000144030400100101"]],
    )
    error = refused(session, import_coordinators, path)
    assert [(p["index"], p["kind"]) for p in error.problems] == [
        (2, "no_published_version"),
        (3, "no_published_version"),
    ]


# -- stats, dispatch, advice ---------------------------------------------------------------------------------


def test_stats_after_imports_have_the_issue_shape(session, work_grids):
    buildings(session)
    import_residents(session, DATA / "residents.csv", pii_key=KEY)
    import_entities(session, DATA / "entities.csv")
    rows = subject_stats(session, "community")
    wanted = {"code", "residents", "registered", "floating", "households", "buildings", "entities"}
    assert all(wanted <= set(r) for r in rows)
    first = next(r for r in rows if r["code"] == COMMUNITIES[0])
    # Community 1 holds B001-B003 (4 residents in 3 households: H0001 twice) and entity 1.
    assert {k: first[k] for k in wanted - {"code"}} == {
        "residents": 4,
        "registered": 2,
        "floating": 2,
        "households": 3,
        "buildings": 3,
        "entities": 1,
    }
    second = next(r for r in rows if r["code"] == COMMUNITIES[1])
    assert (second["residents"], second["households"], second["buildings"], second["entities"]) == (1, 1, 2, 1)
    district = subject_stats(session, "district")
    assert [(r["code"], r["residents"], r["households"], r["buildings"]) for r in district] == [("440304", 5, 4, 5)]
    by_work_cell = subject_stats(session, "work-cell", dept="100001")
    assert [r["code"] for r in by_work_cell] == [work_cell("100001", 1), work_cell("100001", 2)]
    assert json.loads(json.dumps(rows)) == rows


def test_import_subjects_dispatches_and_advice_covers_every_kind(session, grid):
    result = import_subjects(session, "buildings", DATA / "buildings.csv")
    assert result.created == 6
    result = import_subjects(session, "residents", DATA / "residents.csv", pii_key=KEY)
    assert result.created == 6
    with pytest.raises(ValidationError, match="unknown subject kind"):
        import_subjects(session, "trees", DATA / "buildings.csv")
    assert set(FIELDS) == {"buildings", "residents", "entities", "coordinators"}
    # SUBJECT_ADVICE adds what report.ADVICE lacks, without changing advice the grid imports give.
    assert set(SUBJECT_ADVICE).isdisjoint(ADVICE)
    for kind in (
        "exists",
        "bad_id_number",
        "axes_swapped",
        "unknown_building",
        "unknown_work_cell",
        "number_precision",
        "missing_location",
        "mixed_encoding",
        "undecodable_text",
    ):
        assert kind in SUBJECT_ADVICE or kind in ADVICE


def test_file_level_problems(session, grid, tmp_path):
    error = refused(session, import_buildings, tmp_path / "missing.csv")
    assert error.problems[0]["kind"] == "not_found"
    (tmp_path / "empty.csv").write_text("code,address,lon,lat\n", encoding="utf-8")
    assert refused(session, import_buildings, tmp_path / "empty.csv").problems[0]["kind"] == "no_rows"
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    assert "save it as .xlsx" in refused(session, import_buildings, tmp_path / "old.xls").message
    (tmp_path / "ragged.csv").write_text("code,lon,lat\nR1,114.0505,22.5305,extra\n", encoding="utf-8")
    assert [p["kind"] for p in refused(session, import_buildings, tmp_path / "ragged.csv").problems] == ["bad_row"]
    (tmp_path / "lon_only.csv").write_text("code,lon\nR1,114.0505\n", encoding="utf-8")
    problem = refused(session, import_buildings, tmp_path / "lon_only.csv").problems[0]
    assert problem["kind"] == "missing_field" and "none for lat" in problem["message"]
    (tmp_path / "no_location.csv").write_text("code,address\nR1,somewhere\n", encoding="utf-8")
    problem = refused(session, import_buildings, tmp_path / "no_location.csv").problems[0]
    assert problem["kind"] == "missing_field" and "no lon and lat columns" in problem["message"]
    (tmp_path / "dup.csv").write_text("code,code,lon,lat\nR1,R2,114.0505,22.5305\n", encoding="utf-8")
    assert refused(session, import_buildings, tmp_path / "dup.csv").problems[0]["kind"] == "duplicate_column"
    error = refused(session, import_buildings, DATA / "buildings.csv", src_crs="EPSG:99999999")
    assert error.problems[0]["kind"] == "bad_src_crs"


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
