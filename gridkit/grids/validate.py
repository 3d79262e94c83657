"""Validation of base grid editions: topology (gaps, overlaps, slivers, cells outside their community) and codes.

What each problem type holds, and how areas and widths are measured: gridkit.grids.problems.
Admin units are validated in gridkit.grids.validate_admin, cells renumbered in gridkit.grids.renumber.
"""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.grids.problems import (
    AREA_TOLERANCE_M2,
    INTERIORS_OVERLAP,
    SLIVER_M2,
    Problem,
    measure_params,
    set_apart_noise,
    sorted_problems,
    width_sql,
    without_jit,
)
from gridkit.grids.tolerance import DEFAULT_TOLERANCE_M
from gridkit.models import BaseGridEdition
from gridkit.standard.codes import DEFAULT_PROFILE, PROFILES, CodeProfile, check_base_cell_code

__all__ = ["validate_base_grid", "resolve_profile"]

# A cell borders a gap if its boundary runs within this distance (degrees, about 1 cm) of the gap
# for more than ten times as long: sharing an edge counts, touching at a corner does not.
GAP_NEIGHBOUR_DEG = 1e-7


def resolve_profile(edition: BaseGridEdition, profile: CodeProfile | str | None) -> CodeProfile:
    """Return the code profile to use: the one given (object or name), else the edition's."""
    if isinstance(profile, CodeProfile):
        return profile
    name = profile or edition.code_profile or DEFAULT_PROFILE.name
    if name not in PROFILES:
        raise ValidationError("geometry.unknown_profile", profile=name, profiles=", ".join(sorted(PROFILES)))
    return PROFILES[name]


def validate_base_grid(
    session: Session,
    edition: BaseGridEdition,
    *,
    sliver_m2: float | None = None,
    profile: CodeProfile | str | None = None,
    tolerance_m: float | None = None,
    notes: list | None = None,
) -> list[Problem]:
    """Return every topology and code problem of the edition's base cells, ordered by type, then codes.

    Communities are the admin units of level 'community'; every one of them must be tiled by the
    edition's cells. `sliver_m2` defaults to SLIVER_M2; `profile` to the edition's code profile.
    Cells with invalid geometry are reported once and left out of the spatial checks.
    Overlaps, gaps and parts outside the community no wider than `tolerance_m` (default
    DEFAULT_TOLERANCE_M, the GRIDKIT_SLIVER_TOLERANCE_M setting) are reprojection noise, not
    problems: they go to `notes` when a list is given, and are dropped otherwise.
    """
    tolerance_m = DEFAULT_TOLERANCE_M if tolerance_m is None else float(tolerance_m)
    profile = resolve_profile(edition, profile)
    sliver_m2 = SLIVER_M2 if sliver_m2 is None else float(sliver_m2)
    session.flush()
    params = dict(measure_params(tolerance_m), e=edition.id)
    problems: list[Problem] = []
    planned_with_cells(session, edition.id)
    with without_jit(session):
        invalid, params["bad"] = _invalid_cells(session, params)
        params["bad_units"] = _invalid_unit_codes(session)
        problems += invalid
        problems += _cell_overlaps(session, params)
        problems += _community_gaps(session, params)
        problems += _uncovered_communities(session, params)
        problems += _cells_outside_community(session, params)
        problems += _slivers(session, dict(params, sliver=sliver_m2), sliver_m2)
        problems += _cell_codes(session, params, profile)
    return sorted_problems(set_apart_noise(problems, tolerance_m, notes))


