"""Index maintenance around bulk writes: rebuilding a table's secondary indexes once is cheaper than
updating them row by row when a write touches most of the table (measured in scripts/bench_import.py).

Only a table's owner may drop and create its indexes, and the application role of the embedded
database is not the owner (migrations run as `gridkit_owner`). So the work is done by two
SECURITY DEFINER functions that migration 20261203_city9 created as the owner:
`gridkit_drop_bulk_indexes(table)` drops the table's secondary indexes, UNIQUE constraints (not
the primary key, nor a key a foreign key refers to) and foreign keys, and keeps their definitions in
`gridkit_private.bulk_dropped_index` (a schema no other role may enter), and
`gridkit_restore_bulk_indexes(table)` builds them again from there. They accept only gridkit's
subject tables, and only from a caller who may write the table. Every step is in the caller's
transaction: a rollback (refused import, Ctrl+C) brings the indexes back untouched.

Residents' cells, the one column written for millions of stored rows at once (a first assignment), are
rows of their own narrow table (`resident_cell`, migration 20261204_cell9f; gridkit.resident_cells): a bulk
assignment COPYs them with that table's index and foreign keys dropped, instead of updating every wide
resident row (the half-empty pages and the column-scoped drop `gridkit_drop_bulk_indexes_on` of migration
20261203_asg9b, which made that UPDATE heap-only, are no longer used).
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.orm import Session

__all__ = ["BULK_INDEX_ROWS", "rebuilt_indexes"]

# From this many rows written, and at least half as many as the table already holds, the table's secondary
# indexes are dropped before the write and built again after it.
BULK_INDEX_ROWS = 100_000


@contextmanager
def rebuilt_indexes(session: Session, table: str, rows: int):
    """Drop `table`'s secondary indexes, UNIQUE constraints and foreign keys (not the primary key) around a
    bulk write of `rows` rows when that pays, and build them again after, in the caller's transaction; yields
    whether it did.

    Works for any role that may write the table (through the owner's SECURITY DEFINER functions). The
    drop locks the table until the transaction ends (readers wait): the price of a first load. Inside
    the block nothing enforces the UNIQUE keys nor the foreign keys: the write must not depend on them
    (imports check duplicates on the staging table first and join to existing buildings and cells);
    adding them again after checks every row, set-based.
    """
    existing = session.scalar(
        text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    )
    if rows < BULK_INDEX_ROWS or 2 * rows < (existing or 0):
        yield False
        return
    session.execute(text("SELECT gridkit_drop_bulk_indexes(CAST(:t AS regclass))"), {"t": table})
    yield True
    # The table's statistics are refreshed first (gridkit_restore_bulk_indexes), then the indexes built.
    session.execute(text("SELECT gridkit_restore_bulk_indexes(CAST(:t AS regclass))"), {"t": table})
