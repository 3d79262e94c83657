"""Admin units: lookups over city › district › street › community."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.models import ADMIN_LEVELS, AdminUnit


def list_admin_units(session: Session, *, level: str | None = None, parent: str | None = None) -> list[dict]:
    """Return admin units (code, name, level, parent_code, area_km2), by code."""
    if level is not None and level not in ADMIN_LEVELS:
        raise ValidationError(f"unknown level {level!r}: use one of {', '.join(ADMIN_LEVELS)}.")
    query = select(AdminUnit.code, AdminUnit.name, AdminUnit.level, AdminUnit.parent_code,
                   (func.ST_Area(func.Geography(AdminUnit.geom)) / 1e6).label("area_km2")).order_by(AdminUnit.code)
    if level:
        query = query.where(AdminUnit.level == level)
    if parent:
        query = query.where(AdminUnit.parent_code == parent)
    return [dict(row._mapping, area_km2=round(row.area_km2, 3)) for row in session.execute(query)]


def admin_unit(session: Session, code: str) -> AdminUnit:
    """Return the admin unit with this code or raise NotFound."""
    unit = session.get(AdminUnit, code)
    if unit is None:
        raise NotFound(f"no admin unit has code {code!r}: see `gridkit admin list`.")
    return unit


def community_of(session: Session, code: str) -> str | None:
    """Return the 12-digit community code a longer code (base cell, work cell area) starts with."""
    return code[:12] if len(code) >= 12 else None


def area_prefix(session: Session, code: str | None) -> str:
    """Return the code prefix shared by every base cell inside an admin unit ('' for None = whole city).

    A city's districts do not start with the full city code (440300 → districts 4403xx), so a
    city contributes its first 4 digits.
    """
    if not code:
        return ""
    unit = session.get(AdminUnit, code)
    if unit is not None and unit.level == "city":
        return code[:4]
    return code
