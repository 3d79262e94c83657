"""Admin units: lookups over city › district › street › community."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.models import ADMIN_LEVELS, AdminUnit
from gridkit.standard.codes import admin_code_prefix

# The attribute holding an admin unit's English name (a field `name_en` of an imported file is kept in
# `attributes` as it is): pages in English name the unit by it, never by its Chinese `name`.
ENGLISH_NAME = "name_en"


def unit_name(name: str | None, english: str | None, lang: str) -> str | None:
    """Return an admin unit's name as a page in `lang` shows it: its `name` in Chinese, its English name in
    English (None when it has none: an English title without the name rather than one mixing two languages)."""
    if lang == "en":
        return english or None
    return name


def list_admin_units(session: Session, *, level: str | None = None, parent: str | None = None) -> list[dict]:
    """Return admin units (code, name, level, parent_code, area_km2), by code."""
    if level is not None and level not in ADMIN_LEVELS:
        raise ValidationError("geometry.unknown_level", level=level, levels=", ".join(ADMIN_LEVELS))
    query = select(
        AdminUnit.code,
        AdminUnit.name,
        AdminUnit.level,
        AdminUnit.parent_code,
        (func.ST_Area(func.Geography(AdminUnit.geom)) / 1e6).label("area_km2"),
    ).order_by(AdminUnit.code)
    if level:
        query = query.where(AdminUnit.level == level)
    if parent:
        query = query.where(AdminUnit.parent_code == parent)
    return [dict(row._mapping, area_km2=round(row.area_km2, 3)) for row in session.execute(query)]


def area_prefix(session: Session, code: str | None) -> str:
    """Return the code prefix shared by every base cell inside an admin unit ('' for None = whole city).

    GB/T 2260: a city's districts share its code without the trailing zero pairs
    (440300 → 4403xx, 110000 → 11xxxx), so a city contributes that shorter prefix.
    """
    if not code:
        return ""
    unit = session.get(AdminUnit, code)
    return admin_code_prefix(code) if unit is not None and unit.level in ("province", "city") else code


# The CGCS2000 3-degree Gauss-Kruger zone offered before any admin unit is imported: 114E, Shenzhen's.
DEFAULT_GAUSS_KRUGER_EPSG = 4547


def city_extent(session: Session) -> tuple[float, float, float, float] | None:
    """Return the extent (west, south, east, north, degrees) of the city's admin units, None before any exists."""
    box = session.execute(
        text(
            "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) AS e FROM admin_unit) x"
        )
    ).one()
    return None if box[0] is None else tuple(float(v) for v in box)


def local_gauss_kruger_epsg(session: Session) -> int:
    """Return the EPSG code of the CGCS2000 3-degree Gauss-Kruger zone of the city (the centre of its admin units'
    extent): the projected CRS its departments draw in, offered for exports (EPSG:4547 before any unit exists)."""
    from gridkit.coords import gauss_kruger_epsg

    top = text("SELECT ST_X(ST_Centroid(ST_Extent(geom)::geometry)) FROM admin_unit WHERE parent_code IS NULL")
    lon = session.scalar(top)
    return DEFAULT_GAUSS_KRUGER_EPSG if lon is None else gauss_kruger_epsg(lon)
