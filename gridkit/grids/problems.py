"""What validating base grids and admin units reports: `Problem`, the problem types, and the measures.

Base grid validation (`gridkit.grids.validate`) and admin unit validation
(`gridkit.grids.validate_admin`) both report `Problem`s, measure pieces the same way and set
pieces narrower than the reprojection tolerance apart as notes; that shared part lives here.

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

from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import messages

__all__ = [
    "Problem",
    "PROBLEM_TYPES",
    "SLIVER_M2",
    "AREA_TOLERANCE_M2",
    "WKT_DIGITS",
    "INTERIORS_OVERLAP",
    "measure_params",
    "width_sql",
    "level_label",
    "set_apart_noise",
    "sorted_problems",
    "without_jit",
]


# Cells smaller than this (m²) are reported as slivers unless the caller gives another threshold.
SLIVER_M2 = 50.0
# Overlaps, gaps and parts outside a boundary smaller than this (m²) are overlay noise.
AREA_TOLERANCE_M2 = 0.01
# What may be left of a sliver shrunk by half the tolerance and still count as nothing (see within_tolerance_sql).
SHRUNK_CRUMB_M2 = 1e-4
# Digits after the decimal point in location WKT: 1e-9 degrees is about 0.1 mm.
WKT_DIGITS = 9

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
TOLERANCE_DEG2 = AREA_TOLERANCE_M2 / 1.25e10

# Interiors share an area (dimension 2): true overlaps only, not shared edges or corners.
INTERIORS_OVERLAP = "2********"


# A piece (overlap, gap, part outside) is within the tolerance when nothing is left of it after
# shrinking it by half the tolerance, in the CGCS2000 3-degree Gauss-Kruger zone of its centre
# (EPSG:4534 at 75°E … EPSG:4554 at 135°E): no point of it is farther than tol/2 from its edge.
# Its width is reported as 2 · area / perimeter of its widest part (the width of a strip; about
# it for other shapes), leaving out parts below AREA_TOLERANCE_M2, the overlay's zero-area crumbs.
# (GEOS's maximum inscribed circle would give the exact width but can take minutes on slivers.)
def within_tolerance_sql(g: str) -> str:
    """Return SQL true when nothing is left of geometry `g` (EPSG:4490, not empty) after shrinking it by
    :half_tol metres in the Gauss-Kruger zone of its centre: reprojection noise, as validation counts it.

    "Nothing" is under SHRUNK_CRUMB_M2: GEOS can leave crumbs of a square millimetre where a seam of a tenth of
    a millimetre is shrunk (a grid exported to a zone-prefixed CRS and imported back).
    """
    return (
        f"ST_Area(ST_Buffer(ST_Transform({g}, 4534 + LEAST(20, GREATEST(0, "
        f"round(ST_X(ST_Centroid({g})) / 3)::int - 25))), -CAST(:half_tol AS float8))) < {SHRUNK_CRUMB_M2}"
    )


_WIDTH = (
    "(SELECT max(2 * ST_Area(d.geom::geography) / NULLIF(ST_Perimeter(d.geom::geography), 0)) "
    "FROM ST_Dump({g}) d WHERE ST_Area(d.geom::geography) > :tol) AS width, " + within_tolerance_sql("{g}") + " AS thin"
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


def level_label(level: str | None) -> messages.Message:
    """Return the name of an admin level (city, district, street, community; None: none) as a Message."""
    return messages.Message(f"geometry.level.{level or 'none'}")


def measure_params(tolerance_m: float) -> dict:
    """Return the query parameters every measuring query takes (see width_sql), for `tolerance_m`."""
    return {"tol": AREA_TOLERANCE_M2, "tol_deg2": TOLERANCE_DEG2, "digits": WKT_DIGITS, "half_tol": tolerance_m / 2}


def width_sql(geom: str) -> str:
    """Return the select items `width` and `thin` of the piece `geom` (a column or expression), see _WIDTH."""
    return _WIDTH.format(g=geom)


def set_apart_noise(problems: list[Problem], tolerance_m: float, notes: list | None) -> list[Problem]:
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


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    """Return the problems ordered by type, then codes (Problem.sort_key)."""
    return sorted(problems, key=Problem.sort_key)


@contextmanager
def without_jit(session: Session):
    """Run the block with PostgreSQL's JIT off in the current transaction, then restore the setting."""
    # The spatial functions' high cost estimates make PostgreSQL JIT-compile every query, which
    # costs more (0.1-0.2 s a query) than it saves here. Restored afterwards, so the caller's
    # transaction keeps its own setting. Not in a `finally`: after a database error the
    # transaction is aborted and the caller's rollback undoes the SET LOCAL anyway.
    before = session.execute(text("SELECT current_setting('jit')")).scalar()
    session.execute(text("SELECT set_config('jit', 'off', true)"))
    yield
    session.execute(text("SELECT set_config('jit', :v, true)"), {"v": before})
