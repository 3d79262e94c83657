"""A bbox over the public points of cases and buildings (what the OGC API's collections and the layer
queries filter on) is served by an index, not by reading every row (migration 20261206_scale8b)."""

from __future__ import annotations

import pytest
from factories_exports import make_city
from sqlalchemy import text

from gridkit.io import export_features
from gridkit.io.export_layers import LAYERS, build_query


@pytest.mark.parametrize(
    ("layer", "index"), [("incidents", "ix_incident_public_location"), ("buildings", "ix_building_point")]
)
def test_a_bbox_on_a_layers_public_point_uses_its_index(session, layer, index):
    make_city(session)
    query = build_query(session, LAYERS[layer])
    envelope = "ST_MakeEnvelope(114.0, 22.0, 115.0, 23.0, 4490)"
    # Few rows here: with sequential scans priced out, the planner takes the index if it matches the expression.
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(
        session.scalars(
            text(f"EXPLAIN SELECT count(*) FROM ({query.sql}) f WHERE ST_Intersects(f._geom, {envelope})"), query.params
        )
    )
    assert index in plan, plan


def test_the_ogc_collections_bbox_finds_the_same_features(session):
    facts = make_city(session)
    for cid in ("incidents", "buildings"):
        c = export_features.collection(session, cid)
        everything, matched = export_features.items(session, c, limit=1000, bbox=(100.0, 10.0, 130.0, 40.0))
        assert matched == len(everything) == facts[cid]
        none, matched = export_features.items(session, c, limit=1000, bbox=(0.0, 0.0, 1.0, 1.0))
        assert matched == len(none) == 0
