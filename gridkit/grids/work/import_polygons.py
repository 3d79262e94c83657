"""Import a department's drawn work cell polygons into a draft in one go: all or nothing.

The file (Shapefile, zip, GeoPackage, GeoJSON; any CRS, read by gridkit.io.vector as every import reads
one) holds one feature per work cell: its code (`code_field`), optionally its name (`name_field`), and the
polygon the department drew. The file is the draft's whole work grid: work cells of the draft it does not
name are removed, and every base cell of the department's jurisdiction goes to the drawn polygon holding
the largest share of its area (gridkit.rules.WORK_CELL_SHARE, or the `share` given), or to none.

Drawn polygons never follow base cell edges exactly (digitised by hand, reprojected): a base cell on a
border lies a few per cent in the neighbour polygon. Only a second polygon holding at least SPLIT_SHARE
of a cell makes it "split" in the report; smaller parts are drawing noise.

The shares are computed in PostGIS in one set-based query per batch of polygons: the polygons are cut
into pieces (ST_Subdivide) in a temporary table with a GiST index, and the pieces' intersections with
the base cells are summed on the spheroid (a base cell wholly inside a piece is not intersected).

Every problem (no code, a code twice, a code not of the department, a name too long, a geometry that
cannot be used, a polygon that gets no base cell) is collected and the import refused with all of them
(ImportRefused): nothing is written. The caller owns the transaction and writes the report
(gridkit.io.report) listing the split and unassigned base cells.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import delete, insert, select, text
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.admin import area_prefix
from gridkit.config import Settings
from gridkit.errors import ValidationError
from gridkit.grids.importer import (
    NAME_LENGTH,
    feature_problems,
    on_feature,
    read_polygons,
    records,
    refuse,
    resolve_field,
)
from gridkit.grids.work.membership import _require_draft, check_work_cell
from gridkit.grids.work.versions import touch_draft, version_profile
from gridkit.io.problems import problem
from gridkit.io.vector import text_value
from gridkit.messages import Message
from gridkit.models import AdminUnit, Department, WorkCell, WorkCellMember, WorkGridVersion

__all__ = ["WorkCellImport", "import_work_cells", "SPLIT_SHARE", "OUTSIDE_NOTE_SHARE"]

# A base cell is reported as split when a polygon other than the one it went to holds at least this share of
# it; below, the part is a drawn border a few metres off the cell's edge.
SPLIT_SHARE = 0.1
# A polygon with at least this share of its area on no base cell of the jurisdiction is noted (drawn over
# the city's edge, a river, another district).
OUTSIDE_NOTE_SHARE = 0.05
# Vertices per piece of a drawn polygon in the temporary table: small pieces keep the GiST boxes tight and
# the intersections cheap.
PIECE_VERTICES = 256
# Drawn polygons whose shares one query computes (the progress bar moves once per batch).
BATCH = 25
# Shares are compared with this much slack: half a cell drawn exactly is 0.5 up to rounding.
_EPSILON = 1e-9


@dataclass
class WorkCellImport:
    """What an import put into a draft: counts, the split and unassigned base cells, notes and the source."""

    draft: int
    revision: int
    work_cells: int
    assigned: int
    share: float
    split: list[dict] = field(default_factory=list)
    unassigned: list[dict] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    source: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """Return the counts and source as a flat dict, for the report and the CLI."""
        return {
            "file": self.source.get("path"),
            "layer": self.source.get("layer"),
            "encoding": self.source.get("encoding"),
            "crs": self.source.get("crs"),
            "features": self.source.get("features"),
            "draft": self.draft,
            "revision": self.revision,
            "share": self.share,
            "work_cells": self.work_cells,
            "base_cells_assigned": self.assigned,
            "split": len(self.split),
            "unassigned": len(self.unassigned),
            "work_cells_removed": len(self.removed),
        }

    @property
    def unassigned_rows(self) -> list[dict]:
        """Return the report's listed rows: every split base cell, then every unassigned one."""
        return self.split + self.unassigned


