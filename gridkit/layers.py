"""Map layers as GeoJSON built in PostGIS: admin units, base cells, a work grid version's cells.

A layer query takes a bbox (lon/lat), a limit and an optional offset, and answers with a
FeatureCollection that says how many features matched; it knows nothing of pages or URLs.

Coordinates: storage is EPSG:4490 (CGCS2000 lon/lat). Web maps take WGS84 lon/lat (EPSG:4326,
shown in Web Mercator); CGCS2000 and WGS84 differ by a few centimetres, far below what a web map
shows, so coordinates are passed through unchanged. A Chinese basemap in GCJ-02 (Amap, Tencent)
would need the offset from `gridkit.coords`. Every GeoJSON here is lon/lat, 6 decimals (about 0.1 m).
"""

from __future__ import annotations

import math

from sqlalchemy import Numeric, func, literal, literal_column, select
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.colouring import version_colours
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import published_or_newest
from gridkit.models import (
    ADMIN_LEVELS,
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridExclusion,
    WorkGridVersion,
)
from gridkit.rules import SRID

# Default simplification of admin outlines, in degrees (~50 m at Shenzhen's latitude): invisible
# at city and district zoom, and it shrinks a coastline of thousands of vertices for the browser.
ADMIN_TOLERANCE = 0.0005
MAX_TOLERANCE = 0.1
# Digits after the decimal point in GeoJSON coordinates (1e-6 degree is about 0.1 m).
PRECISION = 6
# Most base cells one request may return before the caller must zoom in (or page with offset).
CELL_LIMIT = 20000

Bbox = tuple[float, float, float, float]

_EMPTY_JSON_ARRAY = literal_column("'[]'::json")


def _features(feature, order_by):
    """Return the SQL aggregate of `feature` json objects in `order_by` order ([] for no rows)."""
    return func.coalesce(func.json_agg(aggregate_order_by(feature, order_by)), _EMPTY_JSON_ARRAY)


def feature_collection(features: list, **members) -> dict:
    """Return a GeoJSON FeatureCollection of `features` with extra top-level `members`."""
    return {"type": "FeatureCollection", **members, "features": features}


def geojson_feature(id_, geometry, properties: dict):
    """Return the SQL json of one GeoJSON Feature: `id_`, `geometry` (a geometry expression, written
    with PRECISION decimals) and `properties` ({name: SQL expression}, in that order)."""
    return func.json_build_object(
        "type",
        "Feature",
        "id",
        id_,
        "geometry",
        func.ST_AsGeoJSON(geometry, PRECISION).cast(JSON),
        "properties",
        func.json_build_object(*(part for pair in properties.items() for part in pair)),
    )


def base_cell_properties() -> dict:
    """Return the properties every base cell feature has: code, community_code, community_name
    (the query joins AdminUnit on the community code)."""
    return {
        "code": BaseCell.code,
        "community_code": BaseCell.community_code,
        "community_name": AdminUnit.name,
    }


def check_bbox(bbox) -> Bbox:
    """Return `bbox` as four floats, or raise ValidationError if it is not a lon/lat box."""
    try:
        minx, miny, maxx, maxy = (float(v) for v in bbox)
    except (TypeError, ValueError):
        raise ValidationError("layers.bbox_numbers", bbox=str(bbox)) from None
    if not all(math.isfinite(v) for v in (minx, miny, maxx, maxy)):
        raise ValidationError("layers.bbox_finite", bbox=f"{minx},{miny},{maxx},{maxy}")
    if not (-180 <= minx <= 180 and -180 <= maxx <= 180 and -90 <= miny <= 90 and -90 <= maxy <= 90):
        raise ValidationError("layers.bbox_degrees", bbox=f"{minx},{miny},{maxx},{maxy}")
    if minx > maxx or miny > maxy:
        raise ValidationError("layers.bbox_upside_down", bbox=f"{minx},{miny},{maxx},{maxy}")
    return minx, miny, maxx, maxy


def check_tolerance(tolerance) -> float:
    """Return `tolerance` (degrees) as a float in 0..MAX_TOLERANCE, or raise ValidationError."""
    try:
        value = float(tolerance)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0 <= value <= MAX_TOLERANCE:
        raise ValidationError("layers.tolerance", tolerance=str(tolerance), max=MAX_TOLERANCE)
    return value


