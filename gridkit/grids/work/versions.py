"""Work grid versions: the version in force, history, drafts (start, copy, optimistic locking), diffs.

A department's work grid is a sequence of versions: draft → published → retired. Published
versions never change; a draft is a copy of the version it starts from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.errors import Conflict, InvalidTransition, NotFound
from gridkit.grids.base import current_edition, state_name
from gridkit.grids.work.departments import department
from gridkit.messages import Message
from gridkit.models import BaseGridEdition, Department, WorkCell, WorkGridVersion
from gridkit.rules import FINISHED_INCIDENT_STATES, VersionState, shown_count
from gridkit.standard import codes
from gridkit.standard.codes import CodeProfile


def list_departments(session: Session) -> list[dict]:
    """Return departments with their current version number and work cell count."""
    rows = []
    for dept in session.scalars(select(Department).order_by(Department.code)):
        version = current_version(session, dept.code)
        cells = 0
        if version is not None:
            cells = session.scalar(select(func.count()).select_from(WorkCell).where(WorkCell.version_id == version.id))
        rows.append(
            {
                "code": dept.code,
                "name": dept.name,
                "jurisdiction": dept.jurisdiction_code,
                "current_version": version.number if version else None,
                "work_cells": cells,
            }
        )
    return rows


def current_version(session: Session, dept_code: str) -> WorkGridVersion | None:
    """Return the department's version in force now."""
    return session.scalar(
        select(WorkGridVersion).where(WorkGridVersion.dept_code == dept_code, rules.version_in_force(WorkGridVersion))
    )


def versions_in_force(at: datetime):
    """Return a subquery of the work grid versions in force at `at`, one per department.

    Columns: id, dept_code, number, base_edition_id.
    """
    return (
        select(WorkGridVersion.id, WorkGridVersion.dept_code, WorkGridVersion.number, WorkGridVersion.base_edition_id)
        .where(rules.version_in_force(WorkGridVersion, at))
        .ext(distinct_on(WorkGridVersion.dept_code))
        .order_by(WorkGridVersion.dept_code, WorkGridVersion.valid_from.desc())
        .subquery("v")
    )


def version_history(session: Session, dept_code: str) -> list[dict]:
    """Return every version of the department's work grid, oldest first."""
    department(session, dept_code)
    cells = select(WorkCell.version_id, func.count().label("n")).group_by(WorkCell.version_id).subquery()
    rows = session.execute(
        select(WorkGridVersion, func.coalesce(cells.c.n, 0))
        .outerjoin(cells, cells.c.version_id == WorkGridVersion.id)
        .where(WorkGridVersion.dept_code == dept_code)
        .order_by(WorkGridVersion.number)
    )
    return [
        {
            "id": v.id,
            "number": v.number,
            "status": v.status,
            "work_cells": n,
            "revision": v.revision,
            "based_on": v.based_on_id,
            "created_by": v.created_by,
            "updated_by": v.updated_by,
            "note": v.note,
            "created_at": rules.iso(v.created_at),
            "published_at": rules.iso(v.published_at),
            "valid_from": rules.iso(v.valid_from),
            "valid_to": rules.iso(v.valid_to),
        }
        for v, n in rows
    ]


def start_draft(
    session: Session, dept_code: str, *, from_version: int | None = None, by: str | None = None, note: str | None = None
) -> WorkGridVersion:
    """Start a draft copied from the latest published version (or version number `from_version`)."""
    department(session, dept_code)
    lock_department(session, dept_code)  # two drafts started at once must not take the same number
    edition = current_edition(session)
    if edition is None:
        raise InvalidTransition("work.no_published_edition")
    # Read under the department's lock: a version published at this moment is committed and seen here.
    in_force = current_version(session, dept_code)
    source = in_force
    if from_version is not None:
        source = session.scalar(
            select(WorkGridVersion).where(
                WorkGridVersion.dept_code == dept_code, WorkGridVersion.number == from_version
            )
        )
        if source is None:
            raise NotFound("work.version_not_found", dept=dept_code, number=from_version)
        if source.status == VersionState.DRAFT:
            raise InvalidTransition("work.start_from_draft", number=from_version)
    number = (
        session.scalar(select(func.max(WorkGridVersion.number)).where(WorkGridVersion.dept_code == dept_code)) or 0
    ) + 1
    draft = WorkGridVersion(
        dept_code=dept_code,
        number=number,
        status=VersionState.DRAFT,
        base_edition_id=edition.id,
        based_on_id=source.id if source else None,
        in_force_at_start_id=in_force.id if in_force else None,
        created_by=by,
        note=note,
    )
    session.add(draft)
    session.flush()
    if source is not None:
        _copy_version_content(session, source, draft)
    return draft


