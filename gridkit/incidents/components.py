"""The component inventory (部件): import from CSV/XLSX (lon, lat) or a map layer (points or lines),
16-digit codes checked, category from digits 7-10, assigned to base cells. All or nothing.

The import takes the subjects' streaming path (gridkit.io.subjects.staging): the file is read a chunk at a
time, clean rows checked in bulk (component_codes_valid, the categories by set membership), the others one
by one with reasons, COPYed into a staging table, checked as sets in SQL (codes in the inventory already,
codes repeated in the file) and written with one INSERT … SELECT. Memory stays flat in the number of rows.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPoint, Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.grids.base import current_edition
from gridkit.io.problems import first_problem
from gridkit.io.subjects.common import SubjectImportRefused
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import (
    KindSpec,
    Staged,
    codes_valid_as_written,
    rebuilt_for_insert,
    report_existing,
    stage_file,
    write_unique,
)
from gridkit.io.tables import Table
from gridkit.messages import Message
from gridkit.models import IncidentCategory
from gridkit.rules import SRID
from gridkit.standard import InvalidValue
from gridkit.standard.components import component_category, component_codes_valid

__all__ = ["import_components", "assign_components"]

_STAGE = "gk_stage_component"
_NAME_LIMIT = 200  # component.name is varchar(200)
_NULL = pa.scalar(None, pa.string())


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

    Every row is checked: code (16 digits per CJ/T 214, not already in the file or the inventory), its
    category (digits 7-10) a known component category, a point or line location. One bad row refuses the
    whole file (ValidationError listing every problem, each naming its line or feature). Never commits.
    """
    known = pa.array(
        sorted(session.scalars(select(IncidentCategory.code).where(IncidentCategory.kind == "component"))),
        type=pa.string(),
    )
    spec = KindSpec(
        "components",
        _STAGE,
        (("code", "text"), ("category", "text"), ("name", "text"), ("wkb", "text")),
        partial(_check, known=known),
        "code",
        "code",
    )
    edition = current_edition(session)
    job = None
    try:
        job = Job(
            session, "components", path, mapping=mapping, encoding=encoding, src_crs=src_crs, layer=layer, sheet=None
        )
        with session.begin_nested():
            staged = stage_file(session, job, spec, edition=edition)
            report_existing(
                job,
                staged,
                table="component",
                column="code",
                name="code",
                what="imports.what.component_with_code",
                kind="component_exists",
                message="imports.component_exists",
            )
            duplicates = {"kind": "duplicate_code", "name": "code", "what": "imports.what.component_code"}
            imported = write_unique(
                job, staged, partial(_write, session, staged), constraint="uq_component_code", duplicates=duplicates
            )
            assigned = _assign_staged(session, staged)
            session.execute(text(f"DROP TABLE {_STAGE}"))
    except SubjectImportRefused as exc:
        raise _refusal(exc, job.display if job is not None else Path(path).name) from None
    session.expire_all()
    return {"file": job.display, "imported": imported, "assigned": assigned, "unassigned": imported - assigned}


def _refusal(exc: SubjectImportRefused, display: str) -> ValidationError:
    """Return the component error for a refused import: the file unreadable, empty, or its problems listed."""
    if "count" not in exc.params:  # the file could not be opened at all
        return ValidationError(
            "component.unreadable", file=display, reason=Message(exc.key, **exc.params), problems=exc.problems
        )
    if [p["kind"] for p in exc.problems] == ["no_rows"]:
        return ValidationError("component.empty", file=display, problems=exc.problems)
    count, first = exc.params["count"], first_problem(exc.problems)
    return ValidationError("component.import_refused", file=display, count=count, first=first, problems=exc.problems)


def _write(session: Session, staged: Staged) -> int:
    """Insert every staged component (ids in file order), its base cell where the stream computed it."""
    geom = (
        "CASE WHEN s.wkb IS NOT NULL THEN ST_SetSRID(ST_GeomFromWKB(decode(s.wkb, 'hex')), :srid) "
        "ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid) END"
    )
    with rebuilt_for_insert(session, staged, "component", False) as offset:
        if offset is not None:
            sql = (
                "INSERT INTO component (id, code, category_code, name, geom, base_cell_id) "
                f"SELECT s.row_no + :offset, s.code, s.category, s.name, {geom}, s.cell FROM {_STAGE} s"
            )
        else:
            sql = (
                "INSERT INTO component (code, category_code, name, geom, base_cell_id) "
                f"SELECT s.code, s.category, s.name, {geom}, s.cell FROM {_STAGE} s ORDER BY s.row_no"
            )
        return session.execute(text(sql), {"srid": SRID, "offset": offset}).rowcount


def _assign_staged(session: Session, staged: Staged) -> int:
    """Assign the imported components whose cell the stream did not compute (lines; points of a small file) with
    the rule of assign_components; return how many imported components have a base cell (counted from the
    staging table and the rows updated: no join of the inventory)."""
    if staged.edition is None:
        return 0
    streamed = session.scalar(text(f"SELECT count(cell) FROM {_STAGE}"))
    left = "s.cell IS NULL" + (" AND s.wkb IS NOT NULL" if staged.cells_computed else "")
    found = _assign(session, staged.edition.id, f"FROM {_STAGE} s WHERE c.code = s.code AND {left}", {})
    return streamed + found


# -- checks ---------------------------------------------------------------------------------------------


