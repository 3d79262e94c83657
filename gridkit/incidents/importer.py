"""Bulk import of historic cases with their own timestamps, through a mapping file.

The mapping (JSON) names the file's columns, its time format and zone, and maps the file's
request types and states to gridkit categories and states:

    {"source": "baltimore311", "code_prefix": "BAL",
     "columns": {"external_id": "ServiceRequestNum", "category": "SRType", "reported_at": "CreatedDate",
                 "closed_at": "CloseDate", "due_at": "DueDate", "state": "SRStatus",
                 "lon": "Longitude", "lat": "Latitude", "description": "SRType"},
     "time_format": "%m/%d/%Y %I:%M:%S %p", "timezone": "America/New_York",
     "placeholder_locations": [[-77.0, 39.0]],
     "categories": {"SW-Dirty Alley": "E0103", …}, "default_category": null,
     "states": {"Closed": "closed", "Open": "dispatched", …}}

Rows are checked first; any problem (unparseable or future time, unmapped type or state, a case
already imported, a closing before the report) refuses the whole file with every problem listed.
Rows without a usable location (empty, or one of the placeholder points) are imported without a
place and listed row by row as notes: kept, unassigned, in the supervisor's queue; never dropped.
Base cells (the exact point index of `gridkit assign`), work cells as of the report time and
coordinators are found before the rows are written once with COPY.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.assign import base_cell_index
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.io.vector import problem
from gridkit.models import Department, IncidentCategory
from gridkit.rules import IncidentState, now

REQUIRED_COLUMNS = ("external_id", "category", "reported_at")
# CSV for COPY: quoting keeps commas, tabs and newlines of descriptions; \N (never quoted) is NULL.
_CSV = "WITH (FORMAT csv, NULL '\\N')"


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
    return mapping


def _read(path: Path, encoding: str | None) -> pd.DataFrame:
    if not path.is_file():
        raise NotFound("incident_import.file_missing", path=str(path))
    for codec in [encoding] if encoding else ["utf-8-sig", "gb18030"]:
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=codec)
        except UnicodeDecodeError:
            continue
    raise ValidationError("incident_import.encoding", path=path.name)


def _times(frame: pd.DataFrame, column: str | None, mapping: dict) -> tuple[pd.Series, pd.Series]:
    """Return (UTC times, mask of non-empty values that failed to parse)."""
    if not column:
        empty = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
        return empty, pd.Series(False, index=frame.index)
    raw = frame[column].str.strip()
    parsed = pd.to_datetime(raw, format=mapping.get("time_format") or "ISO8601", errors="coerce")
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(
            mapping.get("timezone") or "Asia/Shanghai", ambiguous="NaT", nonexistent="shift_forward"
        )
    parsed = parsed.dt.tz_convert("UTC")
    return parsed, (raw != "") & parsed.isna()


@dataclass
class CheckedRows:
    """The file's rows, checked and parsed: one value per row in each field (pandas/numpy, row order)."""

    source: str
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
    notes: list = field(default_factory=list)


def import_incidents(session: Session, path, mapping: dict, *, encoding: str | None = None) -> dict:
    """Import historic cases; return counts, the per-row notes (no location) and the assignment."""
    path = Path(path)
    rows = check_rows(session, _read(path, encoding), mapping, path)
    n = len(rows.codes)
    ids = np.array(
        session.scalars(
            text("SELECT nextval(pg_get_serial_sequence('incident', 'id')) FROM generate_series(1, :n)"), {"n": n}
        ).all(),
        dtype=np.int64,
    )
    depts = _departments(session, rows.categories)
    cells, work_cells, later = responsibility(session, rows.lon, rows.lat, rows.no_place, rows.reported, depts)
    cases = _case_frame(rows, ids, depts, cells, work_cells, _coordinators(session, work_cells))
    cases["deadline"] = _text_times(
        rows.due.where(rows.due.notna(), rows.reported + _handling(session, rows.categories))
    )
    _copy_frame(session, "incident", cases)
    _copy_frame(session, "incident_history", _history_frame(ids, rows))
    if later.any():
        assign_work_cells(session, ids[later].tolist())
    assigned = int((cells > 0).sum())
    return {
        "file": path.name,
        "source": rows.source,
        "imported": n,
        "without_location": int(rows.no_place.sum()),
        "assigned": assigned,
        "unassigned": n - assigned,
        "states": rows.states.value_counts().to_dict(),
        "notes": rows.notes,
    }


