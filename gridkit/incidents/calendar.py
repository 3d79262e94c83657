"""The working calendar's data: working hours per weekday and dated exceptions, read, imported and set.

The rule counting working time is gridkit.incidents.worktime; this module reads its calendar from the
database (`load_calendar`), imports exceptions from a table file (CSV in UTF-8 or GBK/GB18030, or XLSX, read by
gridkit.io.tables) all or nothing, lists them, and sets the working hours of weekdays.

An exceptions file has the columns date, kind, name (or 日期, 类型, 名称): a date (2026-10-01, 2026/10/1 or
2026年10月1日), holiday (节假日, 假日, 休) or workday (调休, 上班, 班), and the holiday's name. A date already in
the calendar takes the file's kind and name. No holiday is shipped: a city imports the dates of the State
Council's notice for the year.

An adjusted working day (调休) follows the normal working-day schedule: it works the standard working day's hours
(worktime.WorkCalendar.workday_hours) unless the file says otherwise in an optional column: hours (工作时间:
"09:00-12:00,14:00-18:00") or as_weekday (按星期: the weekday whose hours it works, 5 / 周五 / 星期五), one or
the other, on a workday row only. `workday_hours` / `workday_as` give the same for the file's workday rows that
say neither.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import delete, extract, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.worktime import WorkCalendar
from gridkit.io.problems import ImportRefused, problem, refusal
from gridkit.io.tables import TableReadError, at, read_table
from gridkit.messages import Message
from gridkit.models import CALENDAR_DAY_KINDS, WorkCalendarDay, WorkCalendarHours
from gridkit.rules import local_tz

# Column → the names a header may give it.
COLUMNS = {"date": ("date", "日期"), "kind": ("kind", "类型"), "name": ("name", "名称")}
# Optional columns: the hours of an adjusted working day, or the weekday whose hours it works.
OPTIONAL_COLUMNS = {"hours": ("hours", "工作时间", "时间"), "as_weekday": ("as_weekday", "按星期", "对应星期")}
# A weekday written as a number (1 Monday … 7 Sunday) or in words: 周五, 星期五, 礼拜五, 五, fri, friday.
_WEEKDAY_NAMES = ("一二三四五六日", ("mon", "tue", "wed", "thu", "fri", "sat", "sun"))
_WEEKDAY = re.compile(r"(?:周|星期|礼拜)?([1-7一二三四五六日天])|(mon|tue|wed|thu|fri|sat|sun)[a-z]*")
# Words a file may write a kind with.
KIND_WORDS = {
    "holiday": "holiday",
    "节假日": "holiday",
    "假日": "holiday",
    "休": "holiday",
    "workday": "workday",
    "调休": "workday",
    "上班": "workday",
    "班": "workday",
}
_DATE = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[T ]00:00(?::00)?)?")
_SPAN = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
WEEKDAYS = range(1, 8)


def load_calendar(session: Session) -> WorkCalendar:
    """Return the deployment's working calendar: its hours per weekday and every dated exception."""
    hours: dict[int, list] = {d: [] for d in WEEKDAYS}
    # Read as minutes: a span may end at 24:00 (a time PostgreSQL holds and Python's cannot).
    spans = session.execute(
        text(
            "SELECT weekday, CAST(extract(epoch FROM starts) AS int) / 60, CAST(extract(epoch FROM ends) AS int) / 60 "
            "FROM work_calendar_hours ORDER BY weekday, starts"
        )
    )
    for weekday, start, end in spans:
        hours[weekday].append((start, end))
    exceptions, adjusted = {}, {}
    query = select(WorkCalendarDay.day, WorkCalendarDay.kind, WorkCalendarDay.hours, WorkCalendarDay.as_weekday)
    for day, kind, spans_text, as_weekday in session.execute(query):
        exceptions[day] = kind
        if spans_text:
            adjusted[day] = tuple(parse_spans(spans_text, spans_text))
        elif as_weekday:
            adjusted[day] = as_weekday
    return WorkCalendar(
        hours={d: tuple(s) for d, s in hours.items()}, exceptions=exceptions, tz=local_tz(), adjusted=adjusted
    )


