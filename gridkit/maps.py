"""Map layers and figures for web maps and reports: GeoJSON built in PostGIS, extents, counts.

Coordinates: storage is EPSG:4490 (CGCS2000 lon/lat). Web maps take WGS84 lon/lat (EPSG:4326,
shown in Web Mercator); CGCS2000 and WGS84 differ by a few centimetres, far below what a web map
shows, so coordinates are passed through unchanged. A Chinese basemap in GCJ-02 (Amap, Tencent)
would need the offset from `gridkit.coords`; we use an OpenStreetMap tile layer, so none is applied.
Every GeoJSON here is lon/lat, 6 decimals (about 0.1 m).
"""

from __future__ import annotations

import math

from sqlalchemy import Numeric, case, func, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.models import (ADMIN_LEVELS, SRID, AdminUnit, BaseCell, BaseGridEdition, Building,
                            Coordinator, Department, Incident, LegalEntity, Resident, WorkCell,
                            WorkGridVersion)

# Default simplification of admin outlines, in degrees (~50 m at Shenzhen's latitude): invisible
# at city and district zoom, and it shrinks a coastline of thousands of vertices for the browser.
ADMIN_TOLERANCE = 0.0005
# Digits after the decimal point in GeoJSON coordinates (1e-6 degree is about 0.1 m).
PRECISION = 6
# Most base cells one request may return before the caller must zoom in.
CELL_LIMIT = 20000
# Incident states in which a case is finished.
FINISHED_INCIDENT_STATUSES = ("closed", "rejected", "duplicate")

Bbox = tuple[float, float, float, float]

_EMPTY_JSON_ARRAY = literal_column("'[]'::json")


def _features(feature, order_by):
    """Return the SQL aggregate of `feature` json objects in `order_by` order ([] for no rows)."""
    return func.coalesce(func.json_agg(aggregate_order_by(feature, order_by)), _EMPTY_JSON_ARRAY)


def _feature_collection(features: list, **members) -> dict:
    return {"type": "FeatureCollection", **members, "features": features}


def admin_units_geojson(session: Session, level: str | None = None, parent: str | None = None,
                        tolerance: float = ADMIN_TOLERANCE) -> dict:
    """Return admin units (optionally of one level / under one parent) as a GeoJSON FeatureCollection.

    Outlines are simplified with ST_SimplifyPreserveTopology(`tolerance` degrees) one unit at a
    time, so neighbouring outlines may part by up to `tolerance`; give 0 for exact outlines.
    """
    if level is not None and level not in ADMIN_LEVELS:
        raise ValidationError(f"unknown admin level {level!r}: use one of {', '.join(ADMIN_LEVELS)}.")
    tolerance = _check_tolerance(tolerance)
    # Ask for the code only: a district outline can be megabytes.
    if parent is not None and session.scalar(select(AdminUnit.code).where(AdminUnit.code == parent)) is None:
        raise NotFound(f"admin unit {parent!r} does not exist: give the code of a city, district or street.")
    geom = AdminUnit.geom
    if tolerance > 0:
        # ST_Multi: GEOS may hand back a Polygon for a one-part MultiPolygon.
        geom = func.ST_Multi(func.ST_SimplifyPreserveTopology(AdminUnit.geom, tolerance))
    feature = func.json_build_object(
        "type", "Feature",
        "id", AdminUnit.code,
        "geometry", func.ST_AsGeoJSON(geom, PRECISION).cast(JSON),
        "properties", func.json_build_object(
            "code", AdminUnit.code, "name", AdminUnit.name, "level", AdminUnit.level,
            "parent_code", AdminUnit.parent_code),
    )
    query = select(_features(feature, AdminUnit.code))
    if level is not None:
        query = query.where(AdminUnit.level == level)
    if parent is not None:
        query = query.where(AdminUnit.parent_code == parent)
    return _feature_collection(session.scalar(query))


def current_edition(session: Session) -> BaseGridEdition | None:
    """Return the published base grid edition, else the newest one, else None."""
    return session.scalar(
        select(BaseGridEdition).order_by(
            case((BaseGridEdition.status == "published", 0), else_=1),
            BaseGridEdition.created_at.desc(), BaseGridEdition.id.desc()).limit(1))


def _edition(session: Session, edition_id: int | None) -> BaseGridEdition | None:
    if edition_id is None:
        return current_edition(session)
    edition = session.get(BaseGridEdition, edition_id)
    if edition is None:
        raise NotFound(f"base grid edition {edition_id} does not exist: see /api/summary for the "
                       "current edition.")
    return edition


