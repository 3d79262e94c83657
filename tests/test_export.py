"""Exports read back with pyogrio and GDAL's ogrinfo: fields, CRS, counts, Chinese text, masking."""

from __future__ import annotations

import csv
import itertools
import json
import subprocess
import zipfile
from datetime import date, datetime

import pyogrio
import pytest
from factories_exports import C2, DEPT, WC1, WC2, make_city
from openpyxl import load_workbook
from sqlalchemy import func, select, text

from gridkit.audit import PERSONAL_DATA_READ
from gridkit.coords import wgs84_to_gcj02
from gridkit.errors import Conflict, NotFound, PermissionDenied, ValidationError
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.export_writers import short_field_names
from gridkit.models import AuditLog, LegalEntity, Resident, User


@pytest.fixture
def city(session):
    return make_city(session)


def _export(session, tmp_path, layer, fmt, name=None, **kw):
    user = kw.pop("user", None)
    path = tmp_path / (name or f"{layer}.{ {'shp': 'zip'}.get(fmt, fmt) }")
    summary = export_layer(session, ExportOptions(layer, fmt, path, **kw), user=user, actor="test")
    return path, summary


def test_short_field_names_are_deterministic_and_unique():
    names = ["population_type", "population_total", "code", "coordinator_phone", "coordinator"]
    short = short_field_names(names)
    assert short == short_field_names(names)
    assert short["population_type"] == "population"
    assert short["population_total"] == "populati_1"
    assert short["code"] == "code" and short["coordinator_phone"] == "coordinato"
    assert short["coordinator"] == "coordina_1"
    assert len(set(short.values())) == len(names) and all(len(v) <= 10 for v in short.values())


def test_shapefile_zip_utf8_residents(session, city, tmp_path):
    path, summary = _export(session, tmp_path, "residents", "shp")
    assert summary["features"] == city["residents"]
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {
            "residents.shp",
            "residents.shx",
            "residents.dbf",
            "residents.prj",
            "residents.cpg",
            "fields.csv",
        } <= names
        assert zf.read("residents.cpg").decode().strip().upper() in ("UTF-8", "UTF8")
        mapping = list(csv.DictReader(zf.read("fields.csv").decode().splitlines()))
    short = {row["field"]: row["shapefile_field"] for row in mapping}
    assert short["population_type"] == "population"
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/residents.shp")
    assert len(frame) == city["residents"]
    assert frame.crs.to_epsg() == 4490
    assert set(frame.columns) >= {"id_number", "name", "phone", "population", "birth_year", "base_cell"}
    # Masked: first character of the name and 3+4 digits of the phone only.
    assert frame["name"].str.match(r"^居\*+$").all()
    assert frame["phone"].str.match(r"^138\*{4}\d{4}$").all()
    info = pyogrio.read_info(f"/vsizip/{path}/residents.shp")
    types = dict(zip(info["fields"], info["dtypes"]))
    assert types["created_at"].startswith("datetime64") or types["created_at"] == "object"
    assert info["geometry_type"] == "Point"
    meta = pyogrio.read_dataframe(f"/vsizip/{path}/residents.shp", read_geometry=False)
    first = meta["created_at"].iloc[0]
    assert isinstance(first, (date, datetime)) or str(meta["created_at"].dtype).startswith("datetime")


def test_shapefile_gbk_keeps_chinese_in_gdal(session, city, tmp_path):
    path, _ = _export(session, tmp_path, "entities", "shp", encoding="gbk")
    with zipfile.ZipFile(path) as zf:
        # ArcGIS's own form, the code page number (ArcMap reads it; GDAL reads it as CP936).
        assert zf.read("entities.cpg") == b"936"
        raw = zf.read("entities.dbf")
    assert "深圳市园岭0号科技有限公司".encode("gbk") in raw
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/entities.shp")
    assert frame["name"].iloc[0].startswith("深圳市园岭")
    out = subprocess.run(
        ["ogrinfo", "-ro", "-al", "-q", f"/vsizip/{path}/entities.shp"], capture_output=True, text=True, check=True
    ).stdout
    assert "深圳市园岭0号科技有限公司" in out


