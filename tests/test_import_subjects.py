"""Importing residents, legal entities and coordinators: every format, bad input; stats, dispatch and advice."""

from __future__ import annotations

import csv
import json
import warnings
from datetime import date
from pathlib import Path

import geopandas as gpd
import pytest
import shapely
from geoalchemy2.shape import to_shape
from openpyxl import Workbook
from sqlalchemy import func, select, text

from gridkit.errors import ValidationError
from gridkit.grids.work import add_department, list_coordinators
from gridkit.io.report import ADVICE
from gridkit.io.subjects import (
    FIELDS,
    SUBJECT_ADVICE,
    import_buildings,
    import_coordinators,
    import_entities,
    import_residents,
    import_subjects,
)
from gridkit.models import Building, Coordinator, LegalEntity, Resident
from gridkit.pii import hash_citizen_id
from gridkit.standard.ids import credit_code_check_char
from gridkit.subjects import subject_stats
from tests.data.make_subject_files import (
    BAD_RESIDENT_LINES,
    COMMUNITIES,
    ENTITIES,
    RESIDENTS,
    centre,
    citizen_id,
    credit_code,
    phone,
    work_cell,
)
from tests.factories_import_subjects import (  # noqa: F401 - fixtures used by name
    DATA,
    KEY,
    buildings,
    cell_code,
    cell_of,
    grid,
    refused,
    work_grids,
    write_csv,
)

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


def test_resident_keys_compare_in_byte_order(session):
    # Migration 20261204_imp9d: the keys an import deduplicates, indexes and summarises by compare by memcmp.
    collations = session.execute(
        text(
            "SELECT c.relname || '.' || a.attname, l.collname FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "JOIN pg_collation l ON l.oid = a.attcollation WHERE (c.relname, a.attname) IN "
            "(('resident', 'id_number_hash'), ('resident', 'household'), ('resident_split_household', 'household'))"
        )
    ).all()
    assert dict(collations) == {
        "resident.id_number_hash": "C",
        "resident.household": "C",
        "resident_split_household.household": "C",
    }


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


def test_credit_code_that_reads_like_a_number_in_scientific_notation(session, grid, tmp_path):
    # Letters are allowed in a credit code: 91440300E9000000xx is a valid code, not Excel's 9.14403E+17.
    body = "91440300E90000000"
    valid = body + credit_code_check_char(body)
    assert valid.removeprefix(body).isdigit()  # all digits but the E: what the notation's pattern matches
    (lon, lat) = ENTITIES[0][3]
    header = ["credit_code", "name", "address", "lon", "lat"]
    result = import_entities(session, write_csv(tmp_path / "e.csv", header, [[valid, "字母E公司", "", lon, lat]]))
    assert result.created == 1
    assert session.scalar(select(LegalEntity.credit_code)) == valid
    wrong = body + ("0" if valid[-1] != "0" else "1")  # the same look with a wrong check character
    error = refused(session, import_entities, write_csv(tmp_path / "w.csv", header, [[wrong, "错", "", lon, lat]]))
    assert [p["kind"] for p in error.problems] == ["number_precision"]


def test_entity_codes_as_typed_are_stored_normalised_beside_clean_rows(session, grid, tmp_path):
    # Clean rows are checked in bulk, the others one by one: both kinds in one chunk, each stored as the rule says.
    codes = [credit_code(n) for n in (31, 32, 33)]
    typed = [codes[0], codes[1].lower(), " " + codes[2].translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})]
    (lon, lat) = ENTITIES[0][3]
    header = ["credit_code", "name", "address", "lon", "lat"]
    path = write_csv(tmp_path / "e.csv", header, [[c, f"公司{i}", "", lon, lat] for i, c in enumerate(typed)])
    assert import_entities(session, path).created == 3
    assert sorted(session.scalars(select(LegalEntity.credit_code))) == sorted(codes)
    long_name = write_csv(tmp_path / "n.csv", header, [[credit_code(34), "名" * 201, "", lon, lat]])
    error = refused(session, import_entities, long_name)
    assert [(p["kind"], p["code"]) for p in error.problems] == [("too_long", credit_code(34))]


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
    assert set(FIELDS) == {"buildings", "residents", "entities", "coordinators", "components"}
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
