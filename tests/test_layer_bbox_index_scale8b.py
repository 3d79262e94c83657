"""A bbox over the public points of cases and buildings (what the OGC API's collections and the layer
queries filter on) is served by an index, not by reading every row (migration 20261206_scale8b)."""

from __future__ import annotations

import pytest
from factories_exports import make_city
from sqlalchemy import text

from gridkit.io import export_features
from gridkit.io.export_layers import LAYERS, build_query


@pytest.mark.parametrize(
    ("layer", "indexes"),
    [("incidents", ["ix_incident_public_location"]), ("buildings", ["idx_building_geom", "idx_building_footprint"])],
)
def test_a_bbox_on_a_layers_public_point_uses_its_index(session, layer, indexes):
    make_city(session)
    query = build_query(session, LAYERS[layer])
    envelope = "ST_MakeEnvelope(114.0, 22.0, 115.0, 23.0, 4490)"
    bbox_sql = LAYERS[layer].bbox_sql.format(box=envelope) + " AND " if LAYERS[layer].bbox_sql else ""
    # Few rows here: with sequential scans priced out, the planner takes the index if it matches the expression.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        session.scalars(
            text(f"EXPLAIN SELECT count(*) FROM ({query.sql}) f WHERE {bbox_sql}ST_Intersects(f._geom, {envelope})"),
            query.params,
        )
    )
    assert all(index in plan for index in indexes), plan


def test_the_ogc_collections_bbox_finds_the_same_features(session):
    facts = make_city(session)
    for cid in ("incidents", "buildings"):
        c = export_features.collection(session, cid)
        everything, matched = export_features.items(session, c, limit=1000, bbox=(100.0, 10.0, 130.0, 40.0))
        assert matched == len(everything) == facts[cid]
        none, matched = export_features.items(session, c, limit=1000, bbox=(0.0, 0.0, 1.0, 1.0))
        assert matched == len(none) == 0


def test_a_building_drawn_only_as_a_footprint_is_found_by_the_point_on_it(session):
    from geoalchemy2.shape import from_shape
    from shapely.geometry import MultiPolygon, box

    from gridkit.models import Building
    from gridkit.rules import SRID

    make_city(session)
    footprint = MultiPolygon([box(114.3001, 22.3001, 114.3003, 22.3003)])
    session.add(Building(code="FOOTPRINT-ONLY", footprint=from_shape(footprint, srid=SRID)))
    session.flush()
    c = export_features.collection(session, "buildings")
    found, matched = export_features.items(session, c, limit=10, bbox=(114.3, 22.3, 114.31, 22.31))
    assert matched == 1 and [f["id"] for f in found] == ["FOOTPRINT-ONLY"]
    assert found[0]["geometry"]["type"] == "Point"
    # A box touching the footprint but not the point on it finds nothing (the prefilter is only a prefilter).
    _, matched = export_features.items(session, c, limit=10, bbox=(114.3, 22.3, 114.30011, 22.30011))
    assert matched == 0
