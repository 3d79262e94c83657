"""Map layers built in PostGIS: GeoJSON of admin units and base cells, extent, summary counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from factories import CITY, DISTRICT, STREET, X0, Y0, D, make_base_grid
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, Polygon, shape

from gridkit import layers
from gridkit.counts import city_counts
from gridkit.errors import NotFound, ValidationError
from gridkit.models import (
    SRID,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Coordinator,
    Department,
    Incident,
    WorkCell,
    WorkGridVersion,
)
from tests.factories import CITY, DISTRICT, STREET, X0, Y0, D, make_base_grid
from web.params import parse_bbox

COMMUNITY = f"{STREET}001"


def _inner_bbox(col0, row0, col1, row1):
    """A bbox strictly inside cells [col0..col1] × [row0..row1] (row 0 = south), touching no other cell."""
    eps = D / 10
    return (X0 + col0 * D + eps, Y0 + row0 * D + eps, X0 + (col1 + 1) * D - eps, Y0 + (row1 + 1) * D - eps)


def test_admin_units_geojson_levels_and_properties(session):
    make_base_grid(session)
    everything = layers.admin_units_geojson(session)
    assert everything["type"] == "FeatureCollection"
    assert [f["properties"]["code"] for f in everything["features"]] == [CITY, DISTRICT, STREET, COMMUNITY]
    communities = layers.admin_units_geojson(session, level="community")
    (feature,) = communities["features"]
    assert feature["type"] == "Feature"
    assert feature["properties"] == {
        "code": COMMUNITY,
        "name": "测试1社区",
        "level": "community",
        "parent_code": STREET,
    }
    assert feature["geometry"]["type"] == "MultiPolygon"
    assert shape(feature["geometry"]).bounds == pytest.approx((X0, Y0, X0 + 3 * D, Y0 + 3 * D))
    assert [f["properties"]["code"] for f in layers.admin_units_geojson(session, parent=DISTRICT)["features"]] == [
        STREET
    ]
    json.dumps(everything)  # plain data, ready for the web


def test_admin_units_geojson_simplifies_and_rounds(session):
    # A square with 400 collinear-ish wiggles of 1 cm along its south edge.
    south = [(X0 + i * 0.00001, Y0 + (i % 2) * 1e-7) for i in range(400)]
    ring = south + [(X0 + 0.01, Y0), (X0 + 0.01, Y0 + 0.01), (X0, Y0 + 0.01)]
    session.add(
        AdminUnit(code=CITY, name="深圳市", level="city", geom=from_shape(MultiPolygon([Polygon(ring)]), srid=SRID))
    )
    session.flush()
    (simplified,) = layers.admin_units_geojson(session)["features"]
    assert len(simplified["geometry"]["coordinates"][0][0]) <= 6
    (exact,) = layers.admin_units_geojson(session, tolerance=0)["features"]
    coords = exact["geometry"]["coordinates"][0][0]
    assert len(coords) > 300
    assert all(len(repr(v).split(".")[-1]) <= 6 for xy in coords for v in xy)


def test_admin_units_geojson_refuses_bad_input(session):
    with pytest.raises(ValidationError, match="admin level"):
        layers.admin_units_geojson(session, level="province")
    with pytest.raises(NotFound, match="999999"):
        layers.admin_units_geojson(session, parent="999999")
    with pytest.raises(ValidationError, match="tolerance"):
        layers.admin_units_geojson(session, tolerance=-1)
    assert layers.admin_units_geojson(session) == {"type": "FeatureCollection", "features": []}


def test_base_cells_geojson_in_bbox(session):
    edition = make_base_grid(session)
    everything = layers.base_cells_geojson(session)
    assert len(everything["features"]) == 9
    assert everything["edition"] == {"id": edition.id, "name": "2026", "status": "published"}
    # The south-west 2×2 block: cells 4, 5 (middle row) and 7, 8 (south row), north→south numbering.
    some = layers.base_cells_geojson(session, bbox=_inner_bbox(0, 0, 1, 1))
    assert [f["properties"]["code"] for f in some["features"]] == [f"{COMMUNITY}{n:03d}" for n in (4, 5, 7, 8)]
    props = some["features"][0]["properties"]
    assert props["community_code"] == COMMUNITY and props["community_name"] == "测试1社区"
    # 0.001° × 0.001° at 22.53°N on the CGCS2000 ellipsoid: ~110.8 m × ~102.8 m.
    assert props["area_m2"] == pytest.approx(11390, rel=0.01)
    assert shape(some["features"][0]["geometry"]).area == pytest.approx(D * D)
    assert layers.base_cells_geojson(session, bbox=(0, 0, 1, 1))["features"] == []


def test_base_cells_geojson_edition_choice(session):
    make_base_grid(session, edition="2025", status="retired")
    newer = BaseGridEdition(name="2027", status="draft")
    session.add(newer)
    session.flush()
    session.add(
        BaseCell(
            edition_id=newer.id,
            code=f"{COMMUNITY}001",
            community_code=COMMUNITY,
            geom=from_shape(Polygon([(X0, Y0), (X0 + D, Y0), (X0 + D, Y0 + D)]), srid=SRID),
        )
    )
    session.flush()
    # No published edition: the newest one.
    assert layers.base_cells_geojson(session)["edition"]["name"] == "2027"
    assert len(layers.base_cells_geojson(session)["features"]) == 1
    old = session.query(BaseGridEdition).filter_by(name="2025").one()
    assert len(layers.base_cells_geojson(session, edition_id=old.id)["features"]) == 9
    with pytest.raises(NotFound, match="edition 123456"):
        layers.base_cells_geojson(session, edition_id=123456)


def test_base_cells_geojson_refuses_too_many_instead_of_truncating(session):
    make_base_grid(session)
    assert len(layers.base_cells_geojson(session, limit=9)["features"]) == 9
    with pytest.raises(ValidationError, match="More than 8 base cells.*zoom in"):
        layers.base_cells_geojson(session, limit=8)


def test_base_cells_geojson_without_any_edition(session):
    assert layers.base_cells_geojson(session) == {
        "type": "FeatureCollection",
        "edition": None,
        "numberMatched": 0,
        "numberReturned": 0,
        "features": [],
    }


def test_base_cells_geojson_pages_with_offset(session):
    make_base_grid(session)
    first = layers.base_cells_geojson(session, limit=4, offset=0)
    assert (first["numberMatched"], first["numberReturned"]) == (9, 4)
    rest = layers.base_cells_geojson(session, limit=4, offset=4)
    last = layers.base_cells_geojson(session, limit=4, offset=8)
    codes = [f["id"] for page in (first, rest, last) for f in page["features"]]
    assert codes == sorted(codes) and len(set(codes)) == 9
    for bad in ({"limit": 0}, {"limit": layers.CELL_LIMIT + 1}, {"offset": -1}):
        with pytest.raises(ValidationError):
            layers.base_cells_geojson(session, **bad)


@pytest.mark.parametrize(
    "text", ["", "1,2,3", "a,b,c,d", "1,2,3,4,5", "114,22,nan,23", "200,22,201,23", "114.1,22,114.0,23"]
)
def test_parse_bbox_refuses_malformed(text):
    with pytest.raises(ValidationError, match="bbox"):
        parse_bbox(text)


def test_parse_bbox():
    assert parse_bbox(" 114.05, 22.53,114.06 ,22.54") == (114.05, 22.53, 114.06, 22.54)


def test_map_extent(session):
    assert layers.map_extent(session) is None
    make_base_grid(session, rows=2, cols=3)
    assert layers.map_extent(session) == pytest.approx((X0, Y0, X0 + 3 * D, Y0 + 2 * D))


def test_map_extent_falls_back_to_admin_units(session):
    session.add(
        AdminUnit(
            code=CITY,
            name="深圳市",
            level="city",
            geom=from_shape(MultiPolygon([Point(114, 22.5).buffer(0.1, 4)]), srid=SRID),
        )
    )
    session.flush()
    assert layers.map_extent(session) == pytest.approx((113.9, 22.4, 114.1, 22.6))


def test_summary_counts(session):
    empty = city_counts(session)
    assert empty["base_cells"] == 0 and empty["edition"] is None and empty["incidents"] == {"open": 0, "total": 0}
    edition = make_base_grid(session, communities=2)
    dept = Department(code="100001", name="城管")
    session.add(dept)
    session.flush()
    now = datetime.now(UTC)
    current = WorkGridVersion(
        dept_code=dept.code,
        number=2,
        status="published",
        base_edition_id=edition.id,
        valid_from=now - timedelta(days=1),
    )
    old = WorkGridVersion(
        dept_code=dept.code,
        number=1,
        status="retired",
        base_edition_id=edition.id,
        valid_from=now - timedelta(days=9),
        valid_to=now - timedelta(days=1),
    )
    session.add_all([current, old])
    session.flush()
    session.add_all(
        [WorkCell(version_id=current.id, code=f"100001{COMMUNITY}{i:02d}") for i in (1, 2, 3)]
        + [WorkCell(version_id=old.id, code=f"100001{COMMUNITY}01")]
    )
    session.add_all([Coordinator(name="张三"), Coordinator(name="李四", active=False)])
    where = from_shape(Point(X0 + D / 2, Y0 + D / 2), srid=SRID)
    session.add_all(
        [
            Incident(code=f"E{i}", status=status, geom=where, reported_at=now)
            for i, status in enumerate(["reported", "dispatched", "closed", "rejected"])
        ]
    )
    session.flush()
    got = city_counts(session)
    assert got == {
        "city": "深圳市",
        "city_en": None,
        "districts": 1,
        "streets": 1,
        "communities": 2,
        "edition": {"id": edition.id, "name": "2026", "status": "published"},
        "base_cells": 18,
        "departments": 1,
        "work_cells": 3,
        "coordinators": 1,
        "buildings": 0,
        "residents": 0,
        "legal_entities": 0,
        "incidents": {"open": 2, "total": 4},
    }
