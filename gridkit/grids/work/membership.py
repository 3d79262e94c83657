"""Work cell membership in a draft: which base cells make up each work cell, and which are left out.

A work cell is a set of whole base cells (work_cell_member); its code follows the code profile of
the draft's base grid edition (gridkit.standard.codes).
"""

from __future__ import annotations

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session, aliased

from gridkit import rules
from gridkit.admin import area_prefix, city_extent
from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.work.departments import check_name
from gridkit.grids.work.versions import state_name, touch_draft, version_profile
from gridkit.models import (
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridExclusion,
    WorkGridVersion,
)
from gridkit.rules import VersionState
from gridkit.standard import InvalidValue, codes
from gridkit.standard.codes import CodeProfile


# A work grid version may be drawn on an older base grid edition than the one in force, whose cells
# the subjects are assigned to: its base cells are matched by code. SQL for text queries (reports,
# statistics, exports), with the parameters :version (the version's id) and :edition (the edition
# whose cells are wanted); `members_in_edition` is the same for Core queries.
def members_in_edition_sql(version: str = ":version", edition: str = ":edition") -> str:
    """Return the SQL of MEMBERS_IN_EDITION_SQL with `version` and `edition` as the SQL expressions of the
    version's id and the edition's (e.g. a column of an outer query, for a lateral join)."""
    return (
        "SELECT b.id AS cell_id, m.work_cell_id FROM work_cell_member m "
        "JOIN base_cell vb ON vb.id = m.base_cell_id "
        f"JOIN base_cell b ON b.edition_id = {edition} AND b.code = vb.code "
        f"WHERE m.version_id = {version}"
    )


MEMBERS_IN_EDITION_SQL = members_in_edition_sql()


def work_cell_of_code_sql(version: str, version_edition: str, code: str) -> str:
    """Return the SQL (LEFT JOINs giving `wm.work_cell_id`, NULL when none) of the same rule from one base cell's
    code: the work cell of the version `version` (drawn on the edition `version_edition`) holding the cell of
    code `code`. Each argument is a SQL expression (a parameter, or a column of the query it is joined to)."""
    return (
        f"LEFT JOIN base_cell wb ON wb.edition_id = {version_edition} AND wb.code = {code} "
        f"LEFT JOIN work_cell_member wm ON wm.version_id = {version} AND wm.base_cell_id = wb.id"
    )


def work_cell_of_code(version_id, version_edition_id, code):
    """Return the Core scalar subquery of `work_cell_of_code_sql` (the work cell id, or NULL) for Core queries."""
    drawn = aliased(BaseCell)
    return (
        select(WorkCellMember.work_cell_id)
        .join(drawn, drawn.id == WorkCellMember.base_cell_id)
        .where(
            WorkCellMember.version_id == version_id,
            drawn.edition_id == version_edition_id,
            drawn.code == code,
        )
        .scalar_subquery()
    )


# The base cells of an edition in a department's jurisdiction that a version neither places in a work cell
# nor excludes, matched by code (:code, if not null, only that cell): after a new base grid edition, cells of
# new codes until a draft places them (cells_in_no_work_cell, and whois's hint).
_UNPLACED_SQL = text(
    "SELECT b.code FROM base_cell b WHERE b.edition_id = :e AND b.community_code LIKE :scope "
    "AND (CAST(:code AS text) IS NULL OR b.code = :code) "
    "AND b.code NOT IN (SELECT vb.code FROM work_cell_member m JOIN base_cell vb ON vb.id = m.base_cell_id "
    "WHERE m.version_id = :v UNION ALL SELECT vb.code FROM work_grid_exclusion x "
    "JOIN base_cell vb ON vb.id = x.base_cell_id WHERE x.version_id = :v) ORDER BY b.code"
)


def unplaced_codes(
    session: Session, dept: Department, version_id: int, edition_id: int, code: str | None = None
) -> list[str]:
    """Return the codes of the base cells of `edition_id` in the department's jurisdiction that its version
    `version_id` neither places in a work cell nor excludes (matched by code); `code`: only that cell."""
    scope = area_prefix(session, dept.jurisdiction_code) + "%"
    return list(session.scalars(_UNPLACED_SQL, {"e": edition_id, "v": version_id, "scope": scope, "code": code}))


