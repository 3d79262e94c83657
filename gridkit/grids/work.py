"""Departments and their work grids: versions, drafts, membership, validation, publishing, as-of lookups.

A work cell is a set of whole base cells (work_cell_member). Its geometry is derived: the
union of its base cells, cached when the version is published. Subjects keep only their base
cell; who is responsible is looked up through the version valid at the time asked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by, distinct_on
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.admin import area_prefix
from gridkit.errors import Conflict, InvalidTransition, NotFound, ValidationError
from gridkit.grids.base import check_lon_lat, current_edition
from gridkit.models import (
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Coordinator,
    CoordinatorAssignment,
    Department,
    WorkCell,
    WorkCellMember,
    WorkGridExclusion,
    WorkGridVersion,
)
from gridkit.rules import FINISHED_INCIDENT_STATES, VersionState
from gridkit.standard import InvalidValue, codes
from gridkit.standard.codes import CodeProfile

# -- departments -------------------------------------------------------------------------------

def add_department(session: Session, code: str, name: str, *, jurisdiction: str | None = None) -> Department:
    """Create a department; its work grid must cover `jurisdiction` (default: the whole city)."""
    if not (len(code) == 6 and code.isdigit()):
        raise ValidationError(f"department code {code!r} must be 6 digits (department/service type).")
    if not name.strip():
        raise ValidationError("a department needs a name.")
    if session.get(Department, code) is not None:
        raise Conflict(f"department {code} exists already.")
    if session.scalar(select(Department).where(Department.name == name)) is not None:
        raise Conflict(f"a department is already named {name!r}.")
    if jurisdiction is not None and session.get(AdminUnit, jurisdiction) is None:
        raise NotFound(f"jurisdiction {jurisdiction!r} is not a known admin unit code: see `gridkit admin list`.")
    dept = Department(code=code, name=name.strip(), jurisdiction_code=jurisdiction)
    session.add(dept)
    session.flush()
    return dept


def department(session: Session, code: str) -> Department:
    """Return the department with this code or raise NotFound."""
    dept = session.get(Department, code)
    if dept is None:
        raise NotFound(f"no department has code {code!r}: see `gridkit dept list`.")
    return dept


def list_departments(session: Session) -> list[dict]:
    """Return departments with their current version number and work cell count."""
    rows = []
    for dept in session.scalars(select(Department).order_by(Department.code)):
        version = current_version(session, dept.code)
        cells = 0
        if version is not None:
            cells = session.scalar(select(func.count()).select_from(WorkCell).where(WorkCell.version_id == version.id))
        rows.append({"code": dept.code, "name": dept.name, "jurisdiction": dept.jurisdiction_code,
                     "current_version": version.number if version else None, "work_cells": cells})
    return rows


# -- versions ----------------------------------------------------------------------------------

def current_version(session: Session, dept_code: str) -> WorkGridVersion | None:
    """Return the department's version in force now."""
    return session.scalar(select(WorkGridVersion).where(
        WorkGridVersion.dept_code == dept_code, rules.version_in_force(WorkGridVersion)))


def versions_in_force(at: datetime):
    """Return a subquery of the work grid versions in force at `at`, one per department.

    Columns: id, dept_code, number, base_edition_id.
    """
    return (select(WorkGridVersion.id, WorkGridVersion.dept_code, WorkGridVersion.number,
                   WorkGridVersion.base_edition_id)
            .where(rules.version_in_force(WorkGridVersion, at))
            .ext(distinct_on(WorkGridVersion.dept_code))
            .order_by(WorkGridVersion.dept_code, WorkGridVersion.valid_from.desc())
            .subquery("v"))


def version_history(session: Session, dept_code: str) -> list[dict]:
    """Return every version of the department's work grid, oldest first."""
    department(session, dept_code)
    cells = select(WorkCell.version_id, func.count().label("n")).group_by(WorkCell.version_id).subquery()
    rows = session.execute(
        select(WorkGridVersion, func.coalesce(cells.c.n, 0))
        .outerjoin(cells, cells.c.version_id == WorkGridVersion.id)
        .where(WorkGridVersion.dept_code == dept_code).order_by(WorkGridVersion.number))
    return [{"id": v.id, "number": v.number, "status": v.status, "work_cells": n, "revision": v.revision,
             "based_on": v.based_on_id, "created_by": v.created_by, "updated_by": v.updated_by, "note": v.note,
             "created_at": rules.iso(v.created_at), "published_at": rules.iso(v.published_at),
             "valid_from": rules.iso(v.valid_from), "valid_to": rules.iso(v.valid_to)} for v, n in rows]


