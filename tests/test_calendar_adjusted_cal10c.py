"""An adjusted working day (调休) works the hours the calendar gives it: its own spans or a weekday's (按星期五上班),
from the import file's optional columns or `gridkit calendar import --workday-hours/--workday-as`; else the
standard working day's (the hours most weekdays work), not Monday's, nor a weekend day's own short hours."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from click.testing import CliRunner
from openpyxl import Workbook

from gridkit import db
from gridkit.cli import main
from gridkit.errors import ValidationError
from gridkit.incidents.calendar import import_calendar_days, list_calendar_days, load_calendar, set_hours
from gridkit.incidents.worktime import DEFAULT_HOURS, WorkCalendar, add_working_time
from gridkit.io.problems import ImportRefused
from gridkit.rules import local_tz

FRIDAY = date(2026, 11, 27)
SATURDAY = FRIDAY + timedelta(days=1)
FULL = ((9 * 60, 12 * 60), (14 * 60, 18 * 60))


def bj(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local_tz())


def test_an_adjusted_day_works_the_standard_day_not_mondays():
    # Monday mornings only (a department's weekly meeting in the afternoon is no service); Tuesday-Friday full days.
    hours = {**DEFAULT_HOURS, 1: ((9 * 60, 12 * 60),)}
    worked = WorkCalendar(hours=hours, exceptions={SATURDAY: "workday"})
    assert worked.workday_hours == FULL
    # Friday 17:00 + 3 h: Friday 17-18, Saturday 09-11.
    assert add_working_time(bj(FRIDAY, 17), 3, worked) == bj(SATURDAY, 11)
    # A Saturday with its own short service hours, declared a working day, works the normal day.
    half = WorkCalendar(hours={**DEFAULT_HOURS, 6: ((9 * 60, 11 * 60),)}, exceptions={SATURDAY: "workday"})
    assert half.day_hours(SATURDAY) == FULL


def test_an_adjusted_day_works_its_own_hours_or_a_weekdays():
    short_friday = {**DEFAULT_HOURS, 5: ((9 * 60, 12 * 60), (14 * 60, 16 * 60))}
    as_friday = WorkCalendar(hours=short_friday, exceptions={SATURDAY: "workday"}, adjusted={SATURDAY: 5})
    assert as_friday.day_hours(SATURDAY) == short_friday[5]
    spans = ((8 * 60, 12 * 60),)
    own = WorkCalendar(exceptions={SATURDAY: "workday"}, adjusted={SATURDAY: spans})
    # Friday 17:00 + 3 h: Friday 17-18, then Saturday from 08:00.
    assert add_working_time(bj(FRIDAY, 17), 3, own) == bj(SATURDAY, 10)


def test_import_reads_the_optional_columns_and_lists_the_hours(session, tmp_path):
    path = tmp_path / "2026.csv"
    path.write_text(
        "日期,类型,名称,工作时间,按星期\n"
        "2026-09-27,调休,国庆节调休,,周五\n"
        "2026-10-01,节假日,国庆节,,\n"
        "2026-10-10,调休,国庆节调休,08:30-12:00，13:30-17:30,\n"
        "2026-10-11,调休,国庆节调休,,\n",
        encoding="utf-8",
    )
    set_hours(session, ["5=09:00-12:00,14:00-16:00"])
    assert import_calendar_days(session, path).workdays == 3
    listed = {d["date"]: d["hours"] for d in list_calendar_days(session, 2026)}
    assert listed == {
        "2026-09-27": "09:00-12:00,14:00-16:00",  # Friday's hours
        "2026-10-01": "",
        "2026-10-10": "08:30-12:00,13:30-17:30",
        "2026-10-11": "09:00-12:00,14:00-18:00",  # the standard day's
    }
    calendar = load_calendar(session)
    assert calendar.day_hours(date(2026, 10, 10)) == ((510, 720), (810, 1050))
    # Friday's hours change later: the day working as a Friday follows them.
    set_hours(session, ["5=10:00-12:00"])
    assert load_calendar(session).day_hours(date(2026, 9, 27)) == ((600, 720),)


def test_wrong_hours_refuse_the_whole_file(session, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "date,kind,name,hours,as_weekday\n"
        "2026-09-27,workday,a,09:00-25:00,\n"
        "2026-10-01,holiday,b,09:00-12:00,\n"
        "2026-10-10,workday,c,,8\n"
        "2026-10-11,workday,d,09:00-12:00,5\n"
        "2026-10-12,workday,e,,fri\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRefused) as exc:
        import_calendar_days(session, path)
    fields = [(p["field"], p["params"]["where"]["params"]["number"]) for p in exc.value.problems]
    assert fields == [("hours", 2), ("hours", 3), ("as_weekday", 4), ("hours", 5)]
    assert list_calendar_days(session) == []
    with pytest.raises(ValidationError) as refused:
        import_calendar_days(session, path, workday_hours="9-12")
    assert refused.value.code == "calendar.bad_span"


def test_cli_options_give_the_files_adjusted_days_their_hours(fresh_settings, tmp_path):
    book = Workbook()
    book.active.append(["日期", "类型", "名称"])
    book.active.append([datetime(2026, 9, 27), "调休", "国庆节调休"])
    path = tmp_path / "2026.xlsx"
    book.save(path)

    def run(*args, lang="zh-CN"):
        return CliRunner().invoke(main, [str(a) for a in args], obj=fresh_settings, env={"GRIDKIT_LANG": lang})

    both = run("calendar", "import", path, "--workday-hours", "08:00-12:00", "--workday-as", "5", lang="en")
    assert both.exit_code == 1 and "one or the other" in both.output
    assert run("calendar", "import", path, "--workday-hours", "08:00-12:00").exit_code == 0
    rows = json.loads(run("calendar", "list", "--json").output)
    assert rows[0]["hours"] == "08:00-12:00"
    listed = run("calendar", "list")
    assert "08:00-12:00" in listed.output and "工作时间" in listed.output
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        assert load_calendar(session).day_hours(date(2026, 9, 27)) == ((480, 720),)
