"""View models: what each page shows besides its map, assembled from gridkit queries.

These functions know the pages (which lists a picker needs, which counts a side panel shows);
the domain below them answers layer queries and rules only.
"""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit import layers
from gridkit.grids.base import edition_named, list_editions
from gridkit.grids.work import list_departments
from gridkit.messages import render
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
from gridkit.rules import VersionState, iso
from web.scope import jurisdiction_within_scope

# Notes gridkit writes itself (a rollback's draft); anything else is a user's own words, shown as written.
_ROLLBACK_NOTE = re.compile(r"rollback to version (\d+)")


def note_text(note: str | None, lang: str | None) -> str | None:
    """Return a version's note for a reader of `lang`: notes gridkit wrote are translated."""
    if note is None:
        return None
    match = _ROLLBACK_NOTE.fullmatch(note.strip())
    if match:
        return render("planner.note.rollback", lang, number=int(match.group(1)))
    return note


def basegrid_overview(session: Session, name: str | None = None) -> dict:
    """Return what the base grid page shows: the edition (by name, default the current one), every
    edition for the picker, and the extent of the edition's cells (lon/lat) or None.

    With no edition at all and no name asked for, `edition` is None instead of raising NotFound.
    """
    editions = list_editions(session)
    if name is None and not editions:
        return {"edition": None, "editions": [], "extent": layers.admin_extent(session)}
    edition = edition_named(session, name)
    info = next(e for e in editions if e["name"] == edition.name)
    extent = layers.edition_extent(session, edition.id)
    return {
        "edition": dict(info, id=edition.id),
        "editions": editions,
        "extent": extent or layers.admin_extent(session),
    }


def planner_departments(session: Session, scope_code: str | None = None, lang: str | None = None) -> list[dict]:
    """Return departments for the planner's list: list_departments' fields, the jurisdiction's name,
    the id of the current version, the drafts (newest first) and whether `scope_code` may edit it."""
    rows = list_departments(session)
    names = dict(
        session.execute(
            select(AdminUnit.code, AdminUnit.name).where(
                AdminUnit.code.in_([r["jurisdiction"] for r in rows if r["jurisdiction"]])
            )
        ).all()
    )
    current = dict(
        session.execute(
            select(WorkGridVersion.dept_code, WorkGridVersion.id).where(
                WorkGridVersion.status == VersionState.PUBLISHED, WorkGridVersion.valid_to.is_(None)
            )
        ).all()
    )
    drafts: dict[str, list[dict]] = {}
    for v in session.scalars(
        select(WorkGridVersion)
        .where(WorkGridVersion.status == VersionState.DRAFT)
        .order_by(WorkGridVersion.number.desc())
    ):
        drafts.setdefault(v.dept_code, []).append(
            {
                "id": v.id,
                "number": v.number,
                "revision": v.revision,
                "created_by": v.created_by,
                "created_at": iso(v.created_at),
                "updated_by": v.updated_by,
                "updated_at": iso(v.updated_at),
                "note": note_text(v.note, lang),
            }
        )
    return [
        dict(
            r,
            jurisdiction_name=names.get(r["jurisdiction"]),
            current_version_id=current.get(r["code"]),
            drafts=drafts.get(r["code"], []),
            editable=jurisdiction_within_scope(session, r["code"], scope_code),
        )
        for r in rows
    ]


