"""Validation of admin units: invalid boundaries, parts outside the parent, sibling overlaps, codes and nesting.

What each problem type holds, and how areas and widths are measured: gridkit.grids.problems.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.problems import (
    INTERIORS_OVERLAP,
    Problem,
    level_label,
    measure_params,
    set_apart_noise,
    sorted_problems,
    width_sql,
    without_jit,
)
from gridkit.grids.tolerance import DEFAULT_TOLERANCE_M
from gridkit.models import PARENT_LEVEL
from gridkit.standard.codes import admin_level_of_code

__all__ = ["validate_admin_units"]


def validate_admin_units(
    session: Session, *, tolerance_m: float | None = None, notes: list | None = None
) -> list[Problem]:
    """Return every problem of the admin units (nesting, sibling overlaps, codes), ordered by type, then codes.

    Parts outside the parent and sibling overlaps no wider than `tolerance_m` (default
    DEFAULT_TOLERANCE_M) are reprojection noise: they go to `notes` when a list is given.
    """
    tolerance_m = DEFAULT_TOLERANCE_M if tolerance_m is None else float(tolerance_m)
    session.flush()
    params = measure_params(tolerance_m)
    with without_jit(session):
        problems = _invalid_units(session, params)
        problems += _units_outside_parent(session, params)
        problems += _sibling_overlaps(session, params)
        problems += _unit_codes(session, params)
    return sorted_problems(set_apart_noise(problems, tolerance_m, notes))


def _invalid_units(session: Session, params: dict) -> list[Problem]:
    invalid = session.execute(
        text("""
        SELECT code, ST_IsValidReason(geom) AS reason,
               ST_AsText(coalesce((ST_IsValidDetail(geom)).location, ST_PointOnSurface(geom)), :digits) AS wkt
        FROM admin_unit WHERE NOT ST_IsValid(geom)"""),
        params,
    )
    return [
        Problem(
            "invalid_geometry",
            [r.code],
            None,
            r.wkt,
            "geometry.validate.unit_invalid",
            {"code": r.code, "reason": r.reason},
        )
        for r in invalid
    ]


def _units_outside_parent(session: Session, params: dict) -> list[Problem]:
    outside = session.execute(
        text(
            """
        WITH loose AS MATERIALIZED (
            SELECT u.code, u.name, p.code AS parent, p.name AS parent_name,
                   ST_CollectionExtract(ST_Difference(u.geom, p.geom), 3) AS geom
            FROM admin_unit u JOIN admin_unit p ON p.code = u.parent_code
            WHERE ST_IsValid(u.geom) AND ST_IsValid(p.geom) AND NOT ST_CoveredBy(u.geom, p.geom)),
        measured AS MATERIALIZED (SELECT *, ST_Area(geom::geography) AS area FROM loose
                                  WHERE ST_Area(geom) > :tol_deg2)
        SELECT code, name, parent, parent_name, area, ST_AsText(geom, :digits) AS wkt, {width}
        FROM measured WHERE area > :tol""".replace("{width}", width_sql("geom"))
        ),
        params,
    )
    return [
        Problem(
            "outside_parent",
            [r.code, r.parent],
            r.area,
            r.wkt,
            "geometry.validate.outside_parent",
            {
                "code": r.code,
                "name": r.name,
                "parent": r.parent,
                "parent_name": r.parent_name,
                "area_m2": r.area,
                "width_m": r.width,
            },
            width_m=r.width,
            thin=r.thin,
        )
        for r in outside
    ]


def _sibling_overlaps(session: Session, params: dict) -> list[Problem]:
    overlaps = session.execute(
        text(
            """
        WITH pairs AS MATERIALIZED (
            SELECT a.code AS code_a, a.name AS name_a, b.code AS code_b, b.name AS name_b,
                   ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
            FROM admin_unit a
            JOIN admin_unit b ON b.level = a.level AND b.parent_code IS NOT DISTINCT FROM a.parent_code
                             AND a.code < b.code AND ST_Intersects(a.geom, b.geom)
            WHERE ST_IsValid(a.geom) AND ST_IsValid(b.geom) AND ST_Relate(a.geom, b.geom, :pattern)),
        measured AS MATERIALIZED (SELECT *, ST_Area(geom::geography) AS area FROM pairs
                                  WHERE ST_Area(geom) > :tol_deg2)
        SELECT code_a, name_a, code_b, name_b, area, ST_AsText(geom, :digits) AS wkt, {width}
        FROM measured WHERE area > :tol""".replace("{width}", width_sql("geom"))
        ),
        dict(params, pattern=INTERIORS_OVERLAP),
    )
    return [
        Problem(
            "overlap",
            [r.code_a, r.code_b],
            r.area,
            r.wkt,
            "geometry.validate.unit_overlap",
            {
                "a": r.code_a,
                "name_a": r.name_a,
                "b": r.code_b,
                "name_b": r.name_b,
                "area_m2": r.area,
                "width_m": r.width,
            },
            width_m=r.width,
            thin=r.thin,
        )
        for r in overlaps
    ]


def _unit_codes(session: Session, params: dict) -> list[Problem]:
    units = session.execute(
        text("""
        SELECT u.code, u.name, u.level, u.parent_code, p.level AS parent_level,
               ST_AsText(ST_PointOnSurface(u.geom), :digits) AS wkt
        FROM admin_unit u LEFT JOIN admin_unit p ON p.code = u.parent_code
        ORDER BY u.code"""),
        params,
    )
    problems: list[Problem] = []
    for u in units:
        problems += _code_level(u)
        problems += _parent(u) or _code_prefix(u)
    return problems


def _code_level(u) -> list[Problem]:
    """Return the problem of a unit whose code is malformed or of another level than the unit."""
    try:
        level = admin_level_of_code(u.code)
    except ValueError as exc:
        return [
            Problem(
                "code_format",
                [u.code],
                None,
                u.wkt,
                "geometry.validate.unit_code_format",
                {"code": u.code, "name": u.name, "reason": str(exc)},
            )
        ]
    expected = ("city", "province") if u.level == "city" else (u.level,)
    if level in expected:
        return []
    return [
        Problem(
            "code_format",
            [u.code],
            None,
            u.wkt,
            "geometry.validate.unit_code_level",
            {"code": u.code, "name": u.name, "level": level_label(u.level), "code_level": level_label(level)},
        )
    ]


def _parent(u) -> list[Problem]:
    """Return the problem of a unit without a parent, or with a parent of the wrong level."""
    wanted = PARENT_LEVEL.get(u.level)
    if wanted and u.parent_code is None:
        return [
            Problem(
                "missing_parent",
                [u.code],
                None,
                u.wkt,
                "geometry.validate.unit_no_parent",
                {"code": u.code, "name": u.name, "level": level_label(u.level), "wanted": level_label(wanted)},
            )
        ]
    if wanted and u.parent_level != wanted:
        return [
            Problem(
                "missing_parent",
                [u.code, u.parent_code],
                None,
                u.wkt,
                "geometry.validate.unit_wrong_parent",
                {
                    "code": u.code,
                    "name": u.name,
                    "level": level_label(u.level),
                    "parent": u.parent_code,
                    "parent_level": level_label(u.parent_level),
                    "wanted": level_label(wanted),
                },
            )
        ]
    return []


def _code_prefix(u) -> list[Problem]:
    """Return the problem of a unit whose code does not start with its parent's (a unit with a parent)."""
    if u.parent_code is None:
        return []
    if u.level == "district":
        # GB/T 2260: a district shares its city's digits up to the city's trailing zero pairs
        # (440304 in 440300 → '4403'; 110101 in 110000 → '11').
        prefix = u.parent_code
        while prefix.endswith("00") and len(prefix) > 2:
            prefix = prefix[:-2]
    else:
        prefix = u.parent_code
    if u.code.startswith(prefix):
        return []
    return [
        Problem(
            "code_prefix",
            [u.code, u.parent_code],
            None,
            u.wkt,
            "geometry.validate.unit_code_prefix",
            {"code": u.code, "name": u.name, "prefix": prefix, "parent": u.parent_code},
        )
    ]