def _check(job: Job, chunk: Table, *, known: pa.Array) -> dict:
    """Return the staged values of the chunk's rows (pyarrow arrays, null where absent or wrong): code, category,
    name, line geometry (WKB hex) and point. Clean rows are checked in bulk, the others one by one with reasons."""
    n = len(chunk.rows)
    codes, names = job.values("code"), job.values("name")
    keep_mask = _fast_rows(chunk, codes, names, known)
    keep = pa.array(keep_mask)
    out = {
        "code": pc.if_else(keep, codes, _NULL),
        "category": pc.if_else(keep, pc.utf8_slice_codeunits(codes, 6, 10), _NULL),
        "name": pc.if_else(keep, names, _NULL),
    }
    slow = np.flatnonzero(~keep_mask).tolist()
    if slow:
        known_codes = set(known.to_pylist())
        lists = {name: values.to_pylist() for name, values in out.items()}
        for position in slow:
            code, category = _code(job, position, known_codes)
            if code is not None:
                job.row_code[position] = code
            lists["code"][position], lists["category"][position] = code, category
            lists["name"][position] = job.text(position, "name", required=False, limit=_NAME_LIMIT, code=code)
        out = {name: pa.array(values, type=pa.string()) for name, values in lists.items()}
    job.row_labels = out["code"]
    out["lon"], out["lat"], out["wkb"] = _locations(job, n)
    return out


def _fast_rows(chunk: Table, codes: pa.Array, names: pa.Array, known: pa.Array) -> np.ndarray:
    """Return where a row is certainly clean (a valid code as written, of a known component category, a name
    within its limit), checked in bulk; every other row goes through the per-row checks, which say what is wrong."""
    fast = codes_valid_as_written(chunk, codes, 16, component_codes_valid)
    checks = (
        pc.is_in(pc.utf8_slice_codeunits(codes, 6, 10), value_set=known),
        pc.or_kleene(names.is_null(), pc.less_equal(pc.utf8_length(names), _NAME_LIMIT)),
    )
    for ok in checks:
        fast &= pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    return fast


def _code(job: Job, position: int, known: set[str]) -> tuple[str | None, str | None]:
    """Return the row's (code, category), or (None, None) with the problem recorded."""
    raw = job.value(position, "code")
    if raw is None or not raw.strip():
        job.report(
            position, "missing_value", "code", Message("imports.missing_value", name="code", column=job.column("code"))
        )
        return None, None
    if job.lossy(position, "code"):
        job.report(position, "number_precision", "code", Message("imports.component_code_as_number", raw=raw), raw)
        return None, None
    code = raw.strip()
    try:
        category = component_category(code)
    except InvalidValue as exc:
        reason = exc.as_message()
        job.report(
            position, "bad_component_code", "code", Message("imports.bad_component_code", raw=raw, reason=reason), raw
        )
        return None, None
    if category not in known:
        job.report(
            position,
            "unknown_category",
            "code",
            Message("imports.unknown_component_category", code=code, category=category),
            code,
        )
        return None, None
    return code, category


def _locations(job: Job, n: int) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """Return each row's lon, lat (NaN where none, or a line) and line geometry (WKB hex, null where none)."""
    if not job.table.spatial:
        lon, lat, _ = job.locations([True] * n)
        return lon, lat, pa.nulls(n, pa.string())
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    lines: list = [None] * n
    for position, geom in enumerate(job.table.geometries):
        if geom is None or geom.is_empty:
            if job.table.numbers[position] not in job.geometry_problem and not job.geometry_problem_all:
                job.report(position, "missing_coordinates", "geometry", Message("imports.no_geometry"))
            continue
        if isinstance(geom, MultiPoint) and len(geom.geoms) == 1:
            geom = geom.geoms[0]
        if isinstance(geom, Point):
            lon[position], lat[position] = geom.x, geom.y
        elif isinstance(geom, (LineString, MultiLineString)):
            lines[position] = shapely.to_wkb(geom, hex=True)
        else:
            job.report(
                position, "not_point_or_line", "geometry", Message("imports.bad_geometry_lines", type=geom.geom_type)
            )
    return lon, lat, pa.array(lines, type=pa.string())


# -- base cells -----------------------------------------------------------------------------------------


def assign_components(session: Session, ids: list[int] | None = None) -> int:
    """Set the base cell of components (all, or `ids`) from the current edition; return how many have one.

    A line belongs to the cell covering ST_PointOnSurface (a point on the line), a point to the
    cell covering it (ST_Covers, ties to the smallest code) — the subjects' rule.
    """
    edition = current_edition(session)
    if edition is None:
        return 0
    params = {"ids": ids}
    only = "AND c.id = ANY(:ids)" if ids is not None else ""
    _assign(session, edition.id, f"WHERE TRUE {only}", params)
    session.expire_all()
    return session.scalar(text(f"SELECT count(*) FROM component c WHERE base_cell_id IS NOT NULL {only}"), params)


def _assign(session: Session, edition_id: int, where: str, params: dict) -> int:
    """Set the base cell of the components (as c) chosen by `where` (FROM … WHERE …, or WHERE …); return how
    many of them got one."""
    return session.scalar(
        text(f"""
        WITH updated AS (
          UPDATE component c SET base_cell_id = (
            SELECT b.id FROM base_cell b WHERE b.edition_id = :e AND ST_Covers(b.geom, ST_PointOnSurface(c.geom))
            ORDER BY b.code LIMIT 1)
          {where} RETURNING c.base_cell_id)
        SELECT count(base_cell_id) FROM updated"""),
        {**params, "e": edition_id},
    )
