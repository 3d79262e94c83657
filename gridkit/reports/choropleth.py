"""A count per base cell or community as GeoJSON, for the analyst's choropleth map (lon/lat)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.io.export_layers import LAYERS, build_query
from gridkit.layers import PRECISION

COUNTS = ("residents", "registered", "floating", "buildings", "entities", "incidents", "open_incidents")
LEVELS = ("cell", "community")
# Outline simplification of communities in degrees (~10 m): invisible at community zoom.
TOLERANCE = 0.0001


def choropleth(session: Session, count: str, by: str = "community", *, area: str | None = None) -> dict:
    """Return a FeatureCollection of units (code, name, value) with the count asked, and min/max."""
    if count not in COUNTS:
        raise ValidationError("report.unknown_count", count=count, counts=", ".join(COUNTS))
    if by not in LEVELS:
        raise ValidationError("report.unknown_grouping", by=by, groupings=", ".join(LEVELS))
    query = build_query(session, LAYERS["cell-stats"], area=area)
    # `count` was checked against COUNTS: a fixed column name.
    if by == "cell":
        sql = (
            f"SELECT s.code, NULL::text AS name, s.{count} AS value, "
            f"ST_AsGeoJSON(s._geom, {PRECISION}) AS g FROM ({query.sql}) s ORDER BY s.code"
        )
    else:
        sql = (
            f"SELECT a.code, a.name, t.value, ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, {TOLERANCE}), "
            f"{PRECISION}) AS g FROM (SELECT s.community_code AS code, sum(s.{count})::int AS value "
            f"FROM ({query.sql}) s GROUP BY s.community_code) t JOIN admin_unit a ON a.code = t.code "
            "ORDER BY a.code"
        )
    import json

    features = [
        {
            "type": "Feature",
            "id": code,
            "geometry": json.loads(g),
            "properties": {"code": code, "name": name, "value": value},
        }
        for code, name, value, g in session.execute(text(sql), query.params)
    ]
    values = [f["properties"]["value"] for f in features]
    return {
        "type": "FeatureCollection",
        "count": count,
        "by": by,
        "min": min(values) if values else 0,
        "max": max(values) if values else 0,
        "features": features,
    }