def planned_with_cells(session: Session, edition_id: int) -> bool:
    """Refresh base_cell's statistics when the planner does not know the edition's cells yet; return
    whether it did.

    After an import (and inside its transaction) the planner takes a new edition for a handful of
    cells and pairs every cell with every other by the edition index: 10,000 cells were 100,000,000
    pairs, 19–49 s for the overlap check alone instead of 1.6 s. ANALYZE reads this transaction's own
    new rows too; it runs as the table's owner (migration 20261206_scale8b) and only when the estimate
    is off by half, since it holds a lock that a second ANALYZE waits on until this transaction ends.
    """
    cells = session.scalar(text("SELECT count(*) FROM base_cell WHERE edition_id = :e"), {"e": edition_id})
    plan = session.scalar(
        text("EXPLAIN (FORMAT JSON) SELECT 1 FROM base_cell WHERE edition_id = :e"), {"e": edition_id}
    )
    plan = json.loads(plan) if isinstance(plan, str) else plan
    if 2 * plan[0]["Plan"]["Plan Rows"] >= cells:
        return False
    session.execute(text("SELECT gridkit_analyze_base_cell()"))
    return True


def _invalid_unit_codes(session: Session) -> list[str]:
    return list(session.scalars(text("SELECT code FROM admin_unit WHERE NOT ST_IsValid(geom)")))


def _invalid_cells(session: Session, params: dict) -> tuple[list[Problem], list[int]]:
    # Invalid or empty cells are reported here and left out of every spatial check: GEOS may
    # fail on them, and what they cover is undefined.
    rows = session.execute(
        text("""
        SELECT id, code, ST_IsEmpty(geom) AS empty, ST_IsValidReason(geom) AS reason,
               ST_AsText(coalesce((ST_IsValidDetail(geom)).location, ST_PointOnSurface(geom)), :digits) AS wkt
        FROM base_cell
        WHERE edition_id = :e AND (NOT ST_IsValid(geom) OR ST_IsEmpty(geom))"""),
        params,
    ).all()
    return [
        Problem(
            "invalid_geometry",
            [r.code],
            None,
            None if r.empty else r.wkt,
            "geometry.validate.cell_empty" if r.empty else "geometry.validate.cell_invalid",
            {"code": r.code, "reason": r.reason},
        )
        for r in rows
    ], [r.id for r in rows]


def _cell_overlaps(session: Session, params: dict) -> list[Problem]:
    # Self-join through the GiST index (ST_Intersects implies &&), each pair once (a.id < b.id);
    # only pairs whose interiors share an area get the costly intersection.
    rows = session.execute(
        text(
            """
        WITH pairs AS MATERIALIZED (
            SELECT a.code AS code_a, b.code AS code_b,
                   ST_CollectionExtract(ST_Intersection(a.geom, b.geom), 3) AS geom
            FROM base_cell a
            JOIN base_cell b ON b.edition_id = a.edition_id AND a.id < b.id
                            AND ST_Intersects(a.geom, b.geom)
            WHERE a.edition_id = :e AND a.id <> ALL(CAST(:bad AS integer[]))
              AND b.id <> ALL(CAST(:bad AS integer[])) AND ST_Relate(a.geom, b.geom, :pattern)),
        measured AS MATERIALIZED (
            SELECT code_a, code_b, geom, ST_Area(geom::geography) AS area FROM pairs
            WHERE ST_Area(geom) > :tol_deg2)
        SELECT code_a, code_b, area, ST_AsText(geom, :digits) AS wkt, {width}
        FROM measured WHERE area > :tol""".replace("{width}", width_sql("geom"))
        ),
        dict(params, pattern=INTERIORS_OVERLAP),
    )
    problems = []
    for r in rows:
        codes = sorted((r.code_a, r.code_b))
        problems.append(
            Problem(
                "overlap",
                codes,
                r.area,
                r.wkt,
                "geometry.validate.cell_overlap",
                {"a": codes[0], "b": codes[1], "area_m2": r.area, "width_m": r.width},
                width_m=r.width,
                thin=r.thin,
            )
        )
    return problems