def check_rows(session: Session, frame: pd.DataFrame, mapping: dict, path: Path) -> CheckedRows:
    """Return the file's rows parsed; refuse the whole file (ValidationError) listing every problem."""
    cols = mapping["columns"]
    absent = [c for c in cols.values() if c and c not in frame.columns]
    if absent:
        raise ValidationError("incident_import.columns_absent", file=path.name, columns=", ".join(absent))
    line = frame.index.to_numpy() + 2  # header is line 1
    problems: list[dict] = []

    def fail(mask, kind, message):
        for i in np.flatnonzero(np.asarray(mask)):
            problems.append(problem(kind, f"{path.name}, line {line[i]}: {message(i)}", index=int(line[i])))

    ext = frame[cols["external_id"]].str.strip()
    fail(ext == "", "missing_id", lambda i: f"{cols['external_id']} is empty.")
    fail(ext.duplicated() & (ext != ""), "duplicate_id", lambda i: f"{ext.iat[i]} appears twice in the file.")
    prefix = str(mapping.get("code_prefix") or "IMP")
    codes = (prefix + "-" + ext).str.slice(0, 30)
    taken = set(session.scalars(text("SELECT code FROM incident WHERE code = ANY(:c)"), {"c": codes.tolist()}))
    fail(codes.isin(taken), "already_imported", lambda i: f"case {ext.iat[i]} was imported before ({codes.iat[i]}).")
    reported, closed, due = _checked_times(frame, cols, mapping, fail)
    categories = _categories(session, frame, cols, mapping, fail)
    states = _states(frame, cols, mapping, closed, fail)
    lon, lat, no_place, notes = _locations(frame, cols, mapping, line, path.name, fail)
    if problems:
        raise ValidationError("incident_import.refused", file=path.name, count=len(problems), problems=problems)
    return CheckedRows(
        source=str(mapping.get("source") or path.stem)[:30],
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
        notes=notes,
    )