def _work_cells(session: Session, version: WorkGridVersion) -> list[dict]:
    members = (
        select(WorkCellMember.work_cell_id, func.count().label("n"))
        .where(WorkCellMember.version_id == version.id)
        .group_by(WorkCellMember.work_cell_id)
        .subquery()
    )
    staff = (
        select(CoordinatorAssignment.work_cell_id, func.count().label("n"))
        .join(Coordinator, Coordinator.id == CoordinatorAssignment.coordinator_id)
        .where(Coordinator.active.is_(True))
        .group_by(CoordinatorAssignment.work_cell_id)
        .subquery()
    )
    return [
        {"code": code, "name": name, "base_cells": cells, "coordinators": people}
        for code, name, cells, people in session.execute(
            select(WorkCell.code, WorkCell.name, func.coalesce(members.c.n, 0), func.coalesce(staff.c.n, 0))
            .outerjoin(members, members.c.work_cell_id == WorkCell.id)
            .outerjoin(staff, staff.c.work_cell_id == WorkCell.id)
            .where(WorkCell.version_id == version.id)
            .order_by(WorkCell.code)
        )
    ]


def _base_cell_counts(session: Session, version: WorkGridVersion, inside) -> dict:
    member = select(WorkCellMember.base_cell_id).where(WorkCellMember.version_id == version.id)
    excluded = select(WorkGridExclusion.base_cell_id).where(WorkGridExclusion.version_id == version.id)
    in_edition = BaseCell.edition_id == version.base_edition_id

    def count(*where):
        return select(func.count()).select_from(BaseCell).where(in_edition, *where).scalar_subquery()

    return (
        session.execute(
            select(
                count().label("edition_cells"),
                count(inside).label("base_cells"),
                count(inside, BaseCell.id.in_(member)).label("assigned"),
                count(inside, BaseCell.id.in_(excluded)).label("excluded"),
                count(inside, BaseCell.id.not_in(member), BaseCell.id.not_in(excluded)).label("unassigned"),
                count(~inside, BaseCell.id.in_(member)).label("outside_jurisdiction"),
            )
        )
        .one()
        ._asdict()
    )


def version_overview(session: Session, version_id: int, lang: str | None = None) -> dict:
    """Return what the work grid editor shows besides the map: the version, its department and base
    grid edition, its work cells (code, name, base cell and coordinator counts, by code) and their
    colours ({code: palette index}, gridkit.colouring), the base
    cell counts (of the edition; of the jurisdiction: total, assigned, unassigned, excluded; and
    assigned outside the jurisdiction), the department's current version number and the extent
    (lon/lat) of the jurisdiction's cells.
    """
    version = layers.work_grid_version(session, version_id)
    dept = session.get(Department, version.dept_code)
    edition = session.get(BaseGridEdition, version.base_edition_id)
    inside = layers.jurisdiction_filter(session, dept)
    current = session.scalar(
        select(WorkGridVersion.number).where(
            WorkGridVersion.dept_code == dept.code,
            WorkGridVersion.status == VersionState.PUBLISHED,
            WorkGridVersion.valid_to.is_(None),
        )
    )
    based_on = (
        session.scalar(select(WorkGridVersion.number).where(WorkGridVersion.id == version.based_on_id))
        if version.based_on_id
        else None
    )
    jurisdiction_name = (
        session.scalar(select(AdminUnit.name).where(AdminUnit.code == dept.jurisdiction_code))
        if dept.jurisdiction_code
        else None
    )
    return {
        "version": {
            "id": version.id,
            "number": version.number,
            "status": version.status,
            "revision": version.revision,
            "based_on": based_on,
            "note": note_text(version.note, lang),
            "created_by": version.created_by,
            "created_at": iso(version.created_at),
            "updated_by": version.updated_by,
            "updated_at": iso(version.updated_at),
            "published_at": iso(version.published_at),
            "valid_from": iso(version.valid_from),
            "valid_to": iso(version.valid_to),
        },
        "department": {
            "code": dept.code,
            "name": dept.name,
            "jurisdiction": dept.jurisdiction_code,
            "jurisdiction_name": jurisdiction_name,
            "current_version": current,
        },
        "edition": layers.edition_dict(edition),
        "work_cells": _work_cells(session, version),
        "colours": layers.work_cell_colours_by_code(session, version),
        "counts": _base_cell_counts(session, version, inside),
        "extent": layers.edition_extent(session, version.base_edition_id, inside),
    }
