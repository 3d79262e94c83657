"""Exports to an old datum (Beijing 1954) with the seven parameters of a surveying department, through the rule of
imports (gridkit.io.crs: via WGS 84, where PROJ applies them): real Shenzhen districts (../shared/data) come back
through GDAL (ogr2ogr, pyogrio) where they are, to the millimetre; without the parameters they are still refused,
with the advice imports give."""

from __future__ import annotations

import json
import subprocess

import geopandas as gpd
import numpy as np
import pyogrio
import pyproj
import pytest
import shapely
from sqlalchemy import func, select

from gridkit.errors import ValidationError
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.vector import read_vector
from gridkit.models import AdminUnit
from tests.test_crs_crs8c import BEIJING54_GK114, WITH_PARAMETERS, districts, import_districts, write

BOUND = pyproj.CRS(WITH_PARAMETERS)


def surveyed_in_beijing54(tmp_path):
    """Return the real districts as a surveying department delivers them: Beijing 1954 GK 114E, no .prj."""
    to_beijing54 = pyproj.Transformer.from_crs(4326, BOUND, always_xy=True)
    truth = districts()
    moved = shapely.transform(truth.geometry.values, lambda xy: np.column_stack(to_beijing54.transform(*xy.T)))
    return truth.set_geometry(moved, crs=None)


def stored(session) -> dict:
    rows = session.execute(select(AdminUnit.code, func.ST_AsBinary(AdminUnit.geom))).all()
    return {code: shapely.from_wkb(bytes(wkb)) for code, wkb in rows}


def exported(tmp_path, fmt: str) -> str:
    return str(tmp_path / "back.gpkg") if fmt == "gpkg" else f"/vsizip/{tmp_path / 'back.zip'}/admin-units.shp"


@pytest.mark.parametrize("fmt", ["shp", "gpkg"])
def test_an_export_with_the_seven_parameters_gives_the_file_the_department_delivered(session, tmp_path, fmt):
    delivered = surveyed_in_beijing54(tmp_path)
    import_districts(session, write(delivered, tmp_path / "districts.shp"), src_crs=WITH_PARAMETERS)
    target = tmp_path / ("back.gpkg" if fmt == "gpkg" else "back.zip")
    result = export_layer(session, ExportOptions("admin-units", fmt, target, crs=WITH_PARAMETERS))
    assert "+towgs84=15.8,-154.4,-82.3" in result["crs"]
    path = exported(tmp_path, fmt)
    # The file's CRS, as GDAL reads it, carries the parameters (an Esri .prj would have dropped them).
    assert pyproj.CRS(pyogrio.read_info(path)["crs"]).to_wkt("WKT1_GDAL").count("TOWGS84[15.8,-154.4,-82.3") == 1
    back = gpd.read_file(path).set_index("code").geometry
    for code, geom in zip(delivered["code"], delivered.geometry):
        corners = shapely.points(shapely.get_coordinates(geom))
        assert shapely.distance(corners, back[code].boundary).max() < 0.001  # metres, in Beijing 1954 GK


@pytest.mark.parametrize("fmt", ["shp", "gpkg"])
def test_gdal_takes_the_exported_file_back_to_wgs84_where_the_districts_are(session, tmp_path, fmt):
    import_districts(session, write(districts(), tmp_path / "districts.geojson", driver="GeoJSON"))
    target = tmp_path / ("back.gpkg" if fmt == "gpkg" else "back.zip")
    export_layer(session, ExportOptions("admin-units", fmt, target, crs=WITH_PARAMETERS))
    out = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "/vsistdout/", "-t_srs", "EPSG:4326", exported(tmp_path, fmt)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    features = {f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in json.loads(out)["features"]}
    to_metres = pyproj.Transformer.from_crs(4326, 4547, always_xy=True)
    metres = lambda g: shapely.transform(g, lambda xy: np.column_stack(to_metres.transform(*xy.T)))  # noqa: E731
    for code, geom in stored(session).items():
        corners = shapely.points(shapely.get_coordinates(metres(geom)))
        # Without the parameters applied both ways GDAL finds them about 50 m off.
        assert shapely.distance(corners, metres(features[code]).boundary).max() < 0.01