def hours_rows(session: Session) -> list[dict]:
    """Return the working hours as rows: weekday (1 Monday … 7 Sunday) and its spans ("09:00-12:00, …")."""
    calendar = load_calendar(session)
    return [
        {"weekday": d, "hours": ", ".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in calendar.hours[d])} for d in WEEKDAYS
    ]


def set_hours(session: Session, specs: list[str]) -> dict:
    """Set the working hours of weekdays from specs "DAYS=SPANS" ("1-5=09:00-12:00,14:00-18:00", "6=": no work);
    the weekdays not named keep theirs. Return {"hours": the hours as rows, "recounted": open cases whose
    deadlines or step times changed (recount.recount_open_cases)}. Nothing changes if a spec is wrong."""
    wanted: dict[int, list[tuple[int, int]]] = {}
    for spec in specs:
        days, spans = _parse_hours(spec)
        for day in days:
            wanted[day] = spans
    if not any(wanted.values()) and not _other_hours(session, wanted):
        raise ValidationError("calendar.no_hours_left")
    before = load_calendar(session)
    session.execute(delete(WorkCalendarHours).where(WorkCalendarHours.weekday.in_(list(wanted))))
    rows = [{"weekday": d, "starts": _hhmm(s), "ends": _hhmm(e)} for d, spans in wanted.items() for s, e in spans]
    if rows:
        session.execute(
            text(
                "INSERT INTO work_calendar_hours (weekday, starts, ends) "
                "VALUES (:weekday, CAST(:starts AS time), CAST(:ends AS time))"
            ),
            rows,
        )
    return {"hours": hours_rows(session), "recounted": _recount_open(session, before)}


def _recount_open(session: Session, before: WorkCalendar) -> int:
    """Count the open cases' deadlines again after a change of the calendar (it was `before`); return how many
    cases changed."""
    from gridkit.incidents.recount import recount_open_cases

    return recount_open_cases(session, before, load_calendar(session))


def _other_hours(session: Session, wanted: dict) -> bool:
    """Whether a weekday not in `wanted` has working hours."""
    return (
        session.scalar(select(WorkCalendarHours.weekday).where(WorkCalendarHours.weekday.not_in(list(wanted))).limit(1))
        is not None
    )


