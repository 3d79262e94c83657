"""A work cell as the people responsible for it see it: its base cells, buildings, counts and,
for its own coordinator, the residents and legal entities in it.

Work cells are found by code among the versions in force (a work cell code names its department,
so it is unique among them). Personal fields are returned only when the caller says the reader
may see them; the caller also writes the audit row.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, distinct, func, select
from sqlalchemy.orm import Session

from gridkit.admin import area_prefix
from gridkit.errors import NotFound
from gridkit.grids.work.membership import members_in_edition
from gridkit.layers import PRECISION, base_cell_properties, feature_collection, geojson_feature
from gridkit.models import (
    AdminUnit,
    BaseCell,
    Building,
    Coordinator,
    CoordinatorAssignment,
    Department,
    LegalEntity,
    Resident,
    ResidentCell,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)
from gridkit.rules import shown_count, version_in_force

# Most residents / legal entities listed per request; the caller pages with an offset.
LIST_LIMIT = 200


def work_cell_in_force(session: Session, code: str, at: datetime | None = None) -> WorkCell:
    """Return the work cell with `code` in the version in force at `at` (None: now), or raise NotFound."""
    cell = session.scalar(
        select(WorkCell)
        .join(WorkGridVersion, WorkGridVersion.id == WorkCell.version_id)
        .where(WorkCell.code == code, version_in_force(WorkGridVersion, at))
    )
    if cell is None:
        raise NotFound("workcell.not_found", code=code)
    return cell


def coordinator_ids(session: Session, cell: WorkCell) -> set[int]:
    """Return the ids of the active coordinators responsible for `cell`."""
    return set(
        session.scalars(
            select(CoordinatorAssignment.coordinator_id)
            .join(Coordinator, Coordinator.id == CoordinatorAssignment.coordinator_id)
            .where(CoordinatorAssignment.work_cell_id == cell.id, Coordinator.active.is_(True))
        )
    )


def cell_within_scope(session: Session, cell: WorkCell, scope_code: str | None) -> bool:
    """True when some base cell of `cell` lies in admin unit `scope_code` (None: the whole city)."""
    if scope_code is None:
        return True
    prefix = area_prefix(session, scope_code)
    return (
        session.scalar(
            select(func.count())
            .select_from(WorkCellMember)
            .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
            .where(WorkCellMember.work_cell_id == cell.id, BaseCell.community_code.startswith(prefix))
        )
        > 0
    )


def coordinator_work_cells(session: Session, coordinator_id: int, at: datetime | None = None) -> list[dict]:
    """Return the work cells in force at `at` that coordinator `coordinator_id` is responsible for,
    in every department: code, name, department code and name, version number, base cell count, bbox."""
    members = (
        select(WorkCellMember.work_cell_id, func.count().label("n"), func.ST_Extent(BaseCell.geom).label("box"))
        .join(BaseCell, BaseCell.id == WorkCellMember.base_cell_id)
        .group_by(WorkCellMember.work_cell_id)
        .subquery()
    )
    rows = session.execute(
        select(
            WorkCell.code,
            WorkCell.name,
            Department.code,
            Department.name,
            WorkGridVersion.number,
            members.c.n,
            func.ST_XMin(members.c.box),
            func.ST_YMin(members.c.box),
            func.ST_XMax(members.c.box),
            func.ST_YMax(members.c.box),
        )
        .join(CoordinatorAssignment, CoordinatorAssignment.work_cell_id == WorkCell.id)
        .join(WorkGridVersion, WorkGridVersion.id == WorkCell.version_id)
        .join(Department, Department.code == WorkGridVersion.dept_code)
        .outerjoin(members, members.c.work_cell_id == WorkCell.id)
        .where(CoordinatorAssignment.coordinator_id == coordinator_id, version_in_force(WorkGridVersion, at))
        .order_by(Department.code, WorkCell.code)
    )
    return [
        {
            "code": code,
            "name": name,
            "dept": dept,
            "dept_name": dept_name,
            "version": number,
            "base_cells": n or 0,
            "bbox": None if x0 is None else [x0, y0, x1, y1],
        }
        for code, name, dept, dept_name, number, n, x0, y0, x1, y1 in rows
    ]


def _in_cell(cell: WorkCell, column):
    """Return `column` IN the cell's base cells, those of the edition its version was drawn on (geometry)."""
    members = select(WorkCellMember.base_cell_id).where(WorkCellMember.work_cell_id == cell.id)
    return column.in_(members)


def _subjects_in_cell(cell: WorkCell, column):
    """Return `column` (a subject's base cell) IN the cell's base cells of the edition in force, matched by code."""
    return column.in_(members_in_edition(cell.id))