def lock_department(session: Session, dept_code: str) -> None:
    """Lock the department's row until commit: its drafts are numbered and its versions published one at a time."""
    session.execute(select(Department.code).where(Department.code == dept_code).with_for_update())


def _copy_version_content(session: Session, source: WorkGridVersion, target: WorkGridVersion) -> None:
    """Copy work cells, membership and coordinator assignments (in SQL, no row-by-row Python)."""
    session.execute(
        text(
            "INSERT INTO work_cell (version_id, code, name) SELECT :t, code, name FROM work_cell WHERE version_id = :s"
        ),
        {"s": source.id, "t": target.id},
    )
    same_edition = source.base_edition_id == target.base_edition_id
    # Across base grid editions, base cells are matched by code.
    session.execute(
        text(
            "INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id) "
            "SELECT :t, nb.id, nw.id FROM work_cell_member m "
            "JOIN work_cell ow ON ow.id = m.work_cell_id "
            "JOIN work_cell nw ON nw.version_id = :t AND nw.code = ow.code "
            + (
                "JOIN base_cell nb ON nb.id = m.base_cell_id "
                if same_edition
                else "JOIN base_cell ob ON ob.id = m.base_cell_id "
                "JOIN base_cell nb ON nb.edition_id = :e AND nb.code = ob.code "
            )
            + "WHERE m.version_id = :s"
        ),
        {"s": source.id, "t": target.id, "e": target.base_edition_id},
    )
    session.execute(
        text(
            "INSERT INTO work_grid_exclusion (version_id, base_cell_id, reason) SELECT :t, nb.id, x.reason "
            "FROM work_grid_exclusion x JOIN base_cell ob ON ob.id = x.base_cell_id "
            "JOIN base_cell nb ON nb.edition_id = :e AND nb.code = ob.code WHERE x.version_id = :s"
        ),
        {"s": source.id, "t": target.id, "e": target.base_edition_id},
    )
    session.execute(
        text(
            "INSERT INTO coordinator_assignment (coordinator_id, work_cell_id) "
            "SELECT a.coordinator_id, nw.id FROM coordinator_assignment a "
            "JOIN work_cell ow ON ow.id = a.work_cell_id AND ow.version_id = :s "
            "JOIN work_cell nw ON nw.version_id = :t AND nw.code = ow.code"
        ),
        {"s": source.id, "t": target.id},
    )


def draft(session: Session, draft_id: int) -> WorkGridVersion:
    """Return the draft with this id, or raise NotFound / InvalidTransition if it is not a draft."""
    version = session.get(WorkGridVersion, draft_id)
    if version is None:
        raise NotFound("work.draft_not_found", draft=draft_id)
    if version.status != VersionState.DRAFT:
        raise InvalidTransition(
            "work.version_frozen", number=version.number, dept=version.dept_code, status=state_name(version.status)
        )
    return version


def touch_draft(session: Session, version: WorkGridVersion, *, expected_revision: int | None, by: str | None) -> None:
    """Bump the draft's revision, refusing a stale save (optimistic locking)."""
    if expected_revision is None:
        expected_revision = version.revision
    result = session.execute(
        update(WorkGridVersion)
        .where(WorkGridVersion.id == version.id, WorkGridVersion.revision == expected_revision)
        .values(revision=WorkGridVersion.revision + 1, updated_by=by, updated_at=func.now())
        .returning(WorkGridVersion.revision)
    )
    if result.scalar() is None:
        session.refresh(version)
        raise Conflict(
            "work.stale_draft",
            draft=version.id,
            who=version.updated_by or Message("work.someone"),
            when=rules.iso(version.updated_at),
            revision=version.revision,
            expected=expected_revision,
        )
    session.refresh(version)


def version_profile(session: Session, version: WorkGridVersion) -> CodeProfile:
    """Return the code profile of the version's base grid edition (the configured layout it was made in)."""
    return codes.profile_named(session.get(BaseGridEdition, version.base_edition_id).code_profile)