def test_gpkg_projected_full_names_and_datetimes(session, city, tmp_path):
    path, summary = _export(session, tmp_path, "incidents", "gpkg", crs="EPSG:4547")
    info = pyogrio.read_info(path)
    assert info["features"] == 6
    assert "population_type" not in info["fields"] and "category_code" in info["fields"]
    frame = pyogrio.read_dataframe(path)
    assert frame.crs.to_epsg() == 4547
    # Shenzhen in zone 38 (CM 114°E): eastings near 500 km, northings near 2,490 km.
    assert 480_000 < frame.geometry.x.min() < 520_000 and 2_400_000 < frame.geometry.y.min() < 2_600_000
    assert frame["reporter"].eq("赵*").all()
    assert str(frame["reported_at"].dtype).startswith("datetime64")
    assert summary["crs"] == "EPSG:4547"


def test_geojson_is_rfc7946(session, city, tmp_path):
    path, _ = _export(session, tmp_path, "base-cells", "geojson", crs="EPSG:4326")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert "crs" not in data and len(data["features"]) == city["cells"]
    ring = data["features"][0]["geometry"]["coordinates"][0]
    area2 = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in itertools.pairwise(ring))
    assert area2 > 0  # counter-clockwise outer ring
    assert 114 < ring[0][0] < 115 and 22 < ring[0][1] < 23
    assert data["features"][0]["properties"]["community_name"].startswith("测试")
    frame = pyogrio.read_dataframe(path)
    assert len(frame) == city["cells"] and frame.crs.to_epsg() == 4326
    # In CGCS2000 lon/lat (the default) too: no "crs" member anywhere, not even in a geometry.
    path, _ = _export(session, tmp_path, "incidents", "geojson")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert len(data["features"]) == 6 and '"crs"' not in path.read_text(encoding="utf-8")
    assert set(data["features"][0]["geometry"]) == {"type", "coordinates"}


def test_csv_gbk_and_xlsx(session, city, tmp_path):
    path, _ = _export(session, tmp_path, "buildings", "csv", encoding="gbk")
    rows = list(csv.DictReader(path.read_text(encoding="gbk").splitlines()))
    assert len(rows) == city["buildings"] and rows[0]["address"].startswith("深圳市福田区")
    assert 114 < float(rows[0]["x"]) < 115
    path, _ = _export(session, tmp_path, "admin-units", "xlsx")
    sheet = load_workbook(path, read_only=True)["data"]
    values = list(sheet.values)
    assert values[0][:4] == ("code", "name", "level", "parent_code") and values[0][-1] == "wkt"
    assert len(values) - 1 == 5 and any(v[1] == "深圳市" for v in values[1:])