def admin_units_geojson(
    session: Session, level: str | None = None, parent: str | None = None, tolerance: float = ADMIN_TOLERANCE
) -> dict:
    """Return admin units (optionally of one level / under one parent) as a GeoJSON FeatureCollection.

    Outlines are simplified with ST_SimplifyPreserveTopology(`tolerance` degrees) one unit at a
    time, so neighbouring outlines may part by up to `tolerance`; give 0 for exact outlines.
    """
    if level is not None and level not in ADMIN_LEVELS:
        raise ValidationError("layers.admin_level", level=level, levels=", ".join(ADMIN_LEVELS))
    tolerance = check_tolerance(tolerance)
    # Ask for the code only: a district outline can be megabytes.
    if parent is not None and session.scalar(select(AdminUnit.code).where(AdminUnit.code == parent)) is None:
        raise NotFound("layers.admin_unit_not_found", code=parent)
    geom = AdminUnit.geom
    if tolerance > 0:
        # ST_Multi: GEOS may hand back a Polygon for a one-part MultiPolygon.
        geom = func.ST_Multi(func.ST_SimplifyPreserveTopology(AdminUnit.geom, tolerance))
    feature = geojson_feature(
        AdminUnit.code,
        geom,
        {
            "code": AdminUnit.code,
            "name": AdminUnit.name,
            "level": AdminUnit.level,
            "parent_code": AdminUnit.parent_code,
        },
    )
    query = select(_features(feature, AdminUnit.code))
    if level is not None:
        query = query.where(AdminUnit.level == level)
    if parent is not None:
        query = query.where(AdminUnit.parent_code == parent)
    return feature_collection(session.scalar(query))


def edition_or_current(session: Session, edition_id: int | None) -> BaseGridEdition | None:
    """Return base grid edition `edition_id`, or the current one (published, else newest) for None."""
    if edition_id is None:
        return published_or_newest(session)
    edition = session.get(BaseGridEdition, edition_id)
    if edition is None:
        raise NotFound("layers.edition_not_found", edition=edition_id)
    return edition


def edition_dict(edition: BaseGridEdition | None) -> dict | None:
    """Return {id, name, status} of an edition, or None."""
    if edition is None:
        return None
    return {"id": edition.id, "name": edition.name, "status": edition.status}


def _cells_in_view(session: Session, edition_id: int, bbox, limit: int, offset: int | None):
    """Return (WHERE clauses for an edition's cells in the bbox, number matched).

    Without `offset`, more than `limit` matching cells are refused (zoom in); with an offset the
    caller pages through them, so the count is exact.
    """
    where = [BaseCell.edition_id == edition_id]
    if bbox is not None:
        minx, miny, maxx, maxy = check_bbox(bbox)
        where.append(func.ST_Intersects(BaseCell.geom, func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID)))
    query = select(literal(1)).select_from(BaseCell).where(*where)
    if offset is None:
        # Counting at most limit + 1 rows stays cheap however far out the caller zoomed.
        query = query.limit(limit + 1)
    matched = session.scalar(select(func.count()).select_from(query.subquery()))
    if offset is None and matched > limit:
        raise ValidationError("layers.too_many_cells", limit=limit)
    return where, matched


def _check_paging(limit: int, offset: int | None) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= CELL_LIMIT:
        raise ValidationError("layers.limit", limit=str(limit), max=CELL_LIMIT)
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise ValidationError("layers.offset", offset=str(offset))


