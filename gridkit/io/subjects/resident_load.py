"""A city's first load of residents: a large file into an empty `resident` table, COPYed straight into it.

The streaming path (gridkit.io.subjects.staging) COPYs every row into a staging table, then writes `resident` and
`resident_cell` from it with two INSERT … SELECTs: every row is written twice and read twice more. When the table is
empty (no stored ID to compare with) and the file large, the checked rows go straight into `resident` in one binary
COPY, and their cells into `resident_cell` in another (gridkit.resident_cells.copy_new_resident_cells, read back
from a temporary file: the client's memory stays flat in the number of rows), each table's secondary indexes, UNIQUE
key and foreign keys dropped and built again after it (gridkit.spatial.bulk.rebuilt_indexes), as the buildings'
first load does (gridkit.io.subjects.building_load, whose binary COPY fields this module builds on). Each row's id
is its row number plus an offset reserved from the table's sequence (the ids the staging path gives), so the report
of unassigned rows names their lines without a staging table. A row's cell is the one the staging path gives it: its
building's (found on the client, gridkit.io.subjects.building_codes), else its point's from the edition's point
index.

The resident summary is made from the same rows: each chunk's residents grouped by (household, cell) as it is
read, the groups merged by a thread while the server builds the tables' indexes again (the client waited for
that before, then for the SQL rebuild of the summary: ~1.3 s per 1M residents), and the caller COPYs the result
(gridkit.reports.resident_summary_rows); a file whose groups outgrow SUMMARY_PAIRS_BYTES (some 1,000,000 residents)
has its summary rebuilt in SQL instead.

Only a clean file is written so: the first bad row, a building code no building has, a row naming a building
by its address only (found in SQL after staging), or an ID repeated in the file (the UNIQUE key built again
refuses it) rolls this attempt back (a savepoint) and the file is read again the usual way (`first_load`
returns None), which reports every problem with its line. All or nothing either way: the caller's
transaction (or Ctrl+C) rolls everything back.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.assign import assign_subjects
from gridkit.db.copy_rows import copy_tuples, ewkb_points
from gridkit.io.subjects.building_load import FIRST_LOAD_BYTES as BUILDING_FIRST_LOAD_BYTES
from gridkit.io.subjects.common import LISTED_ROWS
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import BinaryLoad, NotClean, first_load_attempt, point_index_for
from gridkit.models import BaseGridEdition
from gridkit.reports.resident_summary_rows import summary_pairs, summary_rows
from gridkit.resident_cells import copy_new_resident_cells
from gridkit.rules import SRID
from gridkit.spatial.bulk import BULK_INDEX_ROWS, rebuilt_indexes

__all__ = ["FIRST_LOAD_BYTES", "first_load"]

# From this file size (about 100,000 rows of a residents CSV, BULK_INDEX_ROWS, as for buildings) an import into
# an empty table is written in one COPY.
FIRST_LOAD_BYTES = 2 * BUILDING_FIRST_LOAD_BYTES

# The chunks' (household, cell) groups the client keeps for the resident summary, at most (pyarrow's bytes; merging
# them at the end takes three to four times as much, while the cells are COPYed): 1.3-2 MB per 100,000 residents in
# households of three, by the length of the households' codes. A larger file's summary is rebuilt in SQL after the
# load (~1.3 s per 1M residents on the server), the client's memory flat (3,000,000 residents whose groups were
# merged peaked 150 MB higher).
SUMMARY_PAIRS_BYTES = 16 << 20
# Cells COPYed back from the temporary file at a time (8 bytes a row read, 18 a row sent).
SPOOL_PART_ROWS = 1 << 18

# Fixed-width columns first, then the texts (binary COPY: each field its length and bytes, big-endian numbers).
_COLUMNS = (
    "id, birth_date, building_id, geom, id_number_hash, id_number_masked, name, phone, household, population_type"
)
_TEXTS = ("id_number_hash", "id_number_masked", "name", "phone", "household", "population_type")
# PostgreSQL's dates count days from 2000-01-01; numpy's from 1970-01-01.
_PG_EPOCH_DAYS = 10_957


def first_load(session: Session, job: Job, check, named, edition: BaseGridEdition | None) -> dict | None:
    """Write the job's file straight into an empty `resident` table (and its cells into `resident_cell`); return
    the import's counts ("created", "assigned", "unassigned", "unassigned_rows", "registered", "floating",
    "in_buildings") and the resident summary's rows ("summary": resident_summary_rows.SummaryRows, None when the
    residents without a building were assigned in SQL or the groups outgrew SUMMARY_PAIRS_BYTES), or None when
    the file is not written so: too small, the table not empty, or a problem in the file (the attempt rolled back;
    when `job.rows` shows that the file was read, the caller reads it again with a new job, the usual way, which
    reports every problem).

    `check` is the residents' KindSpec check, `named` what it found the file names (its `addresses`: rows naming
    a building by address only). The resident summary is the caller's to write. Runs in the caller's
    transaction, in a savepoint of its own."""
    if job.problems or job.stream.size < FIRST_LOAD_BYTES:
        return None
    return first_load_attempt(
        session,
        "resident, resident_cell",
        "uq_resident_id_number_hash",
        lambda: _write(session, job, check, named, edition),
    )


class _CellSpool:
    """The placed residents' (id, cell) pairs, kept in a temporary file as they are added (8 bytes a resident on
    disk, none in memory), read back a part at a time."""

    _ROW = np.dtype([("id", "<i4"), ("cell", "<i4")])

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="gridkit-cells-")
        self.rows = 0

    def add(self, ids: np.ndarray, cells: np.ndarray) -> None:
        rows = np.empty(len(ids), self._ROW)
        rows["id"], rows["cell"] = ids, cells
        self.file.write(rows.tobytes())
        self.rows += len(rows)

    def parts(self):
        """Yield the pairs added, in order, as (ids, cells) arrays of at most SPOOL_PART_ROWS rows."""
        self.file.flush()
        self.file.seek(0)
        for _ in range(0, self.rows, SPOOL_PART_ROWS):
            rows = np.frombuffer(self.file.read(SPOOL_PART_ROWS * self._ROW.itemsize), self._ROW)
            yield rows["id"], rows["cell"]

    def close(self) -> None:
        self.file.close()


class _Counts:
    """What the chunks written so far add up to, and the first unassigned rows (line, id, masked ID)."""

    def __init__(self) -> None:
        self.rows = self.registered = self.floating = self.in_buildings = self.unassigned = self.to_place = 0
        self.listed: list[dict] = []
        # The placed residents' (id, cell), written to a temporary file as the chunks are read and COPYed into
        # resident_cell after the residents: the client's memory stays flat in the number of rows.
        self.cells = _CellSpool()
        # Each chunk's residents grouped by (household, cell): the resident summary's rows (resident_summary_rows),
        # None once they outgrow SUMMARY_PAIRS_BYTES (the summary is then rebuilt in SQL: memory stays flat).
        self.pairs: list[pa.Table] | None = []
        self.pair_bytes = 0

    def add(self, values: dict, ids: np.ndarray, cells: np.ndarray, has_building: np.ndarray, point: np.ndarray):
        kinds = values["population_type"]
        registered = pc.equal(kinds, "registered").fill_null(False).to_numpy(zero_copy_only=False)
        floating = pc.equal(kinds, "floating").fill_null(False).to_numpy(zero_copy_only=False)
        self.rows += len(ids)
        self.registered += int(registered.sum())
        self.floating += int(floating.sum())
        self.in_buildings += len(values["building_code"]) - values["building_code"].null_count
        self.to_place += int((~has_building & point).sum())
        placed = cells != 0
        self.cells.add(ids[placed], cells[placed])
        if self.pairs is not None:
            self.pairs.append(summary_pairs(cells, values["household"], registered, floating))
            self.pair_bytes += self.pairs[-1].nbytes
            if self.pair_bytes > SUMMARY_PAIRS_BYTES:
                self.pairs = None
        unplaced = np.flatnonzero(~placed)
        self.unassigned += len(unplaced)
        for position in unplaced[: LISTED_ROWS - len(self.listed)].tolist():
            label = values["id_number_masked"][position].as_py()
            self.listed.append({"row": None, "id": int(ids[position]), "code": label})


def _write(session: Session, job: Job, check, named, edition: BaseGridEdition | None) -> dict:
    """Read, check and COPY every chunk into the empty table, then the cells (each table's indexes rebuilt after);
    return the counts, and the resident summary's rows ("summary", None when the cells are found in SQL or the
    groups outgrew SUMMARY_PAIRS_BYTES)."""
    counts, index, summary = _Counts(), None, None
    # The chunks' groups are merged into the summary's rows by a thread while the server builds the indexes again
    # (the main thread waits on the statements without the GIL): the SQL rebuild after the restore took ~1.3 s per
    # 1M residents, the client waiting.
    pool = ThreadPoolExecutor(1, thread_name_prefix="gridkit-summary")
    try:
        with rebuilt_indexes(session, "resident", BULK_INDEX_ROWS):
            with BinaryLoad(session, "resident", _COLUMNS) as load:
                for chunk in job.chunks():
                    values = check(job, chunk)
                    if job.problems or named.addresses:
                        raise NotClean
                    lon, lat = values["lon"], values["lat"]
                    if not load.started:  # the first chunk: the point index needs the session before the COPY
                        index = point_index_for(session, edition, lon, lat)
                    ids = load.ids(chunk)
                    has_building = values["building_id"].is_valid().to_numpy(zero_copy_only=False)
                    point = ~(np.isnan(lon) | np.isnan(lat))
                    # A resident with a building takes the building's cell; otherwise its point's (as STAGED_CELL).
                    cells = np.where(
                        has_building,
                        values["building_cell"].fill_null(0).to_numpy(zero_copy_only=False),
                        0 if index is None else index.cells_at(lon, lat),
                    ).astype(np.int32)
                    load.write(_binary(ids, values, point))
                    counts.add(values, ids, cells, has_building, point)
                if not load.started:  # no row (a large file of something else): the usual way says what it is
                    raise NotClean
            if counts.pairs is not None and not _assigned_in_sql(edition, index, counts):
                summary = pool.submit(summary_rows, counts.pairs)
            counts.pairs = None
            copy_new_resident_cells(session, counts.cells.parts(), counts.cells.rows)
        rows = None if summary is None else summary.result()
    finally:
        pool.shutdown(cancel_futures=True)
        counts.cells.close()
    offset = load.offset
    for listed in counts.listed:
        listed["row"] = listed["id"] - offset
    if _assigned_in_sql(edition, index, counts):
        _assign_points(session, edition, counts, offset)
    session.expire_all()
    return {
        "created": counts.rows,
        "assigned": counts.rows - counts.unassigned,
        "unassigned": counts.unassigned,
        "unassigned_rows": counts.listed,
        "registered": counts.registered,
        "floating": counts.floating,
        "in_buildings": counts.in_buildings,
        "summary": rows,
    }


def _assigned_in_sql(edition: BaseGridEdition | None, index, counts: _Counts) -> bool:
    """Whether the residents without a building are assigned in SQL after the COPY (too few points for the point
    index): their cells are then unknown to the client."""
    return edition is not None and index is None and counts.to_place > 0


def _assign_points(session: Session, edition: BaseGridEdition, counts: _Counts, offset: int) -> None:
    """Assign the residents without a building in SQL (too few points for the point index: as the staging path's
    `finish`), then count and list the unassigned residents again."""
    ids = list(session.scalars(text("SELECT id FROM resident WHERE building_id IS NULL ORDER BY id")))
    assign_subjects(session, ["residents"], edition=edition, where_ids={"residents": ids})
    unassigned = "FROM resident r WHERE NOT EXISTS (SELECT 1 FROM resident_cell c WHERE c.resident_id = r.id)"
    counts.unassigned = session.scalar(text(f"SELECT count(*) {unassigned}"))
    counts.listed = [
        {"row": r.id - offset, "id": r.id, "code": r.id_number_masked}
        for r in session.execute(
            text(f"SELECT r.id, r.id_number_masked {unassigned} ORDER BY r.id LIMIT :n"), {"n": LISTED_ROWS}
        )
    ]


def _binary(ids: np.ndarray, values: dict, point: np.ndarray) -> pa.Buffer:
    """Return one chunk's rows as `COPY resident (_COLUMNS) (FORMAT binary)` reads them (PostgreSQL's binary COPY
    tuples: a field count, then each field's length, -1 for NULL, and bytes; numbers big-endian)."""
    n = len(ids)
    births, buildings = values["birth_date"], values["building_id"]
    days = births.cast(pa.int32()).fill_null(_PG_EPOCH_DAYS).to_numpy(zero_copy_only=False) - _PG_EPOCH_DAYS
    fixed = [
        (ids.astype(">i4"), np.ones(n, bool)),
        (days.astype(">i4"), births.is_valid().to_numpy(zero_copy_only=False)),
        (
            buildings.fill_null(0).to_numpy(zero_copy_only=False).astype(">i4"),
            buildings.is_valid().to_numpy(zero_copy_only=False),
        ),
        (ewkb_points(values["lon"], values["lat"], SRID), point),
    ]
    return copy_tuples(n, fixed, [values[name] for name in _TEXTS])