def _community_gaps(session: Session, params: dict) -> list[Problem]:
    # A community is compared with the union of every cell in it, whatever community the cell
    # claims: an area covered by a stray cell is reported as that cell crossing its community,
    # not a second time as a gap. Two passes keep the unions small: first the community's own
    # cells, then, only where something is left, the other cells that reach into it.
    rows = session.execute(
        text(
            """
        WITH communities AS MATERIALIZED (
            SELECT c.code, c.name, c.geom FROM admin_unit c
            WHERE c.level = 'community' AND c.code <> ALL(CAST(:bad_units AS text[]))
              AND EXISTS (SELECT 1 FROM base_cell b WHERE b.edition_id = :e AND b.community_code = c.code)),
        own AS MATERIALIZED (
            SELECT community_code AS code, ST_Union(geom) AS geom FROM base_cell
            WHERE edition_id = :e AND id <> ALL(CAST(:bad AS integer[]))
            GROUP BY community_code),
        left_over AS MATERIALIZED (
            SELECT c.code, c.name,
                   CASE WHEN o.geom IS NULL THEN c.geom ELSE ST_Difference(c.geom, o.geom) END AS geom
            FROM communities c LEFT JOIN own o ON o.code = c.code),
        uncovered AS MATERIALIZED (
            SELECT l.code, l.name,
                   CASE WHEN s.geom IS NULL THEN l.geom ELSE ST_Difference(l.geom, s.geom) END AS geom
            FROM left_over l
            CROSS JOIN LATERAL (
                SELECT ST_Union(b.geom) AS geom FROM base_cell b
                WHERE b.edition_id = :e AND b.community_code <> l.code AND ST_Intersects(b.geom, l.geom)
                  AND b.id <> ALL(CAST(:bad AS integer[]))) s
            WHERE ST_Area(l.geom) > :tol_deg2),
        gaps AS MATERIALIZED (
            SELECT code, name, (ST_Dump(ST_CollectionExtract(geom, 3))).geom AS geom FROM uncovered),
        measured AS MATERIALIZED (
            SELECT code, name, geom, ST_Area(geom::geography) AS area FROM gaps
            WHERE ST_Area(geom) > :tol_deg2)
        SELECT m.code, m.name, m.area, ST_AsText(m.geom, :digits) AS wkt, {width},
               ARRAY(SELECT b.code FROM base_cell b
                     WHERE b.edition_id = :e AND ST_DWithin(b.geom, m.geom, :near)
                       AND ST_Length(ST_Intersection(ST_Boundary(b.geom), ST_Buffer(m.geom, :near))) > :edge
                     ORDER BY b.code) AS neighbours
        FROM measured m WHERE m.area > :tol""".replace("{width}", width_sql("m.geom"))
        ),
        dict(params, near=GAP_NEIGHBOUR_DEG, edge=10 * GAP_NEIGHBOUR_DEG),
    )
    problems = []
    for r in rows:
        neighbours = list(r.neighbours)
        problems.append(
            Problem(
                "gap",
                [r.code] + neighbours,
                r.area,
                r.wkt,
                "geometry.validate.gap_between" if neighbours else "geometry.validate.gap",
                {
                    "community": r.code,
                    "name": r.name,
                    "area_m2": r.area,
                    "width_m": r.width,
                    "cells": ", ".join(neighbours),
                },
                {"community": r.code, "cells": neighbours},
                width_m=r.width,
                thin=r.thin,
            )
        )
    return problems


def _uncovered_communities(session: Session, params: dict) -> list[Problem]:
    uncovered = session.execute(
        text("""
        SELECT c.code, c.name, ST_Area(c.geom::geography) AS area, ST_AsText(c.geom, :digits) AS wkt
        FROM admin_unit c
        WHERE c.level = 'community'
          AND NOT EXISTS (SELECT 1 FROM base_cell b WHERE b.edition_id = :e AND b.community_code = c.code)"""),
        params,
    )
    return [
        Problem(
            "uncovered_community",
            [r.code],
            r.area,
            r.wkt,
            "geometry.validate.uncovered_community",
            {"community": r.code, "name": r.name},
        )
        for r in uncovered
    ]


