"""The rules of the standard that every part of gridkit shares, each written once.

- the storage SRID;
- the states of base grid editions, work grid versions and incidents;
- "in force at time T" for editions and versions;
- "point → base cell" (ST_Covers, ties to the smallest code);
- "building → base cell": the cell holding most of its footprint (the building rule);
- "drawn polygon → base cells": the polygon holding the largest share of a cell, at least WORK_CELL_SHARE;
- time: now, ISO-8601 parsing and formatting (naive times are the city's local time, GRIDKIT_TIME_ZONE).

Pure Python and SQLAlchemy expressions only: no session, no I/O.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select

from gridkit.errors import ValidationError

# CGCS2000 lon/lat, China's national datum: every geometry column is stored in it.
SRID = 4490
# Where a lon/lat in China can lie (a loose box): coordinates outside it are refused as "not in
# China" (imports, Open311 posts), and a file whose x and y both fall inside it the other way
# round was written lat/lon.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)
# The city's clock (GRIDKIT_TIME_ZONE): naive times given by users mean its time, and the days of case
# codes, evaluations, reports and file names are its days. Beijing time (UTC+8) by default, as every
# Chinese city's clock. Read through local_tz(): the zone is a setting, known once the process has one.
DEFAULT_TIME_ZONE = "Asia/Shanghai"
_local_tz: ZoneInfo | None = None


class EditionState(StrEnum):
    """States of a base grid edition: draft → published → retired."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class VersionState(StrEnum):
    """States of a department's work grid version: draft → published → retired."""

    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


class IncidentState(StrEnum):
    """States of an incident along the 7 steps (evaluation is computed, not a state)."""

    REPORTED = "reported"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    CLASSIFIED = "classified"
    DISPATCHED = "dispatched"
    FED_BACK = "fed_back"
    CLOSED = "closed"


class DispatchGap(StrEnum):
    """Why a dispatched case has no coordinator (incident.dispatch_gap): it needs a manual dispatch (改派) by a
    supervisor, and is listed as such until it has one. Not a state: the case is dispatched (step 4 of 7)."""

    OUTSIDE_GRID = "outside_grid"  # no place, or outside every base cell of the edition in force then
    NO_WORK_CELL = "no_work_cell"  # its base cell is in no work cell of the department's version then
    NO_COORDINATOR = "no_coordinator"  # its work cell has no active coordinator


DISPATCH_GAPS = tuple(gap.value for gap in DispatchGap)


# A finished case needs no more work: closed, rejected, or merged into another.
FINISHED_INCIDENT_STATES = frozenset({IncidentState.CLOSED, IncidentState.REJECTED, IncidentState.DUPLICATE})
OPEN_INCIDENT_STATES = frozenset(s for s in IncidentState if s not in FINISHED_INCIDENT_STATES)
# "The case is open" in SQL over incident's `status`: the lists' condition and the predicate of the partial
# indexes over open cases (migration 20261205_city7d), which PostgreSQL uses only for a query stating it. An
# array constant, not `NOT IN (…)`: the text PostgreSQL gives back for it is the same expression, so an index
# built again from its definition (a bulk intake: gridkit.spatial.bulk) is the index it was.
OPEN_CASE_SQL = "status::text <> ALL ('{closed,rejected,duplicate}'::text[])"
SEVERITIES = ("low", "normal", "high", "urgent")

# Published or once published: the states that were in force for some interval.
WAS_IN_FORCE = (EditionState.PUBLISHED, EditionState.RETIRED)
# The same states as SQL parameter values (`status = ANY(:was_in_force)` in the whois and dispatch queries).
WAS_IN_FORCE_VALUES = [state.value for state in WAS_IN_FORCE]

