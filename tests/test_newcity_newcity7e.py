"""A new city's first day with real data as Chinese departments deliver it (../shared/data): admin units
with 12-digit statistical codes, GBK shapefiles in EPSG:4547, XLSX rosters, historic cases from elsewhere."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from geoalchemy2.shape import from_shape
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.cli import main
from gridkit.errors import ValidationError
from gridkit.grids.import_admin import import_admin_units
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.problems import problem_text
from gridkit.io.subjects import SubjectImportRefused, import_buildings, import_coordinators
from gridkit.models import AdminUnit, Building, Incident, IncidentCategory, User
from gridkit.standard.categories import load_categories
from tests.conftest import SHARED_DATA
from tests.data.make_subject_files import work_cell
from tests.factories_import_subjects import grid, work_grids  # noqa: F401 (fixtures)

BUND_POIS = SHARED_DATA / "shanghai-bund-osm" / "pois_points.geojson"
BUND_ROADS = SHARED_DATA / "shanghai-bund-osm" / "roads_lines.geojson"
BUND_BUILDINGS = SHARED_DATA / "shanghai-bund-osm" / "buildings_polygons.geojson"
CNMAPS = SHARED_DATA / "shenzhen-admin" / "sz_city_districts_cnmaps_gcj02.geojson"


def statistical_codes(tmp_path, change: dict | None = None):
    """Write Shenzhen's real city and district outlines with their codes as the 统计用区划代码 (12 digits)."""
    data = json.loads(CNMAPS.read_text(encoding="utf-8"))
    for feature in data["features"]:
        props = feature["properties"]
        code = props["adcode"] + "000000"
        props["统计用区划代码"] = (change or {}).get(code, code)
        props["名称"] = props["district"] or props["city"]
    path = tmp_path / "shenzhen_nbs.geojson"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def import_shenzhen(session, path):
    """Import Shenzhen's city and districts from the file of `statistical_codes` (GCJ-02, as cnmaps has them)."""
    return import_admin_units(
        session, path, level=None, code_field="统计用区划代码", name_field="名称", src_crs="gcj02"
    )


def test_statistical_12_digit_codes_are_read_as_gridkits_codes(session, tmp_path):
    result = import_shenzhen(session, statistical_codes(tmp_path))
    assert (result.created, result.levels) == (10, {"city": 1, "district": 9})
    units = {u.code: u for u in session.scalars(select(AdminUnit))}
    assert units["440304"].name == "福田区" and units["440304"].parent_code == "440300"
    assert units["440300"].level == "city"
    [note] = [n for n in result.notes if n["kind"] == "padded_codes"]
    assert "440300000000 → 440300" in problem_text(note, "zh-CN")


def test_a_wrong_code_is_explained_in_the_readers_language(session, tmp_path):
    path = statistical_codes(tmp_path, {"440304000000": "440304000001"})  # street part 000
    with pytest.raises(ValidationError) as info:
        import_shenzhen(session, path)
    [bad] = [p for p in info.value.problems if p["kind"] == "bad_code"]
    text = problem_text(bad, "zh-CN")
    assert "440304000001 的街道部分为 000" in text and "Street part" not in text
    assert "Street part of 440304000001 is 000" in problem_text(bad, "en")


def bund_buildings_as_delivered(tmp_path, count: int = 40):
    """Write the first `count` real Bund footprints as a surveying department delivers them: a shapefile in
    EPSG:4547 with GBK attributes and a .cpg of 936; feature 5 without geometry, 7 with a hole, 8 a multipolygon."""
    from shapely.geometry import MultiPolygon

    gdf = gpd.read_file(BUND_BUILDINGS).iloc[:count].to_crs(4547)
    gdf = gdf.assign(编码=gdf["osm_id"].astype(str), 名称=gdf["name"].fillna("上海大厦"))[["编码", "名称", "geometry"]]
    gdf.loc[5, "geometry"] = None
    ring = gdf.loc[7, "geometry"]
    gdf.loc[7, "geometry"] = ring.difference(ring.centroid.buffer(2.0))
    gdf.loc[8, "geometry"] = MultiPolygon([gdf.loc[8, "geometry"], gdf.loc[9, "geometry"]])
    path = tmp_path / "buildings_4547.shp"
    gdf.to_file(path, encoding="gbk")
    path.with_suffix(".cpg").write_text("936")
    return path


