"""Decision support from the shared data: school places, the elderly, coordinator staffing.

Ages come from `resident.birth_date` (derived from the citizen ID at import; the ID itself stays
hashed), counted in whole years at the reference date (the end of the period, else today).
"""

from __future__ import annotations

import csv
import math
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.reports.standard import OPEN_INCIDENTS, _rows, _unit_frame, coordinators_per_unit, per_unit_counts
from gridkit.reports.units import Section, Units
from gridkit.resident_cells import ASSIGNED_RESIDENTS
from gridkit.rules import local_tz
from gridkit.standard.codes import area_admin_code

# School stages (学龄段): nursery 0–2, kindergarten 3–5, primary 6–11, junior 12–14, senior 15–17.
SCHOOL_BANDS = (("age_0_2", 0, 2), ("age_3_5", 3, 5), ("age_6_11", 6, 11), ("age_12_14", 12, 14), ("age_15_17", 15, 17))
DEFAULT_STAFFING_THRESHOLD = 500  # residents per coordinator (a common 网格 staffing norm)


def _reference_day(end: datetime | None) -> date:
    if end is None:
        return datetime.now(local_tz()).date()
    return (end.astimezone(local_tz()) - timedelta(microseconds=1)).date()


def _age_sql() -> str:
    return "date_part('year', age(CAST(:ref AS date), s.birth_date))::int"


def read_capacity(path: Path | str) -> dict[tuple[str, str], int]:
    """Return {(unit code, band): places} from a CSV with columns code, band, capacity."""
    path = Path(path)
    if not path.is_file():
        raise NotFound("report.capacity_missing", path=str(path))
    bands = {name for name, _, _ in SCHOOL_BANDS}
    result = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        missing = {"code", "band", "capacity"} - set(reader.fieldnames or [])
        if missing:
            raise ValidationError("report.capacity_columns", path=str(path), missing=", ".join(sorted(missing)))
        for line, row in enumerate(reader, start=2):
            band = (row["band"] or "").strip()
            if band not in bands:
                raise ValidationError(
                    "report.capacity_band", path=str(path), line=line, band=band, bands=", ".join(sorted(bands))
                )
            try:
                places = int(row["capacity"])
                if places < 0:
                    raise ValueError
            except (TypeError, ValueError):
                raise ValidationError(
                    "report.capacity_number", path=str(path), line=line, value=row["capacity"]
                ) from None
            result[(row["code"].strip(), band)] = places
    return result


def school_age(session: Session, u: Units, *, end=None, capacity=None, **_) -> list[Section]:
    """Children per school band and unit; with a capacity file, the places and the gap per band."""
    params = dict(u.params, ref=_reference_day(end))
    age = _age_sql()
    bands = ", ".join(
        f"count(*) FILTER (WHERE {age} BETWEEN {lo} AND {hi})::int AS {name}" for name, lo, hi in SCHOOL_BANDS
    )
    sql = (
        _unit_frame(u)
        + f""",
        k AS (SELECT u.code, {bands}, count(*) FILTER (WHERE s.birth_date IS NULL)::int AS unknown_age
              FROM {ASSIGNED_RESIDENTS} s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code)
        SELECT c.code, c.name, {", ".join(f"coalesce(k.{n}, 0) AS {n}" for n, _, _ in SCHOOL_BANDS)},
               coalesce(k.unknown_age, 0) AS unknown_age
        FROM cells c LEFT JOIN k ON k.code = c.code ORDER BY c.code"""
    )
    rows = _rows(session, sql, params)
    columns = ["code", "name", *(n for n, _, _ in SCHOOL_BANDS), "unknown_age"]
    sections = [Section("report.school-age.title", columns, rows, chart="age_6_11")]
    if capacity:
        places = read_capacity(capacity)
        gaps = []
        for row in rows:
            for name, _, _ in SCHOOL_BANDS:
                if (row["code"], name) in places:
                    cap = places[(row["code"], name)]
                    gaps.append(
                        {
                            "code": row["code"],
                            "name": row["name"],
                            "band": name,
                            "children": row[name],
                            "capacity": cap,
                            "gap": row[name] - cap,
                            "use_pct": round(100.0 * row[name] / cap, 1) if cap else None,
                        }
                    )
        sections.append(
            Section(
                "report.school-age.capacity",
                ["code", "name", "band", "children", "capacity", "gap", "use_pct"],
                gaps,
                chart="gap",
            )
        )
    return sections