def members_in_edition(work_cell_id, edition_id=None):
    """Return a select of the ids of the base cells of `edition_id` (None: the edition in force) in the work cell.

    The work cell's base cells are matched by code (see MEMBERS_IN_EDITION_SQL): subjects are
    assigned to the cells of the edition in force, whichever edition the version was drawn on.
    """
    if edition_id is None:
        edition_id = select(BaseGridEdition.id).where(rules.edition_in_force(BaseGridEdition)).scalar_subquery()
    drawn = aliased(BaseCell)
    return (
        select(BaseCell.id)
        .select_from(WorkCellMember)
        .join(drawn, drawn.id == WorkCellMember.base_cell_id)
        .join(BaseCell, (BaseCell.edition_id == edition_id) & (BaseCell.code == drawn.code))
        .where(WorkCellMember.work_cell_id == work_cell_id)
    )


def check_work_cell(
    session: Session,
    version: WorkGridVersion,
    code: str,
    *,
    known_areas: set[str] | None = None,
    profile: CodeProfile | None = None,
) -> str:
    """Return `code` if it is a work cell code of the version's department in its code profile.

    The layout is the profile's (department type + area + sequence); the area part must name a
    known admin unit (a community, or a street / district padded with zeros).
    """
    profile = profile or version_profile(session, version)
    try:
        dept, area, _ = codes.work_cell_parts(code, profile)
    except InvalidValue as exc:
        raise ValidationError(exc.code, **exc.params) from None
    if dept != version.dept_code:
        raise ValidationError("work.cell_code_department", code=code, dept=version.dept_code)
    admin = codes.area_admin_code(area, profile)
    known = admin in known_areas if known_areas is not None else session.get(AdminUnit, admin) is not None
    if not known:
        raise ValidationError("work.cell_code_area_unknown", code=code, area=area)
    return code


def _require_draft(version: WorkGridVersion) -> None:
    """Refuse to change a version that is not a draft."""
    if version.status != VersionState.DRAFT:
        raise InvalidTransition("work.only_drafts_change", number=version.number, status=state_name(version.status))


def _missing_base_cells(missing: list[str]) -> NotFound:
    """Return the error for base cell codes not in the draft's base grid edition (the first 10 named)."""
    shown = ", ".join(missing[:10]) + (f" … (+{len(missing) - 10})" if len(missing) > 10 else "")
    return NotFound("work.base_cells_not_in_edition", codes=shown, count=len(missing))


def _base_cell_ids(session: Session, version: WorkGridVersion, base_cell_codes: list[str]) -> dict[str, int]:
    """Return {code: id} of the named base cells of the version's edition; NotFound naming any missing."""
    cells = dict(
        session.execute(
            select(BaseCell.code, BaseCell.id).where(
                BaseCell.edition_id == version.base_edition_id, BaseCell.code.in_(base_cell_codes)
            )
        ).all()
    )
    missing = sorted(set(base_cell_codes) - set(cells))
    if missing:
        raise _missing_base_cells(missing)
    return cells


def set_members(
    session: Session,
    version: WorkGridVersion,
    work_cell_code: str,
    base_cell_codes: list[str],
    *,
    name: str | None = None,
    expected_revision: int | None = None,
    by: str | None = None,
) -> WorkCell:
    """Put the named base cells into the work cell (created if new), taking them from other work cells."""
    _require_draft(version)
    check_work_cell(session, version, work_cell_code)
    check_name(name, WorkCell.name, "work_cell")
    cells = _base_cell_ids(session, version, base_cell_codes)
    touch_draft(session, version, expected_revision=expected_revision, by=by)
    work_cell = session.scalar(
        select(WorkCell).where(WorkCell.version_id == version.id, WorkCell.code == work_cell_code)
    )
    if work_cell is None:
        work_cell = WorkCell(version_id=version.id, code=work_cell_code, name=name)
        session.add(work_cell)
        session.flush()
    elif name:
        work_cell.name = name
    ids = list(cells.values())
    session.execute(
        delete(WorkGridExclusion).where(
            WorkGridExclusion.version_id == version.id, WorkGridExclusion.base_cell_id.in_(ids)
        )
    )
    session.execute(
        delete(WorkCellMember).where(WorkCellMember.version_id == version.id, WorkCellMember.base_cell_id.in_(ids))
    )
    if ids:
        session.execute(
            insert(WorkCellMember),
            [{"version_id": version.id, "base_cell_id": i, "work_cell_id": work_cell.id} for i in ids],
        )
    # A work cell left with no base cells disappears.
    session.execute(
        text(
            "DELETE FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
            "(SELECT 1 FROM work_cell_member m WHERE m.work_cell_id = w.id)"
        ),
        {"v": version.id},
    )
    session.flush()
    return work_cell


