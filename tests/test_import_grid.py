"""Importing admin units and base cells: all or nothing, on the bad-input corpus and real Shenzhen districts."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import pytest
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import func, select

from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.grids.import_admin import import_admin_units
from gridkit.grids.import_cells import import_base_cells
from gridkit.grids.importer import ImportRefused
from gridkit.io import VectorReadError, read_vector, write_report
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.standard.codes import PROFILES
from tests.conftest import SHARED_DATA
from tests.data.make_bad_files import cell, code, feature, write_geojson
from tests.factories import make_admin_units, make_base_grid

BAD = Path(__file__).resolve().parent / "data" / "bad"
SHENZHEN = SHARED_DATA / "shenzhen-admin"
CNMAPS = SHENZHEN / "sz_city_districts_cnmaps_gcj02.geojson"


def counts(session) -> tuple[int, int, int]:
    """Return the row counts of admin_unit, base_grid_edition and base_cell."""
    return tuple(
        session.scalar(select(func.count()).select_from(model)) for model in (AdminUnit, BaseGridEdition, BaseCell)
    )


def refused(session, function, *args, **kwargs) -> ValidationError:
    """Run an import that must fail; check it raised a ValidationError and wrote nothing."""
    before = counts(session)
    with pytest.raises(ValidationError) as info:
        function(session, *args, **kwargs)
    session.flush()
    assert counts(session) == before, "a refused import wrote something"
    assert isinstance(info.value, VectorReadError)  # problems, notes and source for the report
    return info.value


def kinds(error) -> list[str]:
    return [p["kind"] for p in error.problems]


def cells(session, path, **kwargs):
    return import_base_cells(session, path, code_field=kwargs.pop("code_field", "code"), **kwargs)


# -- admin units -------------------------------------------------------------------------------------


def test_gbk_communities_import_with_correct_chinese(session):
    make_admin_units(session)
    result = import_admin_units(session, BAD / "gbk_no_cpg", level="community", code_field="编码", name_field="名称")
    assert (result.created, result.updated) == (2, 0)
    assert result.levels == {"community": 2}
    assert result.source["encoding"] == "GB18030"
    units = {u.code: u for u in session.scalars(select(AdminUnit).where(AdminUnit.level == "community"))}
    assert units["440304001002"].name == "园岭社区" and units["440304001003"].name == "百花社区"
    assert units["440304001002"].parent_code == "440304001"
    assert session.scalar(select(func.ST_SRID(AdminUnit.geom)).where(AdminUnit.code == "440304001002")) == 4490
    assert (
        session.scalar(select(func.GeometryType(AdminUnit.geom)).where(AdminUnit.code == "440304001002"))
        == "MULTIPOLYGON"
    )


def test_bowtie_community_is_repaired_noted_and_imported(session):
    make_admin_units(session)
    result = import_admin_units(
        session, BAD / "bowtie_communities.geojson", level="community", code_field="code", name_field="name"
    )
    assert result.created == 2
    (note,) = [n for n in result.notes if n["kind"] == "geometry_repaired"]
    assert (note["index"], note["code"]) == (0, "440304001002")
    assert session.scalar(select(func.ST_IsValid(AdminUnit.geom)).where(AdminUnit.code == "440304001002"))
    assert session.scalar(select(func.ST_NumGeometries(AdminUnit.geom)).where(AdminUnit.code == "440304001002")) == 2


def test_shenzhen_city_row_without_name_is_refused(session):
    # cnmaps' city row has no district name: every unit needs a name.
    error = refused(
        session, import_admin_units, CNMAPS, level=None, code_field="adcode", name_field="district", src_crs="gcj02"
    )
    assert [(p["index"], p["code"], p["kind"], p["field"]) for p in error.problems] == [
        (0, "440300", "missing_name", "district")
    ]


def test_shenzhen_gcj02_city_then_districts(session, tmp_path):
    # cnmaps' city row has no district name; give every feature a name first, as a coordinator would.
    frame = gpd.read_file(CNMAPS)
    frame["name"] = frame["district"].fillna(frame["city"])
    path = tmp_path / "shenzhen.geojson"
    frame.to_file(path, driver="GeoJSON")
    result = import_admin_units(session, path, level=None, code_field="adcode", name_field="name", src_crs="gcj02")
    assert (result.created, result.levels) == (10, {"city": 1, "district": 9})
    futian = session.get(AdminUnit, "440304")
    assert (futian.name, futian.level, futian.parent_code) == ("福田区", "district", "440300")
    assert session.get(AdminUnit, "440300").parent_code is None
    # Stored in CGCS2000: lands on transbigdata's WGS84 Futian, not 500 m off.
    reference = read_vector(SHENZHEN / "sz_districts_transbigdata_wgs84.geojson").gdf
    reference = reference.loc[reference["qh"] == "福田"].geometry.iloc[0]
    stored = gpd.GeoSeries([to_shape(futian.geom), reference], crs=4490).to_crs(4547)
    assert stored[0].intersection(stored[1]).area / stored[0].union(stored[1]).area > 0.99


def test_districts_need_their_city(session):
    error = refused(
        session,
        import_admin_units,
        CNMAPS,
        level="district",
        code_field="adcode",
        name_field="district",
        src_crs="gcj02",
    )
    # Feature 0 is the city itself (wrong level); the nine districts miss their parent city.
    assert kinds(error) == ["wrong_level"] + ["missing_parent"] * 9
    assert error.problems[0]["index"] == 0 and "440300 is a city code" in error.problems[0]["message"]
    assert "city 440300" in error.problems[1]["message"]


def test_all_problems_are_reported_together(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "communities.geojson"
    write_geojson(
        path,
        [
            feature({"code": "440304001002", "name": "甲"}, box(114.053, 22.53, 114.056, 22.533)),
            feature({"code": "440304001002", "name": "乙"}, box(114.056, 22.53, 114.059, 22.533)),  # duplicate
            feature({"code": "44030400100", "name": "丙"}, box(114.06, 22.53, 114.061, 22.531)),  # 11 digits
            feature({"code": "440304002001", "name": "丁"}, box(114.06, 22.53, 114.061, 22.531)),  # no street 002
            feature({"code": "440304001003", "name": ""}, box(114.06, 22.53, 114.061, 22.531)),  # no name
            feature({"code": "440304001001", "name": "戊"}, box(114.06, 22.53, 114.061, 22.531)),  # exists
            feature({"code": "440304001004", "name": "己"}, None),  # no geometry
            feature({"code": None, "name": "庚"}, box(114.06, 22.53, 114.061, 22.531)),  # no code
            feature({"code": "440304001", "name": "辛"}, box(114.06, 22.53, 114.061, 22.531)),  # a street
        ],
    )
    error = refused(session, import_admin_units, path, level="community", code_field="code", name_field="name")
    assert sorted((p["index"], p["kind"]) for p in error.problems) == [
        (1, "duplicate_code"),
        (2, "bad_code"),
        (3, "missing_parent"),
        (4, "missing_name"),
        (5, "exists"),
        (6, "null_geometry"),
        (7, "missing_code"),
        (8, "wrong_level"),
    ]
    assert "first at feature 0" in next(p["message"] for p in error.problems if p["kind"] == "duplicate_code")
    assert "street 440304002" in next(p["message"] for p in error.problems if p["kind"] == "missing_parent")


def test_replace_updates_existing_units(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "communities.geojson"
    write_geojson(
        path,
        [
            feature({"code": "440304001001", "name": "新名社区"}, box(114.05, 22.53, 114.054, 22.533)),
            feature({"code": "440304001002", "name": "新社区"}, box(114.054, 22.53, 114.056, 22.533)),
        ],
    )
    result = import_admin_units(session, path, level="community", code_field="code", name_field="name", replace=True)
    assert (result.created, result.updated) == (1, 1)
    unit = session.get(AdminUnit, "440304001001")
    assert unit.name == "新名社区"
    assert to_shape(unit.geom).equals(MultiPolygon([box(114.05, 22.53, 114.054, 22.533)]))


def test_parent_field_is_checked(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "communities.geojson"
    square = box(114.053, 22.53, 114.056, 22.533)
    write_geojson(
        path,
        [
            feature({"code": "440304001002", "name": "甲", "parent": "440304001"}, square),
            feature({"code": "440304001003", "name": "乙", "parent": "440305001"}, square),
            feature({"code": "440304001004", "name": "丙", "parent": None}, square),
        ],
    )
    error = refused(
        session,
        import_admin_units,
        path,
        level="community",
        code_field="code",
        name_field="name",
        parent_field="parent",
    )
    assert [(p["index"], p["kind"], p["field"]) for p in error.problems] == [
        (1, "code_prefix", "parent"),
        (2, "bad_parent", "parent"),
    ]


def test_street_import_derives_the_district(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "streets.geojson"
    write_geojson(
        path,
        [
            feature({"code": "440304002", "name": "华富街道"}, box(114.06, 22.53, 114.07, 22.54)),
            feature({"code": "440399001", "name": "无区街道"}, box(114.07, 22.53, 114.08, 22.54)),
        ],
    )
    error = refused(session, import_admin_units, path, level="street", code_field="code", name_field="name")
    assert [(p["index"], p["kind"]) for p in error.problems] == [(1, "missing_parent")]
    assert "district 440399" in error.problems[0]["message"]


def test_unknown_level_and_wrong_field(session):
    with pytest.raises(ValidationError, match="unknown level 'county'"):
        import_admin_units(session, BAD / "gbk_no_cpg", level="county", code_field="编码", name_field="名称")
    error = refused(
        session, import_admin_units, BAD / "gbk_no_cpg", level="community", code_field="code", name_field="名称"
    )
    assert kinds(error) == ["missing_field"] and "编码, 名称" in error.problems[0]["message"]


# -- base cells --------------------------------------------------------------------------------------


def test_base_cells_import_into_a_new_draft_edition(session):
    make_admin_units(session)
    result = cells(session, BAD / "spike_cell.geojson")
    assert result.created == 2 and result.edition.startswith("导入 ")
    edition = session.get(BaseGridEdition, result.edition_id)
    assert (edition.status, edition.code_profile) == ("draft", "default")
    rows = session.execute(
        select(BaseCell.code, BaseCell.community_code, func.ST_SRID(BaseCell.geom), func.GeometryType(BaseCell.geom))
        .where(BaseCell.edition_id == edition.id)
        .order_by(BaseCell.code)
    ).all()
    assert rows == [(code(1), "440304001001", 4490, "POLYGON"), (code(2), "440304001001", 4490, "POLYGON")]
    assert [n["kind"] for n in result.notes] == ["geometry_repaired"]  # the spike
    assert to_shape(session.scalar(select(BaseCell.geom).where(BaseCell.code == code(1)))).equals(cell(0))
    # a second default-named import in the same minute gets its own name
    again = cells(session, BAD / "spike_cell.geojson")
    assert again.edition != result.edition


def test_base_cells_named_edition_must_be_new(session):
    make_base_grid(session, edition="2026")
    error = refused(session, cells, BAD / "spike_cell.geojson", edition="2026")
    assert kinds(error) == ["edition_exists"]
    assert cells(session, BAD / "spike_cell.geojson", edition="2027").edition == "2027"


# Each bad file, the import it is fed to, and the one specific error it gives.
CORPUS = [
    ("no_crs", {}, "no_crs"),
    ("wrong_code_field.geojson", {}, "missing_field"),
    ("duplicate_codes.geojson", {}, "duplicate_code"),
    ("overlapping_cells.geojson", {}, "duplicate_geometry"),
    ("empty.geojson", {}, "no_features"),
    ("path_traversal.zip", {}, "unsafe_zip"),
    ("symlink.zip", {}, "unsafe_zip"),
    ("not_spatial.csv", {}, "no_geometry"),
    ("latlon_swapped.geojson", {}, "axes_swapped"),
    ("undecodable", {}, "undecodable_text"),
    ("outside_china.geojson", {}, "outside_china"),
    ("null_geometry.geojson", {}, "null_geometry"),
    ("multipart_cell.geojson", {}, "multipart"),
    ("layers.gpkg", {}, "several_layers"),
    ("bowtie_communities.geojson", {}, "multipart"),  # repaired into two triangles: not one cell
]


@pytest.mark.parametrize(("name", "kwargs", "kind"), CORPUS, ids=[c[0] + "-" + c[2] for c in CORPUS])
def test_bad_corpus_is_refused_with_its_own_error(session, name, kwargs, kind):
    make_admin_units(session)
    error = refused(session, cells, BAD / name, **kwargs)
    assert kind in kinds(error)
    assert error.problems[0]["message"] in str(error)
    if name == "bowtie_communities.geojson":  # also: its 12-digit community codes are no cell codes
        assert set(kinds(error)) == {"multipart", "bad_code"}
    else:
        assert set(kinds(error)) == {kind}


def test_wrong_forced_encoding_refuses_the_admin_import(session):
    make_admin_units(session)
    error = refused(
        session,
        import_admin_units,
        BAD / "gbk_no_cpg",
        level="community",
        code_field="编码",
        name_field="名称",
        encoding="utf-8",
    )
    assert set(kinds(error)) == {"undecodable_text"}
    values = [(p["index"], p["field"]) for p in error.problems if p["index"] is not None]
    assert values == [(0, "名称"), (1, "名称")]


def test_bad_corpus_details(session):
    make_admin_units(session)
    error = refused(session, cells, BAD / "wrong_code_field.geojson")
    assert "Its fields are: 网格编码, 名称" in error.problems[0]["message"]
    error = refused(session, cells, BAD / "duplicate_codes.geojson")
    assert [(p["index"], p["code"]) for p in error.problems] == [(2, code(1))]
    error = refused(session, cells, BAD / "overlapping_cells.geojson")
    assert [(p["index"], p["code"]) for p in error.problems] == [(1, code(2))]
    assert "100%" in error.problems[0]["message"] and code(1) in error.problems[0]["message"]
    error = refused(session, cells, BAD / "outside_china.geojson")
    assert [p["index"] for p in error.problems] == [1]


def test_no_crs_imports_once_the_crs_is_given(session):
    make_admin_units(session)
    assert cells(session, BAD / "no_crs", src_crs="EPSG:4490").created == 2


def test_partially_overlapping_cells_are_left_to_validation(session):
    """Decision: only cells covering the same ground (≥ 95 %) are duplicates; smaller overlaps import."""
    make_admin_units(session)
    result = cells(session, BAD / "overlapping_partial.geojson")
    assert result.created == 2
    overlap = session.scalar(
        select(
            func.ST_Area(
                func.ST_Intersection(
                    BaseCell.geom,
                    select(BaseCell.geom)
                    .where(BaseCell.code == code(2), BaseCell.edition_id == result.edition_id)
                    .scalar_subquery(),
                )
            )
        ).where(BaseCell.code == code(1), BaseCell.edition_id == result.edition_id)
    )
    assert overlap > 0  # imported as drawn; `gridkit basegrid validate` reports it


def test_same_code_and_same_square_is_one_duplicate(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "twice.geojson"
    write_geojson(path, [feature({"code": code(1)}, cell(0)), feature({"code": code(1)}, cell(0))])
    error = refused(session, cells, path)
    assert kinds(error) == ["duplicate_code"]


def test_cell_community_checks(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "cells.geojson"
    write_geojson(
        path,
        [
            feature({"code": code(1), "community": "440304001001"}, cell(0)),
            feature({"code": code(2), "community": "440304001002"}, cell(1)),  # prefix mismatch
            feature({"code": "440304001009001", "community": "440304001009"}, cell(2)),  # no such community
            feature({"code": "44030400100100", "community": "440304001001"}, cell(3)),  # 14 digits
            feature({"code": "440304001001000", "community": "440304001001"}, cell(4)),  # sequence 000
        ],
    )
    error = refused(session, cells, path, community_field="community")
    assert [(p["index"], p["kind"]) for p in error.problems] == [
        (1, "code_prefix"),
        (3, "bad_code"),
        (4, "bad_code"),
        (2, "missing_community"),
    ]


def test_cjt213_profile(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "cells.geojson"
    write_geojson(path, [feature({"code": "44030400100101"}, cell(0)), feature({"code": code(2)}, cell(1))])
    error = refused(session, cells, path, profile="cjt213")
    assert [(p["index"], p["kind"]) for p in error.problems] == [(1, "bad_code")]
    assert "14 digits" in error.problems[0]["message"]
    write_geojson(path, [feature({"code": "44030400100101"}, cell(0))])
    result = cells(session, path, profile=PROFILES["cjt213"])
    assert session.get(BaseGridEdition, result.edition_id).code_profile == "cjt213"
    with pytest.raises(ValidationError, match="unknown code profile"):
        cells(session, path, profile="db99")


def test_numeric_code_fields_are_read_as_text(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "cells.geojson"
    write_geojson(path, [feature({"code": int(code(1))}, cell(0)), feature({"code": float(code(2))}, cell(1))])
    result = cells(session, path)
    assert sorted(session.scalars(select(BaseCell.code).where(BaseCell.edition_id == result.edition_id))) == [
        code(1),
        code(2),
    ]


def test_field_names_are_matched_ignoring_case(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "cells.geojson"
    write_geojson(path, [feature({"CODE": code(1)}, cell(0))])
    result = cells(session, path, code_field="code")
    assert result.created == 1 and [n["kind"] for n in result.notes] == ["field_case"]


def test_bulk_import_of_thousands_of_cells(session, tmp_path):
    """2,997 cells in three communities: bulk INSERTs, not a flush per row (a few seconds at most)."""
    communities = make_admin_units(session, communities=3)
    rows, cols, width = 27, 37, 0.003
    features = []
    for i, community in enumerate(communities):
        for r in range(rows):
            for c in range(cols):
                x, y = 114.05 + i * width + c * width / cols, 22.53 + r * width / rows
                features.append(
                    feature(
                        {"code": f"{community.code}{r * cols + c + 1:03d}"},
                        box(x, y, x + width / cols, y + width / rows),
                    )
                )
    path = tmp_path / "many.geojson"
    write_geojson(path, features)
    started = time.perf_counter()
    result = cells(session, path)
    elapsed = time.perf_counter() - started
    assert result.created == 2997
    assert session.scalar(select(func.count()).where(BaseCell.edition_id == result.edition_id)) == 2997
    assert elapsed < 30, elapsed


def test_report_of_a_refused_import(session, tmp_path):
    make_admin_units(session)
    error = refused(session, cells, BAD / "duplicate_codes.geojson")
    json_path, text_path = write_report(
        tmp_path, "basegrid-import", error.problems, error.notes, {"file": error.source["path"]}
    )
    text = text_path.read_text(encoding="utf-8-sig")
    assert f"要素 feature 2 | 编码 code {code(1)} | 字段 field code | 原因 reason [duplicate_code]" in text
    assert "已拒绝" in text and json_path.exists()


def test_import_result_summary(session):
    make_admin_units(session)
    result = cells(session, BAD / "spike_cell.geojson", edition="夏季")
    summary = result.summary()
    assert summary["created"] == 2 and summary["edition"] == "夏季" and summary["encoding"] == "UTF-8"
    assert isinstance(result.notes, list) and isinstance(ImportRefused("x"), ValidationError)


# -- names, attributes and limits ---------------------------------------------------------------------


def test_base_cell_names_and_every_other_attribute_are_kept(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "named.geojson"
    write_geojson(
        path,
        [
            feature({"code": code(1), "名称": "一号网格", "面积": 1.5, "人口": 120, "备注": None, "ok": True}, cell(0)),
            feature({"code": code(2), "名称": None, "面积": 2.25, "人口": 80, "备注": "新建", "ok": False}, cell(1)),
        ],
    )
    result = import_base_cells(session, path, code_field="code", name_field="名称")
    cells = {c.code: c for c in session.scalars(select(BaseCell).where(BaseCell.edition_id == result.edition_id))}
    assert cells[code(1)].name == "一号网格" and cells[code(2)].name is None
    assert cells[code(1)].attributes == {"面积": 1.5, "人口": 120, "备注": None, "ok": True}
    assert cells[code(2)].attributes == {"面积": 2.25, "人口": 80, "备注": "新建", "ok": False}


def test_admin_unit_attributes_are_kept(session, tmp_path):
    make_admin_units(session)
    path = tmp_path / "communities.geojson"
    write_geojson(
        path,
        [
            feature(
                {"code": "440304001002", "name": "园岭社区", "户数": 1200, "类型": "城市社区"},
                box(114.053, 22.530, 114.056, 22.533),
            )
        ],
    )
    import_admin_units(session, path, level="community", code_field="code", name_field="name")
    assert session.get(AdminUnit, "440304001002").attributes == {"户数": 1200, "类型": "城市社区"}


def test_base_cell_name_field_must_exist_and_fit(session, tmp_path):
    make_admin_units(session)
    error = refused(session, cells, BAD / "duplicate_codes.geojson", name_field="名称")
    assert "missing_field" in kinds(error)
    path = tmp_path / "long.geojson"
    write_geojson(path, [feature({"code": code(1), "name": "长" * 101}, cell(0))])
    error = refused(session, cells, path, name_field="name")
    assert kinds(error) == ["name_too_long"] and error.problems[0]["code"] == code(1)


def test_vertex_limit_comes_from_the_settings_and_nothing_is_imported(session):
    make_admin_units(session)
    error = refused(session, cells, BAD / "many_vertices.geojson", settings=Settings(max_vertices=200))
    assert kinds(error) == ["too_many_vertices"] and error.problems[0]["code"] == code(2)
    assert cells(session, BAD / "many_vertices.geojson", edition="many").created == 2


def test_damaged_zip_member_is_refused_by_the_importer(session):
    make_admin_units(session)
    error = refused(session, cells, BAD / "damaged_member.zip")
    assert kinds(error) == ["bad_zip_member"] and "cells.dbf" in str(error)


def test_problems_and_refusals_render_in_chinese_and_english(session):
    """Every problem carries a catalogue key and JSON params; the refusal renders in zh-CN from the same."""
    import json

    from gridkit.io.vector import problem_text

    make_admin_units(session)
    error = refused(session, cells, BAD / "duplicate_codes.geojson")
    (p,) = error.problems
    assert p["key"] == "geometry.vector.on_feature" and json.loads(json.dumps(p)) == p
    assert "appears again" in problem_text(p, "en") and "重复出现" in problem_text(p, "zh-CN")
    assert error.code == "geometry.refused_one"
    assert "未导入任何数据" in error.render("zh-CN") and "Nothing was imported" in error.render("en")
    error = refused(session, cells, BAD / "damaged_member.zip")
    assert "已损坏" in error.render("zh-CN") and "cells.dbf" in error.render("zh-CN")


def test_geometry_catalogue_has_the_same_keys_in_both_languages():
    import json
    from string import Formatter

    from gridkit.messages import CATALOGUE_DIR

    en = json.loads((CATALOGUE_DIR / "en" / "geometry.json").read_text(encoding="utf-8"))
    zh = json.loads((CATALOGUE_DIR / "zh-CN" / "geometry.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh)
    for key in en:
        fields = {f for _, f, _, _ in Formatter().parse(en[key]) if f}
        assert fields == {f for _, f, _, _ in Formatter().parse(zh[key]) if f}, key
