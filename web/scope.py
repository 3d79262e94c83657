"""Scope checks: whether a signed-in user's area (an admin unit) holds what a page shows."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit.errors import NotFound
from gridkit.models import AdminUnit, Department, WorkGridVersion
from gridkit.users import area_within


def version_dept_code(session: Session, version_id: int) -> str:
    """Return the department code of a work grid version, or raise NotFound."""
    code = session.scalar(select(WorkGridVersion.dept_code).where(WorkGridVersion.id == version_id))
    if code is None:
        raise NotFound("layers.version_not_found", version=version_id)
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
            raise NotFound("web.department_not_found", dept=dept_code)
        return session.scalar(select(AdminUnit.level).where(AdminUnit.code == scope_code)) == "city"
    return area_within(session, jurisdiction, scope_code)