def test_a_features_place_is_its_fid_not_an_ordinal(session, tmp_path):
    path = bund_buildings_as_delivered(tmp_path)
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "编码"})
    [empty] = [p for p in info.value.problems if p["kind"] == "missing_coordinates"]
    assert empty["index"] == 5
    assert "buildings_4547.shp 要素 5（FID，从 0 数起）" in problem_text(empty, "zh-CN")
    assert "feature 5 (FID, counted from 0)" in problem_text(empty, "en")


# -- historic cases: the categories of a new city, another city's cases -------------------------------------------

BALTIMORE = SHARED_DATA / "baltimore-311" / "baltimore_311_sample.csv"
BALTIMORE_MAP = Path(__file__).resolve().parent / "data" / "baltimore_311_map.json"
BALTIMORE_CATEGORIES = Path(__file__).resolve().parent / "data" / "baltimore_categories.csv"


def cli(settings, *args):
    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(main, list(args), obj=settings, catch_exceptions=False)


def test_db_up_gives_a_new_city_the_standard_categories_once(fresh_settings):
    first = cli(fresh_settings, "db", "up", "--json")
    assert first.exit_code == 0, first.output
    assert json.loads(first.output)["categories_seeded"] == len(load_categories()) > 0
    with Session(db.engine_for(fresh_settings)) as session:
        session.execute(delete(IncidentCategory).where(IncidentCategory.code == "0101"))
        session.commit()
    again = cli(fresh_settings, "db", "up", "--json")  # the deployment's own table is left as it is
    assert json.loads(again.output)["categories_seeded"] == 0
    with Session(db.engine_for(fresh_settings)) as session:
        assert session.get(IncidentCategory, "0101") is None


def test_a_refused_case_file_names_its_first_problem(session):
    with pytest.raises(ValidationError) as info:  # no category yet: every row's category is unknown
        import_incidents(session, BALTIMORE, load_mapping(BALTIMORE_MAP))
    assert "第一处：baltimore_311_sample.csv 第 2 行：类别 0206" in info.value.render("zh-CN")
    assert "The first: baltimore_311_sample.csv, line 2:" in info.value.render("en")


def test_another_citys_cases_are_refused_not_queued_as_unassigned(session, tmp_path):
    import_admin_units(
        session,
        statistical_codes(tmp_path),
        level=None,
        code_field="统计用区划代码",
        name_field="名称",
        src_crs="gcj02",
    )
    seed_categories(session)
    seed_categories(session, BALTIMORE_CATEGORIES)
    with pytest.raises(ValidationError) as info:
        import_incidents(session, BALTIMORE, load_mapping(BALTIMORE_MAP))
    assert info.value.code == "incident_import.elsewhere"
    assert info.value.params["located"] == 10_000 - 885 - 590  # without the placeholder (39, -77) and empty places
    assert info.value.params["km"] > 10_000  # Baltimore is about 12,900 km from Shenzhen
    assert "没有一个在本市行政区划 50 公里以内" in info.value.render("zh-CN")
    # The CLI's refusal says once that nothing was imported (its own prefix), then the reason and the report.
    from gridkit.cli.common import refused_import
    from gridkit.config import Settings

    said = refused_import(Settings(home=tmp_path), "incidents", info.value)
    assert said.render("zh-CN").count("未导入任何数据") == 1 and said.render("en").count("othing was imported") == 1
    assert session.scalar(select(func.count()).select_from(Incident)) == 0


def test_a_work_cell_code_excel_stored_as_a_number_is_named_as_such(session, work_grids, tmp_path):
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["姓名", "手机", "部门", "工作网格"])
    sheet.append(["王建国", 13912340000, 100001, float(work_cell("100001", 1))])  # typed without a leading '
    path = tmp_path / "网格员.xlsx"
    workbook.save(path)
    mapping = {"name": "姓名", "phone": "手机", "dept": "部门", "work_cells": "工作网格"}
    with pytest.raises(SubjectImportRefused) as info:
        import_coordinators(session, path, mapping=mapping)
    [wrong] = info.value.problems
    assert wrong["kind"] == "number_precision" and wrong["field"] == "工作网格"
    assert "网格员.xlsx 第 2 行：工作网格编码（10000144030400100352）被存成了数值" in problem_text(wrong, "zh-CN")