def base_cells_geojson(
    session: Session,
    bbox: Bbox | None = None,
    edition_id: int | None = None,
    limit: int = CELL_LIMIT,
    offset: int | None = None,
) -> dict:
    """Return the base cells of an edition that intersect `bbox` as a GeoJSON FeatureCollection.

    The edition defaults to the current one (published, else newest); no edition at all gives an
    empty collection. `bbox` is (minx, miny, maxx, maxy) in lon/lat degrees; cells touching it
    count. Properties: code, community_code, community_name, area_m2 (on the CGCS2000 ellipsoid).
    The collection also carries `edition` ({id, name, status} or None), `numberMatched` and
    `numberReturned`. Without `offset`, more than `limit` matching cells raise ValidationError
    (nothing is cut off silently); with `offset`, cells `offset`.. `offset+limit` by code.
    """
    _check_paging(limit, offset)
    edition = edition_or_current(session, edition_id)
    if edition is None:
        return feature_collection([], edition=None, numberMatched=0, numberReturned=0)
    features, matched = _cell_features(
        session,
        edition.id,
        bbox,
        limit,
        offset,
        # geography: metres on the ellipsoid of the geometry's SRID (CGCS2000).
        {"area_m2": func.round(func.ST_Area(func.geography(BaseCell.geom)).cast(Numeric), 1)},
    )
    return feature_collection(
        features, edition=edition_dict(edition), numberMatched=matched, numberReturned=len(features)
    )


def _cell_features(
    session: Session, edition_id: int, bbox, limit: int, offset: int | None, extra: dict, joins=None
) -> tuple[list, int]:
    """Return (GeoJSON features of an edition's base cells in view, number matched).

    Properties: those of base_cell_properties, then `extra` ({name: SQL expression});
    `joins(query)` adds the outer joins those expressions need.
    """
    where, matched = _cells_in_view(session, edition_id, bbox, limit, offset)
    rows = select(BaseCell.id).where(*where).order_by(BaseCell.code).offset(offset or 0).limit(limit).subquery()
    feature = geojson_feature(BaseCell.code, BaseCell.geom, {**base_cell_properties(), **extra})
    query = (
        select(_features(feature, BaseCell.code))
        .select_from(BaseCell)
        .join(rows, rows.c.id == BaseCell.id)
        .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
    )
    return session.scalar(joins(query) if joins else query), matched


def extent_of(session: Session, query) -> Bbox | None:
    """Return (minx, miny, maxx, maxy) of a `select(func.ST_Extent(...))` query, or None."""
    box = query.subquery().c[0]
    row = session.execute(select(func.ST_XMin(box), func.ST_YMin(box), func.ST_XMax(box), func.ST_YMax(box))).one()
    return None if row[0] is None else tuple(float(v) for v in row)


def edition_extent(session: Session, edition_id: int, *where) -> Bbox | None:
    """Return the extent (lon/lat) of an edition's base cells (matching `where`), or None."""
    return extent_of(session, select(func.ST_Extent(BaseCell.geom)).where(BaseCell.edition_id == edition_id, *where))


def admin_extent(session: Session) -> Bbox | None:
    """Return the extent (lon/lat) of every admin unit, or None."""
    return extent_of(session, select(func.ST_Extent(AdminUnit.geom)))


def map_extent(session: Session) -> Bbox | None:
    """Return (minx, miny, maxx, maxy) of the current edition's base cells, else of the admin units, else None."""
    edition = published_or_newest(session)
    if edition is not None:
        extent = edition_extent(session, edition.id)
        if extent is not None:
            return extent
    return admin_extent(session)


# -- a work grid version's layers -------------------------------------------------------------------


def work_grid_version(session: Session, version_id: int) -> WorkGridVersion:
    """Return work grid version `version_id`, or raise NotFound."""
    version = session.get(WorkGridVersion, version_id)
    if version is None:
        raise NotFound("layers.version_not_found", version=version_id)
    return version


def jurisdiction_filter(session: Session, dept: Department):
    """Return the WHERE clause for base cells inside a department's jurisdiction."""
    # The same rule as gridkit.grids.work.validate_version: the jurisdiction's code prefix.
    return BaseCell.community_code.startswith(area_prefix(session, dept.jurisdiction_code))


def _version_dict(version: WorkGridVersion) -> dict:
    return {
        "id": version.id,
        "number": version.number,
        "status": version.status,
        "revision": version.revision,
        "dept_code": version.dept_code,
    }


