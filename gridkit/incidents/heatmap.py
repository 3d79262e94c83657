"""Incident density for maps, aggregated in PostGIS: square bins per zoom, and counts per cell.

Never raw points: a million cases at city zoom come back as a few thousand bins. A bin is
BIN_PIXELS screen pixels wide at the requested web-map zoom; its index (ix, iy) is
floor(lon / size), floor(lat / size) in the storage SRID's degrees, so bins of one zoom line up
across requests and the browser computes the corners itself.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.actors import Actor
from gridkit.rules import IncidentState, parse_time

BIN_PIXELS = 24
MIN_ZOOM, MAX_ZOOM = 3, 18
# From this zoom the choropleth shows base cells; below it, communities.
CELL_ZOOM = 14
MAX_BBOX_DEGREES = 40.0


def bin_size(zoom: int) -> float:
    """Return the bin width in degrees at a web-map zoom (256-pixel tiles)."""
    return 360.0 / (256 * 2**zoom) * BIN_PIXELS


def parse_filters(*, from_=None, to=None, category=None, state=None, dept=None, bbox=None, zoom=None) -> dict:
    """Return the checked filters of a heatmap or choropleth request (strings as from a URL)."""
    start, end = parse_time(from_ or None, field="from"), parse_time(to or None, field="to")
    if start and end and start >= end:
        raise ValidationError("incident.bad_period", start=start.isoformat(), end=end.isoformat())
    if state and state not in set(IncidentState):
        raise ValidationError("incident.bad_state", state=state, allowed=", ".join(IncidentState))
    try:
        zoom = int(zoom) if zoom not in (None, "") else 11
    except (TypeError, ValueError):
        raise ValidationError("incident.bad_zoom", zoom=zoom) from None
    zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
    box = None
    if bbox:
        try:
            box = [float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)]
        except ValueError:
            box = []
        if (
            len(box) != 4
            or not (box[0] < box[2] and box[1] < box[3])
            or box[2] - box[0] > MAX_BBOX_DEGREES
            or box[3] - box[1] > MAX_BBOX_DEGREES
        ):
            raise ValidationError("incident.bad_bbox", bbox=bbox)
    return {
        "start": start,
        "end": end,
        "category": category or None,
        "state": state or None,
        "dept": dept or None,
        "bbox": box,
        "zoom": zoom,
    }


def _where(f: dict, actor: Actor | None) -> tuple[str, dict]:
    clauses, params = ["i.lon IS NOT NULL"], {}
    for key, sql in (
        ("start", "i.reported_at >= :start"),
        ("end", "i.reported_at < :end"),
        ("category", "i.category_code = :category"),
        ("state", "i.status = :state"),
        ("dept", "i.dept_code = :dept"),
    ):
        if f.get(key) is not None:
            clauses.append(sql)
            params[key] = f[key]
    if f.get("bbox"):
        # && lets a small view use the GiST index; the plain numbers keep a city-wide scan cheap.
        clauses.append(
            "i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490) "
            "AND i.lon BETWEEN :x0 AND :x1 AND i.lat BETWEEN :y0 AND :y1"
        )
        params.update(zip(("x0", "y0", "x1", "y1"), f["bbox"]))
    if actor is not None and actor.scope_code:
        clauses.append("i.base_cell_id IN (SELECT id FROM base_cell WHERE community_code LIKE :scope)")
        params["scope"] = f"{actor.scope_code}%"
    return " AND ".join(clauses), params


def heatmap(session: Session, filters: dict, actor: Actor | None = None) -> dict:
    """Return {"zoom", "size", "total", "max", "bins": [[ix, iy, count], …]} for the filters."""
    where, params = _where(filters, actor)
    size = bin_size(filters["zoom"])
    rows = session.execute(
        text(f"""
        SELECT floor(i.lon / :size)::int AS ix, floor(i.lat / :size)::int AS iy, count(*) AS n
        FROM incident i WHERE {where} GROUP BY 1, 2"""),
        {**params, "size": size},
    ).all()
    bins = [[r.ix, r.iy, r.n] for r in rows]
    return {
        "zoom": filters["zoom"],
        "size": size,
        "total": sum(b[2] for b in bins),
        "max": max((b[2] for b in bins), default=0),
        "bins": bins,
    }


def choropleth(session: Session, filters: dict, actor: Actor | None = None) -> dict:
    """Return a GeoJSON FeatureCollection of counts per base cell (zoom ≥ CELL_ZOOM) or per community,
    only areas with at least one case, geometry simplified for the zoom."""
    where, params = _where(filters, actor)
    tolerance = bin_size(filters["zoom"]) / BIN_PIXELS
    if filters["zoom"] >= CELL_ZOOM:
        sql = f"""
            WITH c AS (SELECT i.base_cell_id AS id, count(*) AS n FROM incident i
                       WHERE {where} AND i.base_cell_id IS NOT NULL GROUP BY 1)
            SELECT b.code, b.community_code AS name, c.n,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(b.geom, :tol), 6) AS geometry
            FROM c JOIN base_cell b ON b.id = c.id"""
        level = "base_cell"
    else:
        sql = f"""
            WITH c AS (SELECT b.community_code AS code, count(*) AS n FROM incident i
                       JOIN base_cell b ON b.id = i.base_cell_id WHERE {where} GROUP BY 1)
            SELECT a.code, a.name, c.n, ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), 6) AS geometry
            FROM c JOIN admin_unit a ON a.code = c.code"""
        level = "community"
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(r.geometry),
            "properties": {"code": r.code, "name": r.name, "count": r.n},
        }
        for r in session.execute(text(sql), {**params, "tol": tolerance})
    ]
    return {
        "type": "FeatureCollection",
        "level": level,
        "features": features,
        "max": max((f["properties"]["count"] for f in features), default=0),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
