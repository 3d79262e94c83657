"""The streaming path every subject import takes: rows checked chunk by chunk, COPYed into a staging table,
then checked and written as sets in SQL.

`stage_file(session, job, spec, edition=…)` reads the file a chunk at a time (`Job.chunks`), asks
the kind's `KindSpec.check` for the chunk's values (it records every problem of those rows on the
job), computes the base cell of each point with the edition's point index when the file is large
enough for it to pay, and COPYs the rows into a temporary staging table (dropped at commit; a
refused or interrupted import leaves nothing behind). Memory stays flat in the number of rows:
only one chunk is in Python at a time. Then set-based checks run on the staging table
(`report_existing`; `report_duplicates` first only for `--replace` or when the file is refused anyway),
the kind writes its table with one INSERT … SELECT (and one UPDATE for `--replace`) through
`write_unique`, whose UNIQUE key finds a key repeated in the file, and `finish` assigns what SQL could
not (footprints, small files) and counts the unassigned rows.

Incidents and components (gridkit.incidents.components) call the same functions with their own KindSpec:
define `check`, stage, report duplicates, insert from the staging table, assign and count.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.assign import (
    CELL,
    CELL_JOIN,
    ENGINE_MIN_POINTS,
    ENGINE_MIN_POINTS_PER_CELL,
    assign_subjects,
    base_cell_index,
)
from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER
from gridkit.io.subjects.common import LISTED_ROWS
from gridkit.io.subjects.job import Job
from gridkit.io.tables import Table
from gridkit.messages import Message
from gridkit.models import BaseGridEdition
from gridkit.spatial.bulk import rebuilt_indexes

__all__ = [
    "BinaryLoad",
    "codes_valid_as_written",
    "CopyStream",
    "NotClean",
    "first_load_attempt",
    "point_index_for",
    "KindSpec",
    "Staged",
    "bulk_work_mem",
    "stage_file",
    "report_duplicates",
    "report_existing",
    "write_unique",
    "rebuilt_for_insert",
    "reserve_ids",
    "finish",
]


@dataclass(frozen=True)
class KindSpec:
    """How one kind of subject is staged: the only per-kind input of the streaming import.

    - `kind`: the subject kind (buildings, residents, entities; incidents, components).
    - `stage`: the staging table's name (a temporary table; a fixed name, never from user input).
    - `columns`: (name, SQL type) of the values `check` returns, in COPY order. `row_no` (the row
      number the user sees), `lon`, `lat` (float8, CGCS2000) and `cell` (base cell id) are added.
    - `check(job, chunk)`: returns {column: list (or pyarrow array) with one value per row of the
      chunk, None where absent or wrong} plus "lon", "lat" (float arrays, NaN where none), and
      records every problem of those rows on `job`. pyarrow arrays are COPYed as CSV written in C++.
    - `key`: the column identifying a subject (unique in the file); `label`: the column shown for a
      row in problems and lists (a code, or a masked ID number; never personal data in clear).
    - `derived`: (name, SQL type) columns filled later in SQL (e.g. a resident's building id).
    - `joined`: the other staged columns the set-based steps join on (a resident's building code and
      address): with `key`, the only columns whose statistics the staging table's ANALYZE gathers.
    """

    kind: str
    stage: str
    columns: tuple[tuple[str, str], ...]
    check: Callable[[Job, Table], dict]
    key: str
    label: str
    derived: tuple[tuple[str, str], ...] = ()
    joined: tuple[str, ...] = ()


def absent_fields(job: Job, names: tuple[str, ...]) -> frozenset:
    """Return the optional fields among `names` the file has no column for: --replace keeps their stored
    values (a roster without phones must not erase the phones on record)."""
    return frozenset(name for name in names if job.cols.get(name) is None)


def kept_or_staged(names: tuple[str, ...], absent: frozenset) -> dict:
    """Return {name: "t.name" (kept) or "s.name" (from the file)} for an UPDATE … FROM the staging table."""
    return {name: f"t.{name}" if name in absent else f"s.{name}" for name in names}


@dataclass
class Staged:
    """What `stage_file` staged: the spec, the rows, and whether each point's base cell was computed."""

    spec: KindSpec
    rows: int = 0
    cells_computed: bool = False
    edition: BaseGridEdition | None = None
    extra: dict = field(default_factory=dict)


# Memory for sorts and hashes of the set-based steps (duplicates, the insert in file order, joins to
# buildings): a million staged rows sort and hash in memory instead of spilling to disk.
BULK_WORK_MEM = "256MB"


@contextmanager
def bulk_work_mem(session: Session):
    """Raise work_mem to BULK_WORK_MEM for the block, then set it back. Use inside the import's savepoint:
    an error rolls the savepoint back, and the setting with it."""
    before = session.scalar(text("SELECT current_setting('work_mem')"))
    session.execute(text("SELECT set_config('work_mem', :m, true)"), {"m": BULK_WORK_MEM})
    yield
    session.execute(text("SELECT set_config('work_mem', :m, true)"), {"m": before})


def _object_column(values: np.ndarray, missing) -> list:
    """Return a list with None where `missing` (NaN, 0), for COPY."""
    out = values.astype(object)
    out[missing] = None
    return out.tolist()


# COPY's text format: backslash, tab, newline and carriage return escaped; \N is NULL.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_column(values: list) -> list[str]:
    """Return a column's values as COPY text: str escaped, float exact (repr), date ISO, None as \\N."""
    sample = next((v for v in values if v is not None), None)
    if sample is None:
        return ["\\N"] * len(values)
    if isinstance(sample, str):
        return ["\\N" if v is None else v.translate(_ESCAPES) for v in values]
    if isinstance(sample, float):
        return ["\\N" if v is None else repr(float(v)) for v in values]
    if isinstance(sample, (int, np.integer, date)):  # date: datetime too (ISO text)
        return ["\\N" if v is None else str(v) for v in values]
    raise TypeError(f"no COPY text for {type(sample).__name__} values")


def _copy_text(columns: list) -> str:
    """Return the rows of `columns` (one list per column) as the text COPY reads, built column by column:
    one pass per column in list comprehensions instead of a Python call per row (psycopg's write_row)."""
    texts = [_copy_column(list(c)) for c in columns]
    return "".join(f"{line}\n" for line in map("\t".join, zip(*texts)))


def arrow_csv(numbers, columns: list, lon: np.ndarray, lat: np.ndarray, cells) -> pa.Buffer:
    """Return one chunk whose values are pyarrow arrays as the CSV COPY … (FORMAT csv) reads, written by pyarrow.

    `cells`: base cell ids (0 where none) or None; lon/lat NaN where a row has no point.
    """
    n = len(numbers)
    table = pa.table(
        [
            pa.array(numbers, type=pa.int32()),
            *columns,
            pa.array(lon, mask=np.isnan(lon)),
            pa.array(lat, mask=np.isnan(lat)),
            pa.nulls(n, pa.int32()) if cells is None else pa.array(cells, type=pa.int32(), mask=cells == 0),
        ],
        names=[f"c{i}" for i in range(len(columns) + 4)],
    )
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(include_header=False))
    return sink.getvalue()


