"""GCJ-02 conversion and Gauss-Kruger zone lookup (pure functions, no database)."""

import warnings

import numpy as np
import pyproj
import pytest
import shapely

from gridkit.coords import (
    gauss_kruger_epsg,
    gcj02_to_wgs84,
    out_of_china,
    transform_geometry_cgcs2000_to_gcj02,
    transform_geometry_gcj02_to_cgcs2000,
    wgs84_to_gcj02,
)

SHENZHEN = (114.06, 22.54)  # Futian, near the civic centre


def test_known_shenzhen_offset():
    lon, lat = wgs84_to_gcj02(*SHENZHEN)
    assert isinstance(lon, float) and isinstance(lat, float)
    # Published value for Shenzhen: about +0.005 degrees lon, -0.0028 degrees lat (~500 m).
    assert lon - SHENZHEN[0] == pytest.approx(0.0051, abs=0.0004)
    assert lat - SHENZHEN[1] == pytest.approx(-0.0027, abs=0.0004)


def test_round_trip_scalar():
    lon, lat = gcj02_to_wgs84(*wgs84_to_gcj02(*SHENZHEN))
    assert abs(lon - SHENZHEN[0]) < 1e-7
    assert abs(lat - SHENZHEN[1]) < 1e-7


def test_round_trip_vectorised_over_china():
    rng = np.random.default_rng(2026)
    lon = rng.uniform(73.0, 135.0, 20_000)
    lat = rng.uniform(18.0, 53.0, 20_000)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert gcj_lon.shape == lon.shape
    back_lon, back_lat = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert np.max(np.abs(back_lon - lon)) < 1e-6
    assert np.max(np.abs(back_lat - lat)) < 1e-6
    # The inversion is in fact much better than the 1e-7 promised.
    assert np.max(np.abs(back_lon - lon)) < 1e-9


def test_inverse_of_gcj_point_reproduces_it():
    gcj = (114.065116, 22.537286)
    wgs = gcj02_to_wgs84(*gcj)
    again = wgs84_to_gcj02(*wgs)
    assert abs(again[0] - gcj[0]) < 1e-9 and abs(again[1] - gcj[1]) < 1e-9


def test_broadcasts_and_keeps_shape():
    lon = np.full((2, 3), 114.0)
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, 22.5)
    assert gcj_lon.shape == (2, 3) and gcj_lat.shape == (2, 3)
    back_lon, _ = gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert back_lon.shape == (2, 3)


def test_empty_arrays():
    lon, lat = gcj02_to_wgs84(np.array([]), np.array([]))
    assert lon.shape == (0,) and lat.shape == (0,)


@pytest.mark.parametrize("point", [(2.35, 48.85), (-74.0, 40.7), (151.2, -33.9), (100.0, 0.5)])
def test_outside_china_is_identity(point):
    assert out_of_china(*point)
    assert wgs84_to_gcj02(*point) == point
    assert gcj02_to_wgs84(*point) == point


def test_mixed_inside_and_outside():
    lon = np.array([114.06, 2.35])
    lat = np.array([22.54, 48.85])
    gcj_lon, gcj_lat = wgs84_to_gcj02(lon, lat)
    assert gcj_lon[0] != lon[0]
    assert (gcj_lon[1], gcj_lat[1]) == (2.35, 48.85)
    assert out_of_china(lon, lat).tolist() == [False, True]


def test_transform_geometry_polygon():
    gcj = shapely.Polygon([(114.0, 22.5), (114.1, 22.5), (114.1, 22.6), (114.0, 22.6)])
    cgcs = transform_geometry_gcj02_to_cgcs2000(gcj)
    assert cgcs.geom_type == "Polygon" and cgcs.is_valid
    # Moved back by the Shenzhen offset: west and north.
    assert cgcs.bounds[0] == pytest.approx(114.0 - 0.0050, abs=0.0005)
    assert cgcs.bounds[1] == pytest.approx(22.5 + 0.0028, abs=0.0005)
    back = transform_geometry_cgcs2000_to_gcj02(cgcs)
    assert np.max(np.abs(shapely.get_coordinates(back) - shapely.get_coordinates(gcj))) < 1e-9


def test_transform_geometry_keeps_z_and_type():
    point = shapely.Point(114.0, 22.5, 12.0)
    moved = transform_geometry_gcj02_to_cgcs2000(point)
    assert moved.has_z and moved.z == 12.0
    multi = shapely.MultiLineString([[(114.0, 22.5), (114.1, 22.5)], [(113.9, 22.6), (113.95, 22.7)]])
    assert transform_geometry_gcj02_to_cgcs2000(multi).geom_type == "MultiLineString"


def test_gauss_kruger_shenzhen():
    assert gauss_kruger_epsg(114.06) == 4547
    assert gauss_kruger_epsg(113.75) == 4547  # west edge of Shenzhen
    assert gauss_kruger_epsg(114.63) == 4547  # east edge of Shenzhen


def test_gauss_kruger_zone_edges():
    assert gauss_kruger_epsg(75.0) == 4534
    assert gauss_kruger_epsg(73.5) == 4534
    assert gauss_kruger_epsg(115.4999) == 4547
    assert gauss_kruger_epsg(115.5) == 4548  # an edge goes east
    assert gauss_kruger_epsg(135.0) == 4554
    assert gauss_kruger_epsg(136.4) == 4554


@pytest.mark.parametrize("lon", [73.49, 136.5, 2.35, -74.0, float("nan")])
def test_gauss_kruger_outside_china(lon):
    with pytest.raises(ValueError, match="outside China|finite"):
        gauss_kruger_epsg(lon)


def _lon_0(epsg: int) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # to_dict() warns about lossy PROJ strings
        params = pyproj.CRS.from_epsg(epsg).to_dict()
    assert params["proj"] == "tmerc" and params["x_0"] == 500000
    return params["lon_0"]


def test_epsg_4547_is_central_meridian_114():
    assert _lon_0(4547) == 114


def test_every_zone_matches_pyproj():
    for cm in range(75, 136, 3):
        epsg = gauss_kruger_epsg(cm)
        assert _lon_0(epsg) == cm
        crs = pyproj.CRS.from_epsg(epsg)
        assert "CGCS2000" in crs.name and crs.geodetic_crs.to_epsg() == 4490
