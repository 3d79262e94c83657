"""`gridkit export` and `gridkit report` through the CLI on a database of their own."""

from __future__ import annotations

import json
import zipfile

import pyogrio
import pytest
from click.testing import CliRunner
from factories_exports import C1, DEPT, make_city
from sqlalchemy import select, text

from gridkit import db
from gridkit.audit import PERSONAL_DATA_READ
from gridkit.cli import main
from gridkit.models import AuditLog, User

EN = {"GRIDKIT_LANG": "en"}


@pytest.fixture
def cli_city(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
        session.add_all([User(name="ana", role="analyst"), User(name="root", role="admin")])
    return fresh_settings


def run(settings, *args, env=None):
    return CliRunner().invoke(main, list(args), obj=settings, env=env or EN, catch_exceptions=False)


def test_export_shapefile_and_json_summary(cli_city, tmp_path):
    out = tmp_path / "cells.zip"
    result = run(cli_city, "export", "base-cells", "-o", str(out), "--crs", "EPSG:4547", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["features"] == 18 and summary["crs"] == "EPSG:4547"
    assert summary["shapefile_fields"] == {"community_code": "community_", "community_name": "communit_1"}
    with zipfile.ZipFile(out) as zf:
        assert "fields.csv" in zf.namelist()
    assert pyogrio.read_info(f"/vsizip/{out}/base-cells.shp")["crs"] == "EPSG:4547"
    again = run(cli_city, "export", "base-cells", "-o", str(out))
    assert again.exit_code == 1 and "exists already" in again.output and "--force" in again.output


def test_export_errors_are_one_line(cli_city, tmp_path):
    bad = run(cli_city, "export", "residents", "-o", str(tmp_path / "r.csv"), "--where", "colour=red")
    assert bad.exit_code == 1 and "has no field 'colour'" in bad.output and "Traceback" not in bad.output
    zh = run(cli_city, "export", "rivers", "-o", str(tmp_path / "r.csv"), env={"GRIDKIT_LANG": "zh-CN"})
    assert zh.exit_code == 1 and "未知图层" in zh.output
    denied = run(cli_city, "export", "residents", "-o", str(tmp_path / "r.csv"), "--unmasked", "--as", "ana")
    assert denied.exit_code == 1 and "may not export unmasked" in denied.output
    unwritable = run(cli_city, "export", "residents", "-o", "/proc/r.csv")
    assert unwritable.exit_code == 1 and "not writable" in unwritable.output


def test_export_says_which_shapefile_text_was_cut(cli_city, tmp_path):
    with db.session_factory(db.engine_for(cli_city))() as session, session.begin():
        session.execute(
            text("UPDATE legal_entity SET address = repeat('园', 200) WHERE id = (SELECT min(id) FROM legal_entity)")
        )
    result = run(cli_city, "export", "entities", "-o", str(tmp_path / "e.zip"))
    assert result.exit_code == 0, result.output
    assert "1 values of field address were cut to 254 bytes" in result.output and "gpkg" in result.output
    zh = run(cli_city, "export", "entities", "-o", str(tmp_path / "e.zip"), "--force", env={"GRIDKIT_LANG": "zh-CN"})
    assert "字段 address 有 1 个值被截断到 254 字节" in zh.output
    whole = run(cli_city, "export", "entities", "-o", str(tmp_path / "e.gpkg"))
    assert whole.exit_code == 0 and "were cut" not in whole.output


def test_unmasked_export_is_committed_to_the_audit_log(cli_city, tmp_path):
    result = run(
        cli_city, "export", "residents", "-o", str(tmp_path / "r.gpkg"), "--unmasked", "--as", "root", "--area", C1
    )
    assert result.exit_code == 0, result.output
    with db.session_factory(db.engine_for(cli_city))() as session:
        rows = session.scalars(select(AuditLog).where(AuditLog.action == PERSONAL_DATA_READ)).all()
    assert [(r.actor, r.object_type, r.detail["count"], r.detail["area"]) for r in rows] == [("root", "export", 18, C1)]


def test_report_commands(cli_city, tmp_path):
    listed = json.loads(run(cli_city, "report", "list", "--json").output)
    assert {"population", "school-age", "staffing"} <= {r["name"] for r in listed}
    table = run(cli_city, "report", "population", "--by", "community")
    assert table.exit_code == 0 and C1 in table.output and "Residents" in table.output
    out = tmp_path / "wl.xlsx"
    written = run(cli_city, "report", "workload", "--dept", DEPT, "-o", str(out))
    assert written.exit_code == 0, written.output and out.exists()
    unknown = run(cli_city, "report", "weather")
    assert unknown.exit_code != 0 and "Unknown report 'weather'" in unknown.output


def test_a_report_as_a_user_who_may_not_see_residents_hides_small_counts(cli_city, tmp_path):
    """Two residents a base cell: "<3" for an analyst (--as), counted for an administrator and the operator."""
    as_analyst = json.loads(run(cli_city, "report", "population", "--by", "cell", "--as", "ana", "--json").output)
    rows = as_analyst["sections"][0]["rows"]
    assert rows and {r["residents"] for r in rows} == {"<3"} and as_analyst["params"]["small_counts"] == "<3"
    for who in (("--as", "root"), ()):
        counted = json.loads(run(cli_city, "report", "population", "--by", "cell", *who, "--json").output)
        assert {r["residents"] for r in counted["sections"][0]["rows"]} == {2}
    out = tmp_path / "p.csv"
    assert run(cli_city, "report", "population", "--by", "cell", "--as", "ana", "-o", str(out)).exit_code == 0
    assert ",<3," in out.read_text(encoding="utf-8-sig") and "counts of 1–2 residents" in out.read_text("utf-8-sig")


def test_the_written_line_names_a_text_encoding_only_where_the_format_has_one(cli_city, tmp_path):
    zh = {"GRIDKIT_LANG": "zh-CN"}
    csv_gbk = run(cli_city, "export", "buildings", "-o", str(tmp_path / "b.csv"), "--encoding", "gbk", env=zh)
    assert csv_gbk.exit_code == 0 and "（csv，EPSG:4490，gbk，" in csv_gbk.output, csv_gbk.output
    for name in ("b.xlsx", "b.gpkg"):
        written = run(cli_city, "export", "buildings", "-o", str(tmp_path / name), env=zh)
        assert written.exit_code == 0 and "utf-8" not in written.output.lower(), written.output
        assert (
            json.loads(run(cli_city, "export", "buildings", "-o", str(tmp_path / name), "--force", "--json").output)[
                "encoding"
            ]
            is None
        )
    geojson = run(cli_city, "export", "buildings", "-o", str(tmp_path / "b.geojson"))
    assert "(geojson, EPSG:4490, utf-8," in geojson.output, geojson.output