def parse_bbox(text: str) -> Bbox:
    """Return (minx, miny, maxx, maxy) from 'minx,miny,maxx,maxy' (lon/lat degrees), checked."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValidationError(f"bbox {text!r} is not four numbers: give minx,miny,maxx,maxy in "
                              "degrees of longitude and latitude, e.g. 114.05,22.53,114.06,22.54.")
    return check_bbox(values)


def check_bbox(bbox) -> Bbox:
    """Return `bbox` as four floats, or raise ValidationError if it is not a lon/lat box."""
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError("bbox must be four numbers: minx, miny, maxx, maxy in degrees.")
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValidationError("bbox must be finite numbers: minx, miny, maxx, maxy in degrees.")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise ValidationError(f"bbox {minx},{miny},{maxx},{maxy} is not in lon/lat degrees: longitudes "
                              "lie in -180..180, latitudes in -90..90.")
    if minx > maxx or miny > maxy:
        raise ValidationError(f"bbox {minx},{miny},{maxx},{maxy} is upside down: give "
                              "minx,miny,maxx,maxy with minx <= maxx and miny <= maxy.")
    return minx, miny, maxx, maxy


def base_cells_geojson(session: Session, bbox: Bbox | None = None, edition_id: int | None = None,
                       limit: int = CELL_LIMIT) -> dict:
    """Return the base cells of an edition that intersect `bbox` as a GeoJSON FeatureCollection.

    The edition defaults to the current one (published, else newest); no edition at all gives an
    empty collection. `bbox` is (minx, miny, maxx, maxy) in lon/lat degrees; cells touching it
    count. Properties: code, community_code, community_name, area_m2 (on the CGCS2000 ellipsoid).
    The collection also carries `edition` ({id, name, status} or None). More than `limit` matching
    cells raise ValidationError: the caller must zoom in, nothing is cut off silently.
    """
    edition = _edition(session, edition_id)
    if edition is None:
        return _feature_collection([], edition=None)
    where = [BaseCell.edition_id == edition.id]
    if bbox is not None:
        minx, miny, maxx, maxy = check_bbox(bbox)
        envelope = func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID)
        where.append(func.ST_Intersects(BaseCell.geom, envelope))
    # Counting at most limit + 1 rows stays cheap however far out the caller zoomed.
    capped = select(literal(1)).select_from(BaseCell).where(*where).limit(limit + 1).subquery()
    if session.scalar(select(func.count()).select_from(capped)) > limit:
        raise ValidationError(f"more than {limit} base cells lie in this area: zoom in or give a "
                              "smaller bbox.")
    feature = func.json_build_object(
        "type", "Feature",
        "id", BaseCell.code,
        "geometry", func.ST_AsGeoJSON(BaseCell.geom, PRECISION).cast(JSON),
        "properties", func.json_build_object(
            "code", BaseCell.code,
            "community_code", BaseCell.community_code,
            "community_name", AdminUnit.name,
            # geography: metres on the ellipsoid of the geometry's SRID (CGCS2000).
            "area_m2", func.round(func.ST_Area(func.geography(BaseCell.geom)).cast(Numeric), 1)),
    )
    query = (select(_features(feature, BaseCell.code)).select_from(BaseCell)
             .join(AdminUnit, AdminUnit.code == BaseCell.community_code).where(*where))
    return _feature_collection(session.scalar(query), edition=_edition_dict(edition))


def map_extent(session: Session) -> Bbox | None:
    """Return (minx, miny, maxx, maxy) of the current edition's base cells, else of the admin units, else None."""
    edition = current_edition(session)
    if edition is not None:
        extent = _extent(session, select(func.ST_Extent(BaseCell.geom)).where(BaseCell.edition_id == edition.id))
        if extent is not None:
            return extent
    return _extent(session, select(func.ST_Extent(AdminUnit.geom)))


def _extent(session: Session, query) -> Bbox | None:
    box = query.subquery().c[0]
    row = session.execute(select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box),
                                 func.ST_YMax(box))).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def summary(session: Session) -> dict:
    """Return the counts shown on the home page: admin units, base grid, work grids, subjects, incidents.

    Only counts: nothing here is personal data. `work_cells` counts the cells of the work grid
    versions in force now (published, valid_from passed, not yet superseded).
    """
    edition = current_edition(session)

    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    now = func.now()
    in_force = select(WorkGridVersion.id).where(
        WorkGridVersion.status == "published", WorkGridVersion.valid_from <= now,
        or_(WorkGridVersion.valid_to.is_(None), WorkGridVersion.valid_to > now))
    row = session.execute(select(
        count(AdminUnit, AdminUnit.level == "district").label("districts"),
        count(AdminUnit, AdminUnit.level == "street").label("streets"),
        count(AdminUnit, AdminUnit.level == "community").label("communities"),
        (count(BaseCell, BaseCell.edition_id == edition.id) if edition else literal(0)).label("base_cells"),
        count(Department).label("departments"),
        count(WorkCell, WorkCell.version_id.in_(in_force)).label("work_cells"),
        count(Coordinator, Coordinator.active.is_(True)).label("coordinators"),
        count(Building).label("buildings"),
        count(Resident).label("residents"),
        count(LegalEntity).label("legal_entities"),
        count(Incident, Incident.status.not_in(FINISHED_INCIDENT_STATUSES)).label("incidents_open"),
        count(Incident).label("incidents_total"),
    )).one()._asdict()
    return {
        "districts": row["districts"], "streets": row["streets"], "communities": row["communities"],
        "edition": _edition_dict(edition),
        "base_cells": row["base_cells"],
        "departments": row["departments"], "work_cells": row["work_cells"],
        "coordinators": row["coordinators"], "buildings": row["buildings"],
        "residents": row["residents"], "legal_entities": row["legal_entities"],
        "incidents": {"open": row["incidents_open"], "total": row["incidents_total"]},
    }


def _edition_dict(edition: BaseGridEdition | None) -> dict | None:
    if edition is None:
        return None
    return {"id": edition.id, "name": edition.name, "status": edition.status}


def _check_tolerance(tolerance) -> float:
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= 0.1:
        raise ValidationError(f"tolerance {tolerance!r} is not usable: give 0 (no simplification) "
                              "up to 0.1 degrees.")
    return value
