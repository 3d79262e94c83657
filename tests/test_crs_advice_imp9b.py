"""A file in Gauss-Kruger metres without a zone number and without a CRS (a shapefile without .prj, a CSV of x, y)
is told the 3-degree zones the city's admin units lie in and the one in which its coordinates fall on the city;
real Shenzhen districts and cafés, and Shanghai Bund footprints (../shared/data)."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from gridkit.errors import ValidationError
from gridkit.io.crs import city_zones
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from tests.test_crs_crs8c import BUND_BUILDINGS, CAFES, districts, import_districts, write


def without_prj(frame: gpd.GeoDataFrame, path):
    """Write `frame` as a shapefile and take its .prj away, as departments often hand them over."""
    frame.to_file(path, encoding="utf-8")
    path.with_suffix(".prj").unlink()
    return path


def shenzhen(session, tmp_path):
    import_districts(session, write(districts(), tmp_path / "shenzhen.geojson", driver="GeoJSON"))


def test_cafes_in_metres_without_prj_are_told_the_zone_in_which_they_fall_on_the_city(session, tmp_path):
    shenzhen(session, tmp_path)
    cafes = gpd.read_file(CAFES).to_crs(4547)
    cafes["code"] = [f"C{i}" for i in range(len(cafes))]
    path = without_prj(cafes[["code", "geometry"]], tmp_path / "cafes.shp")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    english = info.value.render("en")
    assert "cafes.shp has no .prj file" in english
    assert "zone EPSG:4547 (114°E), and in EPSG:4547 these coordinates fall on the city" in english
    assert "give --src-crs EPSG:4547" in english
    assert "按 EPSG:4547 换算后这些坐标正落在本市" in info.value.render("zh-CN")


def test_a_city_over_two_zones_is_told_the_one_its_metres_belong_to(session, tmp_path):
    """Shanghai spans the zones of 120E and 123E (EPSG:4549 and 4550, the edge at 121.5E): a file drawn in 4550
    is told 4550, not the 4547 of the general advice."""
    city = shapely.box(120.86, 30.68, 122.2, 31.87)
    units = gpd.GeoDataFrame({"code": ["310100"], "name": ["上海市"]}, geometry=[city], crs=4490)
    import_districts(session, write(units, tmp_path / "shanghai.geojson", driver="GeoJSON"))
    footprints = gpd.read_file(BUND_BUILDINGS).iloc[:40][["geometry"]].to_crs(4550)
    footprints["code"] = [f"310101{i:03d}" for i in range(len(footprints))]
    footprints["name"] = "黄浦区"
    path = without_prj(footprints.iloc[:1], tmp_path / "huangpu.shp")
    with pytest.raises(ValidationError) as info:  # the admin import asks the same
        import_districts(session, path)
    english = info.value.render("en")
    assert "zone EPSG:4549 (120°E) / EPSG:4550 (123°E), and in EPSG:4550 these coordinates fall on the city" in english


def test_metres_of_another_city_are_told_they_fall_on_none_of_its_zones(session, tmp_path):
    shenzhen(session, tmp_path)
    footprints = gpd.read_file(BUND_BUILDINGS).iloc[:20][["geometry"]].to_crs(4549)
    footprints["code"] = [f"B{i}" for i in range(len(footprints))]
    path = without_prj(footprints, tmp_path / "bund.shp")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    english = info.value.render("en")
    assert "zone EPSG:4547 (114°E), but in none of them do these coordinates fall within 50 km of the city" in english
    assert "--src-crs EPSG:4547" not in english


def test_csv_rows_in_metres_are_told_the_citys_zone_too(session, tmp_path):
    shenzhen(session, tmp_path)
    cafes = gpd.read_file(CAFES).to_crs(4547)
    path = tmp_path / "cafes.csv"
    path.write_text("code,x,y\n" + "".join(f"C{i},{p.x:.3f},{p.y:.3f}\n" for i, p in enumerate(cafes.geometry)))
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path, mapping={"code": "code", "lon": "x", "lat": "y"})
    first = info.value.problems[0]["message"]
    assert "are not longitude/latitude degrees" in first
    assert "in EPSG:4547 these coordinates fall on the city: give --src-crs EPSG:4547" in first


def test_the_zones_of_a_city_run_from_its_western_to_its_eastern_edge():
    assert city_zones((113.75, 22.4, 114.62, 22.86)) == [4547]
    assert city_zones((120.86, 30.68, 122.2, 31.87)) == [4549, 4550]
    assert city_zones((-76.7, 39.2, -76.5, 39.4)) == []  # Baltimore: no CGCS2000 zone to offer


def test_metres_under_a_lon_lat_prj_are_told_the_citys_zone_too(session, tmp_path):
    """A .prj of EPSG:4490 over Gauss-Kruger metres (the export's default CRS stamped on the surveyors' file)."""
    shenzhen(session, tmp_path)
    cafes = gpd.read_file(CAFES).to_crs(4547)
    cafes["code"] = [f"C{i}" for i in range(len(cafes))]
    path = tmp_path / "cafes.shp"
    cafes[["code", "geometry"]].set_crs(4490, allow_override=True).to_file(path, encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    first = info.value.problems[0]["message"]
    assert "lie outside China" in first and "in EPSG:4547 these coordinates fall on the city" in first
