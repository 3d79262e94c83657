"""Coordinators (网格员) and the work cells they cover."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.work.departments import check_name, department
from gridkit.grids.work.versions import current_version
from gridkit.models import Coordinator, CoordinatorAssignment, WorkCell, WorkGridVersion
from gridkit.pii import mask_person_name, masked_phone_reason
from gridkit.standard.ids import mask_phone


def add_coordinator(
    session: Session,
    name: str,
    phone: str | None,
    dept_code: str,
    work_cell_codes: list[str],
    *,
    version: WorkGridVersion | None = None,
) -> Coordinator:
    """Make a coordinator (the existing one with this phone, else a new one) cover work cells of the
    department's current version (or `version`)."""
    from gridkit.standard.ids import validate_phone

    if not name.strip():
        raise ValidationError("work.coordinator_needs_name")
    check_name(name.strip(), Coordinator.name, "coordinator")
    if phone:
        try:
            phone = validate_phone(phone)
        except ValueError as exc:
            # The number masked as typed: it was read unseen (gridkit.cli.personal_argument).
            raise ValidationError("work.coordinator_bad_phone", name=name, reason=masked_phone_reason(exc, phone))
    # One person may cover several departments' work cells (多员合一): the phone identifies them.
    coordinator = session.scalar(select(Coordinator).where(Coordinator.phone == phone)) if phone else None
    if coordinator is not None and coordinator.name != name.strip():
        # Whose number it is stays masked: typing phones must not tell who owns them.
        raise Conflict(
            "work.phone_taken",
            phone=mask_phone(phone),
            id=coordinator.id,
            owner=mask_person_name(coordinator.name),
            name=name,
        )
    if coordinator is None:
        coordinator = Coordinator(name=name.strip(), phone=phone)
        session.add(coordinator)
        session.flush()
    assign_coordinator(session, coordinator, dept_code, work_cell_codes, version=version)
    return coordinator


def assign_coordinator(
    session: Session,
    coordinator: Coordinator,
    dept_code: str,
    work_cell_codes: list[str],
    *,
    version: WorkGridVersion | None = None,
) -> None:
    """Make `coordinator` responsible for the named work cells of a version of the department."""
    department(session, dept_code)
    version = version or current_version(session, dept_code)
    if version is None:
        raise NotFound("work.no_published_version", dept=dept_code)
    cells = dict(
        session.execute(
            select(WorkCell.code, WorkCell.id).where(
                WorkCell.version_id == version.id, WorkCell.code.in_(work_cell_codes)
            )
        ).all()
    )
    missing = sorted(set(work_cell_codes) - set(cells))
    if missing:
        raise NotFound(
            "work.work_cells_not_in_version", number=version.number, dept=dept_code, codes=", ".join(missing)
        )
    existing = set(
        session.scalars(
            select(CoordinatorAssignment.work_cell_id).where(CoordinatorAssignment.coordinator_id == coordinator.id)
        )
    )
    for cell_id in cells.values():
        if cell_id not in existing:
            session.add(CoordinatorAssignment(coordinator_id=coordinator.id, work_cell_id=cell_id))
    session.flush()


def list_coordinators(session: Session, dept_code: str | None = None) -> list[dict]:
    """Return coordinators with the work cells they cover in the current versions."""
    v = WorkGridVersion
    query = (
        select(
            Coordinator.id,
            Coordinator.name,
            Coordinator.phone,
            v.dept_code,
            func.array_agg(aggregate_order_by(WorkCell.code, WorkCell.code)).label("work_cells"),
        )
        .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
        .join(WorkCell, WorkCell.id == CoordinatorAssignment.work_cell_id)
        .join(v, v.id == WorkCell.version_id)
        .where(rules.version_in_force(v))
        .group_by(Coordinator.id, Coordinator.name, Coordinator.phone, v.dept_code)
        .order_by(Coordinator.id, v.dept_code)
    )
    if dept_code is not None:
        query = query.where(v.dept_code == dept_code)
    return [dict(r._mapping) for r in session.execute(query)]


def coordinators_json(work_cell_id):
    """Return a scalar subquery: the active coordinators of a work cell as a JSON list of {id, name, phone}."""
    return (
        select(
            func.coalesce(
                func.json_agg(
                    aggregate_order_by(
                        func.json_build_object(
                            "id", Coordinator.id, "name", Coordinator.name, "phone", Coordinator.phone
                        ),
                        Coordinator.id,
                    )
                ),
                text("'[]'::json"),
            )
        )
        .join(CoordinatorAssignment, CoordinatorAssignment.coordinator_id == Coordinator.id)
        .where(CoordinatorAssignment.work_cell_id == work_cell_id, Coordinator.active)
        .scalar_subquery()
    )