def elderly(session: Session, u: Units, *, end=None, **_) -> list[Section]:
    """Residents aged 60+ and 80+ per unit and their share of the unit's residents."""
    params = dict(u.params, ref=_reference_day(end))
    age = _age_sql()
    sql = (
        _unit_frame(u)
        + f""",
        k AS (SELECT u.code, count(*)::int AS residents,
                     count(*) FILTER (WHERE {age} >= 60)::int AS age_60_plus,
                     count(*) FILTER (WHERE {age} >= 80)::int AS age_80_plus
              FROM {ASSIGNED_RESIDENTS} s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code)
        SELECT c.code, c.name, coalesce(k.residents, 0) AS residents, coalesce(k.age_60_plus, 0) AS age_60_plus,
               round(100.0 * k.age_60_plus / nullif(k.residents, 0), 1)::float8 AS age_60_pct,
               coalesce(k.age_80_plus, 0) AS age_80_plus,
               round(100.0 * k.age_80_plus / nullif(k.residents, 0), 1)::float8 AS age_80_pct
        FROM cells c LEFT JOIN k ON k.code = c.code ORDER BY c.code"""
    )
    return [
        Section(
            "report.elderly.title",
            ["code", "name", "residents", "age_60_plus", "age_60_pct", "age_80_plus", "age_80_pct"],
            _rows(session, sql, params),
            chart="age_60_plus",
        )
    ]


def staffing(session: Session, u: Units, *, threshold=None, **_) -> list[Section]:
    """Coordinator load per work cell; cells over `threshold` residents per coordinator, with the
    `gridkit workgrid balance` call that would even out their community."""
    if u.by != "work-cell":
        raise ValidationError("report.staffing_by_work_cell")
    limit = threshold or DEFAULT_STAFFING_THRESHOLD
    params = dict(u.params, wc_version=u.params["version"])
    sql = (
        _unit_frame(u)
        + per_unit_counts(r=ASSIGNED_RESIDENTS, b="building", o=OPEN_INCIDENTS)
        + coordinators_per_unit(u)
        + """
        SELECT c.code, c.name, c.base_cells, coalesce(r.n, 0) AS residents, coalesce(b.n, 0) AS buildings,
               coalesce(o.n, 0) AS open_cases, coalesce(k.n, 0) AS coordinators,
               round(coalesce(r.n, 0)::numeric / greatest(coalesce(k.n, 0), 1), 1)::float8 AS residents_per_coordinator
        FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN b ON b.code = c.code LEFT JOIN o ON o.code = c.code
        LEFT JOIN k ON k.code = c.code ORDER BY c.code"""
    )
    rows = _rows(session, sql, params)
    for row in rows:
        row["over_threshold"] = row["residents_per_coordinator"] > limit
    over = [row for row in rows if row["over_threshold"]]
    suggestions = _balance_suggestions(session, u, over, limit)
    columns = [
        "code",
        "name",
        "base_cells",
        "residents",
        "buildings",
        "open_cases",
        "coordinators",
        "residents_per_coordinator",
        "over_threshold",
    ]
    return [
        Section(
            "report.staffing.title",
            columns,
            rows,
            chart="residents_per_coordinator",
            total_label="report.total_coordinators_once",
        ),
        Section(
            "report.staffing.over",
            ["area", "work_cells", "residents", "cells_needed", "command"],
            suggestions,
            chart="residents",
        ),
    ]


def _balance_suggestions(session: Session, u: Units, over: list[dict], limit: int) -> list[dict]:
    # Work cell codes carry the area they cover at digits 7-18 (CJ/T 349): rebalance that area. The whole
    # area's row (a report's total: code empty) is no work cell.
    area_of = {row["code"]: area_admin_code(row["code"][6:18]) for row in over if row["code"]}
    result = []
    for area in sorted(set(area_of.values())):
        residents = session.execute(
            text(
                "SELECT count(*) FROM resident_cell s JOIN base_cell b ON b.id = s.base_cell_id "
                "WHERE b.edition_id = :edition AND b.code LIKE :c"
            ),
            {"edition": u.params["edition"], "c": area + "%"},
        ).scalar_one()
        cells = [code for code, a in area_of.items() if a == area]
        needed = max(1, math.ceil(residents / limit))
        result.append(
            {
                "area": area,
                "work_cells": ", ".join(cells),
                "residents": residents,
                "cells_needed": needed,
                "command": (
                    f"gridkit workgrid draft --dept {u.dept} && gridkit workgrid balance --draft ID "
                    f"--cells {needed} --by residents --area {area} --within community"
                ),
            }
        )
    return result
