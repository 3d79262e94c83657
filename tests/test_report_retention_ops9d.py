"""Import reports (GRIDKIT_HOME/reports, quoting the rows an import refused) are kept
GRIDKIT_REPORT_RETENTION_DAYS days: older ones go when an import starts and with `gridkit reports prune`,
as do scratch folders of web downloads a stopped server left in GRIDKIT_HOME/exports. A file of a name
gridkit does not write, a link, a folder of a report's name, photos: all stay."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, make_incident_world

from gridkit import db
from gridkit.cli import main
from gridkit.config import Settings
from gridkit.errors import SetupError

DAY = 24 * 3600


def _aged(path, days: float):
    when = time.time() - days * DAY
    os.utime(path, (when, when), follow_symlinks=False)
    return path


def _file(path, days: float, text: str = "{}"):
    path.write_text(text, encoding="utf-8")
    return _aged(path, days)


def _home(tmp_path):
    """A home with reports and download folders of every age and kind; return (home, {name: path})."""
    home = tmp_path / "home"
    reports, exports = home / "reports", home / "exports"
    reports.mkdir(parents=True)
    exports.mkdir()
    outside = tmp_path / "precious.txt"
    outside.write_text("not gridkit's")
    made = {}
    for name, days in {
        "20260801-101500-admin-import.json": 120,
        "20260801-101500-admin-import.txt": 120,
        "20260801-101500-admin-import.csv": 120,
        "20260801-101500-居民导入-2.csv": 120,
        "20261120-090000-incidents-import.json": 15,
        "notes.txt": 400,  # someone's own file
        "20250101-000000-x.xlsx": 400,  # not a name gridkit writes
    }.items():
        made[name] = _file(reports / name, days)
    link = reports / "20250101-000000-link.json"
    link.symlink_to(outside)
    made["link"] = _aged(link, 400)
    folder = reports / "20250101-000000-folder.json"
    folder.mkdir()
    made["folder"] = _aged(folder, 400)
    for name, days in {"gk-abc123_x": 2, "gk-fresh99": 0.1, "mine": 30}.items():
        (exports / name).mkdir()
        (exports / name / "residents.gpkg").write_bytes(b"layer")
        made[name] = _aged(exports / name, days)
    (home / "attachments").mkdir()
    made["photo"] = _file(home / "attachments" / "20250101-000000-photo.json", 400)
    return home, made, outside


def _prune(settings, *args, lang="en"):
    done = CliRunner().invoke(main, ["reports", "prune", *args], obj=settings, env={"GRIDKIT_LANG": lang})
    assert done.exit_code == 0, done.output
    return done.output


def test_prune_removes_old_reports_and_abandoned_downloads_of_gridkits_names_only(tmp_path):
    home, made, outside = _home(tmp_path)
    settings = Settings(home=home, database_url="postgresql://unused/none")
    said = _prune(settings)  # default: 90 days
    gone = {name for name, path in made.items() if not os.path.lexists(path)}
    assert gone == {
        "20260801-101500-admin-import.json",
        "20260801-101500-admin-import.txt",
        "20260801-101500-admin-import.csv",
        "20260801-101500-居民导入-2.csv",
        "gk-abc123_x",
    }
    for name in gone:
        assert str(made[name]) in said
    assert "4 import reports older than 90 days removed, and 1 abandoned download folders" in said
    assert outside.read_text() == "not gridkit's" and made["link"].is_symlink()

    # --older-than: a shorter retention, in the reader's language, as JSON too.
    said = _prune(settings, "--older-than", "10", lang="zh-CN")
    assert "已删除 1 份超过 10 天的导入报告" in said and not made["20261120-090000-incidents-import.json"].exists()
    data = json.loads(_prune(settings, "--older-than", "0", "--json"))
    assert data == {"older_than_days": 0, "reports": [], "scratch": []}
    assert sorted(p.name for p in (home / "reports").iterdir()) == [
        "20250101-000000-folder.json",
        "20250101-000000-link.json",
        "20250101-000000-x.xlsx",
        "notes.txt",
    ]
    assert made["gk-fresh99"].exists() and made["mine"].exists() and made["photo"].exists()


def test_the_retention_is_a_validated_setting():
    assert Settings.from_env({}).report_retention_days == 90
    assert Settings.from_env({"GRIDKIT_REPORT_RETENTION_DAYS": "30"}).report_retention_days == 30
    for bad in ("0", "-3", "ninety"):
        with pytest.raises(SetupError) as refused:
            Settings.from_env({"GRIDKIT_REPORT_RETENTION_DAYS": bad})
        assert "GRIDKIT_REPORT_RETENTION_DAYS" in refused.value.render("en")


@pytest.mark.parametrize("noun", ["components", "residents"])
def test_an_import_starts_by_removing_the_reports_past_their_days(fresh_settings, tmp_path, noun):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_incident_world(session)
    settings = replace(fresh_settings, report_retention_days=30)
    reports = settings.home / "reports"
    reports.mkdir(parents=True)
    old = _file(reports / "20260101-000000-components-import.txt", 31, "refused rows")
    kept = _file(reports / "20261201-000000-components-import.txt", 29, "recent")
    path = tmp_path / "bad.csv"  # refused either way: its own report is written after the pruning
    path.write_text(f"code,lon,lat\n4403040199000001,{IN_C1[0]},{IN_C1[1]}\n", encoding="utf-8")
    done = CliRunner().invoke(
        main, ["import", noun, str(path)], obj=settings, env={"GRIDKIT_LANG": "en", "GRIDKIT_USER": "super1"}
    )
    assert done.exit_code == 1, done.output
    assert not old.exists() and kept.exists()
    assert len(list(reports.glob(f"*-{noun}-import.txt"))) == 1 + (noun == "components")