def _checked_times(frame: pd.DataFrame, cols: dict, mapping: dict, fail) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return the report, closing and due times (UTC); note unparseable, missing, future or reversed ones."""
    reported, bad = _times(frame, cols["reported_at"], mapping)
    fail(
        bad,
        "bad_time",
        lambda i: (
            f"{cols['reported_at']} {frame[cols['reported_at']].iat[i]!r} does not match "
            f"{mapping.get('time_format') or 'ISO 8601'}."
        ),
    )
    fail(reported.isna() & ~bad, "missing_time", lambda i: f"{cols['reported_at']} is empty.")
    closed, bad_closed = _times(frame, cols.get("closed_at"), mapping)
    fail(bad_closed, "bad_time", lambda i: f"{cols['closed_at']} {frame[cols['closed_at']].iat[i]!r} is not a time.")
    due, bad_due = _times(frame, cols.get("due_at"), mapping)
    fail(bad_due, "bad_time", lambda i: f"{cols['due_at']} {frame[cols['due_at']].iat[i]!r} is not a time.")
    limit = pd.Timestamp(now())
    fail((reported > limit) | (closed > limit), "future_time", lambda i: "a time lies in the future.")
    fail(closed < reported, "closed_before_reported", lambda i: "closed before it was reported.")
    return reported, closed, due


def responsibility(session: Session, lon, lat, no_place, reported: pd.Series, depts: pd.Series):
    """Return (base cell ids, work cell ids, mask of rows left to assign_work_cells), 0 for none.

    Base cells from the current edition (the exact point index `gridkit assign` uses: ST_Covers,
    ties to the smallest code). Work cells from each department's version valid at the row's
    report time; a version on another edition than the current one is left to the ST_Covers
    query of assign_work_cells (the mask), run after the rows are stored.
    """
    n = len(lon)
    cells = np.zeros(n, dtype=np.int64)
    work_cells = np.zeros(n, dtype=np.int64)
    later = np.zeros(n, dtype=bool)
    edition = current_edition(session)
    placed = ~no_place
    if edition is not None and placed.any():
        cells[placed] = base_cell_index(session, edition).cells_at(lon[placed], lat[placed])
    at = reported.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()  # datetime64, UTC
    dept = depts.to_numpy(dtype=object)
    versions = session.execute(
        text(
            "SELECT id, dept_code, valid_from, valid_to, base_edition_id FROM work_grid_version "
            "WHERE status IN ('published', 'retired') AND valid_from IS NOT NULL"
        )
    ).all()
    for v in versions:
        valid = (dept == v.dept_code) & (at >= _utc64(v.valid_from))
        if v.valid_to is not None:
            valid &= at < _utc64(v.valid_to)
        if edition is None or v.base_edition_id != edition.id:
            later |= valid & placed
            continue
        members = np.array(
            session.execute(
                text(
                    "SELECT base_cell_id, work_cell_id FROM work_cell_member WHERE version_id = :v ORDER "
                    "BY base_cell_id"
                ),
                {"v": v.id},
            ).all(),
            dtype=np.int64,
        ).reshape(-1, 2)
        hit = valid & (cells > 0)
        if not hit.any() or not len(members):
            continue
        pos = np.clip(np.searchsorted(members[:, 0], cells[hit]), 0, len(members) - 1)
        found = members[pos, 0] == cells[hit]
        work_cells[np.flatnonzero(hit)[found]] = members[pos[found], 1]
    return cells, work_cells, later


def _utc64(value) -> np.datetime64:
    return pd.Timestamp(value).tz_convert("UTC").tz_localize(None).to_datetime64()


def _coordinators(session: Session, work_cells: np.ndarray) -> np.ndarray:
    """Return the coordinator of each work cell (the active one with the smallest id), 0 for none."""
    first = dict(
        session.execute(
            text(
                "SELECT DISTINCT ON (ca.work_cell_id) ca.work_cell_id, c.id FROM coordinator_assignment ca "
                "JOIN coordinator c ON c.id = ca.coordinator_id WHERE c.active ORDER BY ca.work_cell_id, c.id"
            )
        ).all()
    )
    return np.array([first.get(int(w), 0) for w in work_cells], dtype=np.int64) if len(work_cells) else work_cells


def _categories(session, frame, cols, mapping, fail) -> pd.Series:
    table = mapping.get("categories") or {}
    default = mapping.get("default_category")
    raw = frame[cols["category"]].str.strip()
    mapped = raw.map(table)
    if default:
        mapped = mapped.fillna(default)
    fail(
        mapped.isna(),
        "unmapped_category",
        lambda i: f"{cols['category']} {raw.iat[i]!r} has no category in the mapping file.",
    )
    known = set(session.scalars(select(IncidentCategory.code)))
    wrong = mapped.notna() & ~mapped.isin(known)
    fail(wrong, "unknown_category", lambda i: f"category {mapped.iat[i]} (for {raw.iat[i]!r}) does not exist.")
    return mapped


def _states(frame, cols, mapping, closed, fail) -> pd.Series:
    if not cols.get("state"):
        return pd.Series(np.where(closed.notna(), "closed", "dispatched"), index=frame.index)
    raw = frame[cols["state"]].str.strip()
    mapped = raw.map(mapping.get("states") or {})
    fail(mapped.isna(), "unmapped_state", lambda i: f"{cols['state']} {raw.iat[i]!r} has no state in the mapping file.")
    allowed = {s.value for s in IncidentState} - {IncidentState.DUPLICATE.value}
    fail(
        mapped.notna() & ~mapped.isin(allowed),
        "bad_state",
        lambda i: f"state {mapped.iat[i]!r} is not one of {', '.join(sorted(allowed))}.",
    )
    return mapped


def _locations(frame, cols, mapping, line, name, fail):
    """Return lon, lat (NaN where none), the no-place mask and one note per row kept without a place."""
    if not cols.get("lon") or not cols.get("lat"):
        nan = np.full(len(frame), np.nan)
        return nan, nan, np.ones(len(frame), dtype=bool), []
    lon_raw, lat_raw = frame[cols["lon"]].str.strip(), frame[cols["lat"]].str.strip()
    lon, lat = pd.to_numeric(lon_raw, errors="coerce"), pd.to_numeric(lat_raw, errors="coerce")
    empty = (lon_raw == "") | (lat_raw == "")
    fail(
        ~empty & (lon.isna() | lat.isna()),
        "bad_location",
        lambda i: f"location {lon_raw.iat[i]!r}, {lat_raw.iat[i]!r} is not a pair of numbers.",
    )
    fail(
        ~empty & ((lon.abs() > 180) | (lat.abs() > 90)),
        "bad_location",
        lambda i: f"location {lon_raw.iat[i]}, {lat_raw.iat[i]} is not a longitude/latitude pair.",
    )
    placeholder = np.zeros(len(frame), dtype=bool)
    for px, py in mapping.get("placeholder_locations") or []:
        placeholder |= np.isclose(lon.to_numpy(), px) & np.isclose(lat.to_numpy(), py)
    no_place = empty.to_numpy() | placeholder
    notes = []
    for i in np.flatnonzero(no_place):
        kind = "placeholder_location" if placeholder[i] else "no_location"
        what = f"placeholder location {lon_raw.iat[i]}, {lat_raw.iat[i]}" if placeholder[i] else "no location"
        notes.append(
            problem(kind, f"{name}, line {line[i]}: {what}; kept without a place, unassigned.", index=int(line[i]))
        )
    lon = lon.to_numpy(dtype=float).copy()
    lat = lat.to_numpy(dtype=float).copy()
    lon[no_place], lat[no_place] = np.nan, np.nan
    return lon, lat, no_place, notes


def _handling(session, categories: pd.Series) -> pd.Series:
    """Return each row's total time allowed (all steps) from its category, as Timedeltas."""
    from gridkit.incidents.categories import step_hours

    hours = {c.code: sum(step_hours(c).values()) for c in session.scalars(select(IncidentCategory))}
    return pd.to_timedelta(categories.map(hours).fillna(0).astype(float), unit="h")


