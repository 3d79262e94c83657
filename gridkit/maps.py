"""Map layers and figures for web maps and reports: GeoJSON built in PostGIS, extents, counts.

Coordinates: storage is EPSG:4490 (CGCS2000 lon/lat). Web maps take WGS84 lon/lat (EPSG:4326,
shown in Web Mercator); CGCS2000 and WGS84 differ by a few centimetres, far below what a web map
shows, so coordinates are passed through unchanged. A Chinese basemap in GCJ-02 (Amap, Tencent)
would need the offset from `gridkit.coords`; we use an OpenStreetMap tile layer, so none is applied.
Every GeoJSON here is lon/lat, 6 decimals (about 0.1 m).
"""

from __future__ import annotations

import math

from sqlalchemy import Numeric, func, literal, literal_column, or_, select
from sqlalchemy.dialects.postgresql import JSON, aggregate_order_by
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import published_or_newest
from gridkit.models import (ADMIN_LEVELS, SRID, AdminUnit, BaseCell, BaseGridEdition, Building,
                            Coordinator, CoordinatorAssignment, Department, Incident, LegalEntity,
                            Resident, WorkCell, WorkCellMember, WorkGridExclusion, WorkGridVersion)

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


def _edition(session: Session, edition_id: int | None) -> BaseGridEdition | None:
    if edition_id is None:
        return published_or_newest(session)
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


def _cells_in_view(session: Session, edition_id: int, bbox, limit: int) -> list:
    """Return the WHERE clauses selecting an edition's cells in the bbox; refuse more than `limit` of them."""
    where = [BaseCell.edition_id == edition_id]
    if bbox is not None:
        minx, miny, maxx, maxy = check_bbox(bbox)
        where.append(func.ST_Intersects(BaseCell.geom, func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID)))
    # Counting at most limit + 1 rows stays cheap however far out the caller zoomed.
    capped = select(literal(1)).select_from(BaseCell).where(*where).limit(limit + 1).subquery()
    if session.scalar(select(func.count()).select_from(capped)) > limit:
        raise ValidationError(f"more than {limit} base cells lie in this area: zoom in or give a "
                              "smaller bbox.")
    return where


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
    where = _cells_in_view(session, edition.id, bbox, limit)
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
    edition = published_or_newest(session)
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
    edition = published_or_newest(session)

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


# -- base grid page --------------------------------------------------------------------------------

# Problem layers kept per base grid edition; a few editions are looked at, never hundreds.
PROBLEM_CACHE_SIZE = 8


def basegrid_overview(session: Session, name: str | None = None) -> dict:
    """Return what the base grid page shows: the edition (by name, default the current one), every
    edition for the picker, and the extent of the edition's cells (lon/lat) or None.

    With no edition at all and no name asked for, `edition` is None instead of raising NotFound.
    """
    from gridkit.grids.base import edition_named, list_editions

    editions = list_editions(session)
    if name is None and not editions:
        return {"edition": None, "editions": [], "extent": None}
    edition = edition_named(session, name)
    info = next(e for e in editions if e["name"] == edition.name)
    extent = _extent(session, select(func.ST_Extent(BaseCell.geom)).where(BaseCell.edition_id == edition.id))
    return {"edition": dict(info, id=edition.id), "editions": editions,
            "extent": extent or _extent(session, select(func.ST_Extent(AdminUnit.geom)))}


def base_grid_problems_geojson(session: Session, name: str | None = None, *, cache=None) -> dict:
    """Return the validation problems of a base grid edition as a GeoJSON FeatureCollection.

    Each feature's geometry is the problem's location (lon/lat, None when the problem has none);
    properties: type, codes, area_m2, message and bbox ([minx, miny, maxx, maxy] or None).
    `cache`, a dict the caller keeps, holds results per (edition id, cell count): validating a
    large edition takes seconds. Editing cells without changing their number is not noticed, so
    keep such a cache for one process and a short while (the web app keeps one per app).
    """
    from shapely import wkt
    from shapely.geometry import mapping

    from gridkit.grids.base import edition_named
    from gridkit.grids.validate import validate_base_grid

    edition = edition_named(session, name)
    cells = session.scalar(select(func.count()).select_from(BaseCell).where(BaseCell.edition_id == edition.id))
    key = (edition.id, cells)
    if cache is not None and key in cache:
        return cache[key]
    features = []
    for number, problem in enumerate(validate_base_grid(session, edition), start=1):
        data = problem.to_dict()
        geom = wkt.loads(data["location"]) if data["location"] else None
        if geom is not None and geom.is_empty:
            geom = None
        features.append({"type": "Feature", "id": number,
                         "geometry": mapping(geom) if geom is not None else None,
                         "properties": {"type": data["type"], "codes": data["codes"],
                                        "area_m2": data["area_m2"], "message": data["message"],
                                        "bbox": list(geom.bounds) if geom is not None else None}})
    result = _feature_collection(features, edition=_edition_dict(edition), cells=cells)
    if cache is not None:
        while len(cache) >= PROBLEM_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = result
    return result


