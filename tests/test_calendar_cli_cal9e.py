"""`gridkit calendar …` and the categories' clock through CliRunner on a fresh database, in zh-CN and en."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gridkit import db
from gridkit.cli import main
from gridkit.incidents.categories import seed_categories
from gridkit.models import WorkCalendarDay


def run(settings, *args, lang="zh-CN"):
    return CliRunner().invoke(main, [str(a) for a in args], obj=settings, env={"GRIDKIT_LANG": lang})


@pytest.fixture
def cli(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        seed_categories(session)
    return fresh_settings


def stored(settings) -> int:
    with db.session_factory(db.engine_for(settings))() as session:
        return session.query(WorkCalendarDay).count()


def test_import_and_list_in_chinese_and_english(cli, tmp_path):
    path = tmp_path / "2026.csv"
    path.write_bytes("日期,类型,名称\n2026-10-01,节假日,国庆节\n2026-10-10,调休,国庆节调休\n".encode("gbk"))
    result = run(cli, "calendar", "import", path)
    assert result.exit_code == 0, result.output
    assert "新增 2" in result.output and "节假日 1" in result.output and "调休工作日 1" in result.output
    listed = run(cli, "calendar", "list", "--year", 2026)
    assert "国庆节调休" in listed.output and "星期六" in listed.output and "调休工作日" in listed.output
    listed = run(cli, "calendar", "list", lang="en")
    assert "Saturday" in listed.output and "adjusted working day" in listed.output and "Weekday" in listed.output
    rows = json.loads(run(cli, "calendar", "list", "--json").output)
    assert rows[0] == {"date": "2026-10-01", "weekday": 4, "kind": "holiday", "name": "国庆节", "hours": ""}
    removed = run(cli, "calendar", "remove", "2026-10-10", lang="en")
    assert removed.exit_code == 0 and "1 calendar days removed" in removed.output and stored(cli) == 1


def test_a_bad_file_is_refused_with_its_report_and_nothing_changes(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,kind,name\n2026-10-01,holiday,国庆节\n2026-13-01,holiday,x\n", encoding="utf-8")
    result = run(cli, "calendar", "import", path)
    assert result.exit_code == 1
    assert "bad.csv 第 3 行" in result.output and "不是日期" in result.output and stored(cli) == 0
    english = run(cli, "calendar", "import", path, lang="en")
    assert "bad.csv, line 3" in english.output and "is not a date" in english.output
    assert list((cli.home / "reports").glob("*calendar-import*"))


def test_hours_shown_and_set(cli):
    shown = run(cli, "calendar", "hours")
    assert "星期一" in shown.output and "09:00-12:00, 14:00-18:00" in shown.output and "不工作" in shown.output
    changed = run(cli, "calendar", "hours", "--set", "6=09:00-12:00", "--json", lang="en")
    assert json.loads(changed.output)[5] == {"weekday": 6, "hours": "09:00-12:00"}
    bad = run(cli, "calendar", "hours", "--set", "1=18:00-09:00", lang="en")
    assert bad.exit_code == 1 and "is not a span of working hours" in bad.output
    bad = run(cli, "calendar", "hours", "--set", "1=18:00-09:00")
    assert bad.exit_code == 1 and "不是工作时段" in bad.output


def test_categories_list_shows_how_limits_count(cli):
    chinese = run(cli, "incident", "categories", "list", "--kind", "event")
    assert "时限计算" in chinese.output and "全天（自然时）" in chinese.output and "工作时" in chinese.output
    english = run(cli, "incident", "categories", "list", "--kind", "event", lang="en")
    assert "around the clock" in english.output and "working hours" in english.output
    rows = {r["code"]: r for r in json.loads(run(cli, "incident", "categories", "list", "--json").output)}
    assert rows["E0401"]["clock"] == "around_the_clock" and rows["0101"]["clock"] == "working"