def _departments(session, categories: pd.Series) -> pd.Series:
    """Return each row's department: its category's, where that department exists."""
    existing = set(session.scalars(select(Department.code)))
    dept_of = {c.code: c.dept_code for c in session.scalars(select(IncidentCategory)) if c.dept_code in existing}
    return categories.map(dept_of)


def _case_frame(rows: CheckedRows, ids, depts, cells, work_cells, coordinators) -> pd.DataFrame:
    """Return the incident rows to COPY: one column per stored field (the deadline is added by the caller)."""
    return pd.DataFrame(
        {
            "id": ids,
            "code": rows.codes.to_numpy(),
            "category_code": rows.categories.to_numpy(),
            "description": rows.description.to_numpy(),
            "status": rows.states.to_numpy(),
            "geom": np.where(
                rows.no_place,
                None,
                [f"SRID=4490;POINT({x!r} {y!r})" for x, y in zip(rows.lon.tolist(), rows.lat.tolist())],
            ),
            "reporter": rows.source,
            "source": rows.source,
            "external_id": rows.external_ids.to_numpy(),
            "reported_at": _text_times(rows.reported),
            "closed_at": _text_times(rows.closed.where(rows.states == "closed")),
            "dept_code": depts.to_numpy(),
            "rework_count": 0,
            "revision": 0,
            "base_cell_id": _ids(cells),
            "work_cell_id": _ids(work_cells),
            "coordinator_id": _ids(coordinators),
        }
    )