# The bytes a COPY fed from a thread may have on their way to a server on this machine (Linux doubles it and caps it
# at net.core.wmem_max): a few of the server's milliseconds of rows, where the default (~200 KB) is about two.
COPY_SEND_BUFFER = 4 << 20


class CopyStream:
    """One COPY fed from a thread: a chunk is sent (the GIL released while it waits on the socket) while the
    caller reads and checks the next one. At most one chunk waits to be sent: memory stays flat.

    The caller must not use the connection until the block ends (the COPY ends there)."""

    def __init__(self, cur, sql: str):
        self._cur, self._sql = cur, sql

    def __enter__(self):
        _widen_send_buffer(self._cur.connection.pgconn.socket)
        self._context = self._cur.copy(self._sql)  # kept: the COPY ends when this context is closed
        self._copy = self._context.__enter__()
        self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridkit-copy")
        self._sending = None
        return self

    def write(self, data) -> None:
        self._wait()
        self._sending = self._sender.submit(self._copy.write, memoryview(data))

    def _wait(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            sending.result()

    def __exit__(self, *exc):
        try:
            if exc[0] is None:
                self._wait()
            elif self._sending is not None:
                self._sending.exception()  # let it end; the error being raised is the one to report
        except BaseException as error:
            self._sender.shutdown(wait=True)
            self._context.__exit__(type(error), error, error.__traceback__)  # the COPY fails: nothing staged
            raise
        self._sender.shutdown(wait=True)
        return self._context.__exit__(*exc)


def _widen_send_buffer(fd: int) -> None:
    """Let the socket `fd`, when it is a Unix socket (a server on this machine: the embedded cluster), hold
    COPY_SEND_BUFFER bytes on their way to the server.

    The thread sending a chunk needs the GIL again each time the socket takes more bytes, and the thread checking
    the next chunk gives it up only every few milliseconds (sys.getswitchinterval) while it runs Python (the IDs'
    HMAC): with the default buffer the server read what it held and waited, idle, 0.5-2 s of a 1M-row first load
    (scripts/bench_import.py). A TCP socket's buffers grow by themselves (setting one would stop that)."""
    with socket.socket(fileno=os.dup(fd)) as sock:  # a duplicate: closing it leaves the connection's open
        if sock.family == socket.AF_UNIX and sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) < COPY_SEND_BUFFER:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, COPY_SEND_BUFFER)


