"""PostgreSQL's own floor for storing an import's rows: what any import into gridkit's schema must cost the server.

Imported by scripts/bench_import.py (not run itself). After an import, the rows it stored are read back (binary
COPY, not timed), and then, timed, in one transaction rolled back: a copy of each table made without indexes
(`CREATE TABLE … (LIKE … INCLUDING DEFAULTS INCLUDING CONSTRAINTS)`: its columns, domains and CHECKs), the rows
COPYed into it as binary (already parsed, checked, hashed and placed: no client work at all), then the table's
foreign keys, primary key, UNIQUE keys and indexes built as the schema has them, after ANALYZE of the columns the
import analyses. The copy is created in the transaction, so at wal_level minimal (the embedded and the benchmark
clusters) it is written without WAL, as gridkit's first load is.

The import's seconds over this floor show how far gridkit is from the schema's own cost; the floor over the raw
COPY + join baseline shows what the schema's indexes alone cost against a table of text columns with none.
"""

from __future__ import annotations

import io
import re
import time

import psycopg
from sqlalchemy import create_engine

from gridkit.spatial.bulk import planned_columns

# The tables an import of each kind stores its rows in.
TABLES = {"buildings": ("building",), "residents": ("resident", "resident_cell"), "components": ("component",)}


def floor_seconds(url: str, kind: str) -> dict:
    """Return {"seconds": the floor of storing the rows now in `kind`'s tables, "parts": seconds by step}, in the
    database of the SQLAlchemy `url`."""
    engine = create_engine(url)
    with engine.connect() as catalog:  # the columns gridkit analyses after a bulk write (gridkit.spatial.bulk)
        analyzed = {table: planned_columns(catalog, table) for table in TABLES[kind]}
    engine.dispose()
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        dumps = {table: _dump(conn, table) for table in TABLES[kind]}
        parts = {"copy": 0.0, "keys and indexes": 0.0, "foreign keys": 0.0, "analyze": 0.0}
        started = time.perf_counter()
        for table, data in dumps.items():
            copy = f"gk_floor_{table}"
            conn.execute(f"CREATE TABLE {copy} (LIKE {table} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
            t = time.perf_counter()
            with conn.cursor().copy(f"COPY {copy} FROM STDIN (FORMAT binary)") as stream:
                stream.write(data)
            parts["copy"] += time.perf_counter() - t
            # Analysed first, as gridkit_restore_bulk_indexes does: the foreign keys' checks are planned on it.
            t = time.perf_counter()
            conn.execute(f"ANALYZE {copy} ({', '.join(analyzed[table])})")
            parts["analyze"] += time.perf_counter() - t
            keys, foreign = _definitions(conn, table, copy)
            for statement, merged in foreign:
                # As gridkit_restore_bulk_indexes checks a key to a large table: merged, not hashed (faster).
                conn.execute(f"SET enable_hashjoin = {'off' if merged else 'on'}")
                t = time.perf_counter()
                conn.execute(statement)
                parts["foreign keys"] += time.perf_counter() - t
            # After the foreign keys, as gridkit_restore_bulk_indexes: a merge then sorts the column instead of
            # visiting the fresh table's pages through its new index.
            t = time.perf_counter()
            for statement in keys:
                conn.execute(statement)
            parts["keys and indexes"] += time.perf_counter() - t
        seconds = time.perf_counter() - started
        conn.rollback()
    return {"seconds": seconds, "parts": parts}


def _dump(conn: psycopg.Connection, table: str) -> bytes:
    out = io.BytesIO()
    with conn.cursor().copy(f"COPY {table} TO STDOUT (FORMAT binary)") as stream:
        for block in stream:
            out.write(block)
    return out.getvalue()


def _definitions(conn: psycopg.Connection, table: str, copy: str) -> tuple[list[str], list[tuple[str, bool]]]:
    """Return the statements building `table`'s keys and indexes on `copy`, then its foreign keys, each with
    whether it refers to a table of 100,000 rows or more (a key to the table itself, as resident_cell's to
    resident, stays a key to the original: the same check)."""
    rename = re.compile(rf"\bON (public\.)?{table}\b")
    keys = [
        rename.sub(f"ON {copy}", definition).replace(f"INDEX {name} ", f"INDEX {name}_floor ", 1)
        for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s ORDER BY indexname", (table,)
        )
    ]
    foreign = [
        (f"ALTER TABLE {copy} ADD {definition}", rows >= 100_000)
        for definition, rows in conn.execute(
            "SELECT pg_get_constraintdef(k.oid), c.reltuples FROM pg_constraint k "
            "JOIN pg_class c ON c.oid = k.confrelid WHERE k.conrelid = %s::regclass AND k.contype = 'f' "
            "ORDER BY k.conname",
            (table,),
        )
    ]
    return keys, foreign
