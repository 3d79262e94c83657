"""Helpers for the generation tests: shapes, tiling checks, the Shanghai sample, stored cells.

THREE_COMMUNITIES: three irregular communities drawn over the Shanghai Bund OSM sample (lon/lat,
EPSG:4490). Not the sample's tiles: a west community along the Bund, a north-east one over
Lujiazui and a south-east one, meeting along broken lines that share their vertices exactly (they
tile their union), each ~2–3 km², the Huangpu running through all three.
"""

import json

import numpy as np
import shapely
from geoalchemy2.shape import to_shape
from shapely.geometry import LineString, Point, Polygon, box
from sqlalchemy import func, select

from gridkit.models import AdminUnit, BaseCell
from tests.conftest import SHARED_DATA

THREE_COMMUNITIES = {
    "310101001001": (
        "外滩社区",
        Polygon(
            [
                (121.4830, 31.2290),
                (121.4990, 31.2280),
                (121.4975, 31.2330),
                (121.5010, 31.2390),
                (121.4995, 31.2440),
                (121.5020, 31.2495),
                (121.4840, 31.2470),
            ]
        ),
    ),
    "310101001002": (
        "陆家嘴社区",
        Polygon(
            [
                (121.5010, 31.2390),
                (121.5100, 31.2370),
                (121.5185, 31.2390),
                (121.5190, 31.2480),
                (121.5020, 31.2495),
                (121.4995, 31.2440),
            ]
        ),
    ),
    "310101001003": (
        "浦东南路社区",
        Polygon(
            [
                (121.4990, 31.2280),
                (121.5180, 31.2300),
                (121.5185, 31.2390),
                (121.5100, 31.2370),
                (121.5010, 31.2390),
                (121.4975, 31.2330),
            ]
        ),
    ),
}


SQUARE = box(0, 0, 1000, 1000)
CROSS = [LineString([(500, -10), (500, 1010)]), LineString([(-10, 500), (1010, 500)])]


def assert_tiles(cells, community, rel=1e-9, abs_=0.01):
    """Cells are valid single polygons, cover the community exactly and share edges vertex for vertex.

    The tolerance is the larger of abs_ (m² for metric cells) and rel × the community's area.
    """
    polygons = [getattr(c, "polygon", c) for c in cells]
    assert all(p.geom_type == "Polygon" and p.is_valid for p in polygons)
    tolerance = max(abs_, rel * community.area)
    union = shapely.union_all(polygons)
    assert union.symmetric_difference(community).area <= tolerance
    assert abs(sum(p.area for p in polygons) - community.area) <= tolerance  # no overlaps
    # A valid coverage: no overlaps, and every shared edge has the same vertices on both sides.
    assert shapely.coverage_is_valid(polygons)


def grid_points(x0, y0, x1, y1, nx, ny):
    """Return nx × ny points evenly inside the box (never on its edges)."""
    xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
    ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    return [Point(x, y) for x in xs for y in ys]


BUND = SHARED_DATA / "shanghai-bund-osm"
BUND_EPSG = 4550  # CGCS2000 Gauss-Kruger zone of the sample's centre (121.50E → CM 123E)


# ---------------------------------------------------------------------------------- database


def write_roads(tmp_path, lines_lonlat, name="roads.geojson", props=None):
    """Write lon/lat lines as a GeoJSON file (EPSG:4326, which GDAL assumes for GeoJSON)."""
    features = [
        {
            "type": "Feature",
            "properties": (props or {}),
            "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]},
        }
        for line in lines_lonlat
    ]
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def stored_cells(session, edition_id, community):
    rows = session.execute(
        select(BaseCell.code, BaseCell.geom)
        .where(BaseCell.edition_id == edition_id, BaseCell.community_code == community)
        .order_by(BaseCell.code)
    ).all()
    return [(code, to_shape(geom)) for code, geom in rows]


def geography_area(session, geom_sql) -> float:
    """Return the area in m² (on the ellipsoid) of a geometry SQL expression."""
    return session.scalar(select(func.ST_Area(func.Geography(geom_sql))))


def community_geom(code):
    return select(AdminUnit.geom).where(AdminUnit.code == code).scalar_subquery()