def _copy_lists(cur, copy_sql: str, chunk, columns: list, lon, lat, missing, found) -> None:
    """COPY one chunk whose values are lists, as COPY text built column by column."""
    cell_column = _object_column(found, found == 0) if found is not None else [None] * len(chunk.rows)
    columns = [chunk.numbers, *columns, _object_column(lon, missing), _object_column(lat, missing), cell_column]
    with cur.copy(copy_sql) as copy:
        try:
            copy.write(_copy_text(columns))
        except TypeError:  # a kind staging other values (e.g. JSON): psycopg adapts them row by row
            for row in zip(*columns):
                copy.write_row(row)


class BinaryLoad:
    """The one binary COPY of a first load into `table` (its `columns`), whose ids are reserved in file order:
    each row's id is its row number plus an offset taken from the table's sequence at the first chunk; at the
    end the sequence is set to the last id written. The server parses one chunk while Python reads and checks
    the next (CopyStream). The session must not be used between the first `ids` and the end of the block."""

    def __init__(self, session: Session, table: str, columns: str):
        self.session, self.table, self.columns = session, table, columns
        self.offset: int | None = None
        self.last: int | None = None
        self._stack, self._stream = ExitStack(), None

    def __enter__(self):
        self._cur = self._stack.enter_context(db.driver_connection(self.session).cursor())
        self._sequence = self.session.scalar(text(f"SELECT pg_get_serial_sequence('{self.table}', 'id')"))
        return self

    @property
    def started(self) -> bool:
        """Whether the COPY is open (the first chunk's ids taken): the session is busy until the end."""
        return self._stream is not None

    def ids(self, chunk: Table) -> np.ndarray:
        """Return the chunk's ids; at the first chunk reserve the offset and open the COPY."""
        if self._stream is None:
            base = self.session.scalar(text("SELECT nextval(CAST(:s AS regclass))"), {"s": self._sequence})
            self.offset = base - chunk.numbers[0]
            sql = f"COPY {self.table} ({self.columns}) FROM STDIN (FORMAT binary)"
            self._stream = self._stack.enter_context(CopyStream(self._cur, sql))
            self._stream.write(COPY_HEADER)
        ids = np.asarray(chunk.numbers, dtype=np.int64) + self.offset
        self.last = int(ids.max())
        return ids

    def write(self, rows) -> None:
        """Send one chunk's binary COPY tuples."""
        self._stream.write(rows)

    def __exit__(self, *exc):
        if exc[0] is None and self._stream is not None:
            self._stream.write(COPY_TRAILER)
        handled = self._stack.__exit__(*exc)  # the COPY ends here
        if exc[0] is None and self.last is not None:
            self.session.execute(
                text("SELECT setval(CAST(:s AS regclass), :last)"), {"s": self._sequence, "last": self.last}
            )
        return handled


def point_index_for(session: Session, edition: BaseGridEdition | None, lon: np.ndarray, lat: np.ndarray):
    """Return the edition's point index (PointIndex, the same answer as ST_Covers) when the first chunk's points
    (lon, lat; NaN where none) are enough for it to pay for itself, else None (the cells are then found in SQL)."""
    if edition is None:
        return None
    points = int((~(np.isnan(lon) | np.isnan(lat))).sum())
    cells = session.scalar(text("SELECT count(*) FROM base_cell WHERE edition_id = :e"), {"e": edition.id})
    if points >= ENGINE_MIN_POINTS and points >= ENGINE_MIN_POINTS_PER_CELL * cells:
        return base_cell_index(session, edition)
    return None


