"""A city's first load of buildings: a large file into an empty `building` table, COPYed straight into it.

The streaming path (gridkit.io.subjects.staging) COPYs every row into a staging table and then
writes the table with INSERT … SELECT: every row is written twice and read once more. When the table
is empty (nothing to compare the codes with) and the file large, the checked rows go straight into
`building` instead, in one COPY with its secondary indexes, UNIQUE key and foreign key dropped and
built again after it (gridkit.spatial.bulk.rebuilt_indexes; at wal_level minimal the table is emptied
again first, so that its rows are written without WAL). Each row's id is its row number plus an offset
reserved from the table's sequence (the ids the staging path gives), so a row is found again from its id
alone: the report of unassigned rows names their lines without a staging table. The rows are binary
COPY tuples built column by column with numpy, the points as EWKB (no ST_MakePoint per row); the base
cells are computed with the edition's point index as in the staging path.

Only a clean file is written so: the first bad row, or a code repeated in the file (the UNIQUE key
built again refuses it), rolls this attempt back (a savepoint) and the file is read again the usual way
(`first_load` returns None), which reports every problem with its line. All or nothing either way: the
caller's transaction (or Ctrl+C) rolls everything back.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.assign import assign_subjects
from gridkit.db.copy_rows import copy_tuples, ewkb_points
from gridkit.io.subjects.common import LISTED_ROWS
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import BinaryLoad, NotClean, first_load_attempt, point_index_for
from gridkit.models import BaseGridEdition
from gridkit.rules import SRID
from gridkit.spatial.bulk import BULK_INDEX_ROWS, rebuilt_indexes

__all__ = ["FIRST_LOAD_BYTES", "first_load"]

# From this file size (about 100,000 rows of a buildings CSV, BULK_INDEX_ROWS) an import into an empty table
# is written in one COPY.
FIRST_LOAD_BYTES = 4_000_000

# Fixed-width columns first, then the texts (binary COPY: each field its length and bytes, big-endian numbers).
_COLUMNS = "id, floors, base_cell_id, geom, code, address, footprint"


def first_load(session: Session, job: Job, check, edition: BaseGridEdition | None) -> dict | None:
    """Write the job's file straight into an empty `building` table; return the import's counts ("created",
    "assigned", "unassigned", "unassigned_rows", "footprints"), or None when the file is not written so: too
    small, the table not empty, or a problem in the file (the attempt rolled back; when `job.rows` shows that
    the file was read, the caller reads it again with a new job, the usual way, which reports every problem).

    `check` is the buildings' KindSpec check. Runs in the caller's transaction, in a savepoint of its own."""
    if job.problems or job.stream.size < FIRST_LOAD_BYTES:
        return None
    return first_load_attempt(session, "building", "uq_building_code", lambda: _write(session, job, check, edition))


def _write(session: Session, job: Job, check, edition: BaseGridEdition | None) -> dict:
    """Read, check and COPY every chunk into the empty table (its indexes rebuilt after); return the counts."""
    rows, footprints, unplaced, index = 0, 0, 0, None
    with rebuilt_indexes(session, "building", BULK_INDEX_ROWS), BinaryLoad(session, "building", _COLUMNS) as load:
        for chunk in job.chunks():
            values = check(job, chunk)
            if job.problems:
                raise NotClean
            if not load.started:  # the first chunk: the point index needs the session before the COPY holds it
                index = point_index_for(session, edition, values["lon"], values["lat"])
            has_footprint = values["footprint"].is_valid().to_numpy(zero_copy_only=False)
            footprints += int(has_footprint.sum())
            cells = None
            if index is not None:  # a building with a footprint is assigned by it, after the COPY
                cells = np.where(has_footprint, 0, index.cells_at(values["lon"], values["lat"]))
                unplaced += int(((cells == 0) & ~has_footprint).sum())
            load.write(_binary(load.ids(chunk), values, cells, has_footprint))
            rows += len(chunk.rows)
    counted = (footprints, unplaced) if index is not None else (rows, None)
    return _finish(session, edition, rows, load.offset, footprints, *counted)


def _binary(ids: np.ndarray, values: dict, cells, has_footprint: np.ndarray) -> pa.Buffer:
    """Return one chunk's rows as `COPY building (_COLUMNS) (FORMAT binary)` reads them (PostgreSQL's binary COPY
    tuples: a field count, then each field's length, -1 for NULL, and bytes; numbers big-endian).

    Binary rows cost the server a third less than CSV (no line parsing, no text input functions: 1.0–1.1
    instead of 1.45–1.65 CPU s per million buildings, scripts/bench_import.py)."""
    n = len(ids)
    floors, lon, lat = values["floors"], values["lon"], values["lat"]
    footprint = values["footprint"]
    if has_footprint.any():  # hex EWKB (vector files): their bytes, one by one
        footprint = pa.array([None if h is None else bytes.fromhex(h) for h in footprint.to_pylist()], pa.binary())
    fixed = [
        (ids.astype(">i4"), np.ones(n, bool)),
        (floors.fill_null(0).to_numpy().astype(">i4"), floors.is_valid().to_numpy(zero_copy_only=False)),
        (np.zeros(n, ">i4"), np.zeros(n, bool)) if cells is None else (cells.astype(">i4"), cells != 0),
        (ewkb_points(lon, lat, SRID), ~(np.isnan(lon) | np.isnan(lat))),
    ]
    return copy_tuples(n, fixed, [values["code"], values["address"], footprint])


def _finish(session: Session, edition, rows: int, offset: int, footprints: int, unset: int, unplaced) -> dict:
    """Assign what the COPY did not (`unset` rows: those with a footprint, or every row when no cell was
    computed), then count (`unplaced`: the points in no cell, when those were all); every row of the table is
    this import's."""
    if edition is not None and unset:
        where = "TRUE" if unset == rows else "footprint IS NOT NULL"
        ids = list(session.scalars(text(f"SELECT id FROM building WHERE {where} ORDER BY id")))
        assign_subjects(session, ["buildings"], edition=edition, where_ids={"buildings": ids})
    unassigned = unplaced
    if unassigned is None or unset:
        unassigned = session.scalar(text("SELECT count(*) FROM building WHERE base_cell_id IS NULL"))
    listed = [
        {"row": r.id - offset, "id": r.id, "code": r.code}
        for r in session.execute(
            text("SELECT id, code FROM building WHERE base_cell_id IS NULL ORDER BY id LIMIT :n"), {"n": LISTED_ROWS}
        )
    ]
    session.expire_all()
    return {
        "created": rows,
        "assigned": rows - unassigned,
        "unassigned": unassigned,
        "unassigned_rows": listed,
        "footprints": footprints,
    }