def start_draft(session: Session, dept_code: str, *, from_version: int | None = None,
                by: str | None = None, note: str | None = None) -> WorkGridVersion:
    """Start a draft copied from the latest published version (or version number `from_version`)."""
    department(session, dept_code)
    edition = current_edition(session)
    if edition is None:
        raise InvalidTransition("no base grid edition is published: publish one before drafting work grids.")
    source = None
    if from_version is not None:
        source = session.scalar(select(WorkGridVersion).where(
            WorkGridVersion.dept_code == dept_code, WorkGridVersion.number == from_version))
        if source is None:
            raise NotFound(f"department {dept_code} has no version {from_version}.")
        if source.status == VersionState.DRAFT:
            raise InvalidTransition(f"version {from_version} is a draft: start from a published version.")
    else:
        source = current_version(session, dept_code)
    number = (session.scalar(select(func.max(WorkGridVersion.number))
                             .where(WorkGridVersion.dept_code == dept_code)) or 0) + 1
    draft = WorkGridVersion(dept_code=dept_code, number=number, status=VersionState.DRAFT,
                            base_edition_id=edition.id, based_on_id=source.id if source else None,
                            created_by=by, note=note)
    session.add(draft)
    session.flush()
    if source is not None:
        _copy_version_content(session, source, draft)
    return draft


def _copy_version_content(session: Session, source: WorkGridVersion, target: WorkGridVersion) -> None:
    """Copy work cells, membership and coordinator assignments (in SQL, no row-by-row Python)."""
    session.execute(text(
        "INSERT INTO work_cell (version_id, code, name) SELECT :t, code, name FROM work_cell WHERE version_id = :s"),
        {"s": source.id, "t": target.id})
    same_edition = source.base_edition_id == target.base_edition_id
    # Across base grid editions, base cells are matched by code.
    session.execute(text(
        "INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id) "
        "SELECT :t, nb.id, nw.id FROM work_cell_member m "
        "JOIN work_cell ow ON ow.id = m.work_cell_id "
        "JOIN work_cell nw ON nw.version_id = :t AND nw.code = ow.code "
        + ("JOIN base_cell nb ON nb.id = m.base_cell_id " if same_edition else
           "JOIN base_cell ob ON ob.id = m.base_cell_id "
           "JOIN base_cell nb ON nb.edition_id = :e AND nb.code = ob.code ")
        + "WHERE m.version_id = :s"),
        {"s": source.id, "t": target.id, "e": target.base_edition_id})
    session.execute(text(
        "INSERT INTO work_grid_exclusion (version_id, base_cell_id, reason) SELECT :t, nb.id, x.reason "
        "FROM work_grid_exclusion x JOIN base_cell ob ON ob.id = x.base_cell_id "
        "JOIN base_cell nb ON nb.edition_id = :e AND nb.code = ob.code WHERE x.version_id = :s"),
        {"s": source.id, "t": target.id, "e": target.base_edition_id})
    session.execute(text(
        "INSERT INTO coordinator_assignment (coordinator_id, work_cell_id) "
        "SELECT a.coordinator_id, nw.id FROM coordinator_assignment a "
        "JOIN work_cell ow ON ow.id = a.work_cell_id AND ow.version_id = :s "
        "JOIN work_cell nw ON nw.version_id = :t AND nw.code = ow.code"),
        {"s": source.id, "t": target.id})


def draft(session: Session, draft_id: int) -> WorkGridVersion:
    """Return the draft with this id, or raise NotFound / InvalidTransition if it is not a draft."""
    version = session.get(WorkGridVersion, draft_id)
    if version is None:
        raise NotFound(f"no work grid version has id {draft_id}.")
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(f"version {version.number} of department {version.dept_code} is "
                                f"{version.status} and cannot change: start a draft from it instead.")
    return version