# -- exports read back -----------------------------------------------------------------------------------------


def test_footprints_as_gbk_shapefile_in_4547_read_back_field_by_field(session, tmp_path):
    gdf = gpd.read_file(BUND_BUILDINGS).iloc[:60]
    gdf = gdf.assign(编码=gdf["osm_id"].astype(str), 地址=gdf["addr_street"].fillna("中山东一路"))
    source = tmp_path / "bund.geojson"
    gdf[["编码", "地址", "geometry"]].to_file(source, driver="GeoJSON")
    import_buildings(session, source, mapping={"code": "编码", "address": "地址"})
    path = tmp_path / "footprints.zip"
    options = ExportOptions("building-footprints", "shp", path, crs="EPSG:4547", encoding="gbk")
    summary = export_layer(session, options, actor="test")
    assert summary["dates_only"] == ["created_at"]  # said, not silent: a DBF has no time of day
    with zipfile.ZipFile(path) as zf:
        assert zf.read("building-footprints.cpg") == b"936"
        fields = {r["field"]: r for r in csv.DictReader(zf.read("fields.csv").decode().splitlines())}
    assert fields["created_at"]["type"] == "date"
    back = pyogrio.read_dataframe(f"/vsizip/{path}/building-footprints.shp")
    assert back.crs.to_epsg() == 4547 and len(back) == 60
    stored = {b.code: b for b in session.scalars(select(Building))}
    for row in back.itertuples():
        assert row.address == stored[row.code].address  # GBK round trip of every name
    expected = gdf.set_index("编码").geometry.to_crs(4547)
    assert (back.set_index("code").geometry.symmetric_difference(expected, align=True).area < 0.01).all()


# -- the pages of another city ---------------------------------------------------------------------------------


def test_the_pages_are_titled_with_the_citys_own_name(fresh_settings):
    from shapely.geometry import MultiPolygon

    from tests.factories_web import commit
    from web import create_app

    outline = gpd.read_file(BUND_ROADS).union_all().convex_hull  # the Bund's real roads: central Shanghai

    def fill(session):
        session.add(
            AdminUnit(code="310100", name="上海市", level="city", geom=from_shape(MultiPolygon([outline]), 4490))
        )

    commit(fresh_settings, fill)
    client = create_app(fresh_settings).test_client()
    home = client.get("/").get_data(as_text=True)
    assert "<title>gridkit · 上海市统一空间基础网格</title>" in home and "深圳" not in home
    assert "gridkit · 上海市统一空间基础网格" in client.get("/login").get_data(as_text=True)  # every page, no query


def test_roads_delivered_with_chinese_field_names_keep_their_names(tmp_path):
    from gridkit.grids.generate.roads import road_features

    osm = gpd.read_file(BUND_ROADS)
    path = tmp_path / "道路.shp"
    osm[["kind", "kind_detail", "is_tunnel", "name", "geometry"]].rename(columns={"name": "名称"}).to_crs(4547).to_file(
        path, encoding="gbk"
    )
    delivered = road_features(pyogrio.read_dataframe(path, encoding="gbk"))
    expected = road_features(osm)
    assert len(delivered) == len(expected)
    # The names pair the two carriageways of one road and name the roads a cell straddles in the report.
    assert [r.name for r in delivered] == [r.name for r in expected]
    assert sum(r.name is not None for r in delivered) > 300


def test_a_mistyped_path_is_said_in_the_clis_language(fresh_settings):
    typo = BUND_BUILDINGS.with_name("buildings_polygon.geojson")  # the real file is buildings_polygons
    result = CliRunner(env={"GRIDKIT_LANG": "zh-CN"}).invoke(
        main, ["import", "buildings", str(typo)], obj=fresh_settings, catch_exceptions=False
    )
    assert result.exit_code == 2
    assert f"没有文件或文件夹 '{typo}'：请检查路径和文件名。" in result.output and "does not exist" not in result.output