# Small counts of residents: a count of 1 or 2 residents in a cell (or any unit) singles a person out (who lives
# there, their age band, registered or floating) for a reader who may not read personal data. For such readers
# (gridkit.users.may_see_personal_data false; masked exports) every aggregate count of residents from 1 to
# SMALL_COUNT_MAX, and every figure computed from one, is shown as SMALL_COUNT_SHOWN in reports and maps and left
# null in exported files, with a note; readers who may see residents get the counts as they are. 0 stays 0.
SMALL_COUNT_MAX = 2
SMALL_COUNT_SHOWN = f"<{SMALL_COUNT_MAX + 1}"


def is_small_count(value) -> bool:
    """True when `value` is a count of residents the small-count rule hides (1 to SMALL_COUNT_MAX)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= SMALL_COUNT_MAX


def shown_count(value):
    """Return a count of residents as a reader who may not see residents is shown it: SMALL_COUNT_SHOWN for a
    small one, else the value as it is."""
    return SMALL_COUNT_SHOWN if is_small_count(value) else value


def small_count_sql(expr: str) -> str:
    """Return SQL of the count `expr` under the small-count rule: NULL from 1 to SMALL_COUNT_MAX, else as it is."""
    return f"(CASE WHEN ({expr}) BETWEEN 1 AND {SMALL_COUNT_MAX} THEN NULL ELSE ({expr}) END)"


# -- time ---------------------------------------------------------------------------------------


def now() -> datetime:
    """Return the current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def local_tz() -> ZoneInfo:
    """Return the city's time zone: the one `use_time_zone` set, else GRIDKIT_TIME_ZONE's (default Beijing time)."""
    global _local_tz
    if _local_tz is None:
        from gridkit.config import time_zone_from_env  # here: the settings import the catalogue, which is not pure

        _local_tz = time_zone_from_env()
    return _local_tz


def use_time_zone(name: str) -> ZoneInfo:
    """Make `name` (a zone already validated by gridkit.config) the city's time zone in this process and return it;
    the web app and the CLI call it with their Settings' time_zone."""
    global _local_tz
    if _local_tz is None or _local_tz.key != name:
        _local_tz = ZoneInfo(name)
    return _local_tz


def local_now() -> datetime:
    """Return the current time in the city's zone (local_tz()), for what users read: names, file names, dates.
    Never the server's own zone (UTC on most servers and in CI)."""
    return datetime.now(local_tz())


def today() -> date:
    """Return the current date in the city's zone (local_tz()): from 00:00 to 08:00 Beijing time it is already
    the day after the UTC date."""
    return local_now().date()


def iso(value: datetime | None) -> str | None:
    """Return `value` as ISO-8601 text, or None."""
    return value.isoformat() if value is not None else None


# The years of the times gridkit reads: every grid, case and report period lies in them. A time outside is a
# typo or a probe, and date arithmetic on it overflows (a day after 9999-12-31, Beijing time of 0001-01-01).
FIRST_YEAR, LAST_YEAR = 1900, 2999


def parse_time(value: str | datetime | None, *, field: str = "at") -> datetime | None:
    """Return an aware datetime from ISO-8601 text (naive means the city's time); None stays None.

    Text naming a year outside FIRST_YEAR..LAST_YEAR is refused."""
    if value is None or isinstance(value, datetime):
        return as_aware(value)
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise ValidationError("time.not_iso", field=field, value=text) from None
    if not FIRST_YEAR <= parsed.year <= LAST_YEAR:
        raise ValidationError("time.out_of_range", field=field, value=text, first=FIRST_YEAR, last=LAST_YEAR)
    return as_aware(parsed)


def period_bounds(start, end) -> tuple[datetime | None, datetime | None]:
    """Return the [start, end) instants of a period given as ISO dates or times (None: open).

    A date alone (YYYY-MM-DD, or a date) is that whole day in the city's time at either end: from
    2026-12-01 to 2026-12-05 includes the 5th, and from and to the same day is that day. The one
    reading of a period for every report, evaluation and map.
    """
    first = parse_time(_period_text(start), field="from") if start not in (None, "") else None
    last = parse_time(_period_text(end), field="to") if end not in (None, "") else None
    if last is not None and _is_day(end):
        last += timedelta(days=1)
    return first, last