def version_cells_geojson(
    session: Session, version_id: int, bbox: Bbox | None = None, limit: int = CELL_LIMIT, offset: int | None = None
) -> dict:
    """Return the base cells of a work grid version's base edition with their work cell, as GeoJSON.

    Properties: code, community_code, community_name, work_cell (code or None), work_cell_name,
    excluded (left out on purpose), exclusion_reason, in_jurisdiction (of the department).
    `bbox`, `limit` and `offset` work as in base_cells_geojson. The collection carries `version`
    ({id, number, status, revision, dept_code}) and `colours`, {work cell code: palette index} of
    the work cells among the features (see work_cell_colours_by_code).
    """
    _check_paging(limit, offset)
    version = work_grid_version(session, version_id)
    dept = session.get(Department, version.dept_code)

    def joins(query):
        return (
            query.outerjoin(
                WorkCellMember,
                (WorkCellMember.base_cell_id == BaseCell.id) & (WorkCellMember.version_id == version.id),
            )
            .outerjoin(WorkCell, WorkCell.id == WorkCellMember.work_cell_id)
            .outerjoin(
                WorkGridExclusion,
                (WorkGridExclusion.base_cell_id == BaseCell.id) & (WorkGridExclusion.version_id == version.id),
            )
        )

    features, matched = _cell_features(
        session,
        version.base_edition_id,
        bbox,
        limit,
        offset,
        {
            "work_cell": WorkCell.code,
            "work_cell_name": WorkCell.name,
            "excluded": WorkGridExclusion.base_cell_id.is_not(None),
            "exclusion_reason": WorkGridExclusion.reason,
            "in_jurisdiction": jurisdiction_filter(session, dept),
        },
        joins=joins,
    )
    colours = work_cell_colours_by_code(session, version)
    in_view = {f["properties"]["work_cell"] for f in features}
    return feature_collection(
        features,
        version=_version_dict(version),
        colours={code: colour for code, colour in colours.items() if code in in_view},
        numberMatched=matched,
        numberReturned=len(features),
    )


def work_cell_colours_by_code(session: Session, version: WorkGridVersion) -> dict[str, int]:
    """Return {work cell code: palette index} of a version (gridkit.colouring: touching work cells
    differ; the same indexes as in the tiles)."""
    colours = version_colours(session, version)
    rows = session.execute(select(WorkCell.id, WorkCell.code).where(WorkCell.version_id == version.id))
    return {code: colours.get(id_, 0) for id_, code in rows}


def version_work_cells_geojson(session: Session, version_id: int, bbox: Bbox | None = None) -> dict:
    """Return the work cells of a work grid version as GeoJSON, each the union of its base cells.

    The union is computed now (drafts have no cached geometry). Properties: code, name,
    base_cells (count), colour (palette index of gridkit.colouring, the same as in the tiles)
    and label (a GeoJSON point inside the work cell, for its name on a map).
    With `bbox` (lon/lat), only work cells with a base cell touching it, but each one whole.
    """
    version = work_grid_version(session, version_id)
    where = [WorkCellMember.version_id == version.id]
    if bbox is not None:
        minx, miny, maxx, maxy = check_bbox(bbox)
        touching = (
            select(WorkCellMember.work_cell_id)
            .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
            .where(
                WorkCellMember.version_id == version.id,
                func.ST_Intersects(BaseCell.geom, func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID)),
            )
        )
        where.append(WorkCellMember.work_cell_id.in_(touching))
    union = (
        select(
            WorkCellMember.work_cell_id.label("id"),
            func.count().label("n"),
            func.ST_UnaryUnion(func.ST_Collect(BaseCell.geom)).label("geom"),
        )
        .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
        .where(*where)
        .group_by(WorkCellMember.work_cell_id)
        .subquery()
    )
    feature = geojson_feature(
        WorkCell.code,
        func.ST_Multi(union.c.geom),
        {
            "code": WorkCell.code,
            "name": WorkCell.name,
            "base_cells": union.c.n,
            "label": func.ST_AsGeoJSON(func.ST_PointOnSurface(union.c.geom), PRECISION).cast(JSON),
        },
    )
    query = select(_features(feature, WorkCell.code)).select_from(WorkCell).join(union, union.c.id == WorkCell.id)
    features = session.scalar(query)
    colours = work_cell_colours_by_code(session, version)
    for feature in features:
        feature["properties"]["colour"] = colours[feature["properties"]["code"]]
    return feature_collection(
        features, version=_version_dict(version), numberMatched=len(features), numberReturned=len(features)
    )
