"""A multipoint with one member of NaN coordinates is told it has no finite coordinates (geometry.vector.
not_convertible), like a NaN vertex of any other feature: GDAL reads such a member as an empty point (NaN, NaN is
WKB's POINT EMPTY), which the check of coordinates did not see, and the subject import then said "is a
MultiPoint" (not a point), blaming the kind of geometry."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from shapely.geometry import Point
from sqlalchemy import func, select

from gridkit.io.problems import problem_text
from gridkit.io.subjects import SubjectImportRefused, import_buildings
from gridkit.io.vector import VectorReadError, read_vector
from gridkit.models import Building
from tests.data.make_subject_files import centre
from tests.factories import make_base_grid


def _geojson(path, member: str, x: float, y: float):
    """Write B0, a multipoint of (x, y) and `member` (JSON text, so NaN can be written), and B1, the point (x, y)."""
    features = (
        f'{{"type": "Feature", "properties": {{"code": "B0"}}, "geometry": '
        f'{{"type": "MultiPoint", "coordinates": [[{x}, {y}], {member}]}}}}, '
        f'{{"type": "Feature", "properties": {{"code": "B1"}}, "geometry": '
        f'{{"type": "Point", "coordinates": [{x}, {y}]}}}}'
    )
    path.write_text(f'{{"type": "FeatureCollection", "features": [{features}]}}', encoding="utf-8")
    return path


def _geopackage(path, x: float, y: float):
    """Write the same in a GeoPackage, whose WKB holds the member as NaN, NaN."""
    member = shapely.set_coordinates(shapely.MultiPoint([(x, y), (x, y)]), np.array([[x, y], [np.nan, np.nan]]))
    frame = gpd.GeoDataFrame({"code": ["B0", "B1"]}, geometry=[member, Point(x, y)], crs=4490)
    frame.to_file(path, driver="GPKG")
    return path


@pytest.mark.parametrize("member", ["[NaN, NaN]", "[NaN, 22.53]"])
def test_read_vector_names_a_multipoint_member_of_no_number(tmp_path, member):
    path = _geojson(tmp_path / "points.geojson", member, 114.05, 22.53)
    with pytest.raises(VectorReadError) as info:
        read_vector(path, code_field="code")
    [found] = info.value.problems
    assert found["kind"] == "not_convertible" and found["index"] == 0, found
    assert found["message"].startswith("points.geojson, feature 0 (code B0): has coordinates that are not finite")
    assert "不是有限数值" in problem_text(found, "zh-CN")


@pytest.mark.parametrize("kind", ["geojson", "gpkg"])
def test_a_building_at_a_multipoint_with_a_nan_member_is_not_called_a_multipoint(session, tmp_path, kind):
    make_base_grid(session)
    x, y = centre(0)
    if kind == "geojson":
        path = _geojson(tmp_path / "buildings.geojson", "[NaN, NaN]", x, y)
    else:
        path = _geopackage(tmp_path / "buildings.gpkg", x, y)
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    [found] = info.value.problems
    assert found["kind"] == "not_convertible" and found["index"] in (0, 1), found  # GeoPackage fids start at 1
    assert "not finite" in found["message"] and "MultiPoint" not in found["message"]
    assert session.scalar(select(func.count()).select_from(Building)) == 0