# -- work grid editor ------------------------------------------------------------------------------

def _iso(value) -> str | None:
    return value.isoformat() if value is not None else None


def _version(session: Session, version_id: int) -> WorkGridVersion:
    version = session.get(WorkGridVersion, version_id)
    if version is None:
        raise NotFound(f"no work grid version has id {version_id}: see /planner for the departments.")
    return version


def version_dept_code(session: Session, version_id: int) -> str:
    """Return the department code of a work grid version, or raise NotFound."""
    code = session.scalar(select(WorkGridVersion.dept_code).where(WorkGridVersion.id == version_id))
    if code is None:
        raise NotFound(f"no work grid version has id {version_id}: see /planner for the departments.")
    return code


def jurisdiction_within_scope(session: Session, dept_code: str, scope_code: str | None) -> bool:
    """True when the department's jurisdiction lies inside the admin unit `scope_code`.

    No scope means the whole city, so everything lies inside it. A department without a
    jurisdiction covers the whole city: only a city-level scope holds it. Containment follows the
    admin unit tree (parent codes), not code prefixes: a district code does not start with its
    city's code (440304 lies in 440300).
    """
    if scope_code is None:
        return True
    jurisdiction = session.scalar(select(Department.jurisdiction_code).where(Department.code == dept_code))
    if jurisdiction is None:
        if session.scalar(select(func.count()).select_from(Department).where(Department.code == dept_code)) == 0:
            raise NotFound(f"no department has code {dept_code!r}: see /planner for the departments.")
        return session.scalar(select(AdminUnit.level).where(AdminUnit.code == scope_code)) == "city"
    chain = (select(AdminUnit.code, AdminUnit.parent_code).where(AdminUnit.code == jurisdiction)
             .cte("chain", recursive=True))
    parent = AdminUnit.__table__.alias("parent")
    chain = chain.union_all(select(parent.c.code, parent.c.parent_code)
                            .join(chain, parent.c.code == chain.c.parent_code))
    return bool(session.scalar(select(func.count()).select_from(chain).where(chain.c.code == scope_code)))


def planner_departments(session: Session, scope_code: str | None = None) -> list[dict]:
    """Return departments for the planner's list: list_departments' fields, the jurisdiction's name,
    the id of the current version, the drafts (newest first) and whether `scope_code` may edit it."""
    from gridkit.grids.work import list_departments

    rows = list_departments(session)
    names = dict(session.execute(select(AdminUnit.code, AdminUnit.name).where(
        AdminUnit.code.in_([r["jurisdiction"] for r in rows if r["jurisdiction"]]))).all())
    current = dict(session.execute(select(WorkGridVersion.dept_code, WorkGridVersion.id).where(
        WorkGridVersion.status == "published", WorkGridVersion.valid_to.is_(None))).all())
    drafts: dict[str, list[dict]] = {}
    for v in session.scalars(select(WorkGridVersion).where(WorkGridVersion.status == "draft")
                             .order_by(WorkGridVersion.number.desc())):
        drafts.setdefault(v.dept_code, []).append({
            "id": v.id, "number": v.number, "revision": v.revision, "created_by": v.created_by,
            "created_at": _iso(v.created_at), "updated_by": v.updated_by, "updated_at": _iso(v.updated_at),
            "note": v.note})
    return [dict(r, jurisdiction_name=names.get(r["jurisdiction"]), current_version_id=current.get(r["code"]),
                 drafts=drafts.get(r["code"], []),
                 editable=jurisdiction_within_scope(session, r["code"], scope_code)) for r in rows]


def _jurisdiction_filter(session: Session, dept: Department):
    # The same rule as gridkit.grids.work.validate_version: the jurisdiction's code prefix.
    return BaseCell.community_code.startswith(area_prefix(session, dept.jurisdiction_code))