def test_gridkit_reads_its_own_export_back_where_it_was(session, tmp_path):
    import_districts(session, write(districts(), tmp_path / "districts.geojson", driver="GeoJSON"))
    export_layer(session, ExportOptions("admin-units", "shp", tmp_path / "back.zip", crs=WITH_PARAMETERS))
    back = read_vector(tmp_path / "back.zip", code_field="code").gdf.set_index("code").geometry
    for code, geom in stored(session).items():
        corners = shapely.points(shapely.get_coordinates(geom))
        assert shapely.distance(corners, back[code].boundary).max() < 1e-7  # degrees: 1 cm


@pytest.mark.parametrize(  # Beijing 1954 GK 114E: by its code, by a PROJ string on the Krassovsky ellipsoid
    ("crs", "datum"), [("EPSG:2435", "on the Beijing 1954 datum"), (BEIJING54_GK114, "Krassovsky")]
)
def test_an_old_datum_without_its_parameters_is_refused_with_the_advice_imports_give(session, tmp_path, crs, datum):
    import_districts(session, write(districts(), tmp_path / "districts.geojson", driver="GeoJSON"))
    with pytest.raises(ValidationError) as info:
        export_layer(session, ExportOptions("admin-units", "shp", tmp_path / "beijing54.zip", crs=crs))
    assert info.value.code == "export.datum_without_shift"
    english = info.value.render("en")
    assert datum in english and '--crs "+proj=tmerc' in english and "+towgs84=dx,dy,dz,rx,ry,rz,ds" in english
    assert "+ellps=krass" in english and "七参数" in info.value.render("zh-CN")
    assert not (tmp_path / "beijing54.zip").exists()


def test_a_geojson_stays_wgs84_lon_lat_whatever_crs_is_given(session, tmp_path):
    import_districts(session, write(districts(), tmp_path / "districts.geojson", driver="GeoJSON"))
    with pytest.raises(ValidationError) as info:
        export_layer(session, ExportOptions("admin-units", "geojson", tmp_path / "x.geojson", crs=WITH_PARAMETERS))
    assert info.value.code == "export.geojson_lonlat"


def test_text_that_is_no_crs_is_an_unknown_crs(session, tmp_path):
    with pytest.raises(ValidationError) as info:
        export_layer(session, ExportOptions("admin-units", "shp", tmp_path / "x.zip", crs="+proj=nonsense"))
    assert info.value.code == "export.unknown_crs"


@pytest.mark.parametrize(
    "crs",
    [
        "+proj=longlat +ellps=krass +nadgrids=/etc/passwd",
        "+init=/etc/passwd:x",
        'BOUNDCRS[SOURCECRS[GEOGCRS["x",DATUM["x",ELLIPSOID["x",6378245,298.3]],CS[ellipsoidal,2],'
        'AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],'
        'TARGETCRS[GEOGCRS["WGS 84",DATUM["World Geodetic System 1984",ELLIPSOID["WGS 84",6378137,298.257223563]],'
        'CS[ellipsoidal,2],AXIS["lat",north],AXIS["lon",east],ANGLEUNIT["degree",0.0174532925199433]]],'
        'ABRIDGEDTRANSFORMATION["x",METHOD["NTv2"],'
        'PARAMETERFILE["Latitude and longitude difference file","/etc/passwd"]]]',
    ],
)
def test_a_crs_naming_a_file_on_the_server_is_refused(session, tmp_path, crs):
    """The export form posts its crs: PROJ would open the files an init or grid parameter names."""
    with pytest.raises(ValidationError) as info:
        export_layer(session, ExportOptions("admin-units", "shp", tmp_path / "x.zip", crs=crs))
    assert info.value.code == "export.unknown_crs"