def import_work_cells(
    session: Session,
    version: WorkGridVersion,
    path,
    *,
    code_field: str,
    name_field: str | None = None,
    layer: str | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    share: float = rules.WORK_CELL_SHARE,
    expected_revision: int | None = None,
    by: str | None = None,
    settings: Settings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> WorkCellImport:
    """Make the draft's work cells those drawn in the file at `path` (all or nothing) and return what was done.

    Raises ImportRefused listing every problem, InvalidTransition for a version that is not a draft, Conflict
    for a stale `expected_revision`. `progress(done, total)` is called per batch of drawn polygons. Never commits.
    """
    _require_draft(version)
    if not 0 < share <= 1:
        raise ValidationError("work.bad_threshold", threshold=share)
    settings = settings or Settings()
    read, problems = read_polygons(
        session,
        path,
        settings,
        multipart="keep",
        layer=layer,
        encoding=encoding,
        src_crs=src_crs,
        code_field=code_field,
    )
    notes, source = read.notes, read.source
    display = source["display"]
    code_col = resolve_field(read.fields, code_field, "--code-field", display, notes, problems)
    name_col = resolve_field(read.fields, name_field, "--name-field", display, notes, problems)
    drawn = _drawn_cells(session, version, read.gdf, code_col, name_col, display, problems)
    if problems:
        raise refuse(source, problems, notes)

    scope = area_prefix(session, session.get(Department, version.dept_code).jurisdiction_code)
    shares, areas = _shares(session, version, drawn, scope, progress)
    result = _placed(drawn, shares, share)
    _check_polygons(version, drawn, result, areas, display, problems, notes)
    if problems:
        raise refuse(source, problems, notes)

    excluded = _excluded(session, version)
    unassigned = _unassigned(session, version, scope, shares, result["cells"], excluded, drawn)
    touch_draft(session, version, expected_revision=expected_revision, by=by)
    removed = _write(session, version, drawn, result["cells"])
    for code in removed:
        notes.append(problem("work_cell_removed", Message("work.import.removed", code=code), code=code))
    return WorkCellImport(
        draft=version.id,
        revision=version.revision,
        work_cells=len(drawn),
        assigned=len(result["cells"]),
        share=share,
        split=result["split"],
        unassigned=unassigned,
        removed=removed,
        notes=notes,
        source=source,
    )


def _drawn_cells(session, version, gdf, code_col, name_col, display, problems) -> list[dict]:
    """Return one dict per usable feature (index, code, name, geometry); add a problem for every bad one."""
    if code_col is None:
        return []
    profile = version_profile(session, version)
    known = set(session.scalars(select(AdminUnit.code)))
    first_seen: dict[str, object] = {}
    cells = []
    for index, feature in zip(gdf.index, records(gdf, code_col, name_col)):
        code = text_value(feature[code_col])
        add = feature_problems(problems, display, index, code, code_col)
        if code is None:
            add("missing_code", "missing_code", field=code_col)
            continue
        try:
            check_work_cell(session, version, code, known_areas=known, profile=profile)
        except ValidationError as exc:  # its sentence in the reader's language
            add("bad_code", "bad_code", reason=Message(exc.key, **exc.params))
            continue
        if code in first_seen:
            add("duplicate_code", "duplicate_work_cell_code", code=code, first=first_seen[code])
            continue
        first_seen[code] = index
        name = text_value(feature[name_col]) if name_col is not None else None
        if name is not None and len(name) > NAME_LENGTH:
            add("name_too_long", "name_too_long", field_=name_col, length=len(name), limit=NAME_LENGTH)
            continue
        if feature["geometry"] is not None:  # the reader has said what is wrong with it
            cells.append({"index": index, "code": code, "name": name, "geom": feature["geometry"]})
    return cells


# The base cells' areas each drawn piece holds (m², on the spheroid), summed per base cell and drawn polygon: its
# share of the cell and the area. MATERIALIZED: each intersection is computed once, not once per use.
_SHARES_SQL = text(
    "WITH pairs AS MATERIALIZED (SELECT b.code, d.idx, ST_Area(b.geom::geography) AS cell, "
    "CASE WHEN ST_CoveredBy(b.geom, d.g) THEN ST_Area(b.geom::geography) "
    "ELSE ST_Area(ST_Intersection(b.geom, d.g)::geography) END AS part "
    "FROM gk_drawn_piece d JOIN base_cell b ON b.geom && d.g AND ST_Intersects(b.geom, d.g) "
    "WHERE d.idx >= :first AND d.idx < :stop AND b.edition_id = :e AND b.community_code LIKE :scope) "
    "SELECT code, idx, SUM(part) / NULLIF(MAX(cell), 0), SUM(part) FROM pairs GROUP BY code, idx"
)


def _shares(session, version, drawn, scope, progress) -> tuple[dict, dict]:
    """Return ({base cell code: {drawn position: share of the cell}}, {drawn position: (area on base cells,
    area), m²}) for the base cells of the draft's edition in the jurisdiction (code prefix `scope`)."""
    session.execute(text("DROP TABLE IF EXISTS gk_drawn_piece"))
    session.execute(
        text(
            "CREATE TEMP TABLE gk_drawn_piece "
            f"(idx int NOT NULL, g geometry(Geometry, {rules.SRID:d}) NOT NULL) ON COMMIT DROP"
        )
    )
    if drawn:
        session.execute(
            text(
                "INSERT INTO gk_drawn_piece SELECT :idx, ST_Subdivide(ST_GeomFromWKB(:wkb, :srid), :n) "
                "FROM (SELECT 1) one"
            ),
            [{"idx": i, "wkb": d["geom"].wkb, "srid": rules.SRID, "n": PIECE_VERTICES} for i, d in enumerate(drawn)],
        )
    session.execute(text("CREATE INDEX ON gk_drawn_piece USING gist (g)"))
    session.execute(text("CREATE INDEX ON gk_drawn_piece (idx)"))
    session.execute(text("ANALYZE gk_drawn_piece"))
    areas = {
        idx: [0.0, area]
        for idx, area in session.execute(
            text("SELECT idx, SUM(ST_Area(g::geography)) FROM gk_drawn_piece GROUP BY idx")
        )
    }
    shares: dict[str, dict[int, float]] = defaultdict(dict)
    total = len(drawn)
    for start in range(0, total, BATCH):
        stop = min(start + BATCH, total)
        params = {"first": start, "stop": stop, "e": version.base_edition_id, "scope": scope + "%"}
        for code, idx, part, area in session.execute(_SHARES_SQL, params):
            if part is not None and part > 0:
                shares[code][idx] = float(part)
                areas[idx][0] += float(area)
        if progress is not None:
            progress(stop, total)
    return shares, {idx: tuple(v) for idx, v in areas.items()}


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _ranked(parts: dict[int, float], drawn) -> list[tuple[int, float]]:
    """Return a base cell's (drawn position, share) largest share first; shares equal to 1e-9 (a cell drawn
    exactly half and half, whose halves' areas differ in the last digits) rank by the smaller work cell code."""
    return sorted(parts.items(), key=lambda item: (-round(item[1], 9), drawn[item[0]]["code"]))


def _placed(drawn, shares, share) -> dict:
    """Return {"cells": {base cell code: drawn position}, "split": report rows, "best": {drawn position: (share,
    base cell code)} the largest share each polygon holds}: each cell to the polygon holding most of it
    (ties: the smallest work cell code), if that is at least `share`."""
    cells, split, best = {}, [], {}
    for code in sorted(shares):
        parts = _ranked(shares[code], drawn)
        for idx, value in parts:
            if value > best.get(idx, (0.0, None))[0]:
                best[idx] = (value, code)
        winner, top = parts[0]
        if top + _EPSILON < share:
            continue
        cells[code] = winner
        others = [(idx, value) for idx, value in parts[1:] if value + _EPSILON >= SPLIT_SHARE]
        if others:
            listed = "; ".join(f"{drawn[i]['code']} {_percent(v)}" for i, v in [(winner, top), *others])
            split.append(
                problem(
                    "split",
                    Message("work.import.split", shares=listed, work_cell=drawn[winner]["code"]),
                    index=drawn[winner]["index"],
                    code=code,
                )
                | {"what": "split"}
            )
    return {"cells": cells, "split": split, "best": best}


def _check_polygons(version, drawn, result, areas, display, problems, notes) -> None:
    """Add a problem for every polygon that gets no base cell, a note for one lying partly off the base cells."""
    held = set(result["cells"].values())
    for idx, cell in enumerate(drawn):
        covered, area = areas.get(idx, (0.0, 0.0))
        add = feature_problems(problems, display, cell["index"], cell["code"], "geometry")
        if idx not in held:
            best = result["best"].get(idx)
            if best is None:
                add("outside_jurisdiction", "work_cell_outside", edition=version.base_edition_id)
            else:
                add("no_base_cell", "work_cell_no_base_cell", share=_percent(best[0]), cell=best[1])
        elif area and 1 - covered / area >= OUTSIDE_NOTE_SHARE:
            off = _percent(1 - covered / area)
            said = on_feature(display, cell["index"], cell["code"], "work_cell_partly_outside", share=off)
            notes.append(problem("partly_outside", said, index=cell["index"], code=cell["code"], field="geometry"))


def _excluded(session, version) -> set[str]:
    """Return the codes of the base cells the draft leaves out on purpose (work_grid_exclusion)."""
    return set(
        session.scalars(
            text(
                "SELECT b.code FROM work_grid_exclusion x JOIN base_cell b ON b.id = x.base_cell_id "
                "WHERE x.version_id = :v"
            ),
            {"v": version.id},
        )
    )


def _unassigned(session, version, scope, shares, cells, excluded, drawn) -> list[dict]:
    """Return a report row for every base cell of the jurisdiction in no work cell and not excluded: its
    largest shares, or that no polygon touches it."""
    codes = session.scalars(
        text("SELECT code FROM base_cell WHERE edition_id = :e AND community_code LIKE :scope ORDER BY code"),
        {"e": version.base_edition_id, "scope": scope + "%"},
    )
    rows = []
    for code in codes:
        if code in cells or code in excluded:
            continue
        parts = _ranked(shares.get(code, {}), drawn)
        if parts:
            listed = "; ".join(f"{drawn[i]['code']} {_percent(v)}" for i, v in parts)
            message, kind = Message("work.import.below_share", shares=listed), "below_share"
        else:
            message, kind = Message("work.import.in_no_polygon"), "in_no_polygon"
        rows.append(problem(kind, message, code=code) | {"what": "unassigned"})
    return rows


def _write(session, version, drawn, cells) -> list[str]:
    """Make the draft's work cells and members those of the import; return the codes of the work cells removed."""
    existing = {c.code: c for c in session.scalars(select(WorkCell).where(WorkCell.version_id == version.id))}
    removed = sorted(set(existing) - {d["code"] for d in drawn})
    session.execute(delete(WorkCellMember).where(WorkCellMember.version_id == version.id))
    if removed:  # their coordinator assignments go with them (ON DELETE CASCADE)
        session.execute(delete(WorkCell).where(WorkCell.version_id == version.id, WorkCell.code.in_(removed)))
    new = [{"version_id": version.id, "code": d["code"], "name": d["name"]} for d in drawn if d["code"] not in existing]
    if new:
        session.execute(insert(WorkCell), new)
    for d in drawn:
        if d["code"] in existing and d["name"] is not None:
            existing[d["code"]].name = d["name"]
    session.flush()
    params = {
        "v": version.id,
        "e": version.base_edition_id,
        "cells": list(cells),
        "work_cells": [drawn[idx]["code"] for idx in cells.values()],
    }
    session.execute(_MEMBERS_SQL, params)
    # A base cell placed in a work cell is no longer left out on purpose.
    session.execute(
        text(
            "DELETE FROM work_grid_exclusion x USING work_cell_member m "
            "WHERE x.version_id = :v AND m.version_id = :v AND m.base_cell_id = x.base_cell_id"
        ),
        {"v": version.id},
    )
    session.expire_all()
    return removed


# The members of the import in one statement: base cells by code, work cells by code.
_MEMBERS_SQL = text(
    "INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id) "
    "SELECT :v, b.id, w.id FROM unnest(CAST(:cells AS text[]), CAST(:work_cells AS text[])) AS x(cell, work_cell) "
    "JOIN base_cell b ON b.edition_id = :e AND b.code = x.cell "
    "JOIN work_cell w ON w.version_id = :v AND w.code = x.work_cell"
)
