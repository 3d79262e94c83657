"""Index maintenance around bulk writes: rebuilding a table's secondary indexes once is cheaper than
updating them row by row when a write touches most of the table (measured in scripts/bench_import.py)."""

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
    """Drop `table`'s secondary indexes (not those of constraints: primary key, unique) around a bulk write of
    `rows` rows when that pays, and build them again after, in the caller's transaction.

    The drop locks the table until the transaction ends (readers wait): the price of a first load.
    """
    existing = (
        session.scalar(
            text("SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
        )
        or 0
    )
    # Only the table's owner may drop its indexes: the embedded database's application role is not
    # (migrations own the schema), so there the write simply updates the indexes as it goes.
    owner = session.scalar(
        text(
            "SELECT pg_has_role(current_user, c.relowner, 'USAGE') FROM pg_class c WHERE c.oid = CAST(:t AS regclass)"
        ),
        {"t": table},
    )
    if rows < BULK_INDEX_ROWS or 2 * rows < existing or not owner:
        yield False
        return
    indexes = session.execute(
        text(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.schemaname = current_schema() "
            "AND i.tablename = :t AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
        ),
        {"t": table},
    ).all()
    for name, _ in indexes:
        # The name comes from the catalogue, quoted as an identifier.
        session.execute(text("DROP INDEX " + session.scalar(text("SELECT quote_ident(:n)"), {"n": name})))
    yield True
    session.execute(text("SELECT set_config('maintenance_work_mem', '256MB', true)"))
    for _, definition in indexes:
        session.execute(text(definition))
