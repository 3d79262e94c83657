"""Incident density for maps, aggregated in PostGIS: square bins per zoom, and counts per cell.

Never raw points: a million cases at city zoom come back as a few thousand bins. A bin is
BIN_PIXELS screen pixels wide at the requested web-map zoom; its index (ix, iy) is
floor(lon / size), floor(lat / size) in the storage SRID's degrees, so bins of one zoom line up
across requests and the browser computes the corners itself.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.actors import Actor
from gridkit.rules import IncidentState, period_bounds

BIN_PIXELS = 24
MIN_ZOOM, MAX_ZOOM = 3, 18
# From this zoom the choropleth shows base cells; below it, communities.
CELL_ZOOM = 14
MAX_BBOX_DEGREES = 40.0
# The zooms whose bins the rollup incident_heat counts (see migrations/versions/20261203_inc10_*).
ROLLUP_LEVELS = (13, 15)


def bin_size(zoom: int) -> float:
    """Return the bin width in degrees at a web-map zoom (256-pixel tiles)."""
    return 360.0 / (256 * 2**zoom) * BIN_PIXELS


def parse_filters(*, from_=None, to=None, category=None, state=None, dept=None, bbox=None, zoom=None) -> dict:
    """Return the checked filters of a heatmap or choropleth request (strings as from a URL)."""
    start, end = period_bounds(from_, to)
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


def _where(f: dict, actor: Actor | None, bins: tuple | None = None) -> tuple[str, dict]:
    """Return the WHERE text over cases `i` for the filters; with `bins` (size, bx0, by0, bx1, by1) the
    bbox is the whole bins it touches (as the rollup counts them), else the points inside it."""
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
    box = f.get("bbox")
    if bins is not None:
        size, bx0, by0, bx1, by1 = bins
        box = [bx0 * size, by0 * size, (bx1 + 1) * size, (by1 + 1) * size]
    if box:
        # && lets a small view use the GiST index; the plain numbers keep a city-wide scan cheap.
        clauses.append(
            "i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490) "
            "AND i.lon >= :x0 AND i.lon < :x1 AND i.lat >= :y0 AND i.lat < :y1"
            if bins is not None
            else "i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490) "
            "AND i.lon BETWEEN :x0 AND :x1 AND i.lat BETWEEN :y0 AND :y1"
        )
        params.update(zip(("x0", "y0", "x1", "y1"), box))
    if actor is not None and actor.scope_code:
        clauses.append("i.base_cell_id IN (SELECT id FROM base_cell WHERE community_code LIKE :scope)")
        params["scope"] = actor.scope_pattern
    return " AND ".join(clauses), params


def heatmap(session: Session, filters: dict, actor: Actor | None = None) -> dict:
    """Return {"zoom", "size", "total", "max", "bins": [[ix, iy, count], …]} for the filters.

    Up to zoom 15 without a category, state or department filter, whole report months come from the
    rollup `incident_heat` (kept by triggers on incident; a bin of the view's zoom is a rollup bin
    shifted right) and only the days before the first and after the last whole month are counted from
    the cases: the cost follows the number of bins and months, not of cases. Otherwise the cases
    are counted directly (a filter or a small view keeps them few).
    """
    zoom, size = filters["zoom"], bin_size(filters["zoom"])
    level = next((lv for lv in ROLLUP_LEVELS if zoom <= lv), None)
    if level is None or any(filters.get(k) for k in ("category", "state", "dept")):
        counts = count_cases(session, filters, actor)
    else:
        counts = _rollup_counts(session, filters, actor, level, zoom)
    bins = [[ix, iy, n] for (ix, iy), n in counts.items() if n]
    return {
        "zoom": zoom,
        "size": size,
        "total": sum(b[2] for b in bins),
        "max": max((b[2] for b in bins), default=0),
        "bins": bins,
    }


def count_cases(session: Session, filters: dict, actor: Actor | None = None) -> dict[tuple[int, int], int]:
    """Return {(ix, iy): count} of the filters counted from the cases themselves (points in the view)."""
    where, params = _where(filters, actor)
    return _count_cases(session, where, params, bin_size(filters["zoom"]))


def _count_cases(session: Session, where: str, params: dict, size: float) -> dict[tuple[int, int], int]:
    rows = session.execute(
        text(f"""
        SELECT floor(i.lon / :size)::int AS ix, floor(i.lat / :size)::int AS iy, count(*) AS n
        FROM incident i WHERE {where} GROUP BY 1, 2"""),
        {**params, "size": size},
    )
    return {(r.ix, r.iy): r.n for r in rows}


def _rollup_counts(session: Session, f: dict, actor: Actor | None, level: int, zoom: int) -> dict:
    """Counts per bin of `zoom`: whole months from the rollup at `level`, the rest from the cases."""
    size, shift = bin_size(zoom), level - zoom
    first, last = _whole_months(f.get("start"), f.get("end"))
    clauses, params = ["h.level = :level"], {"level": level, "shift": shift}
    bins = None
    if f.get("bbox"):
        x0, y0, x1, y1 = f["bbox"]
        bins = (size, math.floor(x0 / size), math.floor(y0 / size), math.floor(x1 / size), math.floor(y1 / size))
        clauses.append("h.ix >> :shift BETWEEN :bx0 AND :bx1 AND h.iy >> :shift BETWEEN :by0 AND :by1")
        params.update(zip(("bx0", "by0", "bx1", "by1"), bins[1:]))
    if actor is not None and actor.scope_code:
        clauses.append("h.community_code LIKE :scope")
        params["scope"] = actor.scope_pattern
    if first is not None:
        clauses.append("h.month >= :first")
        params["first"] = first.date()
    if last is not None:
        clauses.append("h.month < :last")
        params["last"] = last.date()
    counts: dict[tuple[int, int], int] = {}
    if first is None or last is None or first < last:
        rows = session.execute(
            text(f"""
            SELECT h.ix >> :shift AS ix, h.iy >> :shift AS iy, sum(h.n) AS n FROM incident_heat h
            WHERE {" AND ".join(clauses)} GROUP BY 1, 2"""),
            params,
        )
        counts = {(r.ix, r.iy): int(r.n) for r in rows}
    for edge in _edges(f.get("start"), f.get("end"), first, last):
        where, edge_params = _where({**f, **edge}, actor, bins)
        for key, n in _count_cases(session, where, edge_params, size).items():
            counts[key] = counts.get(key, 0) + n
    return counts


def _whole_months(start: datetime | None, end: datetime | None) -> tuple[datetime | None, datetime | None]:
    """Return (first, last): the whole UTC months within [start, end) are those from `first` to before
    `last` (None: unbounded on that side)."""
    first = last = None
    if start is not None:
        s = start.astimezone(UTC)
        first = datetime(s.year, s.month, 1, tzinfo=UTC)
        if first < s:
            first = datetime(s.year + (s.month == 12), s.month % 12 + 1, 1, tzinfo=UTC)
    if end is not None:
        e = end.astimezone(UTC)
        last = datetime(e.year, e.month, 1, tzinfo=UTC)
    if first is not None and last is not None and last < first:
        last = first
    return first, last


def _edges(start, end, first, last) -> list[dict]:
    """Return the time filters of the parts of [start, end) outside the whole months [first, last)."""
    if first is not None and last is not None and first >= last:
        return [{"start": start, "end": end}]
    edges = []
    if start is not None and start < first:
        edges.append({"start": start, "end": first})
    if end is not None and last < end:
        edges.append({"start": last, "end": end})
    return edges


def choropleth(session: Session, filters: dict, actor: Actor | None = None) -> dict:
    """Return a GeoJSON FeatureCollection of counts per base cell (zoom ≥ CELL_ZOOM) or per community,
    only areas with at least one case (by code), geometry simplified for the zoom.

    Per community without a category, state or department filter, the cases are counted as the heatmap
    counts them: the rollup's bins inside the view for its whole months, the cases themselves only in the
    bins on the view's edge and the days outside the whole months (the same counts, 300,000 cases not read).
    """
    tolerance = bin_size(filters["zoom"]) / BIN_PIXELS
    if filters["zoom"] >= CELL_ZOOM:
        where, params = _where(filters, actor)
        sql = f"""
            WITH c AS (SELECT i.base_cell_id AS id, count(*) AS n FROM incident i
                       WHERE {where} AND i.base_cell_id IS NOT NULL GROUP BY 1)
            SELECT b.code, b.community_code AS name, c.n,
                   ST_AsGeoJSON(ST_SimplifyPreserveTopology(b.geom, :tol), 6) AS geometry
            FROM c JOIN base_cell b ON b.id = c.id ORDER BY b.code"""
        rows = session.execute(text(sql), {**params, "tol": tolerance}).all()
        level = "base_cell"
    else:
        if any(filters.get(k) for k in ("category", "state", "dept")):
            counts = count_communities(session, filters, actor)
        else:
            counts = _rollup_communities(session, filters, actor)
        rows = session.execute(
            text(
                "SELECT a.code, a.name, CAST(:n AS jsonb) ->> a.code AS n, "
                "ST_AsGeoJSON(ST_SimplifyPreserveTopology(a.geom, :tol), 6) AS geometry "
                "FROM admin_unit a WHERE a.code = ANY(:codes) ORDER BY a.code"
            ),
            {"n": json.dumps(counts), "codes": sorted(counts), "tol": tolerance},
        ).all()
        level = "community"
    features = [
        {
            "type": "Feature",
            "geometry": json.loads(r.geometry),
            "properties": {"code": r.code, "name": r.name, "count": int(r.n)},
        }
        for r in rows
    ]
    return {
        "type": "FeatureCollection",
        "level": level,
        "features": features,
        "max": max((f["properties"]["count"] for f in features), default=0),
    }


def count_communities(session: Session, filters: dict, actor: Actor | None = None, inner: dict | None = None) -> dict:
    """Return {community code: cases} of the filters counted from the cases themselves (points in the view,
    in a base cell); with `inner` (zoom-13 bins ix0..ix1, iy0..iy1), only the cases outside those bins."""
    where, params = _where(filters, actor)
    if inner is not None:
        size = _LEVEL_13["s13"]
        # The bands' boxes reach a bin past their own bins: a case's bin is floor(lon / size), rounded.
        edges = {
            "bx0": (inner["ix0"] + 1) * size,
            "bx1": inner["ix1"] * size,
            "by0": (inner["iy0"] + 1) * size,
            "by1": inner["iy1"] * size,
        }
        where += f" AND {_OUTSIDE_INNER_BINS}"
        params.update(inner, **edges, **_LEVEL_13)
    rows = session.execute(
        text(f"""
        SELECT b.community_code AS code, count(*) AS n FROM incident i JOIN base_cell b ON b.id = i.base_cell_id
        WHERE {where} GROUP BY 1"""),
        params,
    )
    return {r.code: r.n for r in rows}


# The bins of the rollup's zoom 13, exactly as its triggers compute them (135/32768 is exact in binary).
_LEVEL_13 = {"s13": 135 / 32768}
# The cases of the view outside its inner zoom-13 bins ix0..ix1 × iy0..iy1: four disjoint bands (west, east,
# then south and north between them), each also stated as a box so that the spatial index finds them.
_OUTSIDE_INNER_BINS = """(
    (i.geom && ST_MakeEnvelope(:x0, :y0, :bx0, :y1, 4490) AND floor(i.lon / :s13)::int < :ix0)
    OR (i.geom && ST_MakeEnvelope(:bx1, :y0, :x1, :y1, 4490) AND floor(i.lon / :s13)::int > :ix1)
    OR (i.geom && ST_MakeEnvelope(:x0, :y0, :x1, :by0, 4490) AND floor(i.lat / :s13)::int < :iy0
        AND floor(i.lon / :s13)::int BETWEEN :ix0 AND :ix1)
    OR (i.geom && ST_MakeEnvelope(:x0, :by1, :x1, :y1, 4490) AND floor(i.lat / :s13)::int > :iy1
        AND floor(i.lon / :s13)::int BETWEEN :ix0 AND :ix1))"""


def _rollup_communities(session: Session, f: dict, actor: Actor | None) -> dict:
    """Cases per community of the view: the rollup's zoom-13 bins wholly inside it for the whole months,
    the cases in its edge bins for those months, and every case of the view outside them."""
    first, last = _whole_months(f.get("start"), f.get("end"))
    counts: dict[str, int] = {}
    if first is None or last is None or first < last:
        clauses, params = ["h.level = 13", "h.community_code IS NOT NULL"], {}
        inner = None
        if f.get("bbox"):
            x0, y0, x1, y1 = f["bbox"]
            size = _LEVEL_13["s13"]
            # One bin in from each side: every case of these bins lies inside the view.
            inner = {
                "ix0": math.floor(x0 / size) + 1,
                "iy0": math.floor(y0 / size) + 1,
                "ix1": math.floor(x1 / size) - 1,
                "iy1": math.floor(y1 / size) - 1,
            }
            clauses.append("h.ix BETWEEN :ix0 AND :ix1 AND h.iy BETWEEN :iy0 AND :iy1")
            params.update(inner)
        if actor is not None and actor.scope_code:
            clauses.append("h.community_code LIKE :scope")
            params["scope"] = actor.scope_pattern
        for name, sql, value in (("first", "h.month >= :first", first), ("last", "h.month < :last", last)):
            if value is not None:
                clauses.append(sql)
                params[name] = value.date()
        rows = session.execute(
            text(
                f"SELECT h.community_code AS code, sum(h.n) AS n FROM incident_heat h WHERE {' AND '.join(clauses)} "
                "GROUP BY 1"
            ),
            params,
        )
        counts = {r.code: int(r.n) for r in rows}
        if inner is not None:
            months = {**f, "start": first or f.get("start"), "end": last or f.get("end")}
            _add(counts, count_communities(session, months, actor, inner))
    for edge in _edges(f.get("start"), f.get("end"), first, last):
        _add(counts, count_communities(session, {**f, **edge}, actor))
    return {code: n for code, n in counts.items() if n}


def _add(counts: dict, more: dict) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