def cells_in_polygon(
    session: Session, version: WorkGridVersion, polygon, *, threshold: float = rules.WORK_CELL_SHARE
) -> list[str]:
    """Return codes of the version's base cells with at least `threshold` of their area inside `polygon`.

    `polygon` is a shapely (Multi)Polygon in EPSG:4490; areas are compared on the spheroid.
    """
    if not 0 < threshold <= 1:
        raise ValidationError("work.bad_threshold", threshold=threshold)
    return list(
        session.scalars(
            text(
                "WITH p AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), :srid) AS g) "
                "SELECT b.code FROM base_cell b, p WHERE b.edition_id = :e AND ST_Intersects(b.geom, p.g) "
                "AND ST_Area(ST_Intersection(b.geom, p.g)::geography) >= :t * ST_Area(b.geom::geography) "
                "ORDER BY b.code"
            ),
            {"e": version.base_edition_id, "t": threshold, "wkb": polygon.wkb, "srid": rules.SRID},
        )
    )


def polygon_in_file(session: Session, path, *, encoding=None, src_crs=None, layer=None):
    """Return the union of the polygons of a vector file (EPSG:4490), read as every import reads one: a file in
    metres without a CRS is told the city's own 3-degree zones (gridkit.admin.city_extent)."""
    from gridkit.io.vector import read_vector

    city = city_extent(session)
    read = read_vector(path, encoding=encoding, src_crs=src_crs, layer=layer, multipart="keep", city=city)
    return read.gdf.geometry.union_all()


def cells_in_admin_unit(session: Session, version: WorkGridVersion, admin_code: str) -> list[str]:
    """Return codes of the version's base cells inside an admin unit (by code prefix)."""
    if session.get(AdminUnit, admin_code) is None:
        raise NotFound("grids.unknown_admin_unit", code=admin_code)
    return list(
        session.scalars(
            select(BaseCell.code)
            .where(
                BaseCell.edition_id == version.base_edition_id,
                BaseCell.community_code.startswith(area_prefix(session, admin_code)),
            )
            .order_by(BaseCell.code)
        )
    )


def exclude_cells(
    session: Session,
    version: WorkGridVersion,
    base_cell_codes: list[str],
    reason: str,
    *,
    expected_revision: int | None = None,
    by: str | None = None,
) -> int:
    """Leave base cells out of every work cell of a draft on purpose (e.g. a reservoir), with the reason."""
    _require_draft(version)
    if not reason.strip():
        raise ValidationError("work.exclusion_needs_reason")
    cells = _base_cell_ids(session, version, base_cell_codes)
    touch_draft(session, version, expected_revision=expected_revision, by=by)
    ids = list(cells.values())
    session.execute(
        delete(WorkCellMember).where(WorkCellMember.version_id == version.id, WorkCellMember.base_cell_id.in_(ids))
    )
    session.execute(
        delete(WorkGridExclusion).where(
            WorkGridExclusion.version_id == version.id, WorkGridExclusion.base_cell_id.in_(ids)
        )
    )
    session.execute(
        insert(WorkGridExclusion),
        [{"version_id": version.id, "base_cell_id": i, "reason": reason.strip()} for i in ids],
    )
    session.execute(
        text(
            "DELETE FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
            "(SELECT 1 FROM work_cell_member m WHERE m.work_cell_id = w.id)"
        ),
        {"v": version.id},
    )
    return len(ids)


def cells_in_no_work_cell(session: Session, edition_id: int) -> list[dict]:
    """Return, per department with a version in force, the base cells of `edition_id` in its jurisdiction that
    none of its work cells holds (matched by code) nor excludes: {dept, version, codes}; departments with none
    are left out.

    After a new base grid edition is published, the versions in force stay drawn on the retired one: cells of
    new codes belong to no work cell until a draft places them.
    """
    from gridkit.grids.work.versions import current_version

    found = []
    for dept in session.scalars(select(Department).order_by(Department.code)):
        version = current_version(session, dept.code)
        if version is None:
            continue
        codes = unplaced_codes(session, dept, version.id, edition_id)
        if codes:
            found.append({"dept": dept.code, "version": version.number, "codes": codes})
    return found