def _ids(values: np.ndarray) -> pd.Series:
    """Return ids with 0 as missing (written as NULL)."""
    return pd.Series(values, dtype="Int64").mask(values == 0)


def _text_times(series: pd.Series) -> np.ndarray:
    return np.where(series.isna(), None, series.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_numpy(dtype=object))


def _history_frame(ids, rows: CheckedRows) -> pd.DataFrame:
    """Return the history rows to COPY: "reported" at the report time, then the file's state at its closing
    (or report) time for every case not still reported."""
    actor = f"import:{rows.source}"[:100]
    first = pd.DataFrame(
        {
            "incident_id": ids,
            "at": _text_times(rows.reported),
            "actor": actor,
            "from_status": None,
            "to_status": "reported",
            "note": "imported",
        }
    )
    moved = (rows.states != "reported").to_numpy()
    at = rows.closed.where(rows.closed.notna(), rows.reported)
    note = ("imported; source state " + rows.raw_states).to_numpy() if rows.raw_states is not None else "imported"
    second = pd.DataFrame(
        {
            "incident_id": ids,
            "at": _text_times(at),
            "actor": actor,
            "from_status": "reported",
            "to_status": rows.states.to_numpy(),
            "note": note,
        }
    )[moved]
    return pd.concat([first, second])


def _copy_frame(session: Session, table: str, frame: pd.DataFrame) -> None:
    """COPY a frame's rows into `table` (one of this module's fixed names), columns named as the frame's."""
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    _copy_text(session, f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN {_CSV}", buffer.getvalue())


def _copy_text(session: Session, sql: str, data: str) -> None:
    cursor = db.driver_connection(session).cursor()
    with cursor.copy(sql) as copy:
        copy.write(data)


def assign_work_cells(session: Session, ids: list[int]) -> int:
    """Set work cell and coordinator of stored cases from the version of their department valid
    at their report time; return how many got a work cell.

    Versions on the current base grid edition join through the case's base cell; cases whose
    version lies on another edition are found with ST_Covers on that edition's cells.
    """
    params = {"ids": ids}
    as_of = (
        "v.dept_code = i.dept_code AND v.status IN ('published', 'retired') AND v.valid_from <= i.reported_at "
        "AND (v.valid_to IS NULL OR v.valid_to > i.reported_at)"
    )
    session.execute(
        text(f"""
        UPDATE incident i SET work_cell_id = m.work_cell_id
        FROM base_cell b, work_grid_version v, work_cell_member m
        WHERE i.id = ANY(:ids) AND i.dept_code IS NOT NULL AND b.id = i.base_cell_id AND {as_of}
          AND v.base_edition_id = b.edition_id AND m.version_id = v.id AND m.base_cell_id = i.base_cell_id"""),
        params,
    )
    # ST_Covers, ties to the smallest code: the version valid then lies on another edition.
    session.execute(
        text(f"""
        UPDATE incident i SET work_cell_id = (
          SELECT m.work_cell_id FROM work_grid_version v JOIN base_cell b ON b.edition_id = v.base_edition_id
          JOIN work_cell_member m ON m.version_id = v.id AND m.base_cell_id = b.id
          WHERE {as_of} AND ST_Covers(b.geom, i.geom) ORDER BY b.code LIMIT 1)
        WHERE i.id = ANY(:ids) AND i.work_cell_id IS NULL AND i.dept_code IS NOT NULL AND i.geom IS NOT NULL
          AND EXISTS (SELECT 1 FROM work_grid_version v JOIN base_cell b0 ON b0.id = i.base_cell_id
                      WHERE {as_of} AND v.base_edition_id <> b0.edition_id)"""),
        params,
    )
    result = session.execute(
        text("""
        UPDATE incident i SET coordinator_id = (
          SELECT c.id FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
          WHERE ca.work_cell_id = i.work_cell_id AND c.active ORDER BY c.id LIMIT 1)
        WHERE i.id = ANY(:ids) AND i.work_cell_id IS NOT NULL"""),
        params,
    )
    session.expire_all()
    return result.rowcount