def _period_text(value) -> str:
    return value.isoformat() if isinstance(value, (date, datetime)) else str(value)


def _is_day(value) -> bool:
    if isinstance(value, datetime):
        return False
    return isinstance(value, date) or len(str(value).strip()) == 10


def as_aware(value: datetime | None) -> datetime | None:
    """Return `value` with a time zone (naive means the city's time)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=local_tz())


# -- in force at T --------------------------------------------------------------------------------


def _was_in_force(status):
    """Return status ∈ WAS_IN_FORCE as plain comparisons (no expanding IN: cached statements stay cheap)."""
    return or_(*(status == state.value for state in WAS_IN_FORCE))


def edition_in_force(edition_model, at: datetime | None = None):
    """Return the WHERE clause for the base grid edition in force at `at` (None: now)."""
    if at is None:
        return edition_model.status == EditionState.PUBLISHED
    return and_(
        _was_in_force(edition_model.status),
        edition_model.published_at <= at,
        or_(edition_model.retired_at.is_(None), edition_model.retired_at > at),
    )


def version_in_force(version_model, at: datetime | None = None):
    """Return the WHERE clause for work grid versions in force at `at` (None: now), one per department."""
    if at is None:
        return and_(version_model.status == VersionState.PUBLISHED, version_model.valid_to.is_(None))
    return and_(
        _was_in_force(version_model.status),
        version_model.valid_from <= at,
        or_(version_model.valid_to.is_(None), version_model.valid_to > at),
    )


# -- drawn polygon → base cells (work cells drawn on a map) -------------------------------------------

# A base cell goes to the drawn work cell polygon holding the largest share of its area (ties: the smallest work
# cell code), and only when that share is at least this much; below it in every polygon it is in no work cell.
# Areas are compared on the spheroid. `gridkit workgrid assign --polygon` and `gridkit workgrid import` (their
# --share option overrides it) and the planner page's polygon selection use it.
WORK_CELL_SHARE = 0.5


# -- point → base cell ----------------------------------------------------------------------------


def point_cell(base_cell_model, edition_id, point):
    """Return a scalar subquery: the id of the base cell of edition `edition_id` covering `point`.

    ST_Covers, not ST_Contains: a point on a shared edge still gets exactly one cell, the one
    with the smallest code.
    """
    return (
        select(base_cell_model.id)
        .where(base_cell_model.edition_id == edition_id, func.ST_Covers(base_cell_model.geom, point))
        .order_by(base_cell_model.code)
        .limit(1)
        .scalar_subquery()
    )


def building_cell(base_cell_model, edition_id, footprint, point):
    """Return a scalar subquery: the id of the base cell of edition `edition_id` a building belongs to.

    The building rule, one for generation, assignment and statistics: a building with a footprint
    belongs to the cell holding the largest part of it (ties: the smallest code); a footprint with
    no area inside any cell (it only touches cells, or lies outside) belongs to none. A building
    without a footprint belongs to the cell covering its point (`point_cell`). Parts are compared
    in square degrees of the storage SRID, which ranks them as square metres do across one
    footprint. The same rule runs in bulk in `gridkit.assign` and in memory (shapely) in
    `gridkit.grids.generate.buildings.building_cells`, which generation counts with.
    """
    part = func.ST_Area(func.ST_Intersection(base_cell_model.geom, footprint))
    by_footprint = (
        select(base_cell_model.id)
        .where(base_cell_model.edition_id == edition_id, func.ST_Intersects(base_cell_model.geom, footprint), part > 0)
        .order_by(part.desc(), base_cell_model.code)
        .limit(1)
        .scalar_subquery()
    )
    return case((footprint.is_(None), point_cell(base_cell_model, edition_id, point)), else_=by_footprint)


def make_point(lon, lat):
    """Return the SQL point (lon, lat) in the storage SRID."""
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID)
