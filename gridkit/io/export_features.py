"""The feature provider below the open APIs (OGC API – Features): collections and their items.

The domain answers layer queries with bbox, datetime, property filters, limit and offset plus the
number matched, and knows nothing of URLs or pages; `web/ogc.py` is a thin adapter over it.
Personal fields are never served: the layers' personal columns are left out entirely; a place that
may locate a person (an incident's) is given to about 100 m and phone and citizen ID numbers in free
text (a description) are masked, the building an Open311 post named left out, as in a masked export
(gridkit.io.export_layers.build_query); nor can free text be filtered on (an exact-match filter
would confirm a guessed number).

Coordinates: items come in any CRS PostGIS knows, in that CRS's axis order as OGC API – Features
Part 2 asks (EPSG:4490 and EPSG:4326 are latitude first, the Gauss-Kruger zones northing first);
CRS84 (the default) is longitude first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.admin import local_gauss_kruger_epsg
from gridkit.errors import NotFound, ValidationError
from gridkit.io.export_layers import DATE, DATETIME, LAYERS, build_query
from gridkit.models import SRID, Department
from gridkit.rules import parse_time

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_URI = "http://www.opengis.net/def/crs/EPSG/0/{}"
# CRSs offered for every collection besides CRS84 (Part 2 "crs" list): `offered_epsg` puts the city's own
# Gauss-Kruger zone in place of 4547 (Shenzhen's, the one before any admin unit is imported).
OFFERED_EPSG = (SRID, 4326, 4547, 3857)
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10
# Which field a collection's datetime parameter filters on.
TEMPORAL = {"incidents": "reported_at", "buildings": "created_at"}


@dataclass(frozen=True)
class Collection:
    """One collection: id, the export layer it serves, and the department of a work cell layer."""

    id: str
    layer: str
    title: str
    dept: str | None = None

    @property
    def temporal(self) -> str | None:
        """Return the field the datetime filter applies to, if any."""
        return TEMPORAL.get(self.layer)


_FIXED = (
    ("admin-units", "行政区划 Admin units"),
    ("base-cells", "基础网格 Base cells"),
    ("buildings", "房屋 Buildings"),
    ("incidents", "事件 Incidents"),
)


def collections(session: Session) -> list[Collection]:
    """Return the collections: admin units, base cells, work cells per department, buildings, incidents."""
    result = [Collection(cid, cid, title) for cid, title in _FIXED[:2]]
    for code, name in session.execute(select(Department.code, Department.name).order_by(Department.code)):
        result.append(Collection(f"work-cells-{code}", "work-cells", f"工作网格 Work cells · {name}", dept=code))
    result += [Collection(cid, cid, title) for cid, title in _FIXED[2:]]
    return result


def collection(session: Session, collection_id: str) -> Collection:
    """Return the collection `collection_id`, or raise NotFound."""
    for c in collections(session):
        if c.id == collection_id:
            return c
    raise NotFound("ogc.unknown_collection", collection=collection_id)


def public_fields(c: Collection) -> list[tuple[str, str]]:
    """Return the fields a collection serves: its layer's fields without the personal ones."""
    layer = LAYERS[c.layer]
    return [(n, k) for n, k in layer.fields if n not in layer.personal]


def offered_epsg(session: Session) -> tuple[int, ...]:
    """Return the EPSG codes offered besides CRS84: CGCS2000, WGS 84, the city's Gauss-Kruger zone, Web Mercator."""
    return (SRID, 4326, local_gauss_kruger_epsg(session), 3857)


@lru_cache(maxsize=64)
def crs_srid(uri: str | None, offered: tuple[int, ...] = OFFERED_EPSG) -> tuple[int, bool]:
    """Return (SRID, latitude/northing first?) for a CRS URI (None: CRS84); refuse those not `offered`."""
    import pyproj

    if uri in (None, "", CRS84, "[" + CRS84 + "]"):
        return 4326, False
    value = uri.strip("[]")
    prefix = EPSG_URI.format("")
    if not value.startswith(prefix) or not (value[len(prefix) :].isascii() and value[len(prefix) :].isdigit()):
        raise ValidationError("ogc.unknown_crs", crs=uri)
    code = int(value[len(prefix) :])
    if code not in offered:
        raise ValidationError("ogc.unknown_crs", crs=uri)
    first = pyproj.CRS.from_epsg(code).axis_info[0].direction.lower()
    return code, first in ("north", "south")


def crs_uris(offered: tuple[int, ...] = OFFERED_EPSG) -> list[str]:
    """Return the URIs of every offered CRS (`offered_epsg`), CRS84 first."""
    return [CRS84] + [EPSG_URI.format(code) for code in offered]


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """Return (start, end) of an RFC 3339 instant or interval ('a/b', '../b', 'a/..'); None if absent."""
    if not value:
        return None
    if "/" in value:
        a, _, b = value.partition("/")
        start = None if a in ("", "..") else parse_time(a, field="datetime")
        end = None if b in ("", "..") else parse_time(b, field="datetime")
        if start and end and end < start:
            raise ValidationError("ogc.bad_datetime", value=value)
        return start, end
    instant = parse_time(value, field="datetime")
    return instant, instant