def test_coordinates_typed_in_full_width_are_read(session, tmp_path):
    from gridkit.io.subjects import import_entities
    from gridkit.models import LegalEntity
    from gridkit.standard.ids import credit_code_check_char

    pois = [f for f in json.loads(BUND_POIS.read_text(encoding="utf-8"))["features"] if f["properties"].get("name")]
    full_width = str.maketrans("0123456789.-", "０１２３４５６７８９．－")
    lines = ["统一社会信用代码,名称,经度,纬度"]
    for i, poi in enumerate(pois[:20]):
        first17 = f"91310101MA1K{i:05d}"
        lon, lat = (repr(v).translate(full_width) for v in poi["geometry"]["coordinates"])
        lines.append(f"{first17}{credit_code_check_char(first17)},{poi['properties']['name']},{lon},{lat}")
    path = tmp_path / "法人.csv"
    path.write_bytes("\r\n".join(lines).encode("gb18030"))
    mapping = {"credit_code": "统一社会信用代码", "name": "名称", "lon": "经度", "lat": "纬度"}
    assert import_entities(session, path, mapping=mapping).created == 20
    stored = session.execute(select(func.ST_X(LegalEntity.geom), func.ST_Y(LegalEntity.geom)).order_by(LegalEntity.id))
    assert [tuple(p) for p in stored] == [tuple(f["geometry"]["coordinates"]) for f in pois[:20]]


def test_residents_imported_by_building_are_exported_where_their_building_is(session, tmp_path):
    from gridkit.io.subjects import import_residents
    from gridkit.standard.ids import citizen_id_check_char

    gdf = gpd.read_file(BUND_BUILDINGS).iloc[:30]
    source = tmp_path / "bund.geojson"
    gdf.assign(code=gdf["osm_id"].astype(str))[["code", "geometry"]].to_file(source, driver="GeoJSON")
    import_buildings(session, source)
    lines = ["id_number,name,phone,household,population_type,building_code"]
    for i, code in enumerate(gdf["osm_id"].astype(str)):
        first17 = f"31010119{80 + i % 20:02d}0101{i:03d}"
        lines.append(f"{first17}{citizen_id_check_char(first17)},居民{i},1391234{i:04d},H{i},户籍,{code}")
    residents = tmp_path / "residents.csv"
    residents.write_text("\n".join(lines), encoding="utf-8")
    import_residents(session, residents, pii_key=b"newcity7e-test-key")
    path = tmp_path / "residents.gpkg"
    # Unmasked (a masked export gives a resident to about 100 m only, without the building).
    admin = User(name="root", role="admin")
    session.add(admin)
    session.flush()
    export_layer(session, ExportOptions("residents", "gpkg", path, unmasked=True), user=admin, actor="test")
    back = pyogrio.read_dataframe(path)
    assert len(back) == 30 and back.geometry.notna().all()  # had no place at all: the rows came back without one
    buildings = gpd.GeoSeries(gdf.geometry.values, index=gdf["osm_id"].astype(str)).representative_point()
    where = buildings.loc[back["building"]].values
    assert (shapely.distance(back.geometry.values, where) < 1e-6).all()  # degrees: well under a metre


def test_a_grid_round_trip_through_a_gauss_kruger_shapefile_changes_no_cell(fresh_settings, tmp_path):
    """Planners export the generated grid to ArcGIS in EPSG:4547 and import it back unchanged: the diff said
    that cells were reshaped by the centimetres of reprojection."""
    from shapely.geometry import box, mapping

    outline = mapping(box(121.4830, 31.2290, 121.4990, 31.2480))  # the Bund, 黄浦区
    units = [("310100", "上海市"), ("310101", "黄浦区"), ("310101001", "外滩街道"), ("310101001001", "外滩社区")]
    path = tmp_path / "units.geojson"
    features = [{"type": "Feature", "properties": {"code": c, "name": n}, "geometry": outline} for c, n in units]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False))
    steps = [
        ("admin", "import", str(path), "--code-field", "code", "--name-field", "name"),
        (
            "basegrid",
            "generate",
            "--all",
            "--roads",
            str(BUND_ROADS),
            "--target-area-m2",
            "20000-200000",
            "--edition",
            "gen",
        ),
        ("basegrid", "publish", "--edition", "gen"),
        ("export", "base-cells", "-o", str(tmp_path / "cells.zip"), "--crs", "EPSG:4547", "--encoding", "gbk"),
        (
            "basegrid",
            "import",
            str(tmp_path / "cells.zip"),
            "--code-field",
            "code",
            "--community-field",
            "community_",
            "--edition",
            "back",
        ),
    ]
    for step in steps:
        done = cli(fresh_settings, *step)
        assert done.exit_code == 0, done.output
    diff = json.loads(cli(fresh_settings, "basegrid", "diff", "gen", "back", "--json").output)
    assert diff["unchanged"] > 10 and (diff["added"], diff["removed"], diff["reshaped"]) == ([], [], [])


