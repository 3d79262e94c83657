"""The city's counts shown on the home page and their change stamp, so a caller may keep them.

Only counts: nothing here is personal data.
"""

from __future__ import annotations

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from gridkit.admin import ENGLISH_NAME
from gridkit.grids.base import published_or_newest
from gridkit.layers import edition_dict
from gridkit.models import (
    AdminUnit,
    BaseCell,
    BaseGridEdition,
    Building,
    Coordinator,
    Department,
    Incident,
    IncidentHistory,
    LegalEntity,
    Resident,
    WorkCell,
    WorkGridVersion,
)
from gridkit.rules import FINISHED_INCIDENT_STATES, version_in_force


def city_counts(session: Session) -> dict:
    """Return the counts shown on the home page: admin units, base grid, work grids, subjects, incidents.

    `work_cells` counts the cells of the work grid versions in force now.
    """
    edition = published_or_newest(session)

    def count(model, *where):
        return select(func.count()).select_from(model).where(*where).scalar_subquery()

    city = select(AdminUnit.code).where(AdminUnit.level == "city").order_by(AdminUnit.code).limit(1)
    in_force = select(WorkGridVersion.id).where(
        version_in_force(WorkGridVersion), WorkGridVersion.valid_from <= func.now()
    )
    row = (
        session.execute(
            select(
                city.with_only_columns(AdminUnit.name).scalar_subquery().label("city"),
                city.with_only_columns(AdminUnit.attributes[ENGLISH_NAME].astext).scalar_subquery().label("city_en"),
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
                count(Incident, Incident.status.not_in([str(s) for s in FINISHED_INCIDENT_STATES])).label(
                    "incidents_open"
                ),
                count(Incident).label("incidents_total"),
            )
        )
        .one()
        ._asdict()
    )
    return {
        # The city's own name and its English one (gridkit.admin.unit_name), for the pages' title (None before
        # admin units; the English one None when the city has none).
        "city": row["city"],
        "city_en": row["city_en"],
        "districts": row["districts"],
        "streets": row["streets"],
        "communities": row["communities"],
        "edition": edition_dict(edition),
        "base_cells": row["base_cells"],
        "departments": row["departments"],
        "work_cells": row["work_cells"],
        "coordinators": row["coordinators"],
        "buildings": row["buildings"],
        "residents": row["residents"],
        "legal_entities": row["legal_entities"],
        "incidents": {"open": row["incidents_open"], "total": row["incidents_total"]},
    }


def change_stamp(session: Session) -> tuple:
    """Return a cheap stamp that changes when a count of `city_counts` may have changed.

    Index-only lookups (newest ids, publish times): an import adds rows with new ids, a publish
    or rollback sets publish times, an incident step adds a history row. Deleting subjects is not
    seen, so a caller keeping counts also lets them expire after a while.
    """

    def newest(column):
        return select(func.max(column)).scalar_subquery()

    def size(model):
        return select(func.count()).select_from(model).scalar_subquery()

    return tuple(
        session.execute(
            select(
                size(AdminUnit),
                size(Department),
                size(Coordinator),
                newest(BaseGridEdition.id),
                newest(BaseGridEdition.published_at),
                newest(BaseGridEdition.retired_at),
                newest(WorkGridVersion.id),
                newest(WorkGridVersion.published_at),
                newest(WorkGridVersion.valid_to),
                newest(WorkCell.id),
                newest(Building.id),
                newest(Resident.id),
                newest(LegalEntity.id),
                newest(Incident.id),
                newest(IncidentHistory.id),
            )
        ).one()
    )
