"""Validation of base grid editions and admin units, and renumbering of base cells.

All spatial work runs in PostGIS on the stored EPSG:4490 geometries. Areas are in m², measured
on the CGCS2000 ellipsoid (`ST_Area(geom::geography)`), so no projection zone has to be chosen
and a city spanning two Gauss-Kruger zones is measured as exactly as one inside a single zone.
Problem areas below AREA_TOLERANCE_M2 are floating-point noise from the overlay and are not
reported. Locations are WKT in EPSG:4490 (lon/lat).

Problem types, with what `codes`, `area_m2` and `location` hold:

| type                | codes                                   | area_m2          | location            |
|---------------------|-----------------------------------------|------------------|---------------------|
| gap                 | community, then cells sharing an edge   | uncovered area   | the uncovered part  |
| overlap             | the two cells (or sibling admin units)  | shared area      | the shared part     |
| sliver              | the cell                                | cell area        | the cell            |
| crosses_community   | the cell, its community                 | area outside     | the part outside    |
| outside_community   | the cell, its community                 | cell area        | the cell            |
| uncovered_community | the community                           | community area   | the community       |
| code_format         | the code                                | None             | cell / unit point   |
| code_duplicate      | the code                                | None             | all its cells       |
| code_prefix         | the code, its community / parent code   | None             | cell / unit point   |
| invalid_geometry    | the code                                | None             | the defect (point)  |
| outside_parent      | the admin unit, its parent              | area outside     | the part outside    |
| missing_parent      | the admin unit (and the wrong parent)   | None             | unit point          |

A gap's `detail` repeats its community and cells separately: {"community": …, "cells": […]}.
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import messages
from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.numbering import (
    order_west_east_north_south as order_in_rows,  # one rule for generation and renumbering
)
from gridkit.grids.tolerance import DEFAULT_TOLERANCE_M
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition
from gridkit.rules import EditionState
from gridkit.standard.codes import (
    DEFAULT_PROFILE,
    PROFILES,
    CodeProfile,
    admin_level_of_code,
    base_cell_code,
    check_base_cell_code,
)

__all__ = [
    "Problem",
    "PROBLEM_TYPES",
    "SLIVER_M2",
    "AREA_TOLERANCE_M2",
    "validate_base_grid",
    "validate_admin_units",
    "renumber_base_cells",
    "order_in_rows",
    "resolve_profile",
]

# Cells smaller than this (m²) are reported as slivers unless the caller gives another threshold.
SLIVER_M2 = 50.0
# Overlaps, gaps and parts outside a boundary smaller than this (m²) are overlay noise.
AREA_TOLERANCE_M2 = 0.01
# Digits after the decimal point in location WKT: 1e-9 degrees is about 0.1 mm.
WKT_DIGITS = 9
# A cell borders a gap if its boundary runs within this distance (degrees, about 1 cm) of the gap
# for more than ten times as long: sharing an edge counts, touching at a corner does not.
GAP_NEIGHBOUR_DEG = 1e-7

PROBLEM_TYPES = (
    "gap",
    "overlap",
    "sliver",
    "crosses_community",
    "outside_community",
    "uncovered_community",
    "code_format",
    "code_duplicate",
    "code_prefix",
    "invalid_geometry",
    "outside_parent",
    "missing_parent",
)

# A square degree is at most ~1.231e10 m² (at the equator): anything whose planar lon/lat area is
# below this cannot reach AREA_TOLERANCE_M2, so the costlier ellipsoidal area is skipped for it.
_TOLERANCE_DEG2 = AREA_TOLERANCE_M2 / 1.25e10

# Interiors share an area (dimension 2): true overlaps only, not shared edges or corners.
_INTERIORS_OVERLAP = "2********"

# A piece (overlap, gap, part outside) is within the tolerance when nothing is left of it after
# shrinking it by half the tolerance, in the CGCS2000 3-degree Gauss-Kruger zone of its centre
# (EPSG:4534 at 75°E … EPSG:4554 at 135°E): no point of it is farther than tol/2 from its edge.
# Its width is reported as 2 · area / perimeter of its widest part (the width of a strip; about
# it for other shapes), leaving out parts below AREA_TOLERANCE_M2, the overlay's zero-area crumbs.
# (GEOS's maximum inscribed circle would give the exact width but can take minutes on slivers.)
_WIDTH = (
    "(SELECT max(2 * ST_Area(d.geom::geography) / NULLIF(ST_Perimeter(d.geom::geography), 0)) "
    "FROM ST_Dump({g}) d WHERE ST_Area(d.geom::geography) > :tol) AS width, "
    "ST_IsEmpty(ST_Buffer(ST_Transform({g}, 4534 + LEAST(20, GREATEST(0, "
    "round(ST_X(ST_Centroid({g})) / 3)::int - 25))), -CAST(:half_tol AS float8))) AS thin"
)


@dataclass
class Problem:
    """One validation problem: its type, the codes involved, the area (m²), where it is and what it says.

    `key` and `params` are the sentence in the message catalogue (gridkit/messages, area
    geometry.json), rendered by whoever shows it (`render(lang)`; `message` is the English one).
    `width_m` is the width of an overlap, gap or part outside (2 · area / perimeter), None for other
    types; `thin` says it lies within the tolerance everywhere (see _WIDTH).
    """

    type: str
    codes: list[str]
    area_m2: float | None
    location: str | None
    key: str
    params: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    width_m: float | None = None
    thin: bool = False

    def render(self, lang: str | None = None) -> str:
        """Return the sentence in `lang` (default zh-CN)."""
        return messages.render(self.key, lang, **self.params)

    @property
    def message(self) -> str:
        """Return the English sentence (logs, tests)."""
        return self.render("en")

    def to_dict(self, lang: str = "en") -> dict:
        """Return the problem as a JSON-ready dict (location as WKT in EPSG:4490, message in `lang`)."""
        data = asdict(self)
        del data["thin"]
        data["message"] = self.render(lang)
        data["params"] = {k: messages.localise(v, lang) for k, v in self.params.items()}
        if data["area_m2"] is not None:
            data["area_m2"] = round(data["area_m2"], 2)
        if data["width_m"] is None:
            del data["width_m"]
        else:
            data["width_m"] = round(data["width_m"], 4)
        if not data["detail"]:
            del data["detail"]
        return data

    def sort_key(self) -> tuple:
        """Return the key that orders problems by type, then codes."""
        return (self.type, self.codes, -(self.area_m2 or 0.0), self.location or "")


def _level(level: str | None) -> messages.Message:
    return messages.Message(f"geometry.level.{level or 'none'}")


def _apart(problems: list[Problem], tolerance_m: float, notes: list | None) -> list[Problem]:
    """Return the problems wider than the tolerance; narrower ones go to `notes` (if given) as noise."""
    kept = []
    for p in problems:
        if p.thin:
            if notes is not None:
                notes.append(
                    Problem(
                        p.type,
                        p.codes,
                        p.area_m2,
                        p.location,
                        "geometry.validate.within_tolerance",
                        {"problem": messages.Message(p.key, **p.params), "tolerance_cm": tolerance_m * 100},
                        p.detail,
                        p.width_m,
                        True,
                    )
                )
        else:
            kept.append(p)
    return kept


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=Problem.sort_key)


def resolve_profile(edition: BaseGridEdition, profile: CodeProfile | str | None) -> CodeProfile:
    """Return the code profile to use: the one given (object or name), else the edition's."""
    if isinstance(profile, CodeProfile):
        return profile
    name = profile or edition.code_profile or DEFAULT_PROFILE.name
    if name not in PROFILES:
        raise ValidationError("geometry.unknown_profile", profile=name, profiles=", ".join(sorted(PROFILES)))
    return PROFILES[name]