def version_overview(session: Session, version_id: int) -> dict:
    """Return what the work grid editor shows besides the map: the version, its department and base
    grid edition, its work cells (code, name, base cell and coordinator counts, by code), the base
    cell counts (of the edition; of the jurisdiction: total, assigned, unassigned, excluded; and
    assigned outside the jurisdiction), the department's current version number and the extent
    (lon/lat) of the jurisdiction's cells.
    """
    version = _version(session, version_id)
    dept = session.get(Department, version.dept_code)
    edition = session.get(BaseGridEdition, version.base_edition_id)
    members = (select(WorkCellMember.work_cell_id, func.count().label("n"))
               .where(WorkCellMember.version_id == version.id).group_by(WorkCellMember.work_cell_id).subquery())
    staff = (select(CoordinatorAssignment.work_cell_id, func.count().label("n"))
             .join(Coordinator, Coordinator.id == CoordinatorAssignment.coordinator_id)
             .where(Coordinator.active.is_(True)).group_by(CoordinatorAssignment.work_cell_id).subquery())
    work_cells = [{"code": code, "name": name, "base_cells": cells, "coordinators": people}
                  for code, name, cells, people in session.execute(
                      select(WorkCell.code, WorkCell.name, func.coalesce(members.c.n, 0),
                             func.coalesce(staff.c.n, 0))
                      .outerjoin(members, members.c.work_cell_id == WorkCell.id)
                      .outerjoin(staff, staff.c.work_cell_id == WorkCell.id)
                      .where(WorkCell.version_id == version.id).order_by(WorkCell.code))]
    inside = _jurisdiction_filter(session, dept)
    member = select(WorkCellMember.base_cell_id).where(WorkCellMember.version_id == version.id)
    excluded = select(WorkGridExclusion.base_cell_id).where(WorkGridExclusion.version_id == version.id)
    in_edition = BaseCell.edition_id == version.base_edition_id

    def count(*where):
        return select(func.count()).select_from(BaseCell).where(in_edition, *where).scalar_subquery()

    row = session.execute(select(
        count().label("edition_cells"),
        count(inside).label("base_cells"),
        count(inside, BaseCell.id.in_(member)).label("assigned"),
        count(inside, BaseCell.id.in_(excluded)).label("excluded"),
        count(inside, BaseCell.id.not_in(member), BaseCell.id.not_in(excluded)).label("unassigned"),
        count(~inside, BaseCell.id.in_(member)).label("outside_jurisdiction"),
    )).one()._asdict()
    extent = _extent(session, select(func.ST_Extent(BaseCell.geom)).where(in_edition, inside))
    current = session.scalar(select(WorkGridVersion.number).where(
        WorkGridVersion.dept_code == dept.code, WorkGridVersion.status == "published",
        WorkGridVersion.valid_to.is_(None)))
    based_on = (session.scalar(select(WorkGridVersion.number).where(WorkGridVersion.id == version.based_on_id))
                if version.based_on_id else None)
    jurisdiction_name = (session.scalar(select(AdminUnit.name).where(AdminUnit.code == dept.jurisdiction_code))
                         if dept.jurisdiction_code else None)
    return {
        "version": {"id": version.id, "number": version.number, "status": version.status,
                    "revision": version.revision, "based_on": based_on, "note": version.note,
                    "created_by": version.created_by, "created_at": _iso(version.created_at),
                    "updated_by": version.updated_by, "updated_at": _iso(version.updated_at),
                    "published_at": _iso(version.published_at), "valid_from": _iso(version.valid_from),
                    "valid_to": _iso(version.valid_to)},
        "department": {"code": dept.code, "name": dept.name, "jurisdiction": dept.jurisdiction_code,
                       "jurisdiction_name": jurisdiction_name, "current_version": current},
        "edition": _edition_dict(edition),
        "work_cells": work_cells,
        "counts": row,
        "extent": extent,
    }


