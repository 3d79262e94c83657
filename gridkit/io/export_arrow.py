"""Rows of an export read straight from PostGIS into Arrow record batches, for the GDAL writers.

    for batch in arrow_batches(session, query_sql, params, fields, geometry_sql, types, rows=50_000):
        ...

One `COPY (SELECT …) TO STDOUT (FORMAT csv)` on the session's own connection (so it sees the
caller's transaction), parsed by Arrow's CSV reader while PostgreSQL is still producing rows: the
server's work and the file writing overlap, and no row ever becomes a Python object. Geometry
travels as hex WKB (`encode(ST_AsBinary(…), 'hex')`) and is turned into an Arrow binary column in
one call per batch, without a Shapely round trip. Dates and times leave PostgreSQL as ISO text in
Beijing time, so the file holds what a Chinese reader expects. Memory stays bounded by Arrow's
block size, whatever the number of rows.
"""

from __future__ import annotations

import binascii
import io
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.io.export_layers import DATE, DATETIME

# Bytes of CSV Arrow parses at a time: about 50,000 points of an entities export.
BLOCK_BYTES = 8 << 20
GEOMETRY = "_wkb"


class _CopyReader(io.RawIOBase):
    """A read-only file over the data blocks of a psycopg COPY TO STDOUT."""

    def __init__(self, copy):
        self.blocks = iter(copy)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self.pending:
            block = next(self.blocks, None)
            if block is None:
                return 0
            self.pending = memoryview(block)
        n = min(len(buffer), len(self.pending))
        buffer[:n] = self.pending[:n]
        self.pending = self.pending[n:]
        return n


def _column_sql(name: str, kind: str, arrow_type: pa.DataType) -> str:
    column = f'x."{name}"'
    if kind == DATETIME and pa.types.is_date(arrow_type):
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD')"
    if kind == DATETIME:
        return f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS')"
    if kind == DATE:
        return f"to_char({column}, 'YYYY-MM-DD')"
    return column


def copy_sql(
    query_sql: str, fields, types: list[pa.DataType], geometry_sql: str, limit: int | None, where: str | None = None
) -> str:
    """Return the SELECT of one export as CSV-friendly columns: fields, then hex WKB as `_wkb`.

    `geometry_sql` is an expression over `x._geom` giving WKB; `where` (SQL over `x`) chooses rows
    and `limit` caps how many are read.
    """
    columns = [_column_sql(name, kind, t) for (name, kind), t in zip(fields, types)]
    columns.append(f"encode({geometry_sql}, 'hex')")
    tail = (f" WHERE {where}" if where else "") + (f" LIMIT {int(limit)}" if limit is not None else "")
    return f"SELECT {', '.join(columns)} FROM ({query_sql}) x{tail}"


def wkb_from_hex(values: pa.Array) -> pa.Array:
    """Return a binary array of the bytes each hex string of `values` spells (nulls kept)."""
    if not isinstance(values, pa.StringArray):
        values = values.cast(pa.string())
    n = len(values)
    validity, offsets, data = values.buffers()
    offs = np.frombuffer(offsets, dtype=np.int32, count=n + 1, offset=values.offset * 4)
    start, end = int(offs[0]), int(offs[-1])
    raw = binascii.a2b_hex(memoryview(data)[start:end]) if data is not None and end > start else b""
    halves = ((offs - start) // 2).astype(np.int32)
    if validity is not None and values.offset:
        validity = pa.array(values.is_valid()).buffers()[1]
    return pa.Array.from_buffers(
        pa.binary(), n, [validity, pa.py_buffer(halves), pa.py_buffer(raw)], null_count=values.null_count
    )


def arrow_batches(
    session: Session,
    sql: str,
    params: dict,
    names: list[str],
    types: list[pa.DataType],
    *,
    rows: int,
) -> Iterator[pa.RecordBatch]:
    """Yield record batches of at most `rows` rows: the fields of `names` typed `types`, then the
    geometry as WKB (binary, column `_wkb`). `sql` comes from `copy_sql`; `params` are bound."""
    compiled = text(sql).bindparams(**params).compile(dialect=session.get_bind().dialect)
    statement = f"COPY ({compiled.string}) TO STDOUT (FORMAT csv)"
    raw = session.connection().connection.driver_connection
    column_types = dict(zip(names, types))
    column_types[GEOMETRY] = pa.string()
    with raw.cursor() as cur:
        # A savepoint of our own: a COPY stopped part-way (an error, Ctrl+C) is cancelled on the
        # server, and rolling back to it keeps the caller's transaction usable.
        cur.execute("SAVEPOINT gridkit_export_copy")
        try:
            yield from _read(cur, statement, compiled.construct_params() or None, names, column_types, rows)
        except BaseException:
            cur.execute("ROLLBACK TO SAVEPOINT gridkit_export_copy")
            raise
        cur.execute("RELEASE SAVEPOINT gridkit_export_copy")


def _read(cur, statement: str, params, names: list[str], column_types: dict, rows: int):
    with cur.copy(statement, params) as copy:
        reader = pacsv.open_csv(
            io.BufferedReader(_CopyReader(copy), buffer_size=1 << 20),
            # One thread: the COPY is read only by the thread that opened it (psycopg connections are
            # not to be used from two threads at once, and an early exit closes the COPY here).
            read_options=pacsv.ReadOptions(column_names=[*names, GEOMETRY], block_size=BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=column_types,
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,  # "" is an empty text, an unquoted nothing is NULL
                true_values=["t"],
                false_values=["f"],
            ),
        )
        for batch in reader:
            columns = batch.columns[:-1] + [wkb_from_hex(batch.column(len(names)))]
            whole = pa.RecordBatch.from_arrays(columns, names=[*names, GEOMETRY])
            for start in range(0, whole.num_rows, rows):
                yield whole.slice(start, rows)