def touch_draft(session: Session, version: WorkGridVersion, *, expected_revision: int | None, by: str | None) -> None:
    """Bump the draft's revision, refusing a stale save (optimistic locking)."""
    if expected_revision is None:
        expected_revision = version.revision
    result = session.execute(
        update(WorkGridVersion)
        .where(WorkGridVersion.id == version.id, WorkGridVersion.revision == expected_revision)
        .values(revision=WorkGridVersion.revision + 1, updated_by=by, updated_at=func.now())
        .returning(WorkGridVersion.revision))
    if result.scalar() is None:
        session.refresh(version)
        raise Conflict(f"draft {version.id} was changed by {version.updated_by or 'someone'} at "
                       f"{rules.iso(version.updated_at)} (revision {version.revision}, you had "
                       f"{expected_revision}): reload it and redo your change.")
    session.refresh(version)


def version_profile(session: Session, version: WorkGridVersion) -> CodeProfile:
    """Return the code profile of the version's base grid edition (the configured layout it was made in)."""
    return codes.profile_named(session.get(BaseGridEdition, version.base_edition_id).code_profile)


def check_work_cell(session: Session, version: WorkGridVersion, code: str, *,
                    known_areas: set[str] | None = None, profile: CodeProfile | None = None) -> str:
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


def set_members(session: Session, version: WorkGridVersion, work_cell_code: str, base_cell_codes: list[str],
                *, name: str | None = None, expected_revision: int | None = None, by: str | None = None) -> WorkCell:
    """Put the named base cells into the work cell (created if new), taking them from other work cells."""
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(f"version {version.number} is {version.status}; only drafts can change.")
    check_work_cell(session, version, work_cell_code)
    cells = dict(session.execute(select(BaseCell.code, BaseCell.id).where(
        BaseCell.edition_id == version.base_edition_id, BaseCell.code.in_(base_cell_codes))).all())
    missing = sorted(set(base_cell_codes) - set(cells))
    if missing:
        raise NotFound(f"base cells not in the draft's base grid edition: {', '.join(missing[:10])}"
                       + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    touch_draft(session, version, expected_revision=expected_revision, by=by)
    work_cell = session.scalar(select(WorkCell).where(WorkCell.version_id == version.id,
                                                      WorkCell.code == work_cell_code))
    if work_cell is None:
        work_cell = WorkCell(version_id=version.id, code=work_cell_code, name=name)
        session.add(work_cell)
        session.flush()
    elif name:
        work_cell.name = name
    ids = list(cells.values())
    session.execute(delete(WorkGridExclusion).where(WorkGridExclusion.version_id == version.id,
                                                    WorkGridExclusion.base_cell_id.in_(ids)))
    session.execute(delete(WorkCellMember).where(WorkCellMember.version_id == version.id,
                                                 WorkCellMember.base_cell_id.in_(ids)))
    if ids:
        session.execute(insert(WorkCellMember), [
            {"version_id": version.id, "base_cell_id": i, "work_cell_id": work_cell.id} for i in ids])
    # A work cell left with no base cells disappears.
    session.execute(text(
        "DELETE FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
        "(SELECT 1 FROM work_cell_member m WHERE m.work_cell_id = w.id)"), {"v": version.id})
    session.flush()
    return work_cell


def cells_in_polygon(session: Session, version: WorkGridVersion, polygon, *, threshold: float = 0.5) -> list[str]:
    """Return codes of the version's base cells with at least `threshold` of their area inside `polygon`.

    `polygon` is a shapely (Multi)Polygon in EPSG:4490; areas are compared on the spheroid.
    """
    if not 0 < threshold <= 1:
        raise ValidationError(f"the share threshold must be in (0, 1], got {threshold}.")
    return list(session.scalars(text(
        "WITH p AS (SELECT ST_SetSRID(ST_GeomFromWKB(:wkb), :srid) AS g) "
        "SELECT b.code FROM base_cell b, p WHERE b.edition_id = :e AND ST_Intersects(b.geom, p.g) "
        "AND ST_Area(ST_Intersection(b.geom, p.g)::geography) >= :t * ST_Area(b.geom::geography) ORDER BY b.code"),
        {"e": version.base_edition_id, "t": threshold, "wkb": polygon.wkb, "srid": rules.SRID}))


def cells_in_admin_unit(session: Session, version: WorkGridVersion, admin_code: str) -> list[str]:
    """Return codes of the version's base cells inside an admin unit (by code prefix)."""
    if session.get(AdminUnit, admin_code) is None:
        raise NotFound(f"no admin unit has code {admin_code!r}: see `gridkit admin list`.")
    return list(session.scalars(select(BaseCell.code).where(
        BaseCell.edition_id == version.base_edition_id,
        BaseCell.community_code.startswith(area_prefix(session, admin_code)))
        .order_by(BaseCell.code)))


def exclude_cells(session: Session, version: WorkGridVersion, base_cell_codes: list[str], reason: str, *,
                  expected_revision: int | None = None, by: str | None = None) -> int:
    """Leave base cells out of every work cell of a draft on purpose (e.g. a reservoir), with the reason."""
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(f"version {version.number} is {version.status}; only drafts can change.")
    if not reason.strip():
        raise ValidationError("say why the base cells are left out (--reason).")
    cells = dict(session.execute(select(BaseCell.code, BaseCell.id).where(
        BaseCell.edition_id == version.base_edition_id, BaseCell.code.in_(base_cell_codes))).all())
    missing = sorted(set(base_cell_codes) - set(cells))
    if missing:
        raise NotFound(f"base cells not in the draft's base grid edition: {', '.join(missing[:10])}")
    touch_draft(session, version, expected_revision=expected_revision, by=by)
    ids = list(cells.values())
    session.execute(delete(WorkCellMember).where(WorkCellMember.version_id == version.id,
                                                 WorkCellMember.base_cell_id.in_(ids)))
    session.execute(delete(WorkGridExclusion).where(WorkGridExclusion.version_id == version.id,
                                                    WorkGridExclusion.base_cell_id.in_(ids)))
    session.execute(insert(WorkGridExclusion), [
        {"version_id": version.id, "base_cell_id": i, "reason": reason.strip()} for i in ids])
    session.execute(text(
        "DELETE FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
        "(SELECT 1 FROM work_cell_member m WHERE m.work_cell_id = w.id)"), {"v": version.id})
    return len(ids)


def version_by_number(session: Session, dept_code: str, number: int) -> WorkGridVersion:
    """Return version `number` of the department or raise NotFound."""
    department(session, dept_code)
    version = session.scalar(select(WorkGridVersion).where(
        WorkGridVersion.dept_code == dept_code, WorkGridVersion.number == number))
    if version is None:
        raise NotFound(f"department {dept_code} has no version {number}: see `gridkit workgrid history --dept {dept_code}`.")
    return version


def diff_versions(session: Session, dept_code: str, old_number: int, new_number: int) -> dict:
    """Return what changed between two versions of a department's work grid.

    moved: base cells whose work cell changed (matched by base cell code across editions);
    added/removed work cells; coordinator changes per work cell code; and how many residents,
    buildings and open incidents now fall in another work cell.
    """
    old = version_by_number(session, dept_code, old_number)
    new = version_by_number(session, dept_code, new_number)
    membership = ("SELECT b.code AS base_cell, w.code AS work_cell FROM work_cell_member m "
                  "JOIN base_cell b ON b.id = m.base_cell_id JOIN work_cell w ON w.id = m.work_cell_id "
                  "WHERE m.version_id = {v}")
    moved_rows = session.execute(text(
        f"SELECT coalesce(o.base_cell, n.base_cell) AS base_cell, o.work_cell AS from_, n.work_cell AS to_ "
        f"FROM ({membership.format(v=':o')}) o FULL JOIN ({membership.format(v=':n')}) n "
        f"ON n.base_cell = o.base_cell WHERE o.work_cell IS DISTINCT FROM n.work_cell ORDER BY 1"),
        {"o": old.id, "n": new.id}).all()
    moved = [{"base_cell": r.base_cell, "from": r.from_, "to": r.to_} for r in moved_rows]
    old_cells = set(session.scalars(select(WorkCell.code).where(WorkCell.version_id == old.id)))
    new_cells = set(session.scalars(select(WorkCell.code).where(WorkCell.version_id == new.id)))
    coordinators = "SELECT w.code, c.id, c.name FROM coordinator_assignment a JOIN work_cell w ON w.id = a.work_cell_id " \
                   "JOIN coordinator c ON c.id = a.coordinator_id WHERE w.version_id = :v"
    before = {(r.code, r.id): r.name for r in session.execute(text(coordinators), {"v": old.id})}
    after = {(r.code, r.id): r.name for r in session.execute(text(coordinators), {"v": new.id})}
    coordinator_changes = (
        [{"work_cell": code, "coordinator": name, "change": "removed"} for (code, cid), name in sorted(before.items())
         if (code, cid) not in after] +
        [{"work_cell": code, "coordinator": name, "change": "added"} for (code, cid), name in sorted(after.items())
         if (code, cid) not in before])
    codes = [m["base_cell"] for m in moved]
    affected = {"residents": 0, "buildings": 0, "open_incidents": 0}
    if codes:
        # Subjects keep their base cell; a moved base cell carries its subjects to the other work cell.
        counts = session.execute(text(
            "WITH c AS (SELECT id FROM base_cell WHERE code = ANY(:codes)) SELECT "
            "(SELECT count(*) FROM resident WHERE base_cell_id IN (SELECT id FROM c)) AS residents, "
            "(SELECT count(*) FROM building WHERE base_cell_id IN (SELECT id FROM c)) AS buildings, "
            "(SELECT count(*) FROM incident WHERE base_cell_id IN (SELECT id FROM c) "
            " AND status <> ALL(:finished)) AS open_incidents"),
            {"codes": codes, "finished": sorted(FINISHED_INCIDENT_STATES)}).one()
        affected = dict(counts._mapping)
    return {"dept": dept_code, "from_version": old.number, "to_version": new.number, "moved": moved,
            "added_work_cells": sorted(new_cells - old_cells), "removed_work_cells": sorted(old_cells - new_cells),
            "coordinator_changes": coordinator_changes, "subjects_changing_work_cell": affected}


def rollback(session: Session, dept_code: str, to_number: int, *, by: str | None = None,
             at: datetime | None = None) -> WorkGridVersion:
    """Publish a copy of an earlier version as a new version (published versions never change)."""
    source = version_by_number(session, dept_code, to_number)
    if source.status == VersionState.DRAFT:
        raise InvalidTransition(f"version {to_number} is a draft: only a published or retired version can be restored.")
    copy = start_draft(session, dept_code, from_version=to_number, by=by, note=f"rollback to version {to_number}")
    return publish(session, copy, by=by, at=at)


# -- validation and publishing -------------------------------------------------------------------

@dataclass
class Problem:
    """One thing wrong with a work grid version."""

    type: str
    severity: str          # "error" blocks publishing, "warning" does not
    message: str
    codes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return the problem as a JSON-ready dict."""
        return asdict(self)


def validate_version(session: Session, version: WorkGridVersion, *, coordinator_required: bool = False,
                     geometry_cached: bool = False) -> list[Problem]:
    """Return every problem of the version: coverage of the jurisdiction, connectivity, codes, coordinators.

    With geometry_cached, connectivity is read from work_cell.geom (just computed by publish).
    """
    problems: list[Problem] = []
    dept = session.get(Department, version.dept_code)
    scope = area_prefix(session, dept.jurisdiction_code)
    uncovered = session.scalars(text(
        # NOT IN over one hashed set: the planner misjudges NOT EXISTS on a fresh draft's rows.
        "SELECT b.code FROM base_cell b WHERE b.edition_id = :e AND b.community_code LIKE :scope "
        "AND b.id NOT IN (SELECT m.base_cell_id FROM work_cell_member m WHERE m.version_id = :v "
        "                 UNION ALL SELECT x.base_cell_id FROM work_grid_exclusion x WHERE x.version_id = :v) "
        "ORDER BY b.code"), {"e": version.base_edition_id, "v": version.id, "scope": scope + "%"}).all()
    if uncovered:
        problems.append(Problem("unassigned_base_cells", "error",
                                f"{len(uncovered)} base cells of the jurisdiction are in no work cell.", list(uncovered)))
    outside = session.scalars(text(
        "SELECT b.code FROM work_cell_member m JOIN base_cell b ON b.id = m.base_cell_id "
        "WHERE m.version_id = :v AND b.community_code NOT LIKE :scope ORDER BY b.code"),
        {"v": version.id, "scope": scope + "%"}).all()
    if outside:
        problems.append(Problem("outside_jurisdiction", "error",
                                f"{len(outside)} base cells lie outside the department's jurisdiction {scope}.",
                                list(outside)))
    parts_sql = (
        "SELECT w.code, ST_NumGeometries(w.geom) FROM work_cell w WHERE w.version_id = :v "
        "AND ST_NumGeometries(w.geom) > 1 ORDER BY w.code" if geometry_cached else
        "SELECT w.code, ST_NumGeometries(ST_Multi(ST_UnaryUnion(ST_Collect(b.geom)))) FROM work_cell w "
        "JOIN work_cell_member m ON m.work_cell_id = w.id JOIN base_cell b ON b.id = m.base_cell_id "
        "WHERE w.version_id = :v GROUP BY w.code HAVING "
        "ST_NumGeometries(ST_Multi(ST_UnaryUnion(ST_Collect(b.geom)))) > 1 ORDER BY w.code")
    for code, parts in session.execute(text(parts_sql), {"v": version.id}):
        problems.append(Problem("multipart_work_cell", "error",
                                f"work cell {code} falls apart into {parts} pieces: its base cells must touch.", [code]))
    problems += _code_problems(session, version)
    lonely = session.scalars(text(
        "SELECT w.code FROM work_cell w WHERE w.version_id = :v AND NOT EXISTS "
        "(SELECT 1 FROM coordinator_assignment a JOIN coordinator c ON c.id = a.coordinator_id "
        " WHERE a.work_cell_id = w.id AND c.active) ORDER BY w.code"), {"v": version.id}).all()
    if lonely:
        problems.append(Problem("no_coordinator", "error" if coordinator_required else "warning",
                                f"{len(lonely)} work cells have no coordinator.", list(lonely)))
    return problems


def _code_problems(session: Session, version: WorkGridVersion) -> list[Problem]:
    """Return the work cells whose code breaks the layout, or whose area part is not the area of their base cells.

    The area part must name an admin unit holding every base cell of the work cell: a work cell
    of street 440304002 coded 440304001000 names another street.
    """
    profile = version_profile(session, version)
    known_areas = set(session.scalars(select(AdminUnit.code)))
    communities: dict[str, list[str]] = {}
    for code, community in session.execute(
            select(WorkCell.code, BaseCell.community_code).distinct()
            .join(WorkCellMember, WorkCellMember.work_cell_id == WorkCell.id)
            .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
            .where(WorkCell.version_id == version.id).order_by(WorkCell.code, BaseCell.community_code)):
        communities.setdefault(code, []).append(community)
    problems = []
    for code in session.scalars(select(WorkCell.code).where(WorkCell.version_id == version.id).order_by(WorkCell.code)):
        try:
            check_work_cell(session, version, code, known_areas=known_areas, profile=profile)
        except ValidationError as exc:
            problems.append(Problem("work_cell_code", "error", exc.message, [code]))
            continue
        admin = codes.area_admin_code(codes.work_cell_parts(code, profile)[1], profile)
        prefix = area_prefix(session, admin)
        foreign = [c for c in communities.get(code, []) if not c.startswith(prefix)]
        if foreign:
            problems.append(Problem("work_cell_area", "error",
                                    f"work cell {code} is coded for area {admin} but holds base cells of "
                                    f"{', '.join(foreign[:5])}: its area part must name an admin unit holding "
                                    "all its base cells.", [code]))
    return problems


def _cache_work_cell_geometry(session: Session, version: WorkGridVersion) -> None:
    """Store each work cell's geometry: the union of its base cells."""
    session.execute(text(
        "UPDATE work_cell w SET geom = u.geom FROM ("
        " SELECT m.work_cell_id AS id, ST_Multi(ST_UnaryUnion(ST_Collect(b.geom))) AS geom"
        " FROM work_cell_member m JOIN base_cell b ON b.id = m.base_cell_id"
        " WHERE m.version_id = :v GROUP BY m.work_cell_id) u WHERE w.id = u.id"), {"v": version.id})


def publish(session: Session, version: WorkGridVersion, *, at: datetime | None = None,
            by: str | None = None, coordinator_required: bool = False,
            expected_revision: int | None = None) -> WorkGridVersion:
    """Publish a draft: validate, cache work cell geometries, close the previous version's validity.

    With expected_revision, a draft changed since the publisher looked at it is refused (Conflict).
    """
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(f"version {version.number} of department {version.dept_code} is "
                                f"{version.status}: only a draft can be published.")
    if expected_revision is not None:
        touch_draft(session, version, expected_revision=expected_revision, by=by)
    savepoint = session.begin_nested()
    # The union is computed once: validation checks connectivity on it and publishing keeps it.
    _cache_work_cell_geometry(session, version)
    errors = [p for p in validate_version(session, version, coordinator_required=coordinator_required,
                                          geometry_cached=True) if p.severity == "error"]
    if errors:
        savepoint.rollback()
        raise ValidationError(f"draft {version.id} cannot be published: "
                              + "; ".join(p.message for p in errors),
                              problems=[p.to_dict() for p in errors])
    savepoint.commit()
    at = at or rules.now()
    previous = current_version(session, version.dept_code)
    if previous is not None:
        if previous.valid_from and previous.valid_from > at:
            raise InvalidTransition(f"version {previous.number} is valid from {rules.iso(previous.valid_from)}, "
                                    f"after {rules.iso(at)}.")
        previous.valid_to = at
        previous.status = VersionState.RETIRED
        session.flush()
    version.status = VersionState.PUBLISHED
    version.published_at = rules.now()
    version.valid_from = at
    version.updated_by = by or version.updated_by
    session.flush()
    return version


# -- coordinators ----------------------------------------------------------------------------------

def add_coordinator(session: Session, name: str, phone: str | None, dept_code: str,
                    work_cell_codes: list[str], *, version: WorkGridVersion | None = None) -> Coordinator:
    """Make a coordinator (the existing one with this phone, else a new one) cover work cells of the
    department's current version (or `version`)."""
    from gridkit.standard.ids import validate_phone

    if not name.strip():
        raise ValidationError("a coordinator needs a name.")
    if phone:
        try:
            phone = validate_phone(phone)
        except ValueError as exc:
            raise ValidationError(f"coordinator {name}: {exc}")
    # One person may cover several departments' work cells (多员合一): the phone identifies them.
    coordinator = session.scalar(select(Coordinator).where(Coordinator.phone == phone)) if phone else None
    if coordinator is not None and coordinator.name != name.strip():
        raise Conflict(f"phone {phone} belongs to coordinator {coordinator.id} {coordinator.name}, not {name}: "
                       "check the number.")
    if coordinator is None:
        coordinator = Coordinator(name=name.strip(), phone=phone)
        session.add(coordinator)
        session.flush()
    assign_coordinator(session, coordinator, dept_code, work_cell_codes, version=version)
    return coordinator


def assign_coordinator(session: Session, coordinator: Coordinator, dept_code: str,
                       work_cell_codes: list[str], *, version: WorkGridVersion | None = None) -> None:
    """Make `coordinator` responsible for the named work cells of a version of the department."""
    department(session, dept_code)
    version = version or current_version(session, dept_code)
    if version is None:
        raise NotFound(f"department {dept_code} has no published work grid yet: publish one first.")
    cells = dict(session.execute(select(WorkCell.code, WorkCell.id).where(
        WorkCell.version_id == version.id, WorkCell.code.in_(work_cell_codes))).all())
    missing = sorted(set(work_cell_codes) - set(cells))
    if missing:
        raise NotFound(f"work cells not in version {version.number} of department {dept_code}: {', '.join(missing)}")
    existing = set(session.scalars(select(CoordinatorAssignment.work_cell_id).where(
        CoordinatorAssignment.coordinator_id == coordinator.id)))
    for cell_id in cells.values():
        if cell_id not in existing:
            session.add(CoordinatorAssignment(coordinator_id=coordinator.id, work_cell_id=cell_id))
    session.flush()


def list_coordinators(session: Session, dept_code: str | None = None) -> list[dict]:
    """Return coordinators with the work cells they cover in the current versions."""
    v = WorkGridVersion
    query = (select(Coordinator.id, Coordinator.name, Coordinator.phone, v.dept_code,
                    func.array_agg(aggregate_order_by(WorkCell.code, WorkCell.code)).label("work_cells"))
             .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
             .join(WorkCell, WorkCell.id == CoordinatorAssignment.work_cell_id)
             .join(v, v.id == WorkCell.version_id)
             .where(rules.version_in_force(v))
             .group_by(Coordinator.id, Coordinator.name, Coordinator.phone, v.dept_code)
             .order_by(Coordinator.id, v.dept_code))
    if dept_code is not None:
        query = query.where(v.dept_code == dept_code)
    return [dict(r._mapping) for r in session.execute(query)]


# -- as-of responsibility ---------------------------------------------------------------------------

def coordinators_json(work_cell_id):
    """Return a scalar subquery: the active coordinators of a work cell as a JSON list of {id, name, phone}."""
    return (select(func.coalesce(func.json_agg(aggregate_order_by(
        func.json_build_object("id", Coordinator.id, "name", Coordinator.name, "phone", Coordinator.phone),
        Coordinator.id)), text("'[]'::json")))
        .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
        .where(CoordinatorAssignment.work_cell_id == work_cell_id, Coordinator.active).scalar_subquery())


def _responsibility_query(lon: float, lat: float, at: datetime, edition_at: datetime | None):
    """Return the one statement behind responsibility_at (edition in force at `edition_at`, None: now)."""
    point = rules.make_point(lon, lat)
    edition_id = (select(BaseGridEdition.id).where(rules.edition_in_force(BaseGridEdition, edition_at))
                  .order_by(BaseGridEdition.published_at.desc().nulls_last()).limit(1).scalar_subquery())
    cell = (select(BaseCell.code, BaseCell.community_code, AdminUnit.name)
            .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
            .where(BaseCell.id == rules.point_cell(BaseCell, edition_id, point)).cte("cell"))
    v = versions_in_force(at)
    # The version may be drawn on an older edition: the point → base cell rule runs on its own edition.
    hit = (select(WorkCell.id, WorkCell.code, WorkCell.name)
           .join(WorkCellMember, WorkCellMember.work_cell_id == WorkCell.id)
           .where(WorkCellMember.version_id == v.c.id,
                  WorkCellMember.base_cell_id
                  == rules.point_cell(BaseCell, v.c.base_edition_id, point).correlate(v))
           .lateral("hit"))
    department = func.json_build_object(
        "dept", Department.code, "dept_name", Department.name, "version", v.c.number,
        "work_cell", hit.c.code, "work_cell_name", hit.c.name, "coordinators", coordinators_json(hit.c.id))
    departments = func.coalesce(
        func.json_agg(aggregate_order_by(department, Department.code)).filter(Department.code.is_not(None)),
        text("'[]'::json"))
    return (select(select(cell.c.code).scalar_subquery().label("base_cell"),
                   select(cell.c.community_code).scalar_subquery().label("community"),
                   select(cell.c.name).scalar_subquery().label("community_name"),
                   departments.label("departments"))
            .select_from(Department)
            .outerjoin(v, v.c.dept_code == Department.code)
            .outerjoin(hit, text("true")))


def responsibility_at(session: Session, lon: float, lat: float, at: datetime | None = None) -> dict:
    """Return who is responsible for a point at a time: base cell, community, and per department
    the work cell and coordinators of the version valid then (one SQL round trip).

    Departments whose version valid then has no work cell there are listed with work_cell None.
    """
    check_lon_lat(lon, lat)
    edition_at = at
    at = at or rules.now()
    row = session.execute(_responsibility_query(lon, lat, at, edition_at)).one()
    return {"lon": lon, "lat": lat, "at": at.isoformat(), "base_cell": row.base_cell, "community": row.community,
            "community_name": row.community_name, "departments": row.departments}