def extent(session: Session, c: Collection) -> list[float] | None:
    """Return the collection's lon/lat bounding box, or None when it is empty."""
    query = build_query(session, LAYERS[c.layer], dept=c.dept)
    row = session.execute(
        text(
            f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM "
            f"(SELECT ST_Extent(q._geom) AS e FROM ({query.sql}) q) x"
        ),
        query.params,
    ).first()
    return None if row is None or row[0] is None else [round(float(v), 6) for v in row]


def items(
    session: Session,
    c: Collection,
    *,
    bbox=None,
    bbox_crs: str | None = None,
    datetime_=None,
    filters: dict | None = None,
    limit: int = DEFAULT_LIMIT,
    offset: int = 0,
    crs: str | None = None,
    feature_id: str | None = None,
    after: str | None = None,
) -> tuple[list[dict], int]:
    """Return (GeoJSON features, number matched) of a collection page, in `crs` and its axis order.

    Pages go by code: `offset` skips that many features, `after` starts after that code (keyset paging: a
    deep page reads the codes from an index instead of skipping rows; `offset` then counts from there).
    """
    fields = public_fields(c)
    names = [n for n, _ in fields]
    filterable = [n for n in names if n not in LAYERS[c.layer].free_text]
    for name in filters or {}:
        if name not in filterable:
            raise ValidationError("export.unknown_field", field=name, layer=c.id, fields=", ".join(filterable))
    if feature_id is not None:
        filters = dict(filters or {}, code=feature_id)
    query = build_query(session, LAYERS[c.layer], dept=c.dept, where=filters)
    params = dict(query.params)
    offered = offered_epsg(session)
    clauses = _place_and_time(c, params, bbox, bbox_crs, offered, datetime_)
    where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
    matched = session.execute(text(f"SELECT count(*) FROM ({query.sql}) f{where}"), params).scalar_one()
    if after is not None:
        where += (" AND " if where else " WHERE ") + "f.code > :after"
        params["after"] = after
    srid, flipped = crs_srid(crs, offered)
    geom = "f._geom" if srid == SRID else f"ST_Transform(f._geom, {int(srid)})"
    if flipped:
        geom = f"ST_FlipCoordinates({geom})"
    digits = 7 if srid in (4326, SRID) else 3
    props = ", ".join(f"'{n}', f.\"{n}\"" for n in names)
    sql = (
        # Options 0: no "crs" member in each geometry (PostGIS adds one outside EPSG:4326); the CRS
        # is the response's Content-Crs.
        # The page's codes first (the skipped features are read from an index, not built), then their features.
        f"SELECT f.code, ST_AsGeoJSON({geom}, {digits}, 0) AS g, json_build_object({props}) AS p "
        f"FROM ({query.sql}) f WHERE f.code = ANY(ARRAY("
        f"SELECT f.code FROM ({query.sql}) f{where} ORDER BY f.code LIMIT :lim OFFSET :off)) ORDER BY f.code"
    )
    params.update(lim=limit, off=offset)
    kinds = dict(fields)
    features = []
    for code, geometry, properties in session.execute(text(sql), params):
        for name, value in properties.items():
            if kinds.get(name) in (DATE, DATETIME) and value is not None:
                properties[name] = str(value)
        features.append(
            {
                "type": "Feature",
                "id": code,
                "geometry": json.loads(geometry) if geometry else None,
                "properties": properties,
            }
        )
    return features, matched


def _place_and_time(c: Collection, params: dict, bbox, bbox_crs, offered, datetime_) -> list[str]:
    """Return the WHERE clauses (over `f`) of a bbox in `bbox_crs` and a datetime; their values go into `params`."""
    clauses = []
    if bbox is not None:
        srid, flipped = crs_srid(bbox_crs, offered)
        x1, y1, x2, y2 = bbox
        if flipped:
            x1, y1, x2, y2 = y1, x1, y2, x2
        box = "ST_Transform(ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, :bsrid), :srid)"
        if LAYERS[c.layer].bbox_sql:
            clauses.append(LAYERS[c.layer].bbox_sql.format(box=box))
        clauses.append(f"ST_Intersects(f._geom, {box})")
        params.update(bx1=x1, by1=y1, bx2=x2, by2=y2, bsrid=srid, srid=SRID)
    when = parse_datetime(datetime_)
    if when and c.temporal:
        start, end = when
        if start is not None:
            clauses.append(f"f.{c.temporal} >= :t_from")
            params["t_from"] = start
        if end is not None:
            clauses.append(f"f.{c.temporal} <= :t_to")
            params["t_to"] = end
    return clauses