def version_by_number(session: Session, dept_code: str, number: int) -> WorkGridVersion:
    """Return version `number` of the department or raise NotFound."""
    department(session, dept_code)
    version = session.scalar(
        select(WorkGridVersion).where(WorkGridVersion.dept_code == dept_code, WorkGridVersion.number == number)
    )
    if version is None:
        raise NotFound("work.version_not_found", dept=dept_code, number=number)
    return version


def diff_versions(
    session: Session, dept_code: str, old_number: int, new_number: int, *, hide_small_counts: bool = False
) -> dict:
    """Return what changed between two versions of a department's work grid.

    moved: base cells whose work cell changed (matched by base cell code across editions);
    added/removed work cells; coordinator changes per work cell code; and how many residents,
    buildings and open incidents now fall in another work cell (with `hide_small_counts`, a reader who may
    not see residents, the residents under the small-count rule: gridkit.rules.shown_count).
    """
    old = version_by_number(session, dept_code, old_number)
    new = version_by_number(session, dept_code, new_number)
    membership = (
        "SELECT b.code AS base_cell, w.code AS work_cell FROM work_cell_member m "
        "JOIN base_cell b ON b.id = m.base_cell_id JOIN work_cell w ON w.id = m.work_cell_id "
        "WHERE m.version_id = {v}"
    )
    moved_rows = session.execute(
        text(
            f"SELECT coalesce(o.base_cell, n.base_cell) AS base_cell, o.work_cell AS from_, n.work_cell AS to_ "
            f"FROM ({membership.format(v=':o')}) o FULL JOIN ({membership.format(v=':n')}) n "
            f"ON n.base_cell = o.base_cell WHERE o.work_cell IS DISTINCT FROM n.work_cell ORDER BY 1"
        ),
        {"o": old.id, "n": new.id},
    ).all()
    moved = [{"base_cell": r.base_cell, "from": r.from_, "to": r.to_} for r in moved_rows]
    old_cells = set(session.scalars(select(WorkCell.code).where(WorkCell.version_id == old.id)))
    new_cells = set(session.scalars(select(WorkCell.code).where(WorkCell.version_id == new.id)))
    coordinators = (
        "SELECT w.code, c.id, c.name FROM coordinator_assignment a "
        "JOIN work_cell w ON w.id = a.work_cell_id "
        "JOIN coordinator c ON c.id = a.coordinator_id WHERE w.version_id = :v"
    )
    before = {(r.code, r.id): r.name for r in session.execute(text(coordinators), {"v": old.id})}
    after = {(r.code, r.id): r.name for r in session.execute(text(coordinators), {"v": new.id})}
    coordinator_changes = [
        {"work_cell": code, "coordinator": name, "change": "removed"}
        for (code, cid), name in sorted(before.items())
        if (code, cid) not in after
    ] + [
        {"work_cell": code, "coordinator": name, "change": "added"}
        for (code, cid), name in sorted(after.items())
        if (code, cid) not in before
    ]
    codes = [m["base_cell"] for m in moved]
    affected = {"residents": 0, "buildings": 0, "open_incidents": 0}
    if codes:
        # Subjects keep their base cell; a moved base cell carries its subjects to the other work cell.
        counts = session.execute(
            text(
                "WITH c AS (SELECT id FROM base_cell WHERE code = ANY(:codes)) SELECT "
                "(SELECT count(*) FROM resident_cell WHERE base_cell_id IN (SELECT id FROM c)) AS residents, "
                "(SELECT count(*) FROM building WHERE base_cell_id IN (SELECT id FROM c)) AS buildings, "
                "(SELECT count(*) FROM incident WHERE base_cell_id IN (SELECT id FROM c) "
                " AND status <> ALL(:finished)) AS open_incidents"
            ),
            {"codes": codes, "finished": sorted(FINISHED_INCIDENT_STATES)},
        ).one()
        affected = dict(counts._mapping)
        if hide_small_counts:  # 1–2 residents in the moved base cells single them out
            affected["residents"] = shown_count(affected["residents"])
    return {
        "dept": dept_code,
        "from_version": old.number,
        "to_version": new.number,
        "moved": moved,
        "added_work_cells": sorted(new_cells - old_cells),
        "removed_work_cells": sorted(old_cells - new_cells),
        "coordinator_changes": coordinator_changes,
        "subjects_changing_work_cell": affected,
    }
