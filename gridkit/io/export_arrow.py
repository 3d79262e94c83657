"""Rows of an export read straight from PostGIS into Arrow record batches, for the GDAL writers.

    for batch in arrow_batches(session, query_sql, params, fields, geometry_sql, types, rows=50_000):
        ...

One `COPY (SELECT …) TO STDOUT (FORMAT binary)` on the session's own connection (so it sees the
caller's transaction), read ahead by a thread in blocks of whole rows and decoded block by block
with numpy (`gridkit.io.copy_binary`) while PostgreSQL is still producing rows: the server's work
and the file writing overlap, and no row ever becomes a Python object. Values travel in their
binary form, which costs PostgreSQL much less than text: geometry as WKB (`ST_AsBinary(…)`), numbers
and dates as such. Dates and times leave PostgreSQL in Beijing time (`AT TIME ZONE`), so the file
holds what a Chinese reader expects. Memory stays bounded by a few blocks, whatever the number of
rows.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import pyarrow as pa
from psycopg import errors as psycopg_errors
from psycopg import pq
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.io.copy_binary import PADDING, CopyFormatError, binary_column, decode_rows, header_length
from gridkit.io.export_layers import DATETIME
from gridkit.rules import local_tz

# Bytes of rows the read-ahead thread hands over and numpy decodes at a time: about 53,000 points
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
    in a bounded queue, so the server keeps producing rows while numpy decodes and GDAL writes.
    Each block ends at a row boundary and comes with where each of its rows ends. Only the pump's
    thread uses the connection until `close()` has returned.
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
                ends = []
                size = FIRST_BLOCK_BYTES
                for row in _rows(cur.connection, copy):
                    block += row
                    ends.append(len(block))
                    if len(block) >= size:
                        self._put(_block(block, ends))
                        block = bytearray()
                        ends = []
                        size = BLOCK_BYTES
                if ends:
                    self._put(_block(block, ends))
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
        """Yield (block of whole rows, where each row ends in it) until the COPY ends."""
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


def _block(block: bytearray, ends: list[int]) -> tuple[bytearray, list[int]]:
    block += bytes(PADDING)  # room for decode_rows to read past the last value without a copy
    return block, ends


def _rows(connection, copy):
    """Yield the rows of a binary COPY TO (one message each; the stream's header, which comes
    before the first, left out) up to its end-of-data marker, then end the COPY.

    psycopg's `copy.read()` goes through its generators and waits for every row; a row libpq
    already holds (most: it reads the socket in large pieces) is taken from libpq directly instead
    (`get_copy_data` in async mode never blocks), for about half the CPU per row. psycopg waits
    when libpq holds none, and ends the COPY."""
    pgconn = connection.pgconn
    get = pgconn.get_copy_data
    header = True
    while True:
        size, message = get(1)
        if size == 0:
            message = copy.read()
            size = len(message)
        if size < 0:
            # libpq met the end of the COPY before its marker: the server's error, fetched here
            # since psycopg no longer can (the connection is left idle, in a failed transaction).
            _raise_error(pgconn, connection.info.encoding)
        if header:
            header = False
            message = message[header_length(message) :]
            size = len(message)
            if size == 0:
                continue
        if size == 2:  # the end-of-data marker; a row is at least a field count and one length
            if copy.read():
                raise CopyFormatError("rows after the end of a binary COPY")
            return
        if size == 0:
            raise CopyFormatError("a binary COPY ended without its end-of-data marker")
        yield message


def _raise_error(pgconn, encoding: str) -> None:
    results = []
    while (result := pgconn.get_result()) is not None:
        results.append(result)
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise psycopg_errors.error_from_result(result, encoding=encoding)
    raise CopyFormatError("a binary COPY ended without its end-of-data marker")


def _column_sql(name: str, kind: str, arrow_type: pa.DataType) -> str:
    column = f'x."{name}"'
    if kind == DATETIME:
        column = f"{column} AT TIME ZONE '{local_tz().key}'"  # a zone's name (letters, '/', '_'): no quote in it
    return binary_column(column, arrow_type)


def copy_sql(
    query_sql: str, fields, types: list[pa.DataType], geometry_sql: str, limit: int | None, where: str | None = None
) -> str:
    """Return the SELECT of one export as binary COPY columns: fields, then WKB (`_wkb`).

    `geometry_sql` is an expression over `x._geom` giving WKB; `where` (SQL over `x`) chooses rows
    and `limit` caps how many are read.
    """
    columns = [_column_sql(name, kind, t) for (name, kind), t in zip(fields, types)]
    columns.append(geometry_sql)
    tail = (f" WHERE {where}" if where else "") + (f" LIMIT {int(limit)}" if limit is not None else "")
    return f"SELECT {', '.join(columns)} FROM ({query_sql}) x{tail}"


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
    statement = f"COPY ({query}) TO STDOUT (FORMAT binary)"
    raw = db.driver_connection(session)
    with raw.cursor() as cur:
        # A savepoint of our own: a COPY stopped part-way (an error, Ctrl+C) is cancelled on the
        # server, and rolling back to it keeps the caller's transaction usable.
        cur.execute("SAVEPOINT gridkit_export_copy")
        try:
            yield from _read(cur, statement, bound, names, types, rows)
        except BaseException:
            cur.execute("ROLLBACK TO SAVEPOINT gridkit_export_copy")
            raise
        cur.execute("RELEASE SAVEPOINT gridkit_export_copy")


def _read(cur, statement: str, params, names: list[str], types: list[pa.DataType], rows: int):
    pump = _CopyPump(cur, statement, params)
    columns = [*names, GEOMETRY]
    types = [*types, pa.binary()]
    try:
        for block, ends in pump:
            whole = decode_rows(block, ends, types, columns)
            for start in range(0, whole.num_rows, rows):
                yield whole.slice(start, rows)
    finally:
        pump.close()
