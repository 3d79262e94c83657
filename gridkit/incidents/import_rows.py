"""The rows of a historic-case file, a chunk at a time: read, checked, parsed and given their responsibility.

gridkit.incidents.importer opens a file with the tabular reader every import uses (`open_cases`:
gridkit.io.tables, so encodings, XLSX, quotes and NUL bytes are read as for every other table), streams it through
`case_frames` (pandas text frames of at most CHUNK_ROWS rows, their index the row's line, or Excel row) and
`check_chunk`, which records every problem of the chunk's rows (with
its line, through the message catalogue) on the import's ProblemList and returns the rows parsed
(`CheckedRows`); `Context` holds what every chunk is checked against (categories, departments, work grid
versions, coordinators, the base cell index), read once per import.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.assign import base_cell_index
from gridkit.coords import dms_degrees, dms_fault
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.work.membership import members_in_edition_sql
from gridkit.io.crs import lonlat_converter
from gridkit.io.csvdialect import decimal_points, has_decimal_comma, reads_decimal_commas
from gridkit.io.problems import problem
from gridkit.io.tables import TableReadError, TableStream, at, open_table, place
from gridkit.messages import Message
from gridkit.models import Department, IncidentCategory
from gridkit.pii import public_location, typed_location
from gridkit.rules import IncidentState, local_tz, now

__all__ = [
    "CHUNK_ROWS",
    "CheckedRows",
    "Context",
    "case_frames",
    "check_chunk",
    "note_outside",
    "open_cases",
    "open_quote",
    "responsibility",
]

# Rows read, checked and staged at a time: memory stays flat in the file's length (the CSV reader reads at most
# gridkit.io.csvtable.BLOCK_ROWS lines at a time).
CHUNK_ROWS = 50_000
# A case's code: the mapping's prefix, '-', the file's id (incident.code is varchar(30)).
CODE_LENGTH = 30


def open_cases(path: Path, encoding: str | None) -> TableStream:
    """Open the case file with the tabular reader every import uses (gridkit.io.tables.open_table: CSV in UTF-8,
    GB18030 or UTF-16/32 with its byte order mark, or XLSX; quotes strict, NUL bytes and undecodable lines
    reported by line); a missing or empty file is said in the historic-case import's words."""
    try:
        return open_table(path, encoding=encoding, chunk_rows=CHUNK_ROWS)
    except TableReadError as exc:
        if exc.code == "imports.table_not_found":
            raise NotFound("incident_import.file_missing", path=str(path)) from None
        if exc.code in ("imports.table_empty", "imports.csv_no_header"):
            raise ValidationError("incident_import.empty", path=path.name) from None
        raise


def case_frames(stream: TableStream, mapping: dict, problems: list) -> Iterator[pd.DataFrame]:
    """Yield the stream's rows as text frames of the mapped columns (empty cells as "", index: the row's line or
    Excel row); record what the reader found wrong in each chunk's rows on `problems`."""
    columns = sorted({c for c in mapping["columns"].values() if c})
    times = {mapping["columns"].get(k) for k in ("reported_at", "closed_at", "due_at")} - {None}
    for chunk in stream:
        for found in chunk.problems:
            problems.append(_case_problem(found))
        values = {c: pc.fill_null(chunk.values(c), "").to_numpy(zero_copy_only=False) for c in columns}
        # A cell Excel holds as a date (typed, not text) is read as ISO text: written back in the mapping's format.
        form = mapping.get("time_format")
        for position, column in chunk.dates:
            if form and column in times:
                values[column][position] = datetime.fromisoformat(values[column][position]).strftime(form)
        frame = pd.DataFrame(values, index=pd.Index(chunk.numbers, dtype=np.int64))
        yield frame


def _case_problem(found: dict) -> dict:
    """Return a problem the reader found in a row, a NUL byte said as the historic-case import says it."""
    if found["kind"] != "nul_byte":
        return found
    where = found["params"]["where"]
    where = Message(where["key"], **where["params"])
    message = Message("incident_import.nul_byte", column=found["field"])
    return problem("nul_byte", at(where, message), index=found["index"])


