"""The component inventory (部件): import from CSV/XLSX (lon, lat) or a map layer (points or lines),
16-digit codes checked, category from digits 7-10, assigned to base cells. All or nothing."""

from __future__ import annotations

from pathlib import Path

from shapely.geometry import LineString, MultiLineString, Point
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.grids.base import current_edition
from gridkit.io.tables import SPREADSHEET_NUMBER, TableReadError, at, read_table
from gridkit.io.vector import problem
from gridkit.messages import Message
from gridkit.models import Component, IncidentCategory
from gridkit.rules import CHINA_LAT, CHINA_LON, SRID
from gridkit.standard import InvalidValue
from gridkit.standard.components import component_category

FIELDS = {
    "code": ("code", "编码", "部件编码", "component_code"),
    "name": ("name", "名称", "部件名称"),
    "lon": ("lon", "longitude", "经度", "x"),
    "lat": ("lat", "latitude", "纬度", "y"),
}


def _column(columns: list[str], field: str, mapping: dict) -> str | None:
    if field in mapping:
        return mapping[field]
    lower = {c.lower(): c for c in columns}
    return next((lower[n.lower()] for n in FIELDS[field] if n.lower() in lower), None)


def _read(path, **options):
    """Return the file's table, or refuse an unreadable file naming why."""
    try:
        return read_table(path, **options)
    except TableReadError as exc:
        raise ValidationError(
            "component.unreadable", file=str(path), reason=Message(exc.key, **exc.params), problems=exc.problems
        ) from None


def import_components(
    session: Session,
    path,
    *,
    mapping: dict | None = None,
    encoding: str | None = None,
    layer: str | None = None,
    src_crs: str | None = None,
) -> dict:
    """Import components; return {"file", "imported", "assigned", "unassigned"}.

    Every row is checked first: code (16 digits per CJ/T 214, not already in the file or the
    inventory), its category (digits 7-10) a known component category, a point or line
    location. One bad row refuses the whole file (ValidationError listing every problem).
    """
    mapping = dict(mapping or {})
    table = _read(path, encoding=encoding, layer=layer, src_crs=src_crs)
    display = Path(path).name
    problems = list(table.problems)
    code_col = _column(table.columns, "code", mapping)
    if code_col is None:
        raise ValidationError("component.no_code_column", file=display, columns=", ".join(table.columns))
    name_col = _column(table.columns, "name", mapping)
    lon_col, lat_col = _column(table.columns, "lon", mapping), _column(table.columns, "lat", mapping)
    if not table.spatial and (lon_col is None or lat_col is None):
        raise ValidationError("component.no_location_columns", file=display, columns=", ".join(table.columns))
    known = set(session.scalars(select(IncidentCategory.code).where(IncidentCategory.kind == "component")))
    existing = set(session.scalars(select(Component.code)))
    seen: dict[str, str] = {}
    rows = []
    for position, row in enumerate(table.rows):
        code = (row.get(code_col) or "").strip()

        def fail(kind, key, code=code, position=position, **params):
            message = at(table.place(position), Message(f"component.row.{key}", code=code, **params))
            problems.append(problem(kind, message, index=table.numbers[position], code=code, field=code_col))

        if (position, code_col) in table.lossy or SPREADSHEET_NUMBER.match(code):
            fail("number_precision", "code_as_number")
            continue
        if (position, code_col) in table.dates:
            fail("code_as_date", "code_as_date")
            continue
        try:
            category = component_category(code)
        except InvalidValue as exc:
            fail("bad_code", "bad_code", reason=exc.as_message())
            continue
        if category not in known:
            fail("unknown_category", "unknown_category", category=category)
            continue
        if code in seen:
            fail("duplicate_code", "duplicate", first=seen[code])
            continue
        seen[code] = table.place(position)
        if code in existing:
            fail("exists", "exists")
            continue
        geom = _geometry(table, position, row, lon_col, lat_col, fail)
        if geom is None:
            continue
        rows.append(
            {
                "code": code,
                "category_code": category,
                "name": (row.get(name_col) or None) if name_col else None,
                "geom": f"SRID={SRID};{geom.wkt}",
            }
        )
    if problems:
        raise ValidationError("component.import_refused", file=display, count=len(problems), problems=problems)
    if not rows:
        raise ValidationError("component.empty", file=display)
    ids = list(session.scalars(insert(Component).returning(Component.id), rows))
    assigned = assign_components(session, ids)
    return {"file": display, "imported": len(ids), "assigned": assigned, "unassigned": len(ids) - assigned}


def _geometry(table, position: int, row: dict, lon_col, lat_col, fail):
    if table.spatial:
        geom = table.geometries[position]
        if geom is None:
            fail("no_location", "no_geometry")
            return None
        if not isinstance(geom, (Point, LineString, MultiLineString)):
            fail("not_point_or_line", "not_point_or_line", type=geom.geom_type)
            return None
        return geom
    lon_raw, lat_raw = row.get(lon_col) or "", row.get(lat_col) or ""
    try:
        lon, lat = float(lon_raw), float(lat_raw)
    except ValueError:
        fail("no_location", "not_numbers", lon_col=lon_col, lat_col=lat_col, lon=lon_raw, lat=lat_raw)
        return None
    if not (CHINA_LON[0] <= lon <= CHINA_LON[1] and CHINA_LAT[0] <= lat <= CHINA_LAT[1]):
        swapped = CHINA_LON[0] <= lat <= CHINA_LON[1] and CHINA_LAT[0] <= lon <= CHINA_LAT[1]
        kind, key = ("axes_swapped", "swapped") if swapped else ("outside_china", "outside_china")
        fail(kind, key, lon=lon, lat=lat)
        return None
    return Point(lon, lat)


def assign_components(session: Session, ids: list[int] | None = None) -> int:
    """Set the base cell of components (all, or `ids`) from the current edition; return how many have one.

    A line belongs to the cell covering ST_PointOnSurface (a point on the line), a point to the
    cell covering it (ST_Covers, ties to the smallest code) — the subjects' rule.
    """
    edition = current_edition(session)
    if edition is None:
        return 0
    params = {"e": edition.id, "ids": ids}
    only = "AND c.id = ANY(:ids)" if ids is not None else ""
    session.execute(
        text(f"""
        UPDATE component c SET base_cell_id = (
          SELECT b.id FROM base_cell b WHERE b.edition_id = :e AND ST_Covers(b.geom, ST_PointOnSurface(c.geom))
          ORDER BY b.code LIMIT 1)
        WHERE TRUE {only}"""),
        params,
    )
    session.expire_all()
    return session.scalar(text(f"SELECT count(*) FROM component c WHERE base_cell_id IS NOT NULL {only}"), params)
