"""Days and times are Beijing time's, whatever the server's zone (UTC on most servers and in CI).

Processes run with TZ=ZZZ16 (UTC-16): their local date is always the day before Beijing's, so a date
taken from the server's clock instead of Beijing time is wrong at any hour the test runs."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import text

from gridkit.incidents.categories import seed_categories
from gridkit.incidents.importer import import_incidents, load_mapping
from tests.test_incidents_baltimore import DATA as BALTIMORE
from tests.test_incidents_baltimore import EXTRA_CATEGORIES, MAPPING, make_baltimore_grid
from web.planner import when

ROOT = Path(__file__).resolve().parent.parent
FAR_WEST = {**os.environ, "TZ": "ZZZ16"}


def _far_west(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=FAR_WEST, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_child_born_today_in_beijing_is_not_born_in_the_future_on_a_server_in_another_zone():
    said = _far_west(
        "from gridkit.rules import today\n"
        "from gridkit.standard.ids import citizen_id_check_char, citizen_ids_valid, validate_citizen_id\n"
        "import numpy as np\n"
        "first = '110101' + today().strftime('%Y%m%d') + '123'\n"
        "number = first + citizen_id_check_char(first)\n"
        "validate_citizen_id(number)\n"
        "print(bool(citizen_ids_valid(np.frombuffer(number.encode(), dtype=np.uint8))[0]))\n"
    )
    assert said == "True"


def test_names_and_dates_made_from_the_clock_are_beijing_time():
    said = _far_west(
        "from datetime import datetime\n"
        "from zoneinfo import ZoneInfo\n"
        "from gridkit.rules import local_now, today\n"
        "print(today() == datetime.now(ZoneInfo('Asia/Shanghai')).date(), local_now().utcoffset().seconds)\n"
    )
    assert said == "True 28800"


# Reads of the server's clock in its own zone: a day, a name or a file name from them is the server's.
_NAIVE_CLOCK = {("date", "today"), ("datetime", "now"), ("datetime", "today")}


def test_no_code_reads_the_clock_in_the_servers_zone():
    found = []
    for folder in ("gridkit", "web"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                owner = node.func.value
                name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
                if (name, node.func.attr) in _NAIVE_CLOCK and not node.args and not node.keywords:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
                if node.func.attr == "astimezone" and not node.args:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_times_shown_on_pages_are_beijing_time_whatever_zone_they_come_in():
    assert when("2026-12-01T15:30:00+00:00") == "2026-12-01 23:30"
    assert when(datetime(2026, 12, 1, 15, 30, tzinfo=UTC)) == "2026-12-01 23:30"
    assert when("2026-12-01T23:30:00+08:00") == "2026-12-01 23:30"
    assert when("2026-12-01T23:30:00") == "2026-12-01 23:30"  # naive: Beijing time
    assert when(None) == ""


def test_cases_of_a_daylight_saving_city_reported_in_the_hours_the_clocks_change_are_imported(session, tmp_path):
    """Baltimore's clocks went back on 2023-11-05 (01:00-01:59 shown twice) and forward on 2023-03-12
    (02:00-02:59 never shown); a year of 311 calls has cases in both hours."""
    seed_categories(session)
    seed_categories(session, EXTRA_CATEGORIES)
    make_baltimore_grid(session)
    rows = pd.read_csv(BALTIMORE, dtype=str, keep_default_na=False).head(40)
    changed = {
        0: ("11/05/2023 01:30:00 AM", "11/05/2023 01:45:00 AM"),  # fall back: EDT, the first 01:30
        1: ("03/12/2023 02:30:00 AM", "03/12/2023 04:00:00 AM"),  # spring forward: 03:00 EDT
        2: ("11/05/2023 12:59:00 AM", "11/05/2023 02:10:00 AM"),  # across the change: 2 h 11 min
    }
    for i, (reported, closed) in changed.items():
        rows.loc[i, ["CreatedDate", "CloseDate", "StatusDate", "DueDate"]] = [reported, closed, closed, closed]
        rows.loc[i, "SRStatus"] = "Closed"
    path = tmp_path / "dst.csv"
    rows.to_csv(path, index=False)
    done = import_incidents(session, path, load_mapping(MAPPING))
    assert done["imported"] == 40
    got = {
        r.external_id: (r.reported_at, r.closed_at)
        for r in session.execute(
            text("SELECT external_id, reported_at, closed_at FROM incident WHERE external_id = ANY(:ids)"),
            {"ids": [rows.loc[i, "ServiceRequestNum"] for i in changed]},
        )
    }
    utc = [got[rows.loc[i, "ServiceRequestNum"]] for i in changed]
    assert utc[0] == (datetime(2023, 11, 5, 5, 30, tzinfo=UTC), datetime(2023, 11, 5, 5, 45, tzinfo=UTC))
    assert utc[1] == (datetime(2023, 3, 12, 7, 0, tzinfo=UTC), datetime(2023, 3, 12, 8, 0, tzinfo=UTC))
    assert utc[2][1] - utc[2][0] == pd.Timedelta(hours=2, minutes=11)


def test_times_the_cli_prints_are_beijing_time_whatever_zone_they_come_in():
    from gridkit.cli.output import _json_default, cell

    utc = datetime(2026, 12, 1, 15, 30, tzinfo=UTC)
    assert cell(utc) == "2026-12-01 23:30:00+08:00"
    assert _json_default(utc) == "2026-12-01T23:30:00+08:00"


def test_a_case_reported_late_in_the_evening_in_beijing_belongs_to_that_day_everywhere(session):
    """2026-12-01 23:30 Beijing time is 15:30 UTC: the 1st in the evaluation, the reports, the case code."""
    from factories_incidents import IN_C1, SUPERVISOR, make_incident_world

    from gridkit.incidents import workflow as wf
    from gridkit.incidents.evaluate import evaluate
    from gridkit.reports import run_report

    make_incident_world(session)
    case = wf.report_incident(
        session,
        lon=IN_C1[0],
        lat=IN_C1[1],
        actor=SUPERVISOR,
        description="井盖破损",
        reported_at="2026-12-01T15:30:00Z",
    ).incident
    assert case.code.startswith("SJ20261201")

    def total(day: str) -> int:
        return evaluate(session, from_=day, to=day)["total"]["cases"]

    assert (total("2026-11-30"), total("2026-12-01")) == (0, 1)
    report = run_report(session, "incidents", date_from="2026-12-01", date_to="2026-12-01")
    months = next(s for s in report.sections if s.title == "report.incidents.by_month")
    assert [(r["month"], r["incidents"]) for r in months.rows] == [("2026-12", 1)]