# -- base grid -----------------------------------------------------------------------------------


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
    params = {
        "e": edition.id,
        "tol": AREA_TOLERANCE_M2,
        "tol_deg2": _TOLERANCE_DEG2,
        "digits": WKT_DIGITS,
        "half_tol": tolerance_m / 2,
    }
    problems: list[Problem] = []
    with _without_jit(session):
        invalid, params["bad"] = _invalid_cells(session, params)
        params["bad_units"] = _invalid_unit_codes(session)
        problems += invalid
        problems += _cell_overlaps(session, params)
        problems += _community_gaps(session, params)
        problems += _cells_outside_community(session, params)
        problems += _slivers(session, dict(params, sliver=sliver_m2), sliver_m2)
        problems += _cell_codes(session, params, profile)
    return _sorted(_apart(problems, tolerance_m, notes))


@contextmanager
def _without_jit(session: Session):
    # The spatial functions' high cost estimates make PostgreSQL JIT-compile every query, which
    # costs more (0.1-0.2 s a query) than it saves here. Restored afterwards, so the caller's
    # transaction keeps its own setting. Not in a `finally`: after a database error the
    # transaction is aborted and the caller's rollback undoes the SET LOCAL anyway.
    before = session.execute(text("SELECT current_setting('jit')")).scalar()
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    yield
    session.execute(text("SELECT set_config('jit', :v, true)"), {"v": before})


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
        FROM measured WHERE area > :tol""".replace("{width}", _WIDTH.format(g="geom"))
        ),
        dict(params, pattern=_INTERIORS_OVERLAP),
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
        FROM measured m WHERE m.area > :tol""".replace("{width}", _WIDTH.format(g="m.geom"))
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
    uncovered = session.execute(
        text("""
        SELECT c.code, c.name, ST_Area(c.geom::geography) AS area, ST_AsText(c.geom, :digits) AS wkt
        FROM admin_unit c
        WHERE c.level = 'community'
          AND NOT EXISTS (SELECT 1 FROM base_cell b WHERE b.edition_id = :e AND b.community_code = c.code)"""),
        params,
    )
    for r in uncovered:
        problems.append(
            Problem(
                "uncovered_community",
                [r.code],
                r.area,
                r.wkt,
                "geometry.validate.uncovered_community",
                {"community": r.code, "name": r.name},
            )
        )
    return problems


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
        FROM measured WHERE outside_area > :tol""".replace("{width}", _WIDTH.format(g="outside"))
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


# -- admin units ---------------------------------------------------------------------------------

_PARENT_LEVEL = {"district": "city", "street": "district", "community": "street"}


def validate_admin_units(
    session: Session, *, tolerance_m: float | None = None, notes: list | None = None
) -> list[Problem]:
    """Return every problem of the admin units (nesting, sibling overlaps, codes), ordered by type, then codes.

    Parts outside the parent and sibling overlaps no wider than `tolerance_m` (default
    DEFAULT_TOLERANCE_M) are reprojection noise: they go to `notes` when a list is given.
    """
    tolerance_m = DEFAULT_TOLERANCE_M if tolerance_m is None else float(tolerance_m)
    session.flush()
    with _without_jit(session):
        return _sorted(_apart(_admin_problems(session, tolerance_m), tolerance_m, notes))


def _admin_problems(session: Session, tolerance_m: float) -> list[Problem]:
    params = {"tol": AREA_TOLERANCE_M2, "tol_deg2": _TOLERANCE_DEG2, "digits": WKT_DIGITS, "half_tol": tolerance_m / 2}
    problems: list[Problem] = []
    invalid = session.execute(
        text("""
        SELECT code, ST_IsValidReason(geom) AS reason,
               ST_AsText(coalesce((ST_IsValidDetail(geom)).location, ST_PointOnSurface(geom)), :digits) AS wkt
        FROM admin_unit WHERE NOT ST_IsValid(geom)"""),
        params,
    )
    problems += [
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
        FROM measured WHERE area > :tol""".replace("{width}", _WIDTH.format(g="geom"))
        ),
        params,
    )
    problems += [
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
        FROM measured WHERE area > :tol""".replace("{width}", _WIDTH.format(g="geom"))
        ),
        dict(params, pattern=_INTERIORS_OVERLAP),
    )
    problems += [
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

    units = session.execute(
        text("""
        SELECT u.code, u.name, u.level, u.parent_code, p.level AS parent_level,
               ST_AsText(ST_PointOnSurface(u.geom), :digits) AS wkt
        FROM admin_unit u LEFT JOIN admin_unit p ON p.code = u.parent_code
        ORDER BY u.code"""),
        params,
    )
    for u in units:
        problems += _admin_unit_codes(u)
    return problems


def _admin_unit_codes(u) -> list[Problem]:
    problems = []
    try:
        level = admin_level_of_code(u.code)
    except ValueError as exc:
        problems.append(
            Problem(
                "code_format",
                [u.code],
                None,
                u.wkt,
                "geometry.validate.unit_code_format",
                {"code": u.code, "name": u.name, "reason": str(exc)},
            )
        )
    else:
        expected = ("city", "province") if u.level == "city" else (u.level,)
        if level not in expected:
            problems.append(
                Problem(
                    "code_format",
                    [u.code],
                    None,
                    u.wkt,
                    "geometry.validate.unit_code_level",
                    {"code": u.code, "name": u.name, "level": _level(u.level), "code_level": _level(level)},
                )
            )
    wanted = _PARENT_LEVEL.get(u.level)
    if wanted and u.parent_code is None:
        problems.append(
            Problem(
                "missing_parent",
                [u.code],
                None,
                u.wkt,
                "geometry.validate.unit_no_parent",
                {"code": u.code, "name": u.name, "level": _level(u.level), "wanted": _level(wanted)},
            )
        )
        return problems
    if wanted and u.parent_level != wanted:
        problems.append(
            Problem(
                "missing_parent",
                [u.code, u.parent_code],
                None,
                u.wkt,
                "geometry.validate.unit_wrong_parent",
                {
                    "code": u.code,
                    "name": u.name,
                    "level": _level(u.level),
                    "parent": u.parent_code,
                    "parent_level": _level(u.parent_level),
                    "wanted": _level(wanted),
                },
            )
        )
        return problems
    if u.parent_code is None:
        return problems
    if u.level == "district":
        # GB/T 2260: a district shares its city's digits up to the city's trailing zero pairs
        # (440304 in 440300 → '4403'; 110101 in 110000 → '11').
        prefix = u.parent_code
        while prefix.endswith("00") and len(prefix) > 2:
            prefix = prefix[:-2]
    else:
        prefix = u.parent_code
    if not u.code.startswith(prefix):
        problems.append(
            Problem(
                "code_prefix",
                [u.code, u.parent_code],
                None,
                u.wkt,
                "geometry.validate.unit_code_prefix",
                {"code": u.code, "name": u.name, "prefix": prefix, "parent": u.parent_code},
            )
        )
    return problems


# -- renumbering ---------------------------------------------------------------------------------


def renumber_base_cells(
    session: Session,
    edition: BaseGridEdition,
    *,
    community: str | None = None,
    profile: CodeProfile | str | None = None,
) -> list[tuple[str, str]]:
    """Give the edition's cells codes by the numbering rule; return (old, new) for every changed code.

    The rule, per community (default: every community of the edition, else only `community`):

    1. Each cell is represented by ST_PointOnSurface(geom), a point always inside the cell, in
       EPSG:4490 lon/lat; its height is ST_YMax - ST_YMin of the cell, in degrees of latitude.
    2. h = the median cell height in the community.
    3. Rows, north→south (order_in_rows): take the northernmost remaining point (largest
       latitude; ties by smaller longitude, then smaller old code); its row is every remaining
       cell whose point lies less than h/2 south of it. Repeat with the rest.
    4. Inside a row, west→east: by longitude, then latitude north first, then old code.
    5. The k-th cell gets community code + k, zero-padded to the profile's sequence digits
       (3 by default, 2 in cjt213).

    A regular grid is thus numbered row by row from the north-west corner, like make_base_grid.
    Only draft editions can be renumbered (InvalidTransition otherwise); a community with more
    cells than the profile's sequence allows raises ValidationError and nothing is changed.
    Codes are updated one by one in an order that never holds one code twice, so the
    non-deferrable unique (edition, code) and the check constraints hold after every row.
    Loaded BaseCell objects of the edition get their code reloaded on next access.
    """
    if edition.status != EditionState.DRAFT:
        raise InvalidTransition("geometry.renumber_not_draft", edition=edition.name, status=edition.status)
    profile = resolve_profile(edition, profile)
    session.flush()
    if community is not None and session.get(AdminUnit, community) is None:
        raise NotFound("geometry.no_such_community", community=community)
    query = """
        SELECT id, code, community_code, ST_X(p) AS x, ST_Y(p) AS y, ST_YMax(geom) - ST_YMin(geom) AS h
        FROM (SELECT id, code, community_code, geom, ST_PointOnSurface(geom) AS p
              FROM base_cell WHERE edition_id = :e {where}) c
        ORDER BY community_code, code, id"""
    params = {"e": edition.id}
    if community is not None:
        query = query.format(where="AND community_code = :c")
        params["c"] = community
    else:
        query = query.format(where="")
    rows = session.execute(text(query), params).all()

    by_community: dict[str, list] = {}
    for r in rows:
        by_community.setdefault(r.community_code, []).append(r)
    limit = 10**profile.base_cell_seq_digits - 1
    too_many = [
        Problem(
            "code_format",
            [code],
            None,
            None,
            "geometry.validate.too_many_cells",
            {"community": code, "count": len(cells), "profile": profile.name, "limit": limit},
        )
        for code, cells in by_community.items()
        if len(cells) > limit
    ]
    empty = [r.code for r in rows if r.x is None]
    if empty:
        raise ValidationError("geometry.renumber_empty_cells", cells=", ".join(empty))
    if too_many:
        raise ValidationError(
            "geometry.renumber_too_many",
            count=len(too_many),
            profile=profile.name,
            limit=limit,
            problems=[p.to_dict() for p in too_many],
        )

    new_code: dict[int, str] = {}
    old_code: dict[int, str] = {}
    for code, cells in by_community.items():
        points = [(r.x, r.y) for r in cells]  # cells come in old-code order
        for seq, k in enumerate(order_in_rows(points, statistics.median(r.h for r in cells)), start=1):
            r = cells[k]
            new_code[r.id] = base_cell_code(code, seq, profile)
            old_code[r.id] = r.code
    changed = {i: c for i, c in new_code.items() if old_code[i] != c}
    if not changed:
        return []
    community_of = {r.id: r.community_code for r in rows}
    moves = _collision_free_moves(old_code, changed, community_of)
    session.execute(text("UPDATE base_cell SET code = :code WHERE id = :id"), [{"id": i, "code": c} for i, c in moves])
    for obj in list(session.identity_map.values()):
        if isinstance(obj, BaseCell) and obj.id in changed:
            session.expire(obj, ["code"])
    return sorted(((old_code[i], c) for i, c in changed.items()), key=lambda pair: pair[1])


def _collision_free_moves(
    old_code: dict[int, str], changed: dict[int, str], community_of: dict[int, str]
) -> list[tuple[int, str]]:
    """Return (id, code) updates that reach `changed` without ever giving two cells one code.

    PostgreSQL checks a non-deferrable unique constraint row by row, so a permutation of codes
    must be applied in chain order: a cell moves only once its target code is free. A cycle
    (A wants B's code, B wants A's) is broken by parking one cell on a free code of the same
    community (sequence 0, never a target), which keeps the code and prefix checks satisfied.
    """
    holder = {code: i for i, code in old_code.items()}
    state = dict(old_code)
    moves: list[tuple[int, str]] = []

    def move(i: int, code: str) -> None:
        del holder[state[i]]
        holder[code] = i
        state[i] = code
        moves.append((i, code))

    def parking(community: str) -> str:
        # Both the 15- and the 14-digit all-zero sequences pass the table's checks (14-15 digits,
        # community prefix); a community has at most 999 cells, so one of the 1,100 codes is free.
        candidates = (
            [community + "000", community + "00"]
            + [f"{community}{n:03d}" for n in range(1000)]
            + [f"{community}{n:02d}" for n in range(100)]
        )
        return next(c for c in candidates if c not in holder)

    for start in sorted(changed, key=lambda i: changed[i]):
        if state[start] == changed[start]:
            continue
        chain = [start]
        cycle = False
        while True:
            j = holder.get(changed[chain[-1]])
            if j is None:
                break
            if j == start:
                cycle = True
                break
            chain.append(j)  # j holds the code chain[-1] wants, so j moves first
        if cycle:
            move(start, parking(community_of[start]))
            for i in reversed(chain[1:]):
                move(i, changed[i])
            move(start, changed[start])
        else:
            for i in reversed(chain):
                move(i, changed[i])
    return moves
