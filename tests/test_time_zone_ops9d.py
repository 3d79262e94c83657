"""The city's time zone is a setting (GRIDKIT_TIME_ZONE, default Asia/Shanghai): the one Python rule
(gridkit.rules.local_tz) and the database's evaluation rollup (gridkit_config, migration 20261207_ops9d)
both follow it. Europe/Berlin is the other zone here: its days differ from Beijing's by 6 or 7 hours, and
2026-10-25 is a day of 25 hours there (clocks back from 03:00 CEST to 02:00 CET)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy.exc
from click.testing import CliRunner
from factories_incidents import IN_C1, SUPERVISOR, make_incident_world
from sqlalchemy import text

from gridkit import db, rules
from gridkit.cli import main
from gridkit.config import Settings
from gridkit.db.timezone import database_time_zone, set_database_time_zone
from gridkit.errors import SetupError
from gridkit.incidents import workflow as wf
from gridkit.incidents.evaluate import evaluate
from gridkit.reports import run_report

ROOT = Path(__file__).resolve().parent.parent
BERLIN = "Europe/Berlin"

# UTC report times → (Berlin day, Beijing day).
CASES = {
    "2026-10-24T21:30:00Z": ("2026-10-24", "2026-10-25"),  # 23:30 CEST / 05:30
    "2026-10-24T22:30:00Z": ("2026-10-25", "2026-10-25"),  # 00:30 CEST / 06:30
    "2026-10-25T00:30:00Z": ("2026-10-25", "2026-10-25"),  # 02:30 CEST, the first 02:30
    "2026-10-25T01:30:00Z": ("2026-10-25", "2026-10-25"),  # 02:30 CET, the second 02:30
    "2026-10-25T22:30:00Z": ("2026-10-25", "2026-10-26"),  # 23:30 CET / 06:30 the next day
}


@pytest.fixture
def zone():
    """Restore the process's zone to the default after a test that changes it."""
    yield
    rules.use_time_zone(rules.DEFAULT_TIME_ZONE)


def _report(session, at: str):
    return wf.report_incident(
        session, lon=IN_C1[0], lat=IN_C1[1], actor=SUPERVISOR, description="井盖破损", reported_at=at
    ).incident


def _days(session, days) -> list[int]:
    return [evaluate(session, from_=day, to=day)["total"]["cases"] for day in days]


def _rollup(session) -> dict:
    rows = session.execute(text("SELECT day::text, sum(cases)::int FROM incident_eval GROUP BY day ORDER BY day"))
    return dict(rows.all())


def test_the_setting_is_validated_and_names_its_variable():
    assert Settings.from_env({}).time_zone == "Asia/Shanghai"
    assert Settings.from_env({"GRIDKIT_TIME_ZONE": BERLIN}).time_zone == BERLIN
    for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "Asia/Shanghai'; DROP TABLE incident; --", "/etc/localtime"):
        with pytest.raises(SetupError) as refused:
            Settings.from_env({"GRIDKIT_TIME_ZONE": bad})
        assert all("GRIDKIT_TIME_ZONE" in refused.value.render(lang) for lang in ("en", "zh-CN"))
    done = CliRunner().invoke(main, ["settings"], env={"GRIDKIT_TIME_ZONE": "Beijing"})
    assert done.exit_code != 0 and "GRIDKIT_TIME_ZONE='Beijing'" in done.output


def test_the_python_rule_follows_the_setting_in_a_fresh_process():
    code = (
        "from datetime import datetime\nfrom zoneinfo import ZoneInfo\n"
        "from gridkit.rules import local_now, today, parse_time\n"
        "print(today() == datetime.now(ZoneInfo('Europe/Berlin')).date(), local_now().tzinfo.key,"
        " parse_time('2026-10-25T12:00:00').isoformat())\n"
    )
    env = {**os.environ, "GRIDKIT_TIME_ZONE": BERLIN, "TZ": "ZZZ16"}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    # Noon of the 25-hour day is CET (+01:00): the clocks went back at 03:00.
    assert done.stdout.split() == ["True", BERLIN, "2026-10-25T12:00:00+01:00"]


