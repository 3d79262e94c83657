"""Bulk import of historic cases with their own timestamps, through a mapping file.

The mapping (JSON) names the file's columns, its time format and zone, and maps the file's
request types and states to gridkit categories and states:

    {"source": "baltimore311", "code_prefix": "BAL",
     "columns": {"external_id": "ServiceRequestNum", "category": "SRType", "reported_at": "CreatedDate",
                 "closed_at": "CloseDate", "due_at": "DueDate", "state": "SRStatus",
                 "lon": "Longitude", "lat": "Latitude", "description": "SRType"},
     "time_format": "%m/%d/%Y %I:%M:%S %p", "timezone": "America/New_York",
     "placeholder_locations": [[-77.0, 39.0]], "crs": null,
     "categories": {"SW-Dirty Alley": "E0103", …}, "default_category": null,
     "states": {"Closed": "closed", "Open": "dispatched", …}}

The file (CSV in UTF-8, GB18030 or UTF-16, or XLSX: read by gridkit.io.tables, the reader of every import) is
streamed (gridkit.incidents.import_rows: CHUNK_ROWS rows at a time, memory flat in its length):
each chunk's rows are checked, given their base cell (the exact point index of `gridkit assign`), work cell
as of the report time, coordinator and deadline, and COPYed into a staging table (temporary, dropped at
commit). Any problem (unparseable or future time, unmapped type or state, a case repeated in the file or
already imported, a closing before the report) refuses the whole file with every problem listed (the first
LISTED_PROBLEMS one by one, the rest counted by kind). Rows without a usable location (empty, or one of the
placeholder points) are imported without a place and noted row by row: kept, unassigned, in the
supervisor's queue; never dropped. A "crs" (as --src-crs: "EPSG:4547", "gcj02") says that the lon and lat
columns hold x, y in that coordinate system (a case system's Gauss-Kruger metres); placeholders are in it too.
Then the cases and their history are written from the staging table, each in one statement (a bulk intake
builds the tables' indexes and foreign keys again after it: gridkit.spatial.bulk.rebuilt_indexes).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.errors import NotFound, ValidationError
from gridkit.incidents.deadlines import due_many, spent_many
from gridkit.incidents.import_rows import (
    CheckedRows,
    Context,
    case_frames,
    check_chunk,
    note_outside,
    open_cases,
    open_quote,
    responsibility,
)
from gridkit.incidents.responsible import assign_work_cells, mark_dispatch_gaps
from gridkit.io.crs import lonlat_converter
from gridkit.io.problems import ProblemList, first_problem, problem, problem_count
from gridkit.io.subjects.staging import reserve_ids
from gridkit.io.tables import at, place
from gridkit.messages import Message
from gridkit.rules import SRID
from gridkit.spatial.bulk import rebuilt_indexes

REQUIRED_COLUMNS = ("external_id", "category", "reported_at")


def load_mapping(path) -> dict:
    """Return the mapping file's content, checked for its required parts."""
    path = Path(path)
    if not path.is_file():
        raise NotFound("incident_import.mapping_missing", path=str(path))
    try:
        mapping = json.loads(path.read_text(encoding="utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError("incident_import.mapping_unreadable", path=path.name, reason=str(exc)) from None
    columns = mapping.get("columns") or {}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise ValidationError("incident_import.mapping_columns", path=path.name, missing=", ".join(missing))
    lonlat_converter(mapping.get("crs"), path.name)  # a CRS named there must be one PROJ can bring to CGCS2000
    return mapping


# The staging table: one row per row of the file, as the cases will be stored (seq: the row's place among
# the file's rows, from 0; its case's id is seq plus an offset reserved from the sequence).
_STAGE = "gk_stage_case"
_STAGED = (
    ("seq", "int"),
    ("line", "int"),
    ("code", "text"),
    ("external_id", "text"),
    ("category_code", "text"),
    ("description", "text"),
    ("status", "text"),
    ("raw_state", "text"),
    ("lon", "float8"),
    ("lat", "float8"),
    ("reported_at", "timestamptz"),
    ("closed_at", "timestamptz"),
    ("moved_at", "timestamptz"),
    ("deadline", "timestamptz"),
    ("total_work_us", "bigint"),
    ("dept_code", "text"),
    ("base_cell_id", "int"),
    ("work_cell_id", "int"),
    ("coordinator_id", "int"),
    ("later", "boolean"),
)


def import_incidents(
    session: Session,
    path,
    mapping: dict,
    *,
    encoding: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Import historic cases; return counts, the per-row notes (no location) and the assignment.

    `progress(bytes read, the file's bytes)` is called after each chunk. All or nothing; never commits."""
    path = Path(path)
    stream = open_cases(path, encoding)
    header = stream.header
    problems, notes = ProblemList(header.problems), ProblemList(header.notes)
    absent = [c for c in mapping["columns"].values() if c and c not in header.columns]
    if absent:
        # What the header's problems say (a separator gridkit does not split on) is in the report.
        raise ValidationError(
            "incident_import.columns_absent", file=path.name, columns=", ".join(absent), problems=list(problems)
        )
    source = str(mapping.get("source") or path.stem)[:30]
    columns = ", ".join(f"{name} {kind}" for name, kind in _STAGED)
    session.execute(text(f"DROP TABLE IF EXISTS {_STAGE}"))
    session.execute(text(f"CREATE TEMP TABLE {_STAGE} ({columns}) ON COMMIT DROP"))
    ctx, n = Context(session, mapping, path, header.source, header.unit), 0
    for frame in case_frames(stream, mapping, problems):
        rows = check_chunk(ctx, frame, problems, notes)
        _stage(session, ctx, rows, n, notes)
        n += len(frame)
        if progress is not None:
            progress(stream.done, max(stream.size, stream.done))
    if (quote := open_quote(problems)) is not None:  # the rest of the file is unread: nothing after it is known
        reason = first_problem([quote])
        raise ValidationError("incident_import.unreadable", file=path.name, reason=reason, problems=problems)
    _report_repeated(session, ctx, problems)
    if problems:
        problems.sort(key=lambda p: (p["index"] is not None, p["index"] or 0))
        count = problem_count(problems)
        first = first_problem(problems)
        raise ValidationError("incident_import.refused", file=path.name, count=count, first=first, problems=problems)
    without, assigned = session.execute(
        text(f"SELECT count(*) FILTER (WHERE lon IS NULL), count(base_cell_id) FROM {_STAGE}")
    ).one()
    _refuse_elsewhere(session, path.name, n - without, assigned)
    states = dict(session.execute(text(f"SELECT status, count(*) FROM {_STAGE} GROUP BY status ORDER BY status")).all())
    waiting = 0
    if n:  # a file of a header only imports nothing
        base = _write(session, n, f"import:{source}"[:100], source)
        later = session.scalars(text(f"SELECT :base + seq FROM {_STAGE} WHERE later ORDER BY seq"), {"base": base})
        if later := list(later):
            assign_work_cells(session, later)
        # Cases imported as dispatched with nobody to do them: listed as waiting for a manual dispatch, with why.
        waiting = mark_dispatch_gaps(session, base, base + n - 1)
    session.execute(text(f"DROP TABLE {_STAGE}"))
    notes.sort(key=lambda p: p["index"] or 0)  # by line, as the user reads the file
    return {
        "file": path.name,
        "source": source,
        "imported": n,
        "without_location": without,
        "assigned": assigned,
        "unassigned": n - assigned,
        "waiting_dispatch": waiting,
        "states": states,
        "notes": notes,
    }


def _refuse_elsewhere(session: Session, display: str, located: int, assigned: int) -> None:
    """Refuse a file none of whose located cases lies within 0.5° (about 50 km) of the city's admin units:
    another city's cases (Baltimore's in Shenzhen), lon and lat swapped, or another CRS. Kept, they would fill
    the supervisor's unassigned queue with cases no coordinator can ever handle."""
    if not located or assigned:
        return
    near, km = session.execute(
        text(
            "WITH city AS "
            "(SELECT ST_SetSRID(ST_Expand(ST_Extent(geom)::geometry, 0.5), :srid) AS box FROM admin_unit) "
            f"SELECT count(*) FILTER (WHERE ST_Intersects(ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid), city.box)), "
            f"round(min(ST_Distance(ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid)::geography, "
            f"ST_Centroid(city.box)::geography)) / 1000) "
            f"FROM {_STAGE} s, city WHERE s.lon IS NOT NULL AND city.box IS NOT NULL"
        ),
        {"srid": SRID},
    ).one()
    if km is not None and not near:
        raise ValidationError("incident_import.elsewhere", file=display, located=located, km=int(km))


def _stage(session: Session, ctx: Context, rows: CheckedRows, first: int, notes: ProblemList) -> None:
    """COPY one chunk's rows, with their responsibility and deadline, into the staging table; note each row placed
    outside every base cell."""
    depts = rows.categories.map(ctx.dept_of)
    cells, work_cells, later = responsibility(ctx, rows, depts)
    note_outside(ctx, rows, cells, notes)
    coordinators = np.array([ctx.coordinator_of.get(int(w), 0) for w in work_cells], dtype=np.int64)
    hours = rows.categories.map(ctx.hours).fillna(0).astype(float)
    around = rows.categories.map(ctx.around_the_clock).astype("boolean").fillna(True).astype(bool)
    computed = due_many(rows.reported, hours, around, ctx.calendar)
    # The case's time from report to closing, counted as its limits count (the times as stored: to the second).
    closed = rows.closed.where(rows.states == "closed")
    total = spent_many(rows.reported.dt.floor("s"), closed.dt.floor("s"), around, ctx.calendar)
    n = len(rows.lines)
    values = {
        "seq": pa.array(np.arange(first, first + n), pa.int32()),
        "line": pa.array(rows.lines, pa.int32()),
        "code": _texts(rows.codes),
        "external_id": _texts(rows.external_ids),
        "category_code": _texts(rows.categories),
        "description": _texts(rows.description),
        "status": _texts(rows.states),
        "raw_state": pa.nulls(n, pa.string()) if rows.raw_states is None else _texts(rows.raw_states),
        "lon": pa.array(rows.lon, mask=rows.no_place),
        "lat": pa.array(rows.lat, mask=rows.no_place),
        "reported_at": _utc_seconds(rows.reported),
        "closed_at": _utc_seconds(rows.closed.where(rows.states == "closed")),
        "moved_at": _utc_seconds(rows.closed.where(rows.closed.notna(), rows.reported)),
        "deadline": _utc_seconds(rows.due.where(rows.due.notna(), computed)),
        "total_work_us": pa.Array.from_pandas(total, type=pa.int64()),
        "dept_code": _texts(depts),
        "base_cell_id": _ids(cells),
        "work_cell_id": _ids(work_cells),
        "coordinator_id": _ids(coordinators),
        "later": pa.array(later),
    }
    _copy_arrow(session, _STAGE, values)


def _report_repeated(session: Session, ctx: Context, problems: ProblemList) -> None:
    """Record every row whose case appeared on an earlier row of the file, or was imported before."""
    repeated = session.execute(
        text(
            f"WITH r AS (SELECT code, min(line) AS first FROM {_STAGE} WHERE external_id <> '' AND code IS NOT NULL "
            f"GROUP BY code HAVING count(*) > 1) SELECT s.line, s.external_id, r.first FROM {_STAGE} s "
            "JOIN r USING (code) WHERE s.line <> r.first ORDER BY s.line"
        )
    )
    for row in repeated:
        message = Message("incident_import.duplicate_id", id=row.external_id, first=row.first)
        _row_problem(problems, ctx, row.line, "duplicate_id", message)
    taken = session.execute(
        text(
            f"SELECT s.line, s.external_id, i.code FROM {_STAGE} s JOIN incident i ON i.code = s.code "
            "WHERE s.external_id <> '' ORDER BY s.line"
        )
    )
    for row in taken:
        message = Message("incident_import.already_imported", id=row.external_id, code=row.code)
        _row_problem(problems, ctx, row.line, "already_imported", message)


def _row_problem(problems: ProblemList, ctx: Context, line: int, kind: str, message: Message) -> None:
    if not problems.counted(kind):
        problems.append(problem(kind, at(place(ctx.path.name, ctx.unit, line), message), index=line))


def _write(session: Session, n: int, actor: str, source: str) -> int:
    """Write the staged cases and their history in file order; return the offset of their ids (id = offset + seq).

    The ids are reserved under a lock that keeps other writers of cases out until the transaction ends."""
    base = reserve_ids(session, "incident", n)
    moved = session.scalar(text(f"SELECT count(*) FROM {_STAGE} WHERE status <> 'reported'"))
    params = {"base": base, "actor": actor, "source": source, "srid": SRID}
    # A bulk intake (at least BULK_INDEX_ROWS cases, half as many as stored) builds the tables' indexes and
    # foreign keys once after its rows instead of updating and checking them row by row.
    with rebuilt_indexes(session, "incident", n), rebuilt_indexes(session, "incident_history", n + moved):
        session.execute(
            text(
                "INSERT INTO incident (id, code, category_code, description, status, geom, reporter, source, "
                "external_id, reported_at, closed_at, dept_code, rework_count, revision, base_cell_id, "
                "work_cell_id, coordinator_id, deadline, total_work_us) "
                "SELECT :base + seq, code, category_code, description, status, CASE WHEN lon IS NULL THEN NULL "
                "ELSE ST_SetSRID(ST_MakePoint(lon, lat), :srid) END, :source, :source, external_id, reported_at, "
                "closed_at, dept_code, 0, 0, base_cell_id, work_cell_id, coordinator_id, deadline, total_work_us "
                f"FROM {_STAGE} "
                "ORDER BY seq"
            ),
            params,
        )
        # "reported" at the report time, then the file's state at its closing (or report) time.
        session.execute(
            text(
                "INSERT INTO incident_history (incident_id, at, actor, from_status, to_status, note) "
                "SELECT :base + seq, at, :actor, from_status, to_status, note FROM ("
                f"  SELECT 0 AS step, seq, reported_at AS at, NULL AS from_status, 'reported' AS to_status, "
                f"  'imported' AS note FROM {_STAGE}"
                "  UNION ALL SELECT 1, seq, moved_at, 'reported', status, "
                "  CASE WHEN raw_state IS NULL THEN 'imported' ELSE 'imported; source state ' || raw_state END "
                f"  FROM {_STAGE} WHERE status <> 'reported') h ORDER BY step, seq"
            ),
            params,
        )
    return base


def _ids(values: np.ndarray) -> pa.Array:
    """Return ids with 0 as missing (NULL)."""
    return pa.array(values, pa.int32(), mask=values == 0)


def _texts(values: pd.Series) -> pa.Array:
    """Return text values (NaN or None missing) as a pyarrow string array."""
    return pa.Array.from_pandas(values.to_numpy(dtype=object), type=pa.string())


def _utc_seconds(values: pd.Series) -> pa.Array:
    """Return UTC times (NaT missing) to the second, as a pyarrow timestamp array."""
    return pc.cast(pa.Array.from_pandas(values), pa.timestamp("s", tz="UTC"), safe=False)


def _copy_arrow(session: Session, table: str, values: dict[str, pa.Array]) -> None:
    """COPY columns of pyarrow values into `table` (a fixed name of this module) as CSV written by pyarrow: texts
    quoted, so that only a missing value (unquoted, empty) reads as NULL."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.table(values), sink, pa_csv.WriteOptions(include_header=False))
    cursor = db.driver_connection(session).cursor()
    with cursor.copy(f"COPY {table} ({', '.join(values)}) FROM STDIN (FORMAT csv)") as copy:
        copy.write(memoryview(sink.getvalue()))