def _cells_outside_community(session: Session, params: dict) -> list[Problem]:
    rows = session.execute(
        text(
            """
        WITH loose AS MATERIALIZED (
            SELECT b.code, b.community_code, c.name, b.geom AS cell,
                   ST_CollectionExtract(ST_Difference(b.geom, c.geom), 3) AS outside
            -- Community by community (LATERAL), so PostGIS reuses the prepared community geometry.
            FROM admin_unit c
            CROSS JOIN LATERAL (SELECT code, community_code, geom FROM base_cell
                                WHERE edition_id = :e AND community_code = c.code
                                  AND id <> ALL(CAST(:bad AS integer[]))) b
            WHERE c.code <> ALL(CAST(:bad_units AS text[])) AND NOT ST_CoveredBy(b.geom, c.geom)),
        measured AS MATERIALIZED (
            SELECT *, ST_Area(outside::geography) AS outside_area, ST_Area(cell::geography) AS cell_area
            FROM loose WHERE ST_Area(outside) > :tol_deg2)
        SELECT code, community_code, name, outside_area, cell_area - outside_area AS inside_area,
               ST_AsText(outside, :digits) AS outside_wkt, ST_AsText(cell, :digits) AS cell_wkt,
               {width}
        FROM measured WHERE outside_area > :tol""".replace("{width}", width_sql("outside"))
        ),
        params,
    )
    problems = []
    for r in rows:
        codes = [r.code, r.community_code]
        said = {
            "code": r.code,
            "community": r.community_code,
            "name": r.name,
            "area_m2": r.outside_area,
            "width_m": r.width,
        }
        if r.inside_area <= AREA_TOLERANCE_M2:
            problems.append(
                Problem(
                    "outside_community",
                    codes,
                    r.outside_area,
                    r.cell_wkt,
                    "geometry.validate.outside_community",
                    said,
                    width_m=r.width,
                    thin=r.thin,
                )
            )
        else:
            problems.append(
                Problem(
                    "crosses_community",
                    codes,
                    r.outside_area,
                    r.outside_wkt,
                    "geometry.validate.crosses_community",
                    said,
                    width_m=r.width,
                    thin=r.thin,
                )
            )
    return problems


def _slivers(session: Session, params: dict, sliver_m2: float) -> list[Problem]:
    rows = session.execute(
        text("""
        SELECT code, area, ST_AsText(geom, :digits) AS wkt
        FROM (SELECT code, geom, ST_Area(geom::geography) AS area FROM base_cell
              WHERE edition_id = :e AND id <> ALL(CAST(:bad AS integer[]))) c
        WHERE area < :sliver"""),
        params,
    )
    return [
        Problem(
            "sliver",
            [r.code],
            r.area,
            r.wkt,
            "geometry.validate.sliver",
            {"code": r.code, "area_m2": r.area, "minimum_m2": sliver_m2},
        )
        for r in rows
    ]


def _cell_codes(session: Session, params: dict, profile: CodeProfile) -> list[Problem]:
    problems = []
    rows = session.execute(
        text("""
        SELECT code, community_code, ST_AsText(geom, :digits) AS wkt
        FROM base_cell WHERE edition_id = :e ORDER BY code, id"""),
        params,
    )
    for r in rows:
        try:
            check_base_cell_code(r.code, profile)
        except ValueError as exc:
            problems.append(
                Problem(
                    "code_format",
                    [r.code],
                    None,
                    r.wkt,
                    "geometry.validate.cell_code_format",
                    {"code": r.code, "reason": str(exc)},
                )
            )
        if not r.code.startswith(r.community_code):
            problems.append(
                Problem(
                    "code_prefix",
                    [r.code, r.community_code],
                    None,
                    r.wkt,
                    "geometry.validate.cell_code_prefix",
                    {"code": r.code, "community": r.community_code},
                )
            )
    duplicates = session.execute(
        text("""
        SELECT code, count(*) AS n, ST_AsText(ST_Collect(geom ORDER BY id), :digits) AS wkt
        FROM base_cell WHERE edition_id = :e GROUP BY code HAVING count(*) > 1"""),
        params,
    )
    for r in duplicates:
        problems.append(
            Problem(
                "code_duplicate",
                [r.code],
                None,
                r.wkt,
                "geometry.validate.cell_code_duplicate",
                {"code": r.code, "count": r.n},
            )
        )
    return problems