def test_components_lines_stay_lines_one_geometry_type_per_file(session, city, tmp_path):
    path, summary = _export(session, tmp_path, "components", "shp")
    points = pyogrio.read_dataframe(f"/vsizip/{path}/components_point.shp")
    lines = pyogrio.read_dataframe(f"/vsizip/{path}/components_line.shp")
    assert summary["features"] == 2 and summary["layers"] == {"components_point": 1, "components_line": 1}
    assert set(points.geom_type) == {"Point"} and list(points["name"]) == ["上水井盖"]
    assert set(lines.geom_type) <= {"LineString", "MultiLineString"} and list(lines["name"]) == ["护栏"]
    assert lines.geometry.iloc[0].length > 0 and pyogrio.read_info(f"/vsizip/{path}/components_line.shp")[
        "geometry_type"
    ] in ("LineString", "MultiLineString")
    gpkg, _ = _export(session, tmp_path, "components", "gpkg")
    layers = dict(pyogrio.list_layers(gpkg))
    assert layers == {"components_point": "Point", "components_line": "MultiLineString"}
    assert pyogrio.read_dataframe(gpkg, layer="components_line").geom_type.tolist() == ["MultiLineString"]
    geojson, _ = _export(session, tmp_path, "components", "geojson")
    kinds = {f["properties"]["name"]: f["geometry"]["type"] for f in json.loads(geojson.read_text())["features"]}
    assert kinds == {"上水井盖": "Point", "护栏": "LineString"}
    out = subprocess.run(
        ["ogrinfo", "-so", f"/vsizip/{path}/components_line.shp", "components_line"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Line String" in out and "Feature Count: 1" in out


def test_gcj02_offsets_points(session, city, tmp_path):
    plain, _ = _export(session, tmp_path, "entities", "gpkg", name="a.gpkg")
    mars, summary = _export(session, tmp_path, "entities", "gpkg", name="b.gpkg", crs="gcj02")
    a, b = pyogrio.read_dataframe(plain), pyogrio.read_dataframe(mars)
    lon, lat = wgs84_to_gcj02(a.geometry.x.iloc[0], a.geometry.y.iloc[0])
    assert b.geometry.x.iloc[0] == pytest.approx(lon, abs=1e-9) and b.geometry.y.iloc[0] == pytest.approx(lat, abs=1e-9)
    assert summary["crs"] == "GCJ-02"


def test_work_cell_and_coordinator_valid_at(session, city, tmp_path):
    cell = f"{C2}001"
    before, _ = _export(session, tmp_path, "buildings", "gpkg", name="v1.gpkg", dept=DEPT, at="2024-01-01")
    after, _ = _export(session, tmp_path, "buildings", "gpkg", name="v2.gpkg", dept=DEPT, at="2026-01-01")
    old, new = pyogrio.read_dataframe(before), pyogrio.read_dataframe(after)
    assert old.loc[old.base_cell == cell, "work_cell"].item() == WC2
    assert old.loc[old.base_cell == cell, "coordinator"].item() == "李*"
    assert new.loc[new.base_cell == cell, "work_cell"].item() == WC1
    assert new.loc[new.base_cell == cell, "coordinator"].item() == "张**,王*"
    cells, _ = _export(session, tmp_path, "work-cells", "shp", dept=DEPT, version=1)
    frame = pyogrio.read_dataframe(f"/vsizip/{cells}/work-cells.shp")
    assert sorted(frame["code"]) == [WC1, WC2] and set(frame["version"]) == {1}
    assert frame.geom_type.nunique() == 1  # one geometry type per file


def test_filters_area_where_and_unknown_field(session, city, tmp_path):
    _, summary = _export(session, tmp_path, "residents", "csv", area=C2, where={"population_type": "floating"})
    assert summary["features"] == 9
    with pytest.raises(ValidationError) as err:
        _export(session, tmp_path, "residents", "csv", name="x.csv", where={"colour": "red"})
    assert "colour" in err.value.message and "population_type" in err.value.message
    with pytest.raises(NotFound):
        _export(session, tmp_path, "residents", "csv", name="y.csv", area="440304999")
    with pytest.raises(ValidationError):
        _export(session, tmp_path, "rivers", "csv", name="z.csv")
    with pytest.raises(ValidationError):
        _export(session, tmp_path, "residents", "csv", name="z.csv", crs="EPSG:999999")
    with pytest.raises(ValidationError):
        _export(session, tmp_path, "residents", "geojson", name="z.geojson", crs="EPSG:4547")


def test_unmasked_needs_role_and_is_audited(session, city, tmp_path):
    analyst = User(name="ana", role="analyst")
    admin = User(name="root", role="admin")
    session.add_all([analyst, admin])
    session.flush()
    with pytest.raises(PermissionDenied):
        _export(session, tmp_path, "residents", "csv", unmasked=True, user=analyst)
    path, _ = _export(session, tmp_path, "residents", "csv", unmasked=True, user=admin)
    rows = list(csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()))
    names = {r.name for r in session.scalars(select(Resident))}
    assert {row["name"] for row in rows} == names
    log = session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ)).all()
    assert len(log) == 1 and log[0].object_type == "export" and log[0].object_id == "residents"
    assert log[0].detail["count"] == len(rows) and log[0].detail["detail_fields"] == [
        "name",
        "phone",
        "birth_date",
        "building",
        "household",
        "place",
    ]
    # A filter on a personal field: the field and how many rows are logged, the name itself masked.
    name = sorted(names)[0]
    path, _ = _export(
        session,
        tmp_path,
        "residents",
        "gpkg",
        unmasked=True,
        user=admin,
        where={"name": name, "population_type": "floating"},
    )
    entry = session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ).order_by(AuditLog.id)).all()[
        -1
    ]
    assert name not in json.dumps(entry.detail, ensure_ascii=False)
    assert entry.detail["where"] == {"name": name[0] + "*" * (len(name) - 1), "population_type": "floating"}
    assert entry.detail["count"] == pyogrio.read_info(path)["features"]


