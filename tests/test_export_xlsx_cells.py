"""An XLSX cell holds at most 32,767 characters: what an export cannot put in one is said or refused,
never cut silently (openpyxl cuts it without a word), read back as an analyst's Excel would (openpyxl)."""

from __future__ import annotations

import pyogrio
import pytest
from click.testing import CliRunner
from factories_exports import make_city
from openpyxl import load_workbook
from sqlalchemy import text

from gridkit.errors import ValidationError
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.export_writers import XLSX_CELL_CHARS


@pytest.fixture
def city(session):
    return make_city(session)


def _rows(path) -> list[tuple]:
    return list(load_workbook(path, read_only=True).active.iter_rows(values_only=True))


def test_text_over_a_cell_is_cut_counted_and_said(session, city, tmp_path):
    long = "井盖" * 20_000  # 40,000 characters
    session.execute(text("UPDATE incident SET description = :d WHERE id = (SELECT min(id) FROM incident)"), {"d": long})
    summary = export_layer(session, ExportOptions("incidents", "xlsx", tmp_path / "i.xlsx"))
    rows = _rows(tmp_path / "i.xlsx")
    column = rows[0].index("description")
    values = [r[column] for r in rows[1:]]
    # Every row is there; the long value is cut to what a cell holds, and the summary says so.
    assert len(values) == summary["features"] == city["incidents"]
    assert long[:XLSX_CELL_CHARS] in values and max(len(v or "") for v in values) == XLSX_CELL_CHARS
    assert summary["truncated"] == {"description": 1}
    # CSV and GeoPackage have no such limit: the whole value.
    export_layer(session, ExportOptions("incidents", "gpkg", tmp_path / "i.gpkg"))
    kept = pyogrio.read_dataframe(tmp_path / "i.gpkg", read_geometry=False)["description"]
    assert long in set(kept)


def test_a_geometry_longer_than_a_cell_is_refused_naming_the_feature(session, city, tmp_path):
    # A community drawn with thousands of vertices (as real boundaries are): its WKT passes 32,767 characters.
    session.execute(
        text(
            "UPDATE admin_unit SET geom = ST_Multi(ST_Buffer(ST_Centroid(geom), 0.001, 1000)) "
            "WHERE code = (SELECT max(code) FROM admin_unit WHERE level = 'community')"
        )
    )
    with pytest.raises(ValidationError) as err:
        export_layer(session, ExportOptions("admin-units", "xlsx", tmp_path / "a.xlsx"))
    units = session.execute(text("SELECT count(*) FROM admin_unit")).scalar_one()
    assert err.value.code == "export.xlsx_geometry_too_long"
    assert err.value.params["feature"] == units and err.value.params["chars"] > XLSX_CELL_CHARS
    assert "gpkg" in err.value.render("en") and "gpkg" in err.value.render("zh-CN")
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    # The same layer as CSV keeps the whole WKT.
    export_layer(session, ExportOptions("admin-units", "csv", tmp_path / "a.csv"))
    assert max(len(line) for line in (tmp_path / "a.csv").read_text(encoding="utf-8-sig").splitlines()) > 32_767


def test_cli_says_which_field_was_cut(fresh_settings, tmp_path):
    from gridkit import db
    from gridkit.cli import main

    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        facts = make_city(session)
        session.execute(text("UPDATE incident SET description = :d"), {"d": "x" * 40_000})
    out = tmp_path / "i.xlsx"
    result = CliRunner().invoke(
        main, ["export", "incidents", "-o", str(out)], obj=fresh_settings, env={"GRIDKIT_LANG": "en"}
    )
    assert result.exit_code == 0, result.output
    assert f"{facts['incidents']} values of field description were cut to 32,767 characters" in result.output
    assert len(_rows(out)) == facts["incidents"] + 1


def test_control_characters_are_removed_and_counted_not_a_crash(session, city, tmp_path):
    # Text pasted from another system (a hotline's form, a spreadsheet) can hold control characters
    # that XML cannot: openpyxl raised half-way through the file.
    session.execute(
        text("UPDATE incident SET description = :d WHERE id = (SELECT min(id) FROM incident)"),
        {"d": "井盖\x01缺失\x1f\t"},
    )
    summary = export_layer(session, ExportOptions("incidents", "xlsx", tmp_path / "i.xlsx"))
    rows = _rows(tmp_path / "i.xlsx")
    column = rows[0].index("description")
    assert "井盖缺失\t" in [r[column] for r in rows[1:]]
    assert len(rows) - 1 == city["incidents"] and summary["cleaned"] == {"description": 1}


def test_xlsx_read_back_by_gdal_as_by_openpyxl(session, city, tmp_path):
    # The sheet is written as text (gridkit.io.xlsx_stream): a reader other than openpyxl sees every row,
    # markup characters as text and times as times.
    session.execute(
        text("UPDATE incident SET description = '<b>A & B</b> =1+1' WHERE id = (SELECT min(id) FROM incident)")
    )
    export_layer(session, ExportOptions("incidents", "xlsx", tmp_path / "i.xlsx"))
    frame = pyogrio.read_dataframe(tmp_path / "i.xlsx", read_geometry=False)
    rows = _rows(tmp_path / "i.xlsx")
    assert len(frame) == len(rows) - 1 == city["incidents"]
    assert "<b>A & B</b> =1+1" in set(frame["description"])
    reported = rows[0].index("reported_at")
    assert str(frame["reported_at"].dtype).startswith("datetime64")
    assert sorted(frame["reported_at"].dt.to_pydatetime()) == sorted(r[reported] for r in rows[1:])


def test_a_csv_column_is_escaped_as_each_row_was():
    from datetime import date

    from gridkit.io.spreadsheet import csv_column, csv_row

    values = ["=1+1", "+cmd|x", "-5", "+8", "@SUM(A1)", "\tx", "plain", None, 3, 2.5, date(2026, 1, 2), ""]
    assert csv_column(values) == csv_row(values)