def test_replacing_buildings_by_their_label_points_keeps_footprints_and_addresses(session, tmp_path):
    points = gpd.read_file(BUND_BUILDINGS.with_name("buildings_points.geojson"))
    polygons = gpd.read_file(BUND_BUILDINGS)
    both = polygons[polygons["osm_id"].isin(points["osm_id"])].iloc[:30]
    footprints = tmp_path / "footprints.geojson"
    both.assign(code=both["osm_id"].astype(str), address=both["addr_street"].fillna("中山东一路"))[
        ["code", "address", "geometry"]
    ].to_file(footprints, driver="GeoJSON")
    import_buildings(session, footprints)
    labels = tmp_path / "labels.geojson"  # the OSM label points of the same buildings: code and place only
    chosen = points[points["osm_id"].isin(both["osm_id"])].drop_duplicates("osm_id")
    chosen.assign(code=chosen["osm_id"].astype(str))[["code", "geometry"]].to_file(labels, driver="GeoJSON")
    assert import_buildings(session, labels, replace=True).updated == len(chosen) == 30
    stored = session.execute(select(Building.code, Building.address, Building.footprint.is_not(None))).all()
    assert all(address and has_footprint for _, address, has_footprint in stored)  # were all dropped


def test_replacing_residents_and_entities_keeps_what_the_file_does_not_carry(session, tmp_path):
    from gridkit.io.subjects import import_entities, import_residents
    from gridkit.models import LegalEntity, Resident
    from gridkit.standard.ids import citizen_id_check_char, credit_code_check_char

    gdf = gpd.read_file(BUND_BUILDINGS).iloc[:10]
    source = tmp_path / "bund.geojson"
    gdf.assign(code=gdf["osm_id"].astype(str))[["code", "geometry"]].to_file(source, driver="GeoJSON")
    import_buildings(session, source)
    ids = [f"31010119800101{i:03d}" for i in range(10)]
    ids = [i + citizen_id_check_char(i) for i in ids]
    full = ["id_number,name,phone,household,population_type,building_code"] + [
        f"{n},居民{k},1391234{k:04d},H{k},户籍,{code}" for k, (n, code) in enumerate(zip(ids, gdf["osm_id"]))
    ]
    (tmp_path / "full.csv").write_text("\n".join(full), encoding="utf-8")
    import_residents(session, tmp_path / "full.csv", pii_key=b"k")
    names = ["id_number,name,population_type,building_code"] + [
        f"{n},改名{k},流动,{code}" for k, (n, code) in enumerate(zip(ids, gdf["osm_id"]))
    ]
    (tmp_path / "names.csv").write_text("\n".join(names), encoding="utf-8")  # a roster of names only
    assert import_residents(session, tmp_path / "names.csv", pii_key=b"k", replace=True).updated == 10
    stored = session.execute(select(Resident.name, Resident.phone, Resident.household)).all()
    assert all(name.startswith("改名") and phone and household for name, phone, household in stored)

    pois = [f for f in json.loads(BUND_POIS.read_text(encoding="utf-8"))["features"] if f["properties"].get("name")]
    codes = [f"91310101MA1K{i:05d}" for i in range(5)]
    codes = [c + credit_code_check_char(c) for c in codes]
    rows = [(c, p["properties"]["name"], *p["geometry"]["coordinates"]) for c, p in zip(codes, pois)]
    (tmp_path / "e.csv").write_text(
        "\n".join(
            ["credit_code,name,address,lon,lat"]
            + [f"{c},{n},中山东一路{i},{x},{y}" for i, (c, n, x, y) in enumerate(rows)]
        ),
        encoding="utf-8",
    )
    import_entities(session, tmp_path / "e.csv")
    (tmp_path / "moved.csv").write_text(
        "\n".join(["credit_code,name,lon,lat"] + [f"{c},{n},{x},{y}" for c, n, x, y in rows]), encoding="utf-8"
    )
    assert import_entities(session, tmp_path / "moved.csv", replace=True).updated == 5
    assert all(session.scalars(select(LegalEntity.address)))


