"""Index maintenance around bulk writes: rebuilding a table's secondary indexes once is cheaper than
updating them row by row when a write touches most of the table (measured in scripts/bench_import.py).

Only a table's owner may drop and create its indexes, and the application role of the embedded
database is not the owner (migrations run as `gridkit_owner`). So the work is done by two
SECURITY DEFINER functions that migration 20261203_city9 created as the owner:
`gridkit_drop_bulk_indexes(table)` drops the table's secondary indexes, UNIQUE constraints (not
the primary key, nor a key a foreign key refers to) and foreign keys, and keeps their definitions in
`gridkit_private.bulk_dropped_index` (a schema no other role may enter), and
`gridkit_restore_bulk_indexes(table)` builds them again from there (the foreign keys first, each checked by a
merge join when it refers to the table's own primary key or to a table of 100,000 rows or more: migrations
20261204_cell9f and 20261204_imp9g). They accept only gridkit's
subject tables, and only from a caller who may write the table. Every step is in the caller's
transaction: a rollback (refused import, Ctrl+C) brings the indexes back untouched.

Residents' cells, the one column written for millions of stored rows at once (a first assignment), are
rows of their own narrow table (`resident_cell`, migration 20261204_cell9f; gridkit.resident_cells): a bulk
assignment COPYs them with that table's index and foreign keys dropped, instead of updating every wide
resident row (the half-empty pages and the column-scoped drop `gridkit_drop_bulk_indexes_on` of migration
20261203_asg9b, which made that UPDATE heap-only, are no longer used there).

Cases' cells are written in place: publishing an edition gives every case a new base_cell_id. `incident` keeps
half of each page free (fillfactor 50, migration 20261209_perf10e) and only the indexes and foreign key that read
base_cell_id are dropped around that UPDATE (`rebuilt_indexes(..., columns=...)`, through the owner's
`gridkit_drop_bulk_indexes_on`): the new versions are then heap-only (HOT) and no other index gets an entry or
needs rebuilding.

A bulk insert into an empty table (a city's first load) first empties it again with TRUNCATE, through the
owner's `gridkit_truncate_for_load(table)` (migration 20261204_imp9f), in the caller's transaction: the
table then has storage created in this transaction, which PostgreSQL at wal_level minimal (the embedded
cluster) writes without WAL and syncs once at commit (the rows and the indexes built after them). The
function truncates only when the table, and the tables whose foreign keys refer to it, are empty under
its lock; a database at wal_level replica or logical logs every write anyway: nothing is truncated there.
"""

from __future__ import annotations

from contextlib import contextmanager

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

__all__ = ["BULK_INDEX_ROWS", "planned_columns", "rebuilt_indexes"]

# From this many rows written, and at least half as many as the table already holds, the table's secondary
# indexes are dropped before the write and built again after it.
BULK_INDEX_ROWS = 100_000


@contextmanager
def rebuilt_indexes(session: Session, table: str, rows: int, *, columns: tuple[str, ...] = ()):
    """Drop `table`'s secondary indexes, UNIQUE constraints and foreign keys (not the primary key) around a
    bulk write of `rows` rows when that pays, and build them again after, in the caller's transaction; yields
    whether it did.

    With `columns` (an UPDATE of those columns alone, of a table whose pages keep room for it) only the
    indexes, UNIQUE constraints and foreign keys reading them are dropped, and only their statistics refreshed:
    the UPDATE is heap-only, the other indexes untouched. No table is truncated then.

    Works for any role that may write the table (through the owner's SECURITY DEFINER functions). The
    drop locks the table until the transaction ends (readers wait): the price of a first load. Inside
    the block nothing enforces the UNIQUE keys nor the foreign keys: the write must not depend on them
    (imports join to existing buildings and cells); adding them again after checks every row, set-based
    (an import's repeated keys are found there: gridkit.io.subjects.staging.write_unique).

    A write into a table with no rows, at wal_level minimal, starts by truncating it
    (`gridkit_truncate_for_load`: only when it and the tables referring to it are empty under its lock), so
    that the rows are written without WAL. The lock then covers those tables too.
    """
    existing = session.scalar(
        text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
    )
    if rows < BULK_INDEX_ROWS or 2 * rows < (existing or 0):
        yield False
        return
    if columns:
        session.execute(
            text("SELECT gridkit_drop_bulk_indexes_on(CAST(:t AS regclass), CAST(:c AS text[]))"),
            {"t": table, "c": list(columns)},
        )
        yield True
        session.execute(
            text("SELECT gridkit_restore_bulk_indexes(CAST(:t AS regclass), CAST(:c AS text[]))"),
            {"t": table, "c": list(columns)},
        )
        return
    analyzed = planned_columns(session, table)  # read while the keys and indexes still stand
    # Checked again by the function under its lock: the cheap look here only spares the lock when rows exist,
    # or where the server logs every write anyway (wal_level replica or logical: no gain).
    if session.scalar(text(f"SELECT current_setting('wal_level') = 'minimal' AND NOT EXISTS (SELECT 1 FROM {table})")):
        session.execute(text("SELECT gridkit_truncate_for_load(CAST(:t AS regclass))"), {"t": table})
    session.execute(text("SELECT gridkit_drop_bulk_indexes(CAST(:t AS regclass))"), {"t": table})
    yield True
    # The table's statistics are refreshed first: of the columns the next statements join, group and check
    # constraints on.
    session.execute(
        text("SELECT gridkit_restore_bulk_indexes(CAST(:t AS regclass), CAST(:c AS text[]))"),
        {"t": table, "c": analyzed},
    )


def planned_columns(session: Session | Connection, table: str) -> list[str]:
    """Return the columns of `table`'s keys, foreign keys and btree indexes: what the statements after a bulk
    write join, group and check the re-added constraints on, whose statistics the restore's ANALYZE gathers.

    The others' (names, phones, geometries) are left to autovacuum: an ANALYZE of some columns does not
    reset the table's count of changed rows, so its next round analyses the whole table. At 200,000 rows
    a full ANALYZE took 0.3–0.5 s, this one 0.06–0.27 s (scripts/bench_import.py)."""
    return list(
        session.scalars(
            text(
                "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = CAST(:t AS regclass) AND a.attnum IN ("
                "  SELECT unnest(k.conkey) FROM pg_constraint k WHERE k.conrelid = CAST(:t AS regclass) "
                "  AND k.contype IN ('p', 'u', 'f') "
                "  UNION SELECT unnest(i.indkey::int2[]) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "  JOIN pg_am m ON m.oid = c.relam WHERE i.indrelid = CAST(:t AS regclass) AND m.amname = 'btree') "
                "ORDER BY a.attnum"
            ),
            {"t": table},
        )
    )
