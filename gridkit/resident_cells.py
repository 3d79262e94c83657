"""Where residents' base cells are written: the narrow table `resident_cell` (gridkit.models.ResidentCell).

An assigned resident has one row (resident_id, base_cell_id); an unassigned one (outside every cell) has none.
Readers join the table (LEFT JOIN where unassigned residents must appear) or read `Resident.base_cell_id`.

Three ways in, all in the caller's transaction:
- `set_resident_cells(session, {resident_id: cell or None})`: a few residents (one moved in the web);
- `set_resident_cells_from(session, source)`: set-based, from a query of (id, cell) pairs (residents following
  their building, residents located by PostGIS);
- `copy_resident_cells(session, ids, cells)`: a bulk assignment (millions): the rows of these residents deleted
  and the new ones COPYed in PostgreSQL's binary format, the table's index and foreign keys dropped and built
  again around it when the write is large (gridkit.spatial.bulk). COPY cannot re-check each resident's point:
  the caller holds `freeze_residents` since before it read the points, so none moved in between.

Besides, the residents import inserts the cells of the residents it creates in the statement that creates them
(as it wrote the column before; gridkit.io.subjects.residents), and the resident model stores the cell given to
a new Resident with its row (gridkit.models.subjects).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
from sqlalchemy import Integer, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select, TextClause

from gridkit import db
from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER, Int4Array, bind_arrays
from gridkit.models import Resident, ResidentCell
from gridkit.spatial.bulk import rebuilt_indexes

__all__ = [
    "ASSIGNED_RESIDENTS",
    "RESIDENTS",
    "copy_new_resident_cells",
    "copy_resident_cells",
    "freeze_residents",
    "set_resident_cells",
    "set_resident_cells_from",
]

# For SQL readers: residents with their cell as a column base_cell_id, as they read before it had a table of
# its own (PostgreSQL flattens the subquery into a plain join): every resident (base_cell_id NULL when
# unassigned), or only the assigned ones.
RESIDENTS = "(SELECT r.*, c.base_cell_id FROM resident r LEFT JOIN resident_cell c ON c.resident_id = r.id)"
ASSIGNED_RESIDENTS = "(SELECT r.*, c.base_cell_id FROM resident r JOIN resident_cell c ON c.resident_id = r.id)"

# From this many residents to place (or all of them), an assignment freezes them and COPYs their cells
# (gridkit.assign).
COPY_MIN_ROWS = 100_000
# Rows per COPY message (~18 bytes a row).
COPY_CHUNK_ROWS = 1 << 20
_COPY_ROW = np.dtype([("n", ">i2"), ("l0", ">i4"), ("id", ">i4"), ("l1", ">i4"), ("cell", ">i4")])


def set_resident_cells_from(session: Session, source: Select | TextClause) -> int:
    """Give each resident of `source` (columns id, cell; cell NULL = unassigned; each id once) its cell; return
    how many residents' cells changed. One statement: rows deleted for NULL cells, inserted or updated for the
    others (an unchanged cell is not written)."""
    if isinstance(source, TextClause):
        source = source.columns(id=Integer, cell=Integer)
    table = ResidentCell.__table__
    n = source.cte("n")
    gone = (
        table.delete()
        .where(table.c.resident_id.in_(select(n.c.id).where(n.c.cell.is_(None))))
        .returning(table.c.resident_id)
        .cte("gone")
    )
    put = insert(table).from_select(
        ["resident_id", "base_cell_id"], select(n.c.id, n.c.cell).where(n.c.cell.is_not(None))
    )
    put = (
        put.on_conflict_do_update(
            index_elements=[table.c.resident_id],
            set_={"base_cell_id": put.excluded.base_cell_id},
            where=table.c.base_cell_id != put.excluded.base_cell_id,
        )
        .returning(table.c.resident_id)
        .cte("put")
    )
    count = select(
        select(func.count()).select_from(gone).scalar_subquery()
        + select(func.count()).select_from(put).scalar_subquery()
    )
    changed = session.execute(count).scalar_one()
    expire_resident_cells(session)
    return changed


def set_resident_cells(session: Session, cells: Mapping[int, int | None]) -> int:
    """Set the base cell (None = unassigned) of the residents `cells` names; return how many changed."""
    if not cells:
        return 0
    ids = [int(i) for i in cells]
    values = [None if c is None else int(c) for c in cells.values()]
    source = text("SELECT id, cell FROM unnest(CAST(:ids AS int[]), CAST(:cells AS int[])) AS n(id, cell)")
    return set_resident_cells_from(session, source.bindparams(ids=ids, cells=values))


def freeze_residents(session: Session) -> None:
    """Keep every resident where it is until the transaction ends (readers go on; writers of `resident` wait):
    cells computed from points read after this cannot go stale before they are written."""
    session.execute(text("LOCK TABLE resident IN SHARE MODE"))


def copy_resident_cells(session: Session, ids: np.ndarray, cells: np.ndarray) -> int:
    """Replace the cells of residents `ids` (distinct, ascending; each one's cell differs from its stored one)
    by `cells` (0 = none) in bulk; return how many changed (all of them). The caller froze the residents
    (`freeze_residents`) before reading the points the cells come from."""
    conn = db.driver_connection(session)
    placed = cells != 0
    # A first assignment into the empty table writes new storage (gridkit.spatial.bulk: on a server that keeps WAL
    # for crash recovery only, the embedded cluster, its rows are not logged; about half the COPY's time).
    with rebuilt_indexes(session, "resident_cell", len(ids)), conn.cursor() as cur:
        cur.execute("SELECT EXISTS (SELECT 1 FROM resident_cell)")
        if cur.fetchone()[0]:
            # Not a first assignment: the rows of these residents go first (hashed semi-join on the ids).
            bind_arrays(cur)
            cur.execute("DELETE FROM resident_cell WHERE resident_id IN (SELECT unnest(%s))", (Int4Array(ids),))
        placed_ids, placed_cells = ids[placed], cells[placed]
        parts = range(0, len(placed_ids), COPY_CHUNK_ROWS)
        _copy_rows(cur, ((placed_ids[k : k + COPY_CHUNK_ROWS], placed_cells[k : k + COPY_CHUNK_ROWS]) for k in parts))
    expire_resident_cells(session)
    return len(ids)


def copy_new_resident_cells(session: Session, parts: Iterable[tuple[np.ndarray, np.ndarray]], rows: int) -> None:
    """COPY the cells of new residents into `resident_cell`: `parts` gives (ids, cells) arrays (each id once, not
    yet in the table; every cell a base cell's id), `rows` rows in all, the table's index and foreign keys dropped
    and built again around it when that is many (a residents' first load, which reads its parts back from disk:
    the client holds one part at a time)."""
    with rebuilt_indexes(session, "resident_cell", rows), db.driver_connection(session).cursor() as cur:
        _copy_rows(cur, parts)
    expire_resident_cells(session)


def _copy_rows(cur, parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
    """COPY the (ids, cells) arrays of `parts` into resident_cell, as binary rows built a part at a time (18 bytes
    a row, at most COPY_CHUNK_ROWS rows: the client holds one part besides)."""
    with cur.copy("COPY resident_cell (resident_id, base_cell_id) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(COPY_HEADER)
        for ids, cells in parts:
            rows = np.empty(len(ids), dtype=_COPY_ROW)
            rows["n"], rows["l0"], rows["l1"] = 2, 4, 4
            rows["id"], rows["cell"] = ids, cells
            copy.write(rows.tobytes())
        copy.write(COPY_TRAILER)


def expire_resident_cells(session: Session) -> None:
    """Make loaded residents read their cell again: it was written behind the ORM."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Resident):
            session.expire(obj, ["base_cell_id"])