@pytest.mark.as_owner(
    "`gridkit db up` gives the database its time zone as the owner (gridkit_config is read-only for the app)"
)
def test_days_rollups_codes_and_reports_follow_a_daylight_saving_zone(session, zone):
    make_incident_world(session)
    times = list(CASES)
    early = [_report(session, at) for at in times[:3]]  # counted while the database is on Beijing days
    assert _rollup(session) == {"2026-10-25": 3}

    rules.use_time_zone(BERLIN)
    assert set_database_time_zone(session.connection(), BERLIN) is True  # recounted by Berlin's days
    assert set_database_time_zone(session.connection(), BERLIN) is False
    assert _rollup(session) == {"2026-10-24": 1, "2026-10-25": 2}
    late = [_report(session, at) for at in times[3:]]  # counted by the triggers in Berlin's days
    assert _rollup(session) == {"2026-10-24": 1, "2026-10-25": 4}
    assert _days(session, ["2026-10-24", "2026-10-25", "2026-10-26"]) == [1, 4, 0]
    # A period not of whole days mixes the rollup and the cases: the 25-hour day from its second 02:00.
    assert evaluate(session, from_="2026-10-25T02:00:00+01:00", to="2026-10-26")["total"]["cases"] == 2
    # A case's code is given once, with the day of its report in the zone of then.
    assert [case.code[:10] for case in early] == ["SJ" + CASES[at][1].replace("-", "") for at in times[:3]]
    assert [case.code[:10] for case in late] == ["SJ20261025", "SJ20261025"]  # Beijing's: 20261025, 20261026

    # A case late on the last evening of October in Berlin is October's, though already November in Beijing.
    _report(session, "2026-10-31T22:30:00Z")
    report = run_report(session, "incidents", date_from="2026-10-01", date_to="2026-10-31")
    months = next(s for s in report.sections if s.title == "report.incidents.by_month")
    assert [(r["month"], r["incidents"]) for r in months.rows] == [("2026-10", 6)]

    # Back to Beijing: the same cases counted by Beijing's days again.
    rules.use_time_zone("Asia/Shanghai")
    assert set_database_time_zone(session.connection(), "Asia/Shanghai") is True
    assert _rollup(session) == {"2026-10-25": 4, "2026-10-26": 1, "2026-11-01": 1}
    assert _days(session, ["2026-10-24", "2026-10-25", "2026-10-26"]) == [0, 4, 1]


@pytest.mark.as_owner(
    "`gridkit db up` gives the database its time zone as the owner (gridkit_config is read-only for the app)"
)
def test_a_zone_postgresql_does_not_know_is_refused_before_anything_changes(session):
    with pytest.raises(SetupError) as refused:
        set_database_time_zone(session.connection(), "Not/A_Zone")
    assert "GRIDKIT_TIME_ZONE" in refused.value.render("en")
    assert database_time_zone(session.connection()) == "Asia/Shanghai"
    # Written by hand, the table refuses it too: the triggers would refuse every case.
    with pytest.raises(sqlalchemy.exc.DataError), session.begin_nested():
        session.execute(text("UPDATE gridkit_config SET time_zone = 'Not/A_Zone'"))
    assert database_time_zone(session.connection()) == "Asia/Shanghai"


# As the owner: `gridkit db up` gives an external database its time zone as the URL's one role, the schema's owner.
def test_db_up_gives_the_database_the_zone_and_a_database_of_another_zone_is_refused(fresh_owner_settings, zone):
    fresh_settings = fresh_owner_settings
    berlin = replace(fresh_settings, time_zone=BERLIN)
    done = CliRunner().invoke(main, ["db", "up"], obj=berlin)
    assert done.exit_code == 0, done.output
    assert "Europe/Berlin" in done.output
    engine = db.engine_for(berlin)
    with engine.connect() as conn:
        assert database_time_zone(conn) == BERLIN
    db.forget_engine(berlin)
    with pytest.raises(SetupError) as refused:
        db.engine_for(fresh_settings)  # Beijing days asked of a database counting Berlin's
    said = refused.value.render("en")
    assert "Europe/Berlin" in said and "Asia/Shanghai" in said and "gridkit db up" in said
    assert db.up(fresh_settings)["time_zone_changed"] is True
    assert db.up(fresh_settings)["time_zone_changed"] is False
    db.engine_for(fresh_settings)


def test_the_embedded_database_takes_the_zone_as_its_owner_and_its_server_speaks_it(zone):
    home = Path(tempfile.mkdtemp(prefix="gk-tz-"))
    os.chmod(home, 0o755)  # the server's user reaches it when the tests run as root
    settings = Settings(home=home / "home", pg_port=5640, time_zone=BERLIN)
    try:
        rules.use_time_zone(BERLIN)  # as the CLI does with its settings
        done = db.up(settings)
        assert done["time_zone_changed"] is True  # a new database says Asia/Shanghai until then
        engine = db.engine_for(settings)
        with engine.connect() as conn:
            assert database_time_zone(conn) == BERLIN
            assert conn.scalar(text("SHOW TimeZone")) == BERLIN  # what psql shows, too
        assert db.up(settings)["time_zone_changed"] is False
    finally:
        db.forget_engine(settings)
        db.cluster_for(settings).destroy()
        shutil.rmtree(home, ignore_errors=True)
