"""Who is responsible for a point at a time: base cell, community, and per department the work cell
and coordinators of the version in force then (as-of lookups, one SQL statement)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.grids.base import check_lon_lat
from gridkit.grids.work.coordinators import coordinators_json
from gridkit.grids.work.versions import versions_in_force
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition, Department, WorkCell, WorkCellMember


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