def codes_valid_as_written(chunk: Table, codes: pa.Array, width: int, valid: Callable) -> np.ndarray:
    """Return where a row's code (a pyarrow string array) is `width` ASCII characters that the bulk check `valid`
    (an (n, width) uint8 array -> bool array: credit_codes_valid, component_codes_valid …) accepts as written,
    and not a number Excel rounded; the other rows are for the per-row checks, which say what is wrong."""
    shaped = pc.fill_null(pc.equal(pc.binary_length(codes), width), False).to_numpy(zero_copy_only=False)
    for position, _column in chunk.lossy:  # a number Excel rounded: the per-row check says so
        shaped[position] = False
    out = np.zeros(len(codes), dtype=bool)
    if shaped.any():
        fixed = codes.filter(pa.array(shaped)).cast(pa.binary(width))
        chars = np.frombuffer(fixed.buffers()[1], dtype=np.uint8)
        out[shaped] = valid(chars[fixed.offset * width : (fixed.offset + len(fixed)) * width].reshape(-1, width))
    return out


class NotClean(Exception):
    """A first load met a problem in the file: the file is read again the usual way, which reports every one."""


def first_load_attempt(session: Session, tables: str, unique: str, write: Callable[[], dict]) -> dict | None:
    """Run `write` (a first load: the file COPYed straight into the empty `tables`, the first one looked at) in a
    savepoint, the tables locked against other writers (SHARE ROW EXCLUSIVE, until the transaction ends); return
    its counts, or None, the savepoint rolled back, when the first table has rows (also looked at before the
    lock, so that an import into a filled table does not hold it), when `write` raised NotClean, or when the
    UNIQUE constraint `unique`, built again, refused a key repeated in the file."""
    occupied = text(f"SELECT EXISTS (SELECT 1 FROM {tables.split(',')[0].strip()})")
    if session.scalar(occupied):
        return None
    try:
        with session.begin_nested():
            session.execute(text(f"LOCK TABLE {tables} IN SHARE ROW EXCLUSIVE MODE"))
            if session.scalar(occupied):
                return None
            return write()
    except NotClean:
        return None
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != unique:
            raise
        return None


def stage_file(session: Session, job: Job, spec: KindSpec, *, edition: BaseGridEdition | None) -> Staged:
    """Read the job's file chunk by chunk into the staging table `spec.stage`; return what was staged.

    Runs in the caller's transaction. Base cells are computed while streaming (PointIndex, the same
    answer as ST_Covers) once the first chunk shows enough points for the index to pay for itself;
    otherwise `finish` assigns in SQL.
    """
    names = [name for name, _ in spec.columns]
    ddl = ", ".join(f"{name} {type_}" for name, type_ in (*spec.columns, *spec.derived))
    staged = Staged(spec, edition=edition)
    index = None
    decided = False
    with db.driver_connection(session).cursor() as cur, ExitStack() as copying:
        cur.execute(f"DROP TABLE IF EXISTS {spec.stage}")
        cur.execute(
            f"CREATE TEMP TABLE {spec.stage} (row_no int NOT NULL, {ddl}, lon float8, lat float8, "
            "cell int) ON COMMIT DROP"
        )
        copy_sql = f"COPY {spec.stage} (row_no, {', '.join(names)}, lon, lat, cell) FROM STDIN"
        stream = None  # one COPY … csv for every chunk of pyarrow values: the server parses one chunk while
        # Python reads and checks the next (2 cores)
        for chunk in job.chunks():
            values = spec.check(job, chunk)
            lon, lat = values.pop("lon"), values.pop("lat")
            missing = np.isnan(lon) | np.isnan(lat)
            if not decided:
                decided = True
                index = point_index_for(session, edition, lon, lat)
                staged.cells_computed = index is not None
            found = index.cells_at(lon, lat) if index is not None else None
            if all(isinstance(values[name], pa.Array) for name in names):
                if stream is None:
                    stream = copying.enter_context(CopyStream(cur, f"{copy_sql} (FORMAT csv)"))
                stream.write(arrow_csv(chunk.numbers, [values[name] for name in names], lon, lat, found))
            else:
                if stream is not None:
                    copying.close()
                    stream = None
                _copy_lists(cur, copy_sql, chunk, [values[name] for name in names], lon, lat, missing, found)
            staged.rows += len(chunk.rows)
        copying.close()  # the COPY ends here
        # No index on the staging table: every later step reads all of it (hash joins, one aggregate). Its row
        # count and the statistics of the columns joined on are what they are planned by (an ANALYZE of every
        # column took twice as long: 0.2 instead of 0.1 s for 200,000 residents).
        cur.execute(f"ANALYZE {spec.stage} ({', '.join(dict.fromkeys((spec.key, *spec.joined)))})")
    return staged


