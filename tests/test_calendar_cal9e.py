"""The working calendar in the database (gridkit.incidents.calendar) and case deadlines in working time: the
import of holidays and adjusted working days (CSV in UTF-8 and GBK, XLSX; bad files refused whole), the hours,
a case reported on Friday at 17:00 due on Monday, an urgent category around the clock, stored deadlines kept,
and the evaluation's on-time rate."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from factories_incidents import IN_C1, SUPERVISOR, coordinator_actor, make_incident_world
from openpyxl import Workbook
from sqlalchemy import func, select, text, update

from gridkit import db
from gridkit.errors import ValidationError
from gridkit.incidents import workflow as wf
from gridkit.incidents.calendar import (
    hours_rows,
    import_calendar_days,
    list_calendar_days,
    load_calendar,
    remove_calendar_days,
    set_hours,
)
from gridkit.incidents.categories import category, category_rows, seed_categories
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.importer import import_incidents
from gridkit.io.problems import ImportRefused
from gridkit.models import Incident, WorkCalendarDay
from gridkit.rules import local_tz, parse_time

FRIDAY = date(2026, 11, 27)
MONDAY = FRIDAY + timedelta(days=3)
GOOD = "date,kind,name\n2026-01-01,holiday,元旦\n2026/1/4,调休,元旦调休\n2026年10月1日,节假日,国庆节\n"


def bj(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=local_tz())


def days(session) -> int:
    return session.scalar(select(func.count()).select_from(WorkCalendarDay))


def test_import_csv_utf8_then_gbk_updates_and_lists(session, tmp_path):
    path = tmp_path / "holidays.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = import_calendar_days(session, path)
    assert result.summary() == {
        "file": "holidays.csv",
        "added": 3,
        "updated": 0,
        "holidays": 2,
        "workdays": 1,
        "recounted": 0,
    }
    assert list_calendar_days(session, 2026)[1] == {
        "date": "2026-01-04",
        "weekday": 7,
        "kind": "workday",
        "name": "元旦调休",
        "hours": "09:00-12:00,14:00-18:00",
    }
    gbk = tmp_path / "假日.csv"
    gbk.write_bytes("日期,类型,名称\n2026-10-01,holiday,国庆节、中秋节\n2026-10-02,holiday,国庆节\n".encode("gbk"))
    result = import_calendar_days(session, gbk)
    assert (result.added, result.updated) == (1, 1)
    assert [d["name"] for d in list_calendar_days(session, 2026)][-2:] == ["国庆节、中秋节", "国庆节"]
    assert list_calendar_days(session, 2025) == []
    assert load_calendar(session).exceptions[date(2026, 1, 4)] == "workday"
    assert remove_calendar_days(session, ["2026-10-02", "2027-01-01"])["removed"] == 1 and days(session) == 3


def test_import_xlsx_with_typed_dates(session, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(["日期", "类型", "名称"])
    sheet.append([datetime(2026, 5, 1), "节假日", "劳动节"])
    sheet.append(["2026-05-09", "workday", "劳动节调休"])
    path = tmp_path / "calendar.xlsx"
    book.save(path)
    assert import_calendar_days(session, path).summary()["added"] == 2
    assert load_calendar(session).exceptions == {date(2026, 5, 1): "holiday", date(2026, 5, 9): "workday"}


def test_a_bad_file_is_refused_whole_with_every_problem(session, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        GOOD + "2026-02-30,holiday,春节\n2026-01-01,holiday,元旦\n2026-02-17,休息日,春节\n2026-02-18,holiday,\n"
    )
    with pytest.raises(ImportRefused) as exc:
        import_calendar_days(session, path)
    problems = exc.value.problems
    assert [(p["field"], p["params"]["where"]["params"]["number"]) for p in problems] == [
        ("date", 5),
        ("date", 6),
        ("kind", 7),
        ("name", 8),
    ]
    assert "2026-02-30" in problems[0]["message"] and "bad.csv, line 2" in problems[1]["message"]
    assert "4 problems" in exc.value.message and days(session) == 0  # nothing imported, not even the good rows
    no_kind = tmp_path / "no_kind.csv"
    no_kind.write_text("date,name\n2026-01-01,元旦\n")
    with pytest.raises(ValidationError) as exc:
        import_calendar_days(session, no_kind)
    assert exc.value.code == "calendar.header" and "kind" in exc.value.message


def test_hours_are_set_per_weekday_and_checked(session):
    rows = set_hours(session, ["6=09:00-12:00", "1-5=08:30-12:00,13:30-17:30"])["hours"]
    assert rows[0] == {"weekday": 1, "hours": "08:30-12:00, 13:30-17:30"}
    assert rows[5] == {"weekday": 6, "hours": "09:00-12:00"} and rows[6] == {"weekday": 7, "hours": ""}
    assert load_calendar(session).hours[6] == ((540, 720),)
    for spec, code in [
        ("8=09:00-12:00", "calendar.bad_hours_spec"),
        ("1-5 09:00-12:00", "calendar.bad_hours_spec"),
        ("1=12:00-09:00", "calendar.bad_span"),
        ("1=09:00-25:00", "calendar.bad_span"),
        ("1=09:00-12:00,11:00-13:00", "calendar.spans_overlap"),
    ]:
        with pytest.raises(ValidationError) as exc:
            set_hours(session, [spec])
        assert exc.value.code == code, spec
    with pytest.raises(ValidationError) as exc:
        set_hours(session, ["1-7="])
    assert exc.value.code == "calendar.no_hours_left"
    assert hours_rows(session)[0]["hours"] == "08:30-12:00, 13:30-17:30"


def test_categories_say_how_their_limits_count(session, tmp_path):
    seed_categories(session)
    assert category(session, "E0401").around_the_clock is True  # 突发事件
    assert category(session, "0101").around_the_clock is False
    shown = {r["code"]: r["clock"] for r in category_rows(session)}
    assert (shown["E0407"], shown["E0101"]) == ("around_the_clock", "working")
    path = tmp_path / "cats.csv"
    header = "code,kind,major_code,major_name,name,time_limit_hours,clock\n"
    path.write_text(header + "E0699,event,06,其他事件,无人机违规飞行,12,全天\nE0498,event,04,突发事件,山体滑坡,2,\n")
    seed_categories(session, path)
    assert category(session, "E0699").around_the_clock and category(session, "E0498").around_the_clock
    path.write_text(header + "E0699,event,06,其他事件,无人机违规飞行,12,sometimes\n")
    with pytest.raises(ValidationError) as exc:
        seed_categories(session, path)
    assert "sometimes" in exc.value.message and category(session, "E0699").around_the_clock


@pytest.fixture
def world(session):
    return make_incident_world(session, hours=())  # Monday-Friday 09:00-12:00, 14:00-18:00


def report(session, category_code, at):
    return wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], description="x", category=category_code, reported_at=at, actor=SUPERVISOR
    ).incident


def test_a_case_reported_friday_evening_is_due_monday(session, world):
    case = report(session, "E0305", bj(FRIDAY, 17))  # 无证掘路: accept 2 h, handle 8 h
    assert case.step_deadline == bj(MONDAY, 10)  # not Friday 19:00
    wf.accept(session, case.id, SUPERVISOR, at=bj(FRIDAY, 17, 30))
    assert case.step_deadline == bj(MONDAY, 10, 30)  # classify 2 h: 17:30-18:00, then 09:00-10:30
    wf.classify(session, case.id, SUPERVISOR, category="E0305", at=bj(FRIDAY, 18))
    # dispatch 4 h: Monday 09:00-12:00 and 14:00-15:00; handle 8 h: Monday 15:00-18:00, Tuesday 09:00-12:00 and
    # 14:00-16:00; verify 8 h: Tuesday 16:00-18:00, Wednesday 09:00-12:00 and 14:00-17:00.
    assert parse_time(case.deadlines["dispatch"]) == bj(MONDAY, 15)
    assert parse_time(case.deadlines["handle"]) == bj(MONDAY + timedelta(days=1), 16)
    assert case.deadline == bj(MONDAY + timedelta(days=2), 17)


def test_an_urgent_category_runs_around_the_clock(session, world):
    case = report(session, "E0401", bj(FRIDAY, 17))  # 路面塌陷: accept 1 h, handle 2 h, around the clock
    assert case.step_deadline == bj(FRIDAY, 18)
    wf.accept(session, case.id, SUPERVISOR, at=bj(FRIDAY, 17, 30))
    wf.classify(session, case.id, SUPERVISOR, category="E0401", at=bj(FRIDAY, 18))
    assert case.deadline == bj(FRIDAY, 18) + timedelta(hours=1 + 2 + 4)  # Saturday 01:00


def test_a_holiday_counts_and_open_cases_are_counted_again(session, world, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text(f"date,kind,name\n{MONDAY},holiday,测试假日\n")
    before = report(session, "E0305", bj(FRIDAY, 17))
    assert before.step_deadline == bj(MONDAY, 10)
    assert import_calendar_days(session, path).recounted == 1
    after = report(session, "E0305", bj(FRIDAY, 17))
    assert after.step_deadline == bj(MONDAY + timedelta(days=1), 10)  # Monday off: Tuesday
    session.refresh(before)
    # Given before the holiday was known, still open: counted again on the calendar as it is now.
    assert before.step_deadline == bj(MONDAY + timedelta(days=1), 10)


def _run(session, world, category_code):
    case = report(session, category_code, bj(FRIDAY, 16))
    s, c1 = SUPERVISOR, coordinator_actor(world, 1)
    wf.accept(session, case.id, s, at=bj(FRIDAY, 16, 30))
    wf.classify(session, case.id, s, category=category_code, at=bj(FRIDAY, 17))
    wf.dispatch(session, case.id, s, at=bj(FRIDAY, 17, 30))
    wf.feedback(session, case.id, c1, note="已处理", at=bj(MONDAY, 10))
    wf.close(session, case.id, s, at=bj(MONDAY, 11))
    return case


def test_the_on_time_rate_follows_working_time(session, world):
    # Two cases handled alike over a weekend, closed on Monday at 11:00: the working-time one is on time
    # (due a week later), the one around the clock (due Saturday 00:00) is late.
    working, urgent = _run(session, world, "E0305"), _run(session, world, "E0401")
    assert working.deadline > working.closed_at > urgent.deadline
    total = evaluate(session, from_="2026-11-01", to="2026-12-01")["total"]
    assert (total["closed"], total["on_time_rate"]) == (2, 0.5)
    # The same cases with the category around the clock too: both late.
    category(session, "E0305").around_the_clock = True
    _run(session, world, "E0305")
    total = evaluate(session, from_="2026-11-01", to="2026-12-01")["total"]
    assert (total["closed"], total["on_time_rate"]) == (3, round(1 / 3, 4))


def test_mean_time_per_step_counts_working_time(session, world):
    # Handling from Friday 17:30 to Monday 10:00: 1.5 working hours (17:30-18:00, 09:00-10:00) for the working-time
    # case, 64.5 hours for the one around the clock.
    working, urgent = _run(session, world, "E0305"), _run(session, world, "E0401")
    assert working.handle_work_us == 1.5 * 3600 * 1_000_000 and urgent.handle_work_us == 64.5 * 3600 * 1_000_000
    steps = evaluate(session, from_="2026-11-01", to="2026-12-01")["total"]["steps"]
    assert steps["handle"]["mean_hours"] == round((1.5 + 64.5) / 2, 2)
    assert steps["accept"]["mean_hours"] == 0.5 and steps["total"]["n"] == 2
    # Friday 16:00 → Monday 11:00: 2 + 2 working hours; 67 hours around the clock.
    assert steps["total"]["mean_hours"] == round((4 + 67) / 2, 2)
    assert steps["total"]["p90_hours"] > 4
    # A case stored before step times were kept (none recorded) counts its steps around the clock.
    session.execute(update(Incident).where(Incident.id == working.id).values(handle_work_us=None))
    steps = evaluate(session, from_="2026-11-01", to="2026-12-01")["total"]["steps"]
    assert steps["handle"]["mean_hours"] == 64.5


def test_imported_cases_get_working_time_deadlines_and_step_times(session, world, tmp_path):
    mapping = {
        "source": "hotline",
        "code_prefix": "HL",
        "columns": {"external_id": "编号", "category": "类型", "reported_at": "上报时间", "closed_at": "结案时间"},
        "timezone": "Asia/Shanghai",
        "categories": {"掘路": "E0305", "塌陷": "E0401"},
    }
    path = tmp_path / "cases.csv"
    path.write_text(
        "编号,类型,上报时间,结案时间\nA1,掘路,2026-11-27 17:00,2026-11-30 10:00\nA2,塌陷,2026-11-27 17:00,\n",
        encoding="utf-8",
    )
    import_incidents(session, path, mapping)
    cases = {c.external_id: c for c in session.scalars(select(Incident).where(Incident.source == "hotline"))}
    # E0305: 2 + 2 + 4 + 8 + 8 = 24 working hours from Friday 17:00: 1 h Friday, 7 h each Monday to Wednesday,
    # then Thursday 09:00-11:00.
    assert cases["A1"].deadline == bj(MONDAY + timedelta(days=3), 11)
    assert cases["A1"].total_work_us == 2 * 3600 * 1_000_000  # Friday 17:00-18:00, Monday 09:00-10:00
    # E0401 around the clock: 1 + 1 + 1 + 2 + 4 = 9 hours; not closed, no total.
    assert cases["A2"].deadline == bj(FRIDAY, 17) + timedelta(hours=9) and cases["A2"].total_work_us is None


def test_the_migration_turns_stored_limits_into_working_time(pg_server):
    """Categories stored before 20261207_cal9e had limits in calendar hours: a day's limit becomes a working day,
    limits of up to 8 hours stay, public safety and 突发事件 run around the clock with their limits unchanged."""
    pg_server.create_database("gridkit_cal9e_limits")
    url = pg_server.owner_url("gridkit_cal9e_limits")  # migrations run as the owner
    try:
        db.upgrade(url, "20261206_scale8b")
        engine = db.make_engine(url)
        rows = [  # code, kind, major, major name, name, limit, step hours
            ("0101", "component", "01", "公用设施", "上水井盖", 24, '{"accept": 2, "verify": 24}'),
            ("0206", "component", "02", "道路交通", "交通信号灯", 12, '{"verify": 24}'),
            ("0305", "component", "03", "市容环境", "广告牌匾", 120, None),
            ("E0101", "event", "01", "市容环境", "暴露垃圾", 4, "{}"),
            ("E0901", "event", "09", "扩展事件", "占道经营", 12, '{"dispatch": 48}'),
            ("E0401", "event", "04", "突发事件", "路面塌陷", 2, '{"verify": 24}'),
        ]
        with engine.begin() as conn:
            for code, kind, major, major_name, name, limit, steps in rows:
                conn.execute(
                    text(
                        "INSERT INTO incident_category (code, kind, major_code, major_name, name, time_limit_hours, "
                        "step_hours) VALUES (:c, :k, :m, :mn, :n, :h, CAST(:s AS jsonb))"
                    ),
                    {"c": code, "k": kind, "m": major, "mn": major_name, "n": name, "h": limit, "s": steps},
                )
        db.upgrade(url)
        with engine.begin() as conn:
            got = {
                r.code: (r.time_limit_hours, r.step_hours, r.around_the_clock)
                for r in conn.execute(
                    text("SELECT code, time_limit_hours, step_hours, around_the_clock FROM incident_category")
                )
            }
        engine.dispose()
        assert got == {
            "0101": (8, {"accept": 2, "verify": 8}, False),
            "0206": (12, {"verify": 24}, True),
            "0305": (40, None, False),
            "E0101": (4, None, False),
            "E0901": (8, {"dispatch": 16}, False),
            "E0401": (2, {"verify": 24}, True),
        }
    finally:
        pg_server.drop_database("gridkit_cal9e_limits")