def work_cell_counts(session: Session, cell: WorkCell) -> dict:
    """Return the cell's counts: base cells, buildings, residents, households, legal entities."""

    def count(model, *what):
        query = select(func.count(*what)).select_from(model)
        if model is Resident:  # a resident's cell is a row of its own table (gridkit.resident_cells)
            query = query.join(ResidentCell, ResidentCell.resident_id == Resident.id)
            return query.where(_subjects_in_cell(cell, ResidentCell.base_cell_id)).scalar_subquery()
        return query.where(_subjects_in_cell(cell, model.base_cell_id)).scalar_subquery()

    row = session.execute(
        select(
            select(func.count())
            .select_from(WorkCellMember)
            .where(WorkCellMember.work_cell_id == cell.id)
            .scalar_subquery()
            .label("base_cells"),
            count(Building).label("buildings"),
            count(Resident).label("residents"),
            count(Resident, distinct(Resident.household)).label("households"),
            count(LegalEntity).label("legal_entities"),
        )
    ).one()
    return row._asdict()


# The counts of a work cell that count people: under the small-count rule for readers who may not see residents.
PEOPLE_COUNTS = ("residents", "households")


def _counts_shown(counts: dict, hide_small_counts: bool) -> dict:
    if not hide_small_counts:
        return counts
    return {k: shown_count(v) if k in PEOPLE_COUNTS else v for k, v in counts.items()}


def _geometry_layers(session: Session, cell: WorkCell) -> dict:
    base = geojson_feature(BaseCell.code, BaseCell.geom, base_cell_properties())
    base_cells = session.scalar(
        select(func.coalesce(func.json_agg(base), func.cast("[]", JSON)))
        .select_from(BaseCell)
        .join(AdminUnit, AdminUnit.code == BaseCell.community_code)
        .where(_in_cell(cell, BaseCell.id))
    )
    point = func.coalesce(Building.geom, func.ST_PointOnSurface(Building.footprint))
    building = geojson_feature(
        Building.code, point, {"code": Building.code, "address": Building.address, "floors": Building.floors}
    )
    buildings = session.scalar(
        select(func.coalesce(func.json_agg(building), func.cast("[]", JSON))).where(
            _subjects_in_cell(cell, Building.base_cell_id)
        )
    )
    outline = session.scalar(
        select(
            func.ST_AsGeoJSON(func.ST_Multi(func.ST_UnaryUnion(func.ST_Collect(BaseCell.geom))), PRECISION).cast(JSON)
        ).where(_in_cell(cell, BaseCell.id))
    )
    return {
        "outline": outline,
        "base_cells": feature_collection(base_cells or []),
        "buildings": feature_collection(buildings or []),
    }


def work_cell_detail(
    session: Session,
    cell: WorkCell,
    *,
    personal: bool,
    offset: int = 0,
    limit: int = LIST_LIMIT,
    hide_small_counts: bool = False,
) -> dict:
    """Return the cell, its department and version, coordinators (names), counts and map layers;
    with `personal`, also residents (name, masked ID number, phone, household, building) and legal
    entities, `limit` of each from `offset` (by id). With `hide_small_counts` (a reader who may not see
    residents), its counts of residents and households under the small-count rule (gridkit.rules.shown_count)."""
    version = session.get(WorkGridVersion, cell.version_id)
    dept = session.get(Department, version.dept_code)
    names = list(
        session.scalars(
            select(Coordinator.name)
            .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
            .where(CoordinatorAssignment.work_cell_id == cell.id, Coordinator.active.is_(True))
            .order_by(Coordinator.id)
        )
    )
    result = {
        "code": cell.code,
        "name": cell.name,
        "dept": dept.code,
        "dept_name": dept.name,
        "version": version.number,
        "coordinators": [{"name": n} for n in names],
        "counts": _counts_shown(work_cell_counts(session, cell), hide_small_counts),
        **_geometry_layers(session, cell),
        "personal": personal,
    }
    if personal:
        residents = session.execute(
            select(
                Resident.id,
                Resident.name,
                Resident.id_number_masked,
                Resident.phone,
                Resident.household,
                Resident.population_type,
                Building.code,
                Building.address,
            )
            .join(ResidentCell, ResidentCell.resident_id == Resident.id)
            .outerjoin(Building, Building.id == Resident.building_id)
            .where(_subjects_in_cell(cell, ResidentCell.base_cell_id))
            .order_by(Resident.id)
            .offset(offset)
            .limit(limit)
        )
        result["residents"] = [
            {
                "id": rid,
                "name": name,
                "id_number": masked,
                "phone": phone,
                "household": household,
                "population_type": kind,
                "building": building,
                "address": address,
            }
            for rid, name, masked, phone, household, kind, building, address in residents
        ]
        entities = session.execute(
            select(LegalEntity.id, LegalEntity.name, LegalEntity.credit_code, LegalEntity.address)
            .where(_subjects_in_cell(cell, LegalEntity.base_cell_id))
            .order_by(LegalEntity.id)
            .offset(offset)
            .limit(limit)
        )
        result["legal_entities"] = [
            {"id": eid, "name": name, "credit_code": credit, "address": address}
            for eid, name, credit, address in entities
        ]
        result["offset"], result["limit"] = offset, limit
    return result
