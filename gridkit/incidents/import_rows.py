"""The rows of a historic-case file, a chunk at a time: read, checked, parsed and given their responsibility.

gridkit.incidents.importer streams a file through `chunks` (pandas frames of at most CHUNK_ROWS rows, their
index the row's place in the file) and `check_chunk`, which records every problem of the chunk's rows (with
its line, through the message catalogue) on the import's ProblemList and returns the rows parsed
(`CheckedRows`); `Context` holds what every chunk is checked against (categories, departments, work grid
versions, coordinators, the base cell index), read once per import.
"""

from __future__ import annotations

import codecs
import unicodedata
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.assign import base_cell_index
from gridkit.coords import dms_degrees
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.work.membership import members_in_edition_sql
from gridkit.io.crs import lonlat_converter
from gridkit.io.csvdialect import csv_delimiter, decimal_points, has_decimal_comma, reads_decimal_commas
from gridkit.io.problems import problem
from gridkit.io.tables import at, place
from gridkit.messages import Message
from gridkit.models import Department, IncidentCategory
from gridkit.rules import IncidentState, local_tz, now

__all__ = [
    "CHUNK_ROWS",
    "CheckedRows",
    "Context",
    "check_chunk",
    "chunks",
    "file_codec",
    "file_delimiter",
    "note_outside",
    "responsibility",
]

# Rows read, checked and staged at a time: memory stays flat in the file's length.
CHUNK_ROWS = 50_000
# A case's code: the mapping's prefix, '-', the file's id (incident.code is varchar(30)).
CODE_LENGTH = 30
_CODECS = ("utf-8-sig", "gb18030")


def file_codec(path: Path, encoding: str | None) -> tuple[str, int]:
    """Return the file's text encoding (`encoding`, else UTF-8 if every byte decodes as such, else GB18030) and
    its number of lines (a file's rows, give or take values spanning lines), read once in blocks."""
    if not path.is_file():
        raise NotFound("incident_import.file_missing", path=str(path))
    for codec in [encoding] if encoding else _CODECS:
        decoder, lines = codecs.getincrementaldecoder(codec)(), 0
        try:
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    decoder.decode(block)
                    lines += block.count(b"\n")
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        except LookupError:
            raise ValidationError("incident_import.encoding", path=path.name) from None
        return codec, lines
    raise ValidationError("incident_import.encoding", path=path.name)


def file_delimiter(path: Path, codec: str) -> str:
    """Return the file's delimiter, read from its header line by the one CSV rule (comma, semicolon or tab)."""
    with path.open(encoding=codec, newline="") as f:
        return csv_delimiter(path, f.readline().rstrip("\r\n"))


def chunks(path: Path, codec: str, delimiter: str = ",") -> Iterator[pd.DataFrame]:
    """Yield the file's rows as text frames of at most CHUNK_ROWS rows (index: the row's place in the file)."""
    read = {
        "dtype": str,
        "keep_default_na": False,
        "encoding": codec,
        "chunksize": CHUNK_ROWS,
        "index_col": False,
        "sep": delimiter,
    }
    try:
        # A first row with more cells than the header is a warning of lost data to pandas: an error here.
        with warnings.catch_warnings(), pd.read_csv(path, **read) as reader:
            warnings.simplefilter("error", pd.errors.ParserWarning)
            yield from reader
    except pd.errors.EmptyDataError:
        raise ValidationError("incident_import.empty", path=path.name) from None
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:  # a quote left open, a row with more cells
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError("incident_import.unreadable", file=path.name, reason=reason) from None


class Context:
    """What every chunk of an import is checked against and resolved with, read once."""

    def __init__(self, session: Session, mapping: dict, path: Path, delimiter: str = ","):
        self.mapping, self.cols, self.path = mapping, mapping["columns"], path
        self.decimal_commas = reads_decimal_commas(delimiter)
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
    line = frame.index.to_numpy() + 2  # header is line 1
    name = ctx.path.name

    def fail(mask, kind, key, **params):
        for i in np.flatnonzero(np.asarray(mask)):
            if problems.counted(kind):
                continue
            values = {k: (v(i) if callable(v) else v) for k, v in params.items()}
            message = at(place(name, "line", int(line[i])), Message(f"incident_import.{key}", **values))
            problems.append(problem(kind, message, index=int(line[i])))

    # A NUL byte is no text: PostgreSQL refused the staging COPY with a traceback naming no line. The row is a
    # problem (the file is refused) and is staged without it, so that the file's other problems are found too.
    for column in sorted({c for c in cols.values() if isinstance(c, str) and c in frame}):
        nul = frame[column].str.contains("\x00", regex=False)
        if nul.any():
            fail(nul, "nul_byte", "nul_byte", column=column)
            frame[column] = frame[column].str.replace("\x00", "", regex=False)
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
    texts = {"lon": lambda i: lon_raw.iat[i], "lat": lambda i: lat_raw.iat[i]}
    unread = ~empty & (lon.isna() | lat.isna())
    comma = unread & (lon_raw.map(has_decimal_comma) | lat_raw.map(has_decimal_comma))
    fail(comma, "bad_location", "location_decimal_comma", **texts)
    fail(unread & ~comma, "bad_location", "location_not_numbers", **texts)
    if ctx.to_lonlat is None:
        fail(~empty & ((lon.abs() > 180) | (lat.abs() > 90)), "bad_location", "location_not_lon_lat", **texts)
    placeholder = np.zeros(n, dtype=bool)
    for px, py in ctx.mapping.get("placeholder_locations") or []:
        placeholder |= np.isclose(lon.to_numpy(), px) & np.isclose(lat.to_numpy(), py)
    no_place = empty.to_numpy() | placeholder
    for i in np.flatnonzero(no_place):
        kind = "placeholder_location" if placeholder[i] else "no_location"
        if notes.counted(kind):
            continue
        what = Message(f"incident_import.{kind}", lon=lon_raw.iat[i], lat=lat_raw.iat[i])
        notes.append(problem(kind, at(place(ctx.path.name, "line", int(line[i])), what), index=int(line[i])))
    lon = lon.to_numpy(dtype=float).copy()
    lat = lat.to_numpy(dtype=float).copy()
    lon[no_place], lat[no_place] = np.nan, np.nan
    if ctx.to_lonlat is not None:  # x, y in the mapping's "crs": to CGCS2000 lon/lat
        placed = np.isfinite(lon) & np.isfinite(lat)
        lon[placed], lat[placed] = ctx.to_lonlat(lon[placed], lat[placed])
    return lon, lat, no_place


def note_outside(ctx: Context, rows: CheckedRows, cells: np.ndarray, notes: list) -> None:
    """Note each row with a place outside every base cell of the current edition (kept, unassigned)."""
    if ctx.edition is None:
        return
    for i in np.flatnonzero(~rows.no_place & (cells == 0)):
        if notes.counted("outside_grid"):
            continue
        what = Message("incident_import.outside_grid", lon=float(rows.lon[i]), lat=float(rows.lat[i]))
        line = int(rows.lines[i])
        notes.append(problem("outside_grid", at(place(ctx.path.name, "line", line), what), index=line))


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