def test_output_rules_and_no_half_written_file(session, city, tmp_path):
    _export(session, tmp_path, "buildings", "csv")
    with pytest.raises(Conflict):
        _export(session, tmp_path, "buildings", "csv")
    _, summary = _export(session, tmp_path, "buildings", "csv", force=True)
    assert summary["features"] == city["buildings"]
    with pytest.raises(ValidationError) as err:
        export_layer(session, ExportOptions("buildings", "csv", tmp_path / "no" / "such" / "b.csv"))
    assert "not writable" in err.value.message
    with pytest.raises(ValidationError) as err:
        _export(session, tmp_path, "buildings", "gpkg", max_features=5)
    assert "18" in err.value.message
    # A character GBK cannot hold stops the export part-way: no file under either name.
    session.execute(Resident.__table__.update().values(name="𠮷田"))
    seen = []
    with pytest.raises(ValidationError):
        _export(
            session,
            tmp_path,
            "residents",
            "shp",
            encoding="gbk",
            unmasked=True,
            user=User(name="root2", role="admin"),
            chunk_size=5,
        )
    assert not list(tmp_path.glob("residents*")) and not list(tmp_path.glob(".residents*"))
    export_layer(
        session,
        ExportOptions("residents", "gpkg", tmp_path / "r.gpkg", chunk_size=5),
        progress=lambda done, total: seen.append((done, total)),
    )
    # Totals before the end are the planner's estimate; the last call gives the real count.
    assert seen[0][0] == 5 and seen[-1] == (city["residents"], city["residents"])
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert pyogrio.read_info(tmp_path / "r.gpkg")["features"] == city["residents"]


def test_gdal_formats_filter_like_the_others(session, city, tmp_path):
    # The shapefile and GPKG rows come through COPY (parameters merged client-side): same filters,
    # same rows as the CSV path; a literal % in the data stays as it is.
    session.execute(Resident.__table__.update().values(phone="100%"))
    kw = {"area": C2, "where": {"population_type": "floating"}}
    _, csv_summary = _export(session, tmp_path, "residents", "csv", **kw)
    path, summary = _export(session, tmp_path, "residents", "shp", **kw)
    frame = pyogrio.read_dataframe(f"/vsizip/{path}/residents.shp")
    assert summary["features"] == csv_summary["features"] == len(frame) == 9
    assert set(frame["populati_1" if "populati_1" in frame else "population"]) == {"floating"}
    entities, _ = _export(session, tmp_path, "entities", "gpkg")
    assert pyogrio.read_info(entities)["features"] == session.execute(select(func.count(LegalEntity.id))).scalar()


def test_text_that_looks_like_a_formula_stays_text_in_csv_and_xlsx(session, city, tmp_path):
    # Addresses are imported data: one spelled as a formula must not run when the file is opened.
    formula, command = '=HYPERLINK("http://example.invalid","点击")', "+cmd|' /C calc'!A0"
    codes = session.execute(text("SELECT code FROM building ORDER BY code LIMIT 3")).scalars().all()
    for code, address in zip(codes, (formula, command, "-12")):
        session.execute(text("UPDATE building SET address = :a WHERE code = :c"), {"a": address, "c": code})
    path, _ = _export(session, tmp_path, "buildings", "xlsx")
    cells = [c for row in load_workbook(path)["data"].iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]
    assert {c.value for c in cells} >= {formula, command, "-12"}
    path, _ = _export(session, tmp_path, "buildings", "csv")
    addresses = {r["code"]: r["address"] for r in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines())}
    assert [addresses[c] for c in codes] == ["'" + formula, "'" + command, "-12"]


def test_control_characters_in_text_do_not_stop_an_xlsx_export(session, city, tmp_path):
    # Text pasted from Word holds vertical tabs: openpyxl refused the whole workbook for one such address.
    code = session.execute(text("SELECT code FROM building ORDER BY code LIMIT 1")).scalar_one()
    address = "红荔路\x0b1号\x01\x1b"
    session.execute(text("UPDATE building SET address = :a WHERE code = :c"), {"a": address, "c": code})
    path, summary = _export(session, tmp_path, "buildings", "xlsx")
    rows = {r[0]: r for r in load_workbook(path, read_only=True)["data"].values}
    assert summary["features"] == city["buildings"] == len(rows) - 1
    assert rows[code][1] == "红荔路\n1号"  # the vertical tab as the line break it stands for, the rest left out
    path, _ = _export(session, tmp_path, "buildings", "csv")
    with open(path, encoding="utf-8-sig", newline="") as fh:  # not splitlines(): it breaks lines at \x0b too
        addresses = {r["code"]: r["address"] for r in csv.DictReader(fh)}
    assert addresses[code] == address  # CSV holds them as they are