def _parse_hours(spec: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Return (weekdays, spans) of one "DAYS=SPANS" spec, or raise ValidationError naming what is wrong."""
    days_text, sep, spans_text = spec.partition("=")
    match = re.fullmatch(r"\s*([1-7])\s*(?:-\s*([1-7])\s*)?", days_text)
    if not sep or not match or int(match.group(2) or match.group(1)) < int(match.group(1)):
        raise ValidationError("calendar.bad_hours_spec", spec=spec)
    days = list(range(int(match.group(1)), int(match.group(2) or match.group(1)) + 1))
    return days, parse_spans(spans_text, spec)


def parse_spans(spans_text: str, spec: str) -> list[tuple[int, int]]:
    """Return the spans (minutes) of "09:00-12:00,14:00-18:00" (，and ; separate too), or raise ValidationError
    naming `spec` and the span that is wrong."""
    spans: list[tuple[int, int]] = []
    for part in (p.strip() for p in re.split(r"[,，;；]", spans_text) if p.strip()):
        found = _SPAN.fullmatch(part)
        start, end = (int(found.group(i)) * 60 + int(found.group(i + 1)) for i in (1, 3)) if found else (0, 0)
        # Minutes after midnight; a span may end at 24:00, none starts there.
        if not found or int(found.group(2)) > 59 or int(found.group(4)) > 59 or not 0 <= start < end <= 1440:
            raise ValidationError("calendar.bad_span", spec=spec, span=part)
        if spans and start < spans[-1][1]:
            raise ValidationError("calendar.spans_overlap", spec=spec, span=part)
        spans.append((start, end))
    return spans


def spans_text(spans) -> str:
    """Return spans (minutes) as the calendar writes them: "09:00-12:00,14:00-18:00"."""
    return ",".join(f"{_hhmm(s)}-{_hhmm(e)}" for s, e in spans)


def parse_weekday(typed: str) -> int | None:
    """Return the ISO weekday (1 Monday … 7 Sunday) of 5, 周五, 星期五, fri or friday; None if it is none."""
    found = _WEEKDAY.fullmatch(typed.strip().lower())
    if not found:
        return None
    if found.group(2):
        return _WEEKDAY_NAMES[1].index(found.group(2)) + 1
    word = found.group(1).replace("天", "日")
    return int(word) if word.isdigit() else _WEEKDAY_NAMES[0].index(word) + 1


@dataclass
class CalendarImport:
    """What an import of calendar exceptions did: days added and updated, per kind."""

    file: str
    added: int = 0
    updated: int = 0
    holidays: int = 0
    workdays: int = 0
    recounted: int = 0
    notes: list = field(default_factory=list)

    def summary(self) -> dict:
        return {
            "file": self.file,
            "added": self.added,
            "updated": self.updated,
            "holidays": self.holidays,
            "workdays": self.workdays,
            "recounted": self.recounted,
        }


def import_calendar_days(
    session: Session,
    path: str | Path,
    *,
    encoding: str | None = None,
    sheet: str | None = None,
    workday_hours: str | None = None,
    workday_as: str | None = None,
) -> CalendarImport:
    """Add or update the dated exceptions of a CSV/XLSX file, all or nothing: any bad row (unknown kind, a date
    that is none, a date twice, an empty name, hours that are none or on a holiday) refuses the whole file with
    every problem listed. `workday_hours` (spans) or `workday_as` (a weekday): the hours of the file's adjusted
    working days that give none."""
    default = _default_workday(workday_hours, workday_as)
    table = read_table(Path(path), encoding=encoding, sheet=sheet)
    display = table.source.get("display", Path(path).name)
    names = _columns(table, display)
    problems = list(table.problems)
    days: dict[date, dict] = {}
    for position, row in enumerate(table.rows):
        found = _row(table, position, row, names, days, problems)
        if found is not None:
            if found["kind"] == "workday" and found["hours"] is None and found["as_weekday"] is None:
                found.update(default)
            days[found["day"]] = found
    if problems:
        code, params = refusal(display, problems, "imported")
        raise ImportRefused(code, problems=problems, source=table.source, **params)
    if not days:
        raise ValidationError("calendar.no_rows", file=display)
    before = load_calendar(session)
    known = set(session.scalars(select(WorkCalendarDay.day).where(WorkCalendarDay.day.in_(list(days)))))
    fields = ("day", "kind", "name", "hours", "as_weekday")
    rows = [{k: found[k] for k in fields} for _, found in sorted(days.items())]
    stmt = insert(WorkCalendarDay).values(rows)
    session.execute(
        stmt.on_conflict_do_update(index_elements=["day"], set_={k: getattr(stmt.excluded, k) for k in fields[1:]})
    )
    kinds = [found["kind"] for found in days.values()]
    return CalendarImport(
        display,
        added=len(days) - len(known),
        updated=len(known),
        holidays=kinds.count("holiday"),
        workdays=kinds.count("workday"),
        recounted=_recount_open(session, before),
    )


def _default_workday(hours: str | None, weekday: str | None) -> dict:
    """Return the hours given for a file's adjusted working days ({"hours", "as_weekday"}), or raise if wrong."""
    if hours and weekday:
        raise ValidationError("calendar.hours_and_weekday")
    as_weekday = parse_weekday(weekday) if weekday else None
    if weekday and as_weekday is None:
        raise ValidationError("calendar.bad_weekday", value=weekday)
    return {"hours": spans_text(parse_spans(hours, hours)) or None if hours else None, "as_weekday": as_weekday}


def _columns(table, display: str) -> dict[str, str]:
    """Return {column: the header's name for it}, or raise naming the columns missing (optional ones may be)."""
    names, missing = {}, []
    for column, accepted in {**COLUMNS, **OPTIONAL_COLUMNS}.items():
        name = next((c for c in table.columns if c and c.strip().lower() in accepted), None)
        if name is None and column in COLUMNS:
            missing.append(f"{column} ({'/'.join(accepted[1:])})")
        names[column] = name
    if missing:
        raise TableReadError("calendar.header", file=display, missing=", ".join(missing), source=table.source)
    return names


def _row(table, position: int, row: dict, names: dict, days: dict, problems: list) -> dict | None:
    """Return {day, kind, name, hours, as_weekday, position} of one row, or None with its problems added."""
    place = table.place(position)
    raw = {c: (row.get(names[c]) or "") if names[c] else "" for c in names}
    day = _date(raw["date"].strip())
    kind = KIND_WORDS.get(raw["kind"].strip().lower())
    name = raw["name"]
    found = []
    if day is None:
        found.append(("date", Message("calendar.row.bad_date", value=raw["date"])))
    elif day in days:
        first = table.place(days[day]["position"])
        found.append(("date", Message("calendar.row.repeated", day=day.isoformat(), first=first)))
    if kind is None:
        found.append(("kind", Message("calendar.row.bad_kind", value=raw["kind"], kinds=", ".join(CALENDAR_DAY_KINDS))))
    if not name.strip():
        found.append(("name", Message("calendar.row.no_name")))
    elif len(name.strip()) > 100:
        found.append(("name", Message("calendar.row.long_name", length=len(name.strip()))))
    hours, as_weekday = _row_hours(raw, kind, found)
    for column, message in found:
        problems.append(problem(f"bad_{column}", at(place, message), index=position, field=column))
    if found:
        return None
    return {
        "day": day,
        "kind": kind,
        "name": name.strip(),
        "hours": hours,
        "as_weekday": as_weekday,
        "position": position,
    }


def _row_hours(raw: dict, kind: str | None, found: list) -> tuple[str | None, int | None]:
    """Return the (hours, as_weekday) a row gives its day, adding to `found` what is wrong with them."""
    typed_hours, typed_weekday = raw["hours"].strip(), raw["as_weekday"].strip()
    hours = as_weekday = None
    if typed_hours:
        try:
            hours = spans_text(parse_spans(typed_hours, typed_hours)) or None
        except ValidationError as exc:
            found.append(
                ("hours", Message("calendar.row.bad_hours", value=typed_hours, reason=Message(exc.key, **exc.params)))
            )
    if typed_weekday and (as_weekday := parse_weekday(typed_weekday)) is None:
        found.append(("as_weekday", Message("calendar.row.bad_weekday", value=typed_weekday)))
    if (typed_hours or typed_weekday) and kind == "holiday":
        found.append(("hours", Message("calendar.row.holiday_hours")))
    elif typed_hours and typed_weekday:
        found.append(("hours", Message("calendar.row.hours_and_weekday")))
    return hours, as_weekday


def _date(text: str) -> date | None:
    match = _DATE.fullmatch(text)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def list_calendar_days(session: Session, year: int | None = None) -> list[dict]:
    """Return the dated exceptions by date (of one year if given): date, weekday, kind, name."""
    query = select(WorkCalendarDay).order_by(WorkCalendarDay.day)
    if year is not None:
        query = query.where(extract("year", WorkCalendarDay.day) == year)
    calendar = load_calendar(session)
    return [
        {
            "date": d.day.isoformat(),
            "weekday": d.day.isoweekday(),
            "kind": d.kind,
            "name": d.name,
            # The hours the day works (an adjusted working day's: its own, its weekday's or the standard day's).
            "hours": spans_text(calendar.day_hours(d.day)),
        }
        for d in session.scalars(query)
    ]


def remove_calendar_days(session: Session, days: list[str]) -> dict:
    """Remove the exceptions of the dates given (YYYY-MM-DD); return {"removed": how many were there,
    "recounted": open cases whose deadlines or step times changed}. A date that is none is refused before
    anything changes."""
    parsed = []
    for typed in days:
        day = _date(typed.strip())
        if day is None:
            raise ValidationError("calendar.bad_date", value=typed)
        parsed.append(day)
    before = load_calendar(session)
    removed = session.execute(delete(WorkCalendarDay).where(WorkCalendarDay.day.in_(parsed))).rowcount
    return {"removed": removed, "recounted": _recount_open(session, before) if removed else 0}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