def open_quote(problems: list) -> dict | None:
    """Return the problem of a quote left open to the end of the file (the rest of it unread), if there is one."""
    for found in problems:
        inner = (found.get("params") or {}).get("message")
        if isinstance(inner, dict) and inner.get("key") == "imports.quote_open_to_end":
            return found
    return None


class Context:
    """What every chunk of an import is checked against and resolved with, read once."""

    def __init__(self, session: Session, mapping: dict, path: Path, source: dict, unit: str = "line"):
        self.mapping, self.cols, self.path, self.unit = mapping, mapping["columns"], path, unit
        self.decimal_commas = reads_decimal_commas(source.get("delimiter"))
        self.to_lonlat = lonlat_converter(mapping.get("crs"), path.name)  # None: the columns are lon/lat
        categories = list(session.scalars(select(IncidentCategory)))
        from gridkit.incidents.calendar import load_calendar
        from gridkit.incidents.categories import step_hours

        self.known = {c.code for c in categories}
        existing = set(session.scalars(select(Department.code)))
        self.dept_of = {c.code: c.dept_code for c in categories if c.dept_code in existing}
        self.hours = {c.code: sum(step_hours(c).values()) for c in categories}
        # Deadlines count in working time on the deployment's calendar, but for categories around the clock.
        self.around_the_clock = {c.code: c.around_the_clock for c in categories}
        self.calendar = load_calendar(session)
        self.limit = pd.Timestamp(now())
        self.edition = current_edition(session)
        self.index = None
        self.versions = session.execute(
            text(
                "SELECT id, dept_code, valid_from, valid_to, base_edition_id FROM work_grid_version "
                "WHERE status IN ('published', 'retired') AND valid_from IS NOT NULL"
            )
        ).all()
        # Each version's members among the current edition's cells, matched by code (the one membership rule): the
        # rows reported while the current edition was in force are given their work cell here; the others later,
        # in SQL (`responsibility`'s mask).
        self.members = {
            v.id: np.array(
                session.execute(
                    text(f"{members_in_edition_sql(version=':v', edition=':e')} ORDER BY 1"),
                    {"v": v.id, "e": self.edition.id},
                ).all(),
                dtype=np.int64,
            ).reshape(-1, 2)
            for v in self.versions
            if self.edition is not None
        }
        self.coordinator_of = dict(
            session.execute(
                text(
                    "SELECT DISTINCT ON (ca.work_cell_id) ca.work_cell_id, c.id FROM coordinator_assignment ca "
                    "JOIN coordinator c ON c.id = ca.coordinator_id WHERE c.active ORDER BY ca.work_cell_id, c.id"
                )
            ).all()
        )
        self._session = session

    def cells_at(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Return the base cell of each point in the current edition (the exact index of `gridkit assign`)."""
        if self.index is None:
            self.index = base_cell_index(self._session, self.edition)
        return self.index.cells_at(lon, lat)


@dataclass
class CheckedRows:
    """One chunk's rows, checked and parsed: one value per row in each field (pandas/numpy, row order)."""

    lines: np.ndarray
    external_ids: pd.Series
    codes: pd.Series
    categories: pd.Series
    description: pd.Series
    states: pd.Series
    raw_states: pd.Series | None
    reported: pd.Series
    closed: pd.Series
    due: pd.Series
    lon: np.ndarray
    lat: np.ndarray
    no_place: np.ndarray


def check_chunk(ctx: Context, frame: pd.DataFrame, problems: list, notes: list) -> CheckedRows:
    """Return the chunk's rows parsed; record each problem (refusing the file) on `problems` and each row kept
    without a place on `notes` (ProblemLists: the first ones listed, the rest counted)."""
    cols, mapping = ctx.cols, ctx.mapping
    line = frame.index.to_numpy()  # the row's line (or Excel row): the header is 1
    name = ctx.path.name

    def fail(mask, kind, key, **params):
        for i in np.flatnonzero(np.asarray(mask)):
            if problems.counted(kind):
                continue
            values = {k: (v(i) if callable(v) else v) for k, v in params.items()}
            message = at(place(name, ctx.unit, int(line[i])), Message(f"incident_import.{key}", **values))
            problems.append(problem(kind, message, index=int(line[i])))

    ext = frame[cols["external_id"]].str.strip()
    fail(ext == "", "missing_id", "missing_id", column=cols["external_id"])
    prefix = str(mapping.get("code_prefix") or "IMP")
    longest = CODE_LENGTH - len(prefix) - 1
    length = ext.str.len()
    fail(
        length > longest,
        "id_too_long",
        "id_too_long",
        column=cols["external_id"],
        length=lambda i: int(length.iat[i]),
        prefix=prefix,
        longest=longest,
    )
    codes = (prefix + "-" + ext).where(length <= longest)  # too long: no code (not compared with others)
    reported, closed, due = _checked_times(frame, ctx, fail)
    categories = _categories(frame, ctx, fail)
    states = _states(frame, cols, mapping, closed, fail)
    lon, lat, no_place = _locations(frame, ctx, line, fail, notes)
    return CheckedRows(
        lines=line,
        external_ids=ext,
        codes=codes,
        categories=categories,
        description=frame[cols["description"]] if cols.get("description") else categories,
        states=states,
        raw_states=frame[cols["state"]] if cols.get("state") else None,
        reported=reported,
        closed=closed,
        due=due,
        lon=lon,
        lat=lat,
        no_place=no_place,
    )


def _times(frame: pd.DataFrame, column: str | None, mapping: dict) -> tuple[pd.Series, pd.Series]:
    """Return (UTC times, mask of non-empty values that failed to parse)."""
    if not column:
        empty = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        return empty, pd.Series(False, index=frame.index)
    raw = frame[column].str.strip()
    parsed = pd.to_datetime(raw, format=mapping.get("time_format") or "ISO8601", errors="coerce")
    if parsed.dt.tz is None:
        # A clock time the fall-back of daylight saving time shows twice (01:00-01:59 in New York) is its first
        # occurrence, as Python's own (fold=0): no row of a file is refused for the hour it was written in.
        parsed = parsed.dt.tz_localize(
            mapping.get("timezone") or local_tz().key,
            ambiguous=np.ones(len(parsed), dtype=bool),
            nonexistent="shift_forward",
        )
    parsed = parsed.dt.tz_convert("UTC")
    return parsed, (raw != "") & parsed.isna()


def _checked_times(frame: pd.DataFrame, ctx: Context, fail) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return the report, closing and due times (UTC); note unparseable, missing, future or reversed ones."""
    cols, mapping = ctx.cols, ctx.mapping
    form = mapping.get("time_format") or "ISO 8601"
    reported, bad = _times(frame, cols["reported_at"], mapping)
    column = cols["reported_at"]
    fail(bad, "bad_time", "bad_time_format", column=column, value=lambda i: frame[column].iat[i], format=form)
    fail(reported.isna() & ~bad, "missing_time", "missing_time", column=column)
    closed, bad_closed = _times(frame, cols.get("closed_at"), mapping)
    due, bad_due = _times(frame, cols.get("due_at"), mapping)
    for bad_other, key in ((bad_closed, "closed_at"), (bad_due, "due_at")):
        if cols.get(key):
            other = cols[key]
            fail(bad_other, "bad_time", "bad_time", column=other, value=lambda i, c=other: frame[c].iat[i])
    fail((reported > ctx.limit) | (closed > ctx.limit), "future_time", "future_time")
    fail(closed < reported, "closed_before_reported", "closed_before_reported")
    return reported, closed, due


def _categories(frame: pd.DataFrame, ctx: Context, fail) -> pd.Series:
    cols, mapping = ctx.cols, ctx.mapping
    raw = frame[cols["category"]].str.strip()
    mapped = raw.map(mapping.get("categories") or {})
    if mapping.get("default_category"):
        mapped = mapped.fillna(mapping["default_category"])
    value = lambda i: raw.iat[i]  # noqa: E731
    fail(mapped.isna(), "unmapped_category", "unmapped_category", column=cols["category"], value=value)
    wrong = mapped.notna() & ~mapped.isin(ctx.known)
    fail(wrong, "unknown_category", "unknown_category", category=lambda i: mapped.iat[i], value=value)
    return mapped


def _states(frame: pd.DataFrame, cols: dict, mapping: dict, closed: pd.Series, fail) -> pd.Series:
    if not cols.get("state"):
        return pd.Series(np.where(closed.notna(), "closed", "dispatched"), index=frame.index)
    raw = frame[cols["state"]].str.strip()
    mapped = raw.map(mapping.get("states") or {})
    fail(mapped.isna(), "unmapped_state", "unmapped_state", column=cols["state"], value=lambda i: raw.iat[i])
    allowed = {s.value for s in IncidentState} - {IncidentState.DUPLICATE.value}
    fail(
        mapped.notna() & ~mapped.isin(allowed),
        "bad_state",
        "bad_state",
        state=lambda i: mapped.iat[i],
        allowed=", ".join(sorted(allowed)),
    )
    return mapped


def _numbers(texts: pd.Series) -> pd.Series:
    """Return the texts as numbers (NaN where not one), full-width digits typed with a Chinese input method
    (１２１．４９) read too: only the rows not read at first are normalised (NFKC), so clean files pay nothing."""
    numbers = pd.to_numeric(texts, errors="coerce")
    again = numbers.isna() & texts.notna() & (texts != "")
    if again.any():
        numbers[again] = pd.to_numeric(texts[again].map(lambda v: unicodedata.normalize("NFKC", v)), errors="coerce")
        dms = again & numbers.isna()  # degrees, minutes and seconds: 113°58′4.13″E, 东经113度58分4.13秒
        numbers[dms] = texts[dms].map(dms_degrees).astype(float)
    return numbers


def _locations(frame: pd.DataFrame, ctx: Context, line: np.ndarray, fail, notes: list):
    """Return lon, lat (NaN where none) and the no-place mask; note each row kept without a place."""
    cols, n = ctx.cols, len(frame)
    if not cols.get("lon") or not cols.get("lat"):
        nan = np.full(n, np.nan)
        return nan, nan, np.ones(n, dtype=bool)
    lon_raw, lat_raw = frame[cols["lon"]].str.strip(), frame[cols["lat"]].str.strip()
    lon_text, lat_text = (
        (lon_raw, lat_raw) if not ctx.decimal_commas else (decimal_points(lon_raw), decimal_points(lat_raw))
    )
    lon, lat = _numbers(lon_text), _numbers(lat_text)
    empty = (lon_raw == "") | (lat_raw == "")
    # A case's place can be its caller's home: never quoted as typed (gridkit.pii.typed_location), its line says which.
    texts = {"location": lambda i: typed_location(lon_raw.iat[i], lat_raw.iat[i])}
    unread = ~empty & (lon.isna() | lat.isna())
    comma = unread & (lon_raw.map(has_decimal_comma) | lat_raw.map(has_decimal_comma))
    fail(comma, "bad_location", "location_decimal_comma", **texts)
    # Degrees, minutes and seconds past 60 (113°58′61″): what is wrong said (gridkit.coords.dms_fault).
    faults = lon_raw.where(unread & ~comma).map(dms_fault, na_action="ignore")
    faults = faults.where(faults.notna(), lat_raw.where(unread & ~comma).map(dms_fault, na_action="ignore"))
    dms = unread & ~comma & faults.notna()
    fail(dms, "bad_location", "location_dms", fault=lambda i: faults.iat[i], **texts)
    fail(unread & ~comma & ~dms, "bad_location", "location_not_numbers", **texts)
    if ctx.to_lonlat is None:
        fail(~empty & ((lon.abs() > 180) | (lat.abs() > 90)), "bad_location", "location_not_lon_lat", **texts)
    # Which of the mapping's placeholder locations a row holds (-1: none); the note names the mapping's, not the row's.
    placeholders = ctx.mapping.get("placeholder_locations") or []
    which = np.full(n, -1)
    for k, (px, py) in enumerate(placeholders):
        which[(which < 0) & np.isclose(lon.to_numpy(), px) & np.isclose(lat.to_numpy(), py)] = k
    placeholder = which >= 0
    no_place = empty.to_numpy() | placeholder
    for i in np.flatnonzero(no_place):
        kind = "placeholder_location" if placeholder[i] else "no_location"
        if notes.counted(kind):
            continue
        px, py = placeholders[which[i]] if placeholder[i] else ("", "")
        what = Message(f"incident_import.{kind}", lon=px, lat=py)
        notes.append(problem(kind, at(place(ctx.path.name, ctx.unit, int(line[i])), what), index=int(line[i])))
    lon = lon.to_numpy(dtype=float).copy()
    lat = lat.to_numpy(dtype=float).copy()
    lon[no_place], lat[no_place] = np.nan, np.nan
    if ctx.to_lonlat is not None:  # x, y in the mapping's "crs": to CGCS2000 lon/lat
        placed = np.isfinite(lon) & np.isfinite(lat)
        lon[placed], lat[placed] = ctx.to_lonlat(lon[placed], lat[placed])
    return lon, lat, no_place


def note_outside(ctx: Context, rows: CheckedRows, cells: np.ndarray, notes: list) -> None:
    """Note each row with a place outside every base cell of the current edition (kept, unassigned).

    The place is given as to the public (gridkit.pii.public_location, about 100 m), with its file and line: a
    case's place can be its caller's home, and the import's report is read and kept by whoever ran it, while
    the rounded place still tells another city, swapped columns or another coordinate system apart."""
    if ctx.edition is None:
        return
    # A place not read (a problem of its row, refusing the file) is NaN: outside nothing, and not a number to round.
    placed = ~rows.no_place & np.isfinite(rows.lon) & np.isfinite(rows.lat)
    for i in np.flatnonzero(placed & (cells == 0)):
        if notes.counted("outside_grid"):
            continue
        lon, lat = public_location(float(rows.lon[i]), float(rows.lat[i]))
        what = Message("incident_import.outside_grid", lon=lon, lat=lat)
        line = int(rows.lines[i])
        notes.append(problem("outside_grid", at(place(ctx.path.name, ctx.unit, line), what), index=line))


def responsibility(ctx: Context, rows: CheckedRows, depts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (base cell ids, work cell ids, mask of rows left to assign_work_cells), 0 for none.

    Base cells from the current edition (the exact point index `gridkit assign` uses: ST_Covers, ties to the
    smallest code). Work cells by the rule of gridkit.incidents.responsible: for a row reported while the current
    edition was in force, the work cell of its department's version valid then that holds its base cell's code
    (Context.members); a row reported earlier (under another edition, or before any) with a version valid then is
    left to assign_work_cells (the mask), run in SQL after the rows are stored.
    """
    n = len(rows.lon)
    cells = np.zeros(n, dtype=np.int64)
    work_cells = np.zeros(n, dtype=np.int64)
    later = np.zeros(n, dtype=bool)
    placed = ~rows.no_place
    if ctx.edition is not None and placed.any():
        cells[placed] = ctx.cells_at(rows.lon[placed], rows.lat[placed])
    at_ = rows.reported.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()  # datetime64, UTC
    current = np.zeros(n, dtype=bool)
    if ctx.edition is not None and ctx.edition.published_at is not None:
        current = at_ >= _utc64(ctx.edition.published_at)
    dept = depts.to_numpy(dtype=object)
    for v in ctx.versions:
        valid = (dept == v.dept_code) & (at_ >= _utc64(v.valid_from))
        if v.valid_to is not None:
            valid &= at_ < _utc64(v.valid_to)
        later |= valid & placed & ~current
        members = ctx.members.get(v.id)
        hit = valid & current & (cells > 0)
        if members is None or not hit.any() or not len(members):
            continue
        pos = np.clip(np.searchsorted(members[:, 0], cells[hit]), 0, len(members) - 1)
        found = members[pos, 0] == cells[hit]
        work_cells[np.flatnonzero(hit)[found]] = members[pos[found], 1]
    return cells, work_cells, later


def _utc64(value) -> np.datetime64:
    return pd.Timestamp(value).tz_convert("UTC").tz_localize(None).to_datetime64()
