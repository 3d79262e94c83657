"""The imported files' other fields (kept in `attributes`, JSONB) come back as fields of the
admin unit and base cell exports, typed, under their own names, and survive a round trip."""

from __future__ import annotations

import csv
import json
import zipfile

import pandas as pd
import pyogrio
import pytest
import shapely
from factories_exports import C1, make_city
from sqlalchemy import select, text

from gridkit.audit import PERSONAL_DATA_READ
from gridkit.grids.import_cells import import_base_cells
from gridkit.io.export import ExportOptions, export_layer
from gridkit.models import AuditLog, BaseCell, BaseGridEdition, User

KEPT = {
    f"{C1}001": {
        "网格类型名称": "商住混合",
        "网格类型代码": "02",
        "人口": 3_000_000_000,  # over 2^31
        "面积": 1234.5,
        "有效": True,
        "code": "OLD-1",  # a name the layer uses itself
        "备注": None,
    },
    f"{C1}002": {"网格类型名称": "工业", "人口": 12, "面积": 7, "有效": False, "备注": "旧网格"},
}


@pytest.fixture
def city(session):
    facts = make_city(session)
    for code, attributes in KEPT.items():
        session.execute(
            text("UPDATE base_cell SET attributes = CAST(:a AS jsonb), name = :n WHERE code = :c"),
            {"a": json.dumps(attributes, ensure_ascii=False), "n": f"网格{code[-3:]}", "c": code},
        )
    session.execute(text("UPDATE admin_unit SET attributes = '{\"人口\": 2500000}' WHERE code = :c"), {"c": C1})
    return facts


def _by_code(frame, column="code"):
    return {row[column]: row for row in frame.to_dict("records")}


def test_kept_attributes_are_typed_fields_of_the_geopackage(session, city, tmp_path):
    path = tmp_path / "cells.gpkg"
    summary = export_layer(session, ExportOptions("base-cells", "gpkg", path))
    assert summary["fields"] == [
        "code",
        "name",
        "community_code",
        "community_name",
        "edition",
        "area_m2",
        "code_1",
        "人口",
        "备注",
        "有效",
        "网格类型代码",
        "网格类型名称",
        "面积",
    ]
    info = pyogrio.read_info(path)
    types = dict(zip(info["fields"], info["dtypes"]))
    assert types["人口"] == "int64" and types["面积"] == "float64" and types["有效"] == "bool"
    rows = _by_code(pyogrio.read_dataframe(path, read_geometry=False))
    first, second = rows[f"{C1}001"], rows[f"{C1}002"]
    assert first["name"] == "网格001" and first["code_1"] == "OLD-1" and first["人口"] == 3_000_000_000
    assert first["面积"] == 1234.5 and bool(first["有效"]) is True
    assert first["网格类型名称"] == "商住混合" and first["网格类型代码"] == "02" and pd.isna(first["备注"])
    assert second["人口"] == 12 and second["面积"] == 7.0 and second["备注"] == "旧网格"
    # Cells without the key: empty, not 0.
    third = pyogrio.read_dataframe(path, read_geometry=False, where=f"code = '{C1}003'").iloc[0]
    assert pd.isna(third["网格类型名称"]) and pd.isna(third["人口"])


@pytest.mark.parametrize("encoding", ["utf-8", "gbk"])
def test_kept_attributes_in_the_shapefile_chinese_names_cut_by_bytes(session, city, tmp_path, encoding):
    path = tmp_path / "cells.zip"
    summary = export_layer(session, ExportOptions("base-cells", "shp", path, encoding=encoding))
    # 网格类型名称 and 网格类型代码 are 18 bytes each: cut to 10 (whole characters), the clash numbered.
    assert summary["shapefile_fields"]["网格类型名称"] == "网格_1"
    assert summary["shapefile_fields"]["网格类型代码"] == "网格类"
    with zipfile.ZipFile(path) as zf:
        mapping = {
            r["field"]: r["shapefile_field"] for r in csv.DictReader(zf.read("fields.csv").decode().splitlines())
        }
    assert mapping["网格类型名称"] == "网格_1" and mapping["人口"] == "人口"
    rows = _by_code(pyogrio.read_dataframe(f"/vsizip/{path}/base-cells.shp", read_geometry=False))
    first = rows[f"{C1}001"]
    assert first["网格_1"] == "商住混合" and first["网格类"] == "02" and first["人口"] == 3_000_000_000
    assert first["面积"] == 1234.5 and first["code_1"] == "OLD-1"


def test_admin_unit_attributes_in_csv(session, city, tmp_path):
    path = tmp_path / "units.csv"
    export_layer(session, ExportOptions("admin-units", "csv", path))
    rows = {r["code"]: r for r in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines())}
    assert rows[C1]["人口"] == "2500000" and rows[C1[:9]]["人口"] == ""


