"""Admin unit and work cell outlines in vector tiles run exactly along base cell edges.

The test city has ragged boundaries (hundreds of vertices a few metres apart, as surveyed ones
are), communities cut into ~100 m base cells along them, and work cells that are unions of base
cells. Every tile over it from the first zoom with base cells on is decoded (GDAL's MVT driver,
in EPSG:3857, turned back into tile units) and every vertex and every segment midpoint of every
outline must lie on a base cell edge of the same tile: not near it, on it.
"""

from __future__ import annotations

import math
import random

import pyogrio
import pytest
from factories import CITY, DISTRICT, PUBLISHED_AT, STREET, X0, Y0
from geoalchemy2.shape import from_shape
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from shapely.ops import unary_union

from gridkit import tiles
from gridkit.grids import work
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition

DEPT = "100001"
CELL = 0.001  # degrees, ~100 m
COLS, ROWS = 8, 6
WIDTH, HEIGHT = COLS * CELL, ROWS * CELL
MERCATOR_HALF = 20037508.342789244


def ragged(points, rng, amplitude=0.00004, step=0.00002):
    """Return the polyline through `points` densified every `step` degrees with a random wobble."""
    out = [points[0]]
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        for i in range(1, n):
            t = i / n
            out.append((x0 + t * (x1 - x0) + rng.uniform(-amplitude, amplitude), y0 + t * (y1 - y0)))
        out.append((x1, y1))
    return out


def make_ragged_city(session) -> None:
    """City › district › street › two communities split by a ragged line, cells cut along it."""
    rng = random.Random(11)
    split = ragged([(X0 + 3.5 * CELL, Y0), (X0 + 3.5 * CELL, Y0 + HEIGHT)], rng)
    west = Polygon([(X0, Y0), *split, (X0, Y0 + HEIGHT)])
    east = Polygon([(X0 + WIDTH, Y0), (X0 + WIDTH, Y0 + HEIGHT), *reversed(split)])
    assert west.is_valid and east.is_valid
    whole = unary_union([west, east])
    for code, level, parent, geom in (
        (CITY, "city", None, whole),
        (DISTRICT, "district", CITY, whole),
        (STREET, "street", DISTRICT, whole),
        (f"{STREET}001", "community", STREET, west),
        (f"{STREET}002", "community", STREET, east),
    ):
        session.add(
            AdminUnit(
                code=code,
                name=code,
                level=level,
                parent_code=parent,
                geom=from_shape(MultiPolygon([geom]), srid=SRID),
            )
        )
    edition = BaseGridEdition(name="2026", status="published", published_at=PUBLISHED_AT)
    session.add(edition)
    session.flush()
    for community, outline in ((f"{STREET}001", west), (f"{STREET}002", east)):
        seq = 0
        for r in reversed(range(ROWS)):
            for c in range(COLS):
                piece = outline.intersection(
                    box(X0 + c * CELL, Y0 + r * CELL, X0 + (c + 1) * CELL, Y0 + (r + 1) * CELL)
                )
                if piece.is_empty or piece.area < 1e-12:
                    continue
                assert piece.geom_type == "Polygon", piece.geom_type
                seq += 1
                session.add(
                    BaseCell(
                        edition_id=edition.id,
                        code=f"{community}{seq:03d}",
                        community_code=community,
                        geom=from_shape(piece, srid=SRID),
                    )
                )
    session.flush()
    # Work cells: each community in two halves north and south, whole base cells each.
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    version = work.start_draft(session, DEPT, by="test")
    for community in (f"{STREET}001", f"{STREET}002"):
        codes = session.query(BaseCell.code, BaseCell.geom.ST_Centroid().ST_Y()).filter(
            BaseCell.community_code == community
        )
        north = [code for code, y in codes if y > Y0 + HEIGHT / 2]
        south = [code for code, y in codes if y <= Y0 + HEIGHT / 2]
        work.set_members(session, version, f"{DEPT}{community}01", north)
        work.set_members(session, version, f"{DEPT}{community}02", south)
    work.publish(session, version, by="test")


def tile_range(z: int):
    """Return the (x, y) of every tile at zoom z over the test city."""

    def xy(lon, lat):
        n = 2**z
        return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    x0, y1 = xy(X0, Y0)
    x1, y0 = xy(X0 + WIDTH, Y0 + HEIGHT)
    return [(x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def decode(data: bytes, layer: str, path, z: int, x: int, y: int) -> list:
    """Return the geometries of one layer of an MVT tile in tile units (0..EXTENT, y down)."""
    target = path / layer / str(z) / str(x)
    target.mkdir(parents=True, exist_ok=True)
    (target / f"{y}.pbf").write_bytes(data)
    frame = pyogrio.read_dataframe(target / f"{y}.pbf", layer=layer)
    size = 2 * MERCATOR_HALF / 2**z
    left, top = -MERCATOR_HALF + x * size, MERCATOR_HALF - y * size
    scale = tiles.EXTENT / size

    def to_tile(coords):
        return [(round((cx - left) * scale, 6), round((top - cy) * scale, 6)) for cx, cy, *_ in coords]

    out = []
    for geom in frame.geometry:
        polygons = list(geom.geoms) if geom.geom_type == "MultiPolygon" else [geom]
        for polygon in polygons:
            out.append(Polygon(to_tile(polygon.exterior.coords), [to_tile(ring.coords) for ring in polygon.interiors]))
    return out


def outline_points(polygons):
    """Yield every vertex and every segment midpoint of the polygons' rings inside the tile proper."""
    for polygon in polygons:
        for ring in (polygon.exterior, *polygon.interiors):
            coords = list(ring.coords)
            for (ax, ay), (bx, by) in zip(coords, coords[1:], strict=False):
                for px, py in ((ax, ay), ((ax + bx) / 2, (ay + by) / 2)):
                    if 0 <= px <= tiles.EXTENT and 0 <= py <= tiles.EXTENT:
                        yield Point(px, py)


@pytest.mark.parametrize("z", [12, 13, 14, 15, 16])
def test_outlines_lie_on_base_cell_edges(session, tmp_path, z):
    make_ragged_city(session)
    checked = 0
    for x, y in tile_range(z):
        request = tiles.tile_request("base-cells", z, x, y)
        cells = decode(tiles.tile(session, request), "base-cells", tmp_path, z, x, y)
        edges = unary_union([LineString(c.exterior.coords) for c in cells])
        outlines = decode(
            tiles.tile(session, tiles.tile_request("admin-units", z, x, y)), "admin-units", tmp_path, z, x, y
        )
        outlines += decode(
            tiles.tile(session, tiles.tile_request("work-cells", z, x, y, dept=DEPT)), "work-cells", tmp_path, z, x, y
        )
        for point in outline_points(outlines):
            assert edges.distance(point) < 1e-6, (z, x, y, point.wkt, edges.distance(point))
            checked += 1
    assert checked > 100  # ragged outlines: hundreds of vertices per tile