def test_admin_levels_are_named_in_the_clis_language(fresh_settings, tmp_path):
    path = statistical_codes(tmp_path)
    zh = CliRunner(env={"GRIDKIT_LANG": "zh-CN"})
    args = [
        "admin",
        "import",
        str(path),
        "--code-field",
        "统计用区划代码",
        "--name-field",
        "名称",
        "--src-crs",
        "gcj02",
    ]
    imported = zh.invoke(main, args, obj=fresh_settings, catch_exceptions=False)
    assert imported.exit_code == 0, imported.output
    assert "级别 （市 1；区 9）" in imported.output and "district" not in imported.output
    listed = zh.invoke(main, ["admin", "list", "--level", "district"], obj=fresh_settings, catch_exceptions=False)
    assert "440304  福田区  区    440300" in listed.output and "district" not in listed.output
    as_json = json.loads(cli(fresh_settings, "admin", "list", "--json").output)
    assert {u["level"] for u in as_json} == {"city", "district"}  # JSON keeps the codes


def test_case_places_typed_in_full_width_are_read(session, tmp_path):
    pois = json.loads(BUND_POIS.read_text(encoding="utf-8"))["features"][:10]
    full_width = str.maketrans("0123456789.", "０１２３４５６７８９．")
    lines = ["编号,类型,上报时间,状态,经度,纬度"]
    for i, poi in enumerate(pois):
        lon, lat = (repr(v).translate(full_width) for v in poi["geometry"]["coordinates"])
        lines.append(f"SH{i:04d},暴露垃圾,2026-11-{i + 1:02d} 09:30:00,已结案,{lon},{lat}")
    path = tmp_path / "案件.csv"
    path.write_bytes("\r\n".join(lines).encode("gbk"))
    columns = {"external_id": "编号", "category": "类型", "reported_at": "上报时间", "state": "状态"}
    mapping = {
        "source": "sh",
        "columns": {**columns, "lon": "经度", "lat": "纬度"},
        "time_format": "%Y-%m-%d %H:%M:%S",
        "timezone": "Asia/Shanghai",
        "states": {"已结案": "closed"},
        "categories": {"暴露垃圾": "E0101"},
    }
    (tmp_path / "map.json").write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    seed_categories(session)
    result = import_incidents(session, path, load_mapping(tmp_path / "map.json"))
    assert (result["imported"], result["without_location"]) == (10, 0)
    stored = session.execute(select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom)).order_by(Incident.id))
    assert [tuple(p) for p in stored] == [tuple(f["geometry"]["coordinates"]) for f in pois]


def test_a_zone_prefixed_shapefile_without_prj_is_told_its_zone(session, tmp_path):
    """Surveyors' files often carry the 3-degree zone number in front of the easting (38 500 000 m): the .prj
    lost, the advice named EPSG:4547 (whose eastings have no prefix) instead of the file's EPSG:4526."""
    districts = gpd.read_file(CNMAPS).to_crs(4526)  # zone 38, central meridian 114E
    path = tmp_path / "districts.shp"
    districts.to_file(path, encoding="utf-8")
    path.with_suffix(".prj").unlink()
    with pytest.raises(ValidationError) as info:
        import_admin_units(session, path, level=None, code_field="adcode", name_field="district")
    text = info.value.render("zh-CN")
    assert "x 的前两位 38 是 3 度带带号" in text and "--src-crs EPSG:4526" in text
    assert "zone 38, central meridian 114E" in info.value.render("en")
