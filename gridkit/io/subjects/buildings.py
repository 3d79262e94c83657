"""Import buildings: code, address, floors, and a point or a footprint. See gridkit.io.subjects."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.base import current_edition
from gridkit.io.subjects.building_load import first_load
from gridkit.io.subjects.common import _LENGTHS, _MAX_FLOORS, SubjectImportResult, _number
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import (
    KindSpec,
    Staged,
    absent_fields,
    bulk_work_mem,
    finish,
    kept_or_staged,
    lock_for_writing,
    rebuilt_for_insert,
    report_duplicates,
    report_existing,
    stage_file,
    write_unique,
)
from gridkit.io.tables import SPREADSHEET_NUMBER, Table
from gridkit.messages import Message
from gridkit.rules import SRID

__all__ = ["import_buildings", "BUILDINGS"]


def import_buildings(
    session: Session,
    path,
    *,
    mapping: dict | None = None,
    encoding: str | None = None,
    src_crs: str | None = None,
    layer: str | None = None,
    sheet: str | None = None,
    replace: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SubjectImportResult:
    """Import buildings (code, address, floors; a point or a footprint) all or nothing, and assign them.

    Codes must be unique in the file and new to the database (or `replace`). Streams the file; with
    no published base grid edition the buildings stay unassigned until one is published. Never commits.
    """
    options = {
        "mapping": mapping,
        "encoding": encoding,
        "src_crs": src_crs,
        "layer": layer,
        "sheet": sheet,
        "progress": progress,
    }
    job = Job(session, "buildings", path, **options)
    edition = current_edition(session)
    with session.begin_nested(), bulk_work_mem(session):
        loaded = None if replace else first_load(session, job, _check, edition)
        if loaded is not None:
            return _result(job, loaded["created"], 0, loaded, loaded["footprints"])
        if job.rows:  # read by a first load that found a problem: read again, reporting every one
            job = Job(session, "buildings", path, **options)
        return _staged_import(session, job, edition, replace)


def _staged_import(session: Session, job: Job, edition, replace: bool) -> SubjectImportResult:
    """Import through the staging table: every problem reported, existing codes refused (or replaced)."""
    staged = stage_file(session, job, BUILDINGS, edition=edition)
    lock_for_writing(session, "building")
    if replace:
        # An UPDATE from a repeated code would not fail: repeated codes are looked for first.
        report_duplicates(job, staged, **_DUPLICATES)
        if job.problems:
            job.refuse()
    else:
        report_existing(
            job, staged, table="building", column="code", name="code", what="imports.what.building_with_code"
        )
    created, updated_ids = write_unique(
        job,
        staged,
        lambda: _rebuilt_write(session, replace, staged, absent_fields(job, ("address", "floors"))),
        constraint="uq_building_code",
        duplicates=_DUPLICATES,
    )
    # Residents of a building that moved follow it (assign_subjects moves them with their building).
    counts = finish(
        job,
        staged,
        table="building",
        column="code",
        label="code",
        updated_ids=updated_ids,
        set_by_insert="t.footprint IS NULL" if staged.cells_computed else "FALSE",
    )
    footprints = session.scalar(text("SELECT count(footprint) FROM gk_stage_building"))
    session.execute(text("DROP TABLE gk_stage_building"))
    return _result(job, created, len(updated_ids), counts, footprints)


def _result(job: Job, created: int, updated: int, counts: dict, footprints: int) -> SubjectImportResult:
    return SubjectImportResult(
        "buildings",
        created=created,
        updated=updated,
        assigned=counts["assigned"],
        unassigned=counts["unassigned"],
        unassigned_rows=counts["unassigned_rows"],
        notes=job.notes,
        source=job.source,
        extra={"footprints": footprints},
    )


def _check(job: Job, chunk: Table) -> dict:
    """Return the staged values of the chunk's rows as pyarrow arrays (codes, addresses, floors, footprints as
    hex EWKB; null where absent or wrong) and points."""
    n = len(chunk.rows)
    codes, addresses, floors = job.values("code"), job.values("address"), job.values("floors")
    # Clean rows (most of them) at once; the others one by one, to say what is wrong.
    digits = pc.fill_null(pc.match_substring_regex(floors, r"^[0-9]{1,9}$"), False)
    number = pc.cast(pc.if_else(digits, floors, pa.scalar("0")), pa.int32())
    checks = (
        pc.less_equal(pc.utf8_length(codes), _LENGTHS["code"]),
        pc.invert(pc.match_substring_regex(codes, SPREADSHEET_NUMBER.pattern)),
        pc.or_kleene(addresses.is_null(), pc.less_equal(pc.utf8_length(addresses), _LENGTHS["address"])),
        pc.or_kleene(
            floors.is_null(), pc.and_(digits, pc.and_(pc.greater_equal(number, 1), pc.less_equal(number, _MAX_FLOORS)))
        ),
    )
    fast = np.ones(n, dtype=bool)
    for ok in checks:
        fast &= pc.fill_null(ok, False).to_numpy(zero_copy_only=False)
    code_column = job.cols.get("code")
    for position, column in chunk.lossy | chunk.dates:  # XLSX numbers of 16 digits or more, dates (3-12)
        if column == code_column:
            fast[position] = False
    keep = pa.array(fast)
    null = pa.scalar(None, pa.string())
    out: dict = {
        "code": pc.if_else(keep, codes, null),
        "address": pc.if_else(keep, addresses, null),
        "floors": pc.if_else(pc.and_(keep, floors.is_valid()), number, pa.scalar(None, pa.int32())),
    }
    job.row_labels = out["code"]
    slow = np.flatnonzero(~fast).tolist()
    if slow:
        lists = {name: values.to_pylist() for name, values in out.items()}
        for position in slow:
            raw = job.value(position, "code")
            if (position, code_column) in chunk.lossy or (raw and SPREADSHEET_NUMBER.match(raw)):
                job.report(position, "number_precision", "code", Message("imports.code_as_number", raw=raw), raw)
                code = None
            elif (position, code_column) in chunk.dates:
                job.report(position, "code_as_date", "code", Message("imports.code_as_date", raw=raw), raw)
                code = None
            else:
                code = job.text(position, "code", required=True, limit=_LENGTHS["code"])
            if code is not None:
                job.row_code[position] = code
            lists["code"][position] = code
            lists["address"][position] = job.text(
                position, "address", required=False, limit=_LENGTHS["address"], code=code
            )
            lists["floors"][position] = _floors(job, position, code)
        out = {name: pa.array(values, type=out[name].type) for name, values in lists.items()}
    out["lon"], out["lat"], footprints = job.locations(np.ones(n, dtype=bool), polygons=True)
    if footprints.count(None) < n:  # (a CSV file's are all None: no Python call per row)
        geoms = shapely.set_srid(np.array(footprints, dtype=object), SRID)
        out["footprint"] = pa.array(shapely.to_wkb(geoms, hex=True, include_srid=True).tolist(), type=pa.string())
    else:
        out["footprint"] = pa.nulls(n, pa.string())
    return out


BUILDINGS = KindSpec(
    "buildings",
    "gk_stage_building",
    (("code", "text"), ("address", "text"), ("floors", "int"), ("footprint", "text")),
    _check,
    "code",
    "code",
)


def _floors(job: Job, position: int, code) -> int | None:
    value = job.value(position, "floors")
    if value is None:
        return None
    number = _number(value)
    if number is None or not number.is_integer() or not 1 <= number <= _MAX_FLOORS:
        job.report(
            position,
            "bad_number",
            "floors",
            Message("imports.bad_floors", value=value, most=_MAX_FLOORS),
            code,
        )
        return None
    return int(number)


# A building with a footprint is assigned by it (in SQL, after the insert); one without by its point.
_VALUES = (
    "s.address, s.floors, CASE WHEN s.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), "
    ":srid) END, s.footprint::geometry, CASE WHEN s.footprint IS NULL THEN s.cell END"
)


# Rows repeating a building code (report_duplicates' keywords).
_DUPLICATES = {"kind": "duplicate_code", "name": "code", "what": "imports.what.building_code"}


# What --replace writes over a stored building: a field the file has no column for keeps its value; a file
# of points keeps the footprints (the building's cell is then its footprint's, by the rule); a new footprint
# without a point drops the old point (it may lie outside the new outline: the place is on the footprint).
_REPLACED = (
    "{address}, {floors}, CASE WHEN s.lon IS NOT NULL THEN ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid) "
    "WHEN s.footprint IS NOT NULL THEN NULL ELSE t.geom END, coalesce(s.footprint::geometry, t.footprint), "
    "CASE WHEN s.footprint IS NULL AND t.footprint IS NULL THEN s.cell END"
)


def _rebuilt_write(session: Session, replace: bool, staged: Staged, absent: frozenset) -> tuple[int, list[int]]:
    """`_write` with the table's indexes rebuilt once around it when that pays, and then (every row new) the ids
    reserved in file order (staging.rebuilt_for_insert)."""
    with rebuilt_for_insert(session, staged, "building", replace) as offset:
        return _write(session, replace, offset, absent)


def _write(
    session: Session, replace: bool, offset: int | None = None, absent: frozenset = frozenset()
) -> tuple[int, list[int]]:
    """Insert the new staged buildings and (replace) update the others; return (created, updated ids).

    `offset`: each new row's id is its row number plus this (file_order_ids), else the sequence's next in
    file order."""
    updated: list[int] = []
    if replace:
        updated = list(
            session.scalars(
                text(
                    "UPDATE building t SET (address, floors, geom, footprint, base_cell_id) = ("
                    + _REPLACED.format(**kept_or_staged(("address", "floors"), absent))
                    + ") "
                    "FROM gk_stage_building s WHERE t.code = s.code RETURNING t.id"
                ),
                {"srid": SRID},
            )
        )
    # Without `replace` every staged code was checked to be new (report_existing): no anti-join to pay for.
    new = "WHERE NOT EXISTS (SELECT 1 FROM building b WHERE b.code = s.code) " if replace else ""
    ids, id_values, order = (
        ("id, ", "s.row_no + :offset, ", "") if offset is not None else ("", "", "ORDER BY s.row_no")
    )
    created = session.execute(
        text(
            f"INSERT INTO building ({ids}code, address, floors, geom, footprint, base_cell_id) "
            f"SELECT {id_values}s.code, {_VALUES} FROM gk_stage_building s {new}{order}"
        ),
        {"srid": SRID, "offset": offset},
    ).rowcount
    return created, updated