def test_base_cells_round_trip_through_the_import(session, city, tmp_path):
    path = tmp_path / "cells.gpkg"
    export_layer(session, ExportOptions("base-cells", "gpkg", path))
    import_base_cells(
        session, path, code_field="code", community_field="community_code", name_field="name", edition="again"
    )
    edition = session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == "again"))
    again = {c.code: c for c in session.scalars(select(BaseCell).where(BaseCell.edition_id == edition))}
    for code, attributes in KEPT.items():
        assert again[code].name == f"网格{code[-3:]}"
        kept = again[code].attributes
        for key, value in attributes.items():
            assert kept["code_1" if key == "code" else key] == value, key


def test_personal_data_in_kept_attributes_is_masked_unless_allowed_and_audited(session, city, tmp_path):
    # Base cell files often name the coordinator and a phone; an analyst may not read them in clear.
    clear = {"网格员": "张三丰", "电话": 13800138000, "备用": "13912345678", "证件": "110101199003074514"}
    session.execute(
        text("UPDATE base_cell SET attributes = attributes || CAST(:a AS jsonb) WHERE code = :c"),
        {"a": json.dumps(clear, ensure_ascii=False), "c": f"{C1}003"},
    )
    path = tmp_path / "cells.zip"
    export_layer(session, ExportOptions("base-cells", "shp", path), user=User(name="ana", role="analyst"))
    with zipfile.ZipFile(path) as zf:
        raw = zf.read("base-cells.dbf")
    for value in ("张三丰", "13800138000", "13912345678", "110101199003074514"):
        assert value.encode() not in raw, value
    row = _by_code(pyogrio.read_dataframe(f"/vsizip/{path}/base-cells.shp", read_geometry=False))[f"{C1}003"]
    assert row["网格员"] == "张**" and row["电话"] == "138****8000" and row["备用"] == "139****5678"
    assert row["证件"] == "1101**********4514"
    assert session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ)).all() == []
    admin = User(name="root", role="admin")
    session.add(admin)
    session.flush()
    gpkg = tmp_path / "cells.gpkg"
    export_layer(session, ExportOptions("base-cells", "gpkg", gpkg, unmasked=True), user=admin, actor="root")
    row = _by_code(pyogrio.read_dataframe(gpkg, read_geometry=False))[f"{C1}003"]
    assert row["网格员"] == "张三丰" and row["电话"] == "13800138000" and row["证件"] == "110101199003074514"
    (audit,) = session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ)).all()
    assert audit.actor == "root" and audit.detail["count"] == city["cells"]
    assert sorted(audit.detail["detail_fields"]) == sorted(["网格员", "电话", "备用", "证件"])


def test_building_footprints_come_back_as_polygons(session, city, tmp_path):
    # The buildings layer gives points; footprints imported as polygons are exported as drawn.
    footprint = "MULTIPOLYGON(((114.0501 22.5321, 114.0509 22.5321, 114.0509 22.5329, 114.0501 22.5321)))"
    code = session.scalar(text("SELECT min(code) FROM building"))
    session.execute(
        text("UPDATE building SET footprint = ST_GeomFromText(:f, 4490) WHERE code = :c"), {"f": footprint, "c": code}
    )
    expected = shapely.from_wkt(footprint)
    gpkg = tmp_path / "f.gpkg"
    summary = export_layer(session, ExportOptions("building-footprints", "gpkg", gpkg))
    frame = pyogrio.read_dataframe(gpkg)
    assert summary["features"] == 1 and list(frame["code"]) == [code]
    assert pyogrio.read_info(gpkg)["geometry_type"] == "MultiPolygon" and frame.crs.to_epsg() == 4490
    assert frame.geometry.iloc[0].equals_exact(expected, 1e-9)
    shp = tmp_path / "f.zip"
    export_layer(session, ExportOptions("building-footprints", "shp", shp))
    frame = pyogrio.read_dataframe(f"/vsizip/{shp}/building-footprints.shp")
    assert frame.geometry.iloc[0].equals(expected)  # a shapefile reads back a one-part polygon
    # The buildings layer still has every building, as a point.
    points = tmp_path / "b.gpkg"
    export_layer(session, ExportOptions("buildings", "gpkg", points))
    assert pyogrio.read_info(points)["features"] == city["buildings"]


def test_gbk_shapefile_round_trip_through_the_import(session, city, tmp_path):
    # The .cpg says 936 (ArcGIS's form): gridkit's own import reads it as GBK, Chinese intact.
    path = tmp_path / "cells.zip"
    export_layer(session, ExportOptions("base-cells", "shp", path, encoding="gbk"))
    import_base_cells(session, path, code_field="code", community_field="community_", name_field="name", edition="gbk")
    edition = session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == "gbk"))
    again = {c.code: c for c in session.scalars(select(BaseCell).where(BaseCell.edition_id == edition))}
    first = again[f"{C1}001"]
    assert first.name == "网格001" and first.attributes["网格_1"] == "商住混合" and first.attributes["网格类"] == "02"
    assert first.attributes["人口"] == 3_000_000_000 and first.attributes["面积"] == 1234.5
