"""Departments: the owners of work grid layers (code, name, jurisdiction)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.messages import Message
from gridkit.models import AdminUnit, Department


def check_name(name: str | None, column, what: str) -> None:
    """Refuse a name longer than its column holds (`what`: work_cell, department, coordinator), before the
    database would with a bare error."""
    limit = column.type.length
    if name is not None and len(name) > limit:
        raise ValidationError(
            "work.name_too_long",
            what=Message(f"work.name_of.{what}"),
            length=len(name),
            limit=limit,
            name=name[:20] + "…",
        )


def add_department(session: Session, code: str, name: str, *, jurisdiction: str | None = None) -> Department:
    """Create a department; its work grid must cover `jurisdiction` (default: the whole city)."""
    if not (len(code) == 6 and code.isdigit()):
        raise ValidationError("work.bad_department_code", code=code)
    if not name.strip():
        raise ValidationError("work.department_needs_name")
    check_name(name.strip(), Department.name, "department")
    if session.get(Department, code) is not None:
        raise Conflict("work.department_exists", code=code)
    if session.scalar(select(Department).where(Department.name == name)) is not None:
        raise Conflict("work.department_name_taken", name=name)
    if jurisdiction is not None and session.get(AdminUnit, jurisdiction) is None:
        raise NotFound("work.unknown_jurisdiction", code=jurisdiction)
    dept = Department(code=code, name=name.strip(), jurisdiction_code=jurisdiction)
    session.add(dept)
    session.flush()
    return dept


def department(session: Session, code: str) -> Department:
    """Return the department with this code or raise NotFound."""
    dept = session.get(Department, code)
    if dept is None:
        raise NotFound("work.department_not_found", code=code)
    return dept
