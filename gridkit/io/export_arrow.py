"""Rows of an export read straight from PostGIS into Arrow record batches, for the GDAL writers.

    for batch in arrow_batches(session, query_sql, params, fields, geometry_sql, types, rows=50_000):
        ...

One `COPY (SELECT …) TO STDOUT (FORMAT csv)` on the session's own connection (so it sees the
caller's transaction), read ahead by a thread in blocks of whole rows and parsed block by block by
Arrow's CSV reader while PostgreSQL is still producing rows: the server's work and the file writing
overlap, and no row ever becomes a Python object. A block none of whose values holds a line break
(nearly all) is parsed without Arrow's slower quote-aware line splitting. Geometry
travels as hex WKB (`encode(ST_AsBinary(…), 'hex')`) and is turned into an Arrow binary column in
one call per batch, without a Shapely round trip. Dates and times leave PostgreSQL as ISO text in
Beijing time, so the file holds what a Chinese reader expects. Memory stays bounded by a few
blocks, whatever the number of rows.
"""

from __future__ import annotations

import binascii
import queue
import threading
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.io.export_layers import DATE, DATETIME

# Bytes of CSV the read-ahead thread hands over and Arrow parses at a time: about 45,000 points
# of an entities export.
BLOCK_BYTES = 8 << 20
# The first block is small: the writer starts on the first rows instead of waiting for 8 MB.
FIRST_BLOCK_BYTES = 512 << 10
GEOMETRY = "_wkb"


class _Stopped(Exception):
    """The reader stopped before the end of the COPY (an error or Ctrl+C on the writing side)."""


class _CopyPump:
    """The blocks of whole rows of a COPY TO STDOUT, read ahead by a thread of its own.

    PostgreSQL sends one message per row; the pump joins them into blocks of about BLOCK_BYTES
    in a bounded queue, so the server keeps producing rows while Arrow parses and GDAL writes.
    Each block ends at a row boundary and says whether a value in it holds a line break (then
    Arrow must parse it the slower, quote-aware way). Only the pump's thread uses the connection
    until `close()` has returned.
    """

    def __init__(self, cur, statement: str, params, depth: int = 3):
        self.queue: queue.Queue = queue.Queue(maxsize=depth)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._pump, args=(cur, statement, params), daemon=True)
        self.thread.start()

    def _pump(self, cur, statement: str, params) -> None:
        try:
            with cur.copy(statement, params) as copy:
                block = bytearray()
                rows = 0
                size = FIRST_BLOCK_BYTES
                for row in copy:
                    block += row
                    rows += 1
                    if len(block) >= size:
                        self._put(_block(block, rows))
                        block.clear()
                        rows = 0
                        size = BLOCK_BYTES
                if rows:
                    self._put(_block(block, rows))
            self._put(None)
        except _Stopped:
            pass  # psycopg cancelled the COPY on the way out; the caller rolls back to its savepoint
        except BaseException as exc:
            self._put(exc, always=True)

    def _put(self, item, always: bool = False) -> None:
        while True:
            if self.stop.is_set() and not always:
                raise _Stopped
            try:
                self.queue.put(item, timeout=0.05)
                return
            except queue.Full:
                if always and self.stop.is_set():
                    return

    def __iter__(self):
        """Yield (block bytes, whether a value in it holds a line break) until the COPY ends."""
        while True:
            item = self.queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading ahead and wait for the pump's thread: the connection is free afterwards."""
        self.stop.set()
        self.thread.join()


def _block(block: bytearray, rows: int) -> tuple[bytes, bool]:
    # One line feed per row, and no carriage return, means no value spans lines.
    return bytes(block), block.count(b"\n") != rows or b"\r" in block


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
    bound = compiled.construct_params() or None
    # psycopg merges parameters into a COPY client-side; without any, the %% SQLAlchemy doubled stay.
    query = compiled.string if bound else compiled.string.replace("%%", "%")
    statement = f"COPY ({query}) TO STDOUT (FORMAT csv)"
    raw = session.connection().connection.driver_connection
    column_types = dict(zip(names, types))
    column_types[GEOMETRY] = pa.string()
    with raw.cursor() as cur:
        # A savepoint of our own: a COPY stopped part-way (an error, Ctrl+C) is cancelled on the
        # server, and rolling back to it keeps the caller's transaction usable.
        cur.execute("SAVEPOINT gridkit_export_copy")
        try:
            yield from _read(cur, statement, bound, names, column_types, rows)
        except BaseException:
            cur.execute("ROLLBACK TO SAVEPOINT gridkit_export_copy")
            raise
        cur.execute("RELEASE SAVEPOINT gridkit_export_copy")


def _read(cur, statement: str, params, names: list[str], column_types: dict, rows: int):
    pump = _CopyPump(cur, statement, params)
    columns = [*names, GEOMETRY]
    convert = pacsv.ConvertOptions(
        column_types=column_types,
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,  # "" is an empty text, an unquoted nothing is NULL
        true_values=["t"],
        false_values=["f"],
    )
    try:
        for block, multiline in pump:
            table = pacsv.read_csv(
                pa.py_buffer(block),
                read_options=pacsv.ReadOptions(column_names=columns, block_size=len(block) + 1, use_threads=False),
                parse_options=pacsv.ParseOptions(newlines_in_values=multiline),
                convert_options=convert,
            )
            for batch in table.to_batches():
                whole = pa.RecordBatch.from_arrays(
                    batch.columns[:-1] + [wkb_from_hex(batch.column(len(names)))], names=columns
                )
                for start in range(0, whole.num_rows, rows):
                    yield whole.slice(start, rows)
    finally:
        pump.close()