def report_duplicates(job: Job, staged: Staged, *, kind: str, name: str, what: str) -> None:
    """Record every row whose key appeared on an earlier row (`what`: the catalogue key naming it, with {label})."""
    spec = staged.spec
    rows = job.session.execute(
        text(
            # Hash-aggregate the keys first: only the few repeated ones are then looked at row by row.
            f"WITH repeated AS (SELECT {spec.key} AS key, min(row_no) AS first FROM {spec.stage} "
            f"WHERE {spec.key} IS NOT NULL GROUP BY {spec.key} HAVING count(*) > 1) "
            f"SELECT s.row_no, s.{spec.label} AS label, r.first FROM {spec.stage} s JOIN repeated r "
            f"ON s.{spec.key} = r.key WHERE s.row_no <> r.first ORDER BY s.row_no"
        )
    )
    for row in rows:
        job.report_row(
            row.row_no,
            kind,
            name,
            Message(
                "imports.duplicate",
                what=Message(what, label=row.label),
                first=Message(f"imports.unit.{job.table.unit}", number=row.first),
            ),
            row.label,
        )


def write_unique(job: Job, staged: Staged, write: Callable[[], object], *, constraint: str, duplicates: dict):
    """Return `write()`, which writes the staged rows into a table whose UNIQUE key `constraint` is on the
    staged key: that key finds a key repeated in the file, so the file is not searched for them first.

    `duplicates`: report_duplicates' keywords (kind, name, what). When other problems refuse the file
    anyway, repeated keys are reported with them first. Otherwise the write runs in a savepoint; if the
    UNIQUE key refuses it (the insert, or the index built again after it), the savepoint is rolled back
    (nothing written, the table as it was), the repeated keys are reported and the file refused. A
    violation with no repeated key in the file (another transaction's row) is raised as it is.
    Not for an UPDATE from the staged rows (`--replace`): a repeated key would update one row twice
    without any error; report_duplicates first there.
    """
    if job.problems:
        report_duplicates(job, staged, **duplicates)
        job.refuse()
    try:
        with job.session.begin_nested():
            return write()
    except IntegrityError as exc:
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) != constraint:
            raise
        report_duplicates(job, staged, **duplicates)
        if not job.problems:
            raise
    job.refuse()


@contextmanager
def rebuilt_for_insert(session: Session, staged: Staged, table: str, replace: bool) -> Iterator[int | None]:
    """Run the write of the staged rows into `table` inside `rebuilt_indexes`; yield the offset that gives each
    new row its id in file order (`s.row_no + offset`, file_order_ids) when the indexes were dropped (the table
    locked) and every staged row is new (no `replace`), else None: the INSERT then takes the sequence's next
    ids ORDER BY row_no."""
    with rebuilt_indexes(session, table, staged.rows) as rebuilt:
        yield file_order_ids(session, staged, table) if rebuilt and not replace else None


def file_order_ids(session: Session, staged: Staged, table: str) -> int | None:
    """Reserve from `table`'s id sequence the ids an INSERT of every staged row in file order would take, and
    return the offset that gives each row its id (`s.row_no + offset`); None when the rows' numbers have gaps
    (a CSV line break inside a value): then insert ORDER BY row_no as usual.

    The INSERT then needs no sort of every row in file order (0.25–0.4 of 0.65–0.85 s for 200,000
    residents). For a bulk insert of every staged row only: the table is locked against other writers
    until the transaction ends (no one else takes a value of the sequence meanwhile). Ids are those the
    sorted INSERT would give; like nextval, a rollback does not give them back.
    """
    first, last, rows = session.execute(
        text(f"SELECT min(row_no), max(row_no), count(*) FROM {staged.spec.stage}")
    ).one()
    if not rows or last - first + 1 != rows:
        return None
    return reserve_ids(session, table, rows) - first


