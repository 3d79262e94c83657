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

from contextlib import ExitStack

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.assign import ENGINE_MIN_POINTS, ENGINE_MIN_POINTS_PER_CELL, assign_subjects, base_cell_index
from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER
from gridkit.io.subjects.common import LISTED_ROWS
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import CopyStream, NotClean, first_load_attempt
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
    rows, footprints, unplaced, offset, index, last = 0, 0, 0, None, None, None
    with (
        rebuilt_indexes(session, "building", BULK_INDEX_ROWS),
        db.driver_connection(session).cursor() as cur,
        ExitStack() as copying,
    ):
        sequence = session.scalar(text("SELECT pg_get_serial_sequence('building', 'id')"))
        stream = None
        for chunk in job.chunks():
            values = check(job, chunk)
            if job.problems:
                raise NotClean
            if stream is None:  # the first chunk: what needs the connection before the COPY holds it
                index = _point_index(session, edition, values["lon"], values["lat"])
                base = session.scalar(text("SELECT nextval(CAST(:s AS regclass))"), {"s": sequence})
                offset = base - chunk.numbers[0]
                # One COPY for every chunk: the server parses one chunk while Python reads and checks the next.
                stream = copying.enter_context(
                    CopyStream(cur, f"COPY building ({_COLUMNS}) FROM STDIN (FORMAT binary)")
                )
                stream.write(COPY_HEADER)
            has_footprint = values["footprint"].is_valid().to_numpy(zero_copy_only=False)
            footprints += int(has_footprint.sum())
            cells = None
            if index is not None:  # a building with a footprint is assigned by it, after the COPY
                cells = np.where(has_footprint, 0, index.cells_at(values["lon"], values["lat"]))
                unplaced += int(((cells == 0) & ~has_footprint).sum())
            ids = np.asarray(chunk.numbers, dtype=np.int64) + offset
            last = int(ids.max())
            stream.write(_binary(ids, values, cells, has_footprint))
            rows += len(chunk.rows)
        if stream is not None:
            stream.write(COPY_TRAILER)
        copying.close()  # the COPY ends here
        session.execute(text("SELECT setval(CAST(:s AS regclass), :last)"), {"s": sequence, "last": last})
    counted = (footprints, unplaced) if index is not None else (rows, None)
    return _finish(session, edition, rows, offset, footprints, *counted)


def _point_index(session: Session, edition: BaseGridEdition | None, lon: np.ndarray, lat: np.ndarray):
    """Return the edition's point index when the first chunk has enough points for it to pay (as stage_file)."""
    if edition is None:
        return None
    points = int((~(np.isnan(lon) | np.isnan(lat))).sum())
    cells = session.scalar(text("SELECT count(*) FROM base_cell WHERE edition_id = :e"), {"e": edition.id})
    if points >= ENGINE_MIN_POINTS and points >= ENGINE_MIN_POINTS_PER_CELL * cells:
        return base_cell_index(session, edition)
    return None


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
        (_ewkb_points(lon, lat), ~(np.isnan(lon) | np.isnan(lat))),
    ]
    return _tuples(n, fixed, [values["code"], values["address"], footprint])


def _tuples(n: int, fixed: list[tuple], texts: list[pa.Array]) -> pa.Buffer:
    """Return n rows of binary COPY tuples: the fixed-width fields (numpy, one item per row, and where not NULL),
    then the texts (pyarrow, null where NULL)."""
    parts = [_fixed_fields(n, len(fixed) + len(texts), fixed)]
    for k, column in enumerate(texts):
        if k:
            parts.append(_lengths(column))
        parts.append(column.cast(pa.binary()).fill_null(b""))
    # The first text's length ends the fixed part: parts alternate lengths and texts from there.
    parts[0] = pc.binary_join_element_wise(parts[0], _lengths(texts[0]), b"")
    rows = pc.binary_join_element_wise(*parts, b"")
    if isinstance(rows, pa.ChunkedArray):
        rows = rows.combine_chunks()
    ends = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset : rows.offset + n + 1]
    return rows.buffers()[2][ends[0] : ends[-1]]


def _fixed_fields(n: int, count: int, fields: list[tuple]) -> pa.Array:
    """Return each row's field count and fixed-width fields (numpy, one item per row, and where not NULL) as
    binary COPY bytes, one binary value per row: a NULL is its length (-1) alone."""
    widths = [data.dtype.itemsize for data, _ in fields]
    full = np.empty((n, 2 + sum(4 + w for w in widths)), dtype=np.uint8)
    full[:, :2] = np.array([count], dtype=">i2").view(np.uint8)
    at, values = 2, []
    for (data, valid), width in zip(fields, widths):
        full[:, at : at + 4] = np.where(valid, width, -1).astype(">i4").view(np.uint8).reshape(n, 4)
        full[:, at + 4 : at + 4 + width] = data.view(np.uint8).reshape(n, width)
        values.append((at + 4, width, valid))
        at += 4 + width
    if all(valid.all() for _, _, valid in values):  # most chunks: rows of one width
        offsets = np.arange(0, at * (n + 1), at, dtype=np.int32)
        return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(full)])
    keep = np.ones(full.shape, dtype=bool)
    for start, width, valid in values:
        keep[~valid, start : start + width] = False
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(keep.sum(axis=1), out=offsets[1:])
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(full[keep])])


def _lengths(column: pa.Array) -> pa.Array:
    """Return each value's length in bytes (-1 where NULL) as binary COPY's 4-byte field length, one binary
    value per row."""
    lengths = pc.binary_length(column).fill_null(-1).to_numpy(zero_copy_only=False).astype(">i4")
    sized = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4), len(lengths), [None, pa.py_buffer(lengths)])
    return sized.cast(pa.binary())


# Little-endian EWKB of a 2D point with an SRID: byte order, type (point | SRID flag), SRID, x, y.
_EWKB_POINT = np.dtype([("order", "u1"), ("type", "<u4"), ("srid", "<i4"), ("x", "<f8"), ("y", "<f8")])


def _ewkb_points(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the points as EWKB (SRID 4490), one 25-byte item per row, as PostGIS's binary input reads them."""
    raw = np.empty(len(lon), dtype=_EWKB_POINT)
    raw["order"], raw["type"], raw["srid"], raw["x"], raw["y"] = 1, 0x20000001, SRID, lon, lat
    return raw


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