def version_cells_geojson(session: Session, version_id: int, bbox: Bbox | None = None,
                          limit: int = CELL_LIMIT) -> dict:
    """Return the base cells of a work grid version's base edition with their work cell, as GeoJSON.

    Properties: code, community_code, community_name, work_cell (code or None), work_cell_name,
    excluded (left out on purpose), exclusion_reason, in_jurisdiction (of the department).
    `bbox` and `limit` work as in base_cells_geojson. The collection carries `version`
    ({id, number, status, revision, dept_code}).
    """
    version = _version(session, version_id)
    dept = session.get(Department, version.dept_code)
    where = _cells_in_view(session, version.base_edition_id, bbox, limit)
    feature = func.json_build_object(
        "type", "Feature",
        "id", BaseCell.code,
        "geometry", func.ST_AsGeoJSON(BaseCell.geom, PRECISION).cast(JSON),
        "properties", func.json_build_object(
            "code", BaseCell.code,
            "community_code", BaseCell.community_code,
            "community_name", AdminUnit.name,
            "work_cell", WorkCell.code,
            "work_cell_name", WorkCell.name,
            "excluded", WorkGridExclusion.base_cell_id.is_not(None),
            "exclusion_reason", WorkGridExclusion.reason,
            "in_jurisdiction", _jurisdiction_filter(session, dept)),
    )
    query = (select(_features(feature, BaseCell.code)).select_from(BaseCell)
             .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
             .outerjoin(WorkCellMember, (WorkCellMember.base_cell_id == BaseCell.id)
                        & (WorkCellMember.version_id == version.id))
             .outerjoin(WorkCell, WorkCell.id == WorkCellMember.work_cell_id)
             .outerjoin(WorkGridExclusion, (WorkGridExclusion.base_cell_id == BaseCell.id)
                        & (WorkGridExclusion.version_id == version.id))
             .where(*where))
    return _feature_collection(session.scalar(query), version={
        "id": version.id, "number": version.number, "status": version.status, "revision": version.revision,
        "dept_code": version.dept_code})


def polygon_from_geojson(geometry):
    """Return a shapely (Multi)Polygon from a GeoJSON geometry object in lon/lat, or raise ValidationError."""
    from shapely.geometry import shape

    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValidationError("give the polygon as a GeoJSON Polygon or MultiPolygon geometry in lon/lat.")
    try:
        polygon = shape(geometry)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        raise ValidationError("the polygon is not valid GeoJSON: each ring needs at least 4 [lon, lat] positions.")
    if polygon.is_empty or polygon.area == 0:
        raise ValidationError("the polygon has no area: draw at least three corners that are not in a line.")
    check_bbox(polygon.bounds)
    if not polygon.is_valid:
        # A ring drawn across itself: make_valid keeps the areas the user enclosed.
        from shapely import make_valid
        polygon = make_valid(polygon)
    return polygon


def version_work_cells_geojson(session: Session, version_id: int, bbox: Bbox | None = None) -> dict:
    """Return the work cells of a work grid version as GeoJSON, each the union of its base cells.

    The union is computed now (drafts have no cached geometry). Properties: code, name,
    base_cells (count) and label (a GeoJSON point inside the work cell, for its name on a map).
    With `bbox` (lon/lat), only work cells with a base cell touching it, but each one whole.
    """
    version = _version(session, version_id)
    where = [WorkCellMember.version_id == version.id]
    if bbox is not None:
        minx, miny, maxx, maxy = check_bbox(bbox)
        touching = (select(WorkCellMember.work_cell_id)
                    .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
                    .where(WorkCellMember.version_id == version.id,
                           func.ST_Intersects(BaseCell.geom, func.ST_MakeEnvelope(minx, miny, maxx, maxy, SRID))))
        where.append(WorkCellMember.work_cell_id.in_(touching))
    union = (select(WorkCellMember.work_cell_id.label("id"), func.count().label("n"),
                    func.ST_UnaryUnion(func.ST_Collect(BaseCell.geom)).label("geom"))
             .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
             .where(*where).group_by(WorkCellMember.work_cell_id).subquery())
    feature = func.json_build_object(
        "type", "Feature",
        "id", WorkCell.code,
        "geometry", func.ST_AsGeoJSON(func.ST_Multi(union.c.geom), PRECISION).cast(JSON),
        "properties", func.json_build_object(
            "code", WorkCell.code, "name", WorkCell.name, "base_cells", union.c.n,
            "label", func.ST_AsGeoJSON(func.ST_PointOnSurface(union.c.geom), PRECISION).cast(JSON)),
    )
    query = select(_features(feature, WorkCell.code)).select_from(WorkCell).join(union, union.c.id == WorkCell.id)
    return _feature_collection(session.scalar(query), version={
        "id": version.id, "number": version.number, "status": version.status, "revision": version.revision,
        "dept_code": version.dept_code})