def lock_for_writing(session: Session, table: str) -> None:
    """Take, until the transaction ends, the lock of the imports into `table` (a transaction-level advisory
    lock named by the table), once the file is staged and before it is compared with the table: an import of
    an overlapping file at the same time waits for this one, then finds its rows there (refused as existing,
    or replaced), instead of failing on the unique key at its write. The table itself is not locked: other
    writers (the web's edits) go on while a large file is imported."""
    session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": import_lock_name(table)})


def import_lock_name(table: str) -> str:
    """Return the name of the advisory lock of the imports into `table` (lock_for_writing)."""
    return f"gridkit.import.{table}"


def reserve_ids(session: Session, table: str, n: int) -> int:
    """Lock `table` against other writers until the transaction ends (SHARE ROW EXCLUSIVE: no one else takes a
    value of its id sequence meanwhile), take `n` (at least 1) consecutive ids from the sequence and return the
    first. Like nextval, a rollback does not give them back."""
    session.execute(text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
    sequence = session.scalar(text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": table})
    base = session.scalar(text("SELECT nextval(CAST(:s AS regclass))"), {"s": sequence})
    session.execute(text("SELECT setval(CAST(:s AS regclass), :last)"), {"s": sequence, "last": base + n - 1})
    return base


def report_existing(
    job: Job,
    staged: Staged,
    *,
    table: str,
    column: str,
    name: str,
    what: str,
    kind: str = "exists",
    message: str = "imports.exists",
) -> int:
    """Record every row whose key is in `table` already (refused unless replacing); return how many.

    `what` is the catalogue key naming the row's subject, with {label}; `message` the sentence (with {what}
    and {id}) of problem `kind`."""
    spec = staged.spec
    rows = job.session.execute(
        text(
            # A repeated key is reported as a duplicate: only its first row is compared with the database.
            # (DISTINCT ON sorts the matches only: no index on the staging table needed.)
            f"SELECT row_no, label, id FROM (SELECT DISTINCT ON (s.{spec.key}) s.row_no, s.{spec.label} AS label, "
            f"t.id FROM {spec.stage} s JOIN {table} t ON t.{column} = s.{spec.key} ORDER BY s.{spec.key}, s.row_no) m "
            "ORDER BY row_no"
        )
    ).all()
    for row in rows:
        job.report_row(
            row.row_no,
            kind,
            name,
            Message(message, what=Message(what, label=row.label), id=row.id),
            row.label,
        )
    return len(rows)


def finish(
    job: Job,
    staged: Staged,
    *,
    table: str,
    column: str,
    label: str,
    set_by_insert: str,
    updated_ids: list[int] | None = None,
) -> dict:
    """Assign what SQL did not, then count; return {"assigned", "unassigned", "unassigned_rows"}.

    With no published edition nothing is assigned: the subjects wait for the publish, which assigns
    them in its own transaction. `set_by_insert` is an SQL condition on the target row `t` for rows
    whose cell the INSERT already set (points when `staged.cells_computed`, residents of a building);
    the other rows are assigned by `assign_subjects`.
    """
    session, spec = job.session, staged.spec
    join = f"FROM {spec.stage} s JOIN {table} t ON t.{column} = s.{spec.key}{CELL_JOIN[spec.kind]}"
    if staged.edition is not None:
        ids = list(session.scalars(text(f"SELECT t.id {join} WHERE NOT ({set_by_insert})")))
        ids = sorted(set(ids) | set(updated_ids or ()))
        if ids:
            assign_subjects(session, [spec.kind], edition=staged.edition, where_ids={spec.kind: ids})
    unassigned = session.scalar(text(f"SELECT count(*) {join} WHERE {CELL[spec.kind]} IS NULL"))
    listed = [
        {"row": r.row_no, "id": r.id, "code": r.label}
        for r in session.execute(
            text(
                f"SELECT s.row_no, t.id, t.{label} AS label {join} WHERE {CELL[spec.kind]} IS NULL "
                "ORDER BY s.row_no LIMIT :n"
            ),
            {"n": LISTED_ROWS},
        )
    ]
    session.expire_all()
    return {"assigned": staged.rows - unassigned, "unassigned": unassigned, "unassigned_rows": listed}
