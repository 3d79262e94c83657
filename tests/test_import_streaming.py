"""Streaming subject imports: many chunks, a bad last row, interruption, NUL bytes, uncomputed formulas, reports."""

from __future__ import annotations

import csv
import json
import signal

import psycopg
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select, text

from gridkit import db
from gridkit.io import problems as problems_module
from gridkit.io import tables
from gridkit.io.report import write_report
from gridkit.io.subjects import SubjectImportRefused, import_buildings, import_residents
from gridkit.models import Building, Resident
from gridkit.resident_cells import RESIDENTS
from tests.data.make_subject_files import centre, citizen_id, many_residents_csv
from tests.factories import make_base_grid
from tests.factories_interrupt import interrupt_import

KEY = b"test-personal-data-key"


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 1,000 rows, so that a few thousand rows stream through several chunks."""
    monkeypatch.setattr(tables, "CHUNK_ROWS", 1000)


def residents(session) -> int:
    return session.scalar(select(func.count()).select_from(Resident))


def test_many_chunks_import_and_assign_like_one(session, tmp_path, small_chunks):
    make_base_grid(session)
    path = many_residents_csv(tmp_path / "r.csv", 4500)
    result = import_residents(session, path, pii_key=KEY)
    assert (result.created, result.assigned, result.unassigned) == (4500, 4500, 0)
    # Cells computed while streaming agree with PostGIS ST_Covers (smallest code on edges) for every resident.
    wrong = session.scalar(
        text(
            f"SELECT count(*) FROM {RESIDENTS} r WHERE r.base_cell_id IS DISTINCT FROM (SELECT b.id FROM base_cell b "
            "WHERE ST_Covers(b.geom, r.geom) ORDER BY b.code LIMIT 1)"
        )
    )
    assert wrong == 0


def test_a_bad_last_row_after_many_chunks_imports_nothing_and_names_the_row(session, tmp_path, small_chunks):
    make_base_grid(session)
    path = many_residents_csv(tmp_path / "r.csv", 4500, bad_last=True)
    with pytest.raises(SubjectImportRefused) as info:
        import_residents(session, path, pii_key=KEY)
    problems = info.value.problems
    assert [(p["index"], p["kind"]) for p in problems] == [(4501, "bad_id_number")]
    assert "line 4501" in problems[0]["message"]
    assert residents(session) == 0


def test_nul_byte_in_a_text_field_is_refused_naming_line_and_column(session, tmp_path):
    make_base_grid(session)
    lon, lat = centre(0)
    path = tmp_path / "nul.csv"
    path.write_text(f"code,address,lon,lat\nB1,红荔路\x001号,{lon},{lat}\nB2,八卦路,{lon},{lat}\n", encoding="utf-8")
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    assert [(p["index"], p["kind"], p["field"]) for p in info.value.problems] == [(2, "nul_byte", "address")]
    assert "NUL" in info.value.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_xlsx_formula_without_a_computed_value_is_refused_per_cell(session, tmp_path):
    make_base_grid(session)
    lon, lat = centre(0)
    book = Workbook()
    sheet = book.active
    sheet.append(["code", "address", "lon", "lat"])
    sheet.append(["B1", "红荔路1号", lon, lat])
    sheet.append(["B2", '=A2&"号"', lon, lat])  # openpyxl stores formulas without a computed value
    path = tmp_path / "formula.xlsx"
    book.save(path)
    with pytest.raises(SubjectImportRefused) as info:
        import_buildings(session, path)
    found = [(p["index"], p["kind"], p["field"]) for p in info.value.problems]
    assert found == [(3, "formula_without_value", "address")]
    assert "B3" in info.value.problems[0]["message"]
    assert session.scalar(select(func.count()).select_from(Building)) == 0


def test_summary_counts_unassigned_rows_and_the_report_lists_them_all(session, tmp_path):
    make_base_grid(session)
    rows = [f"B{i},,{113.0 + i * 1e-4},{22.0}" for i in range(60)]  # all outside the grid
    path = tmp_path / "outside.csv"
    path.write_text("code,address,lon,lat\n" + "\n".join(rows) + "\n", encoding="utf-8")
    result = import_buildings(session, path)
    summary = result.summary()
    assert summary["unassigned"] == 60 and len(summary["unassigned_rows"]) == 20
    assert summary["unassigned_rows_more"] == 40
    json_path, _ = write_report(tmp_path, "buildings-import", [], result.notes, summary, rows=result.unassigned_rows)
    with json_path.with_suffix(".csv").open(encoding="utf-8-sig") as f:
        listed = [r for r in csv.DictReader(f) if r["what"] == "unassigned"]
    assert len(listed) == 60 and listed[0]["row"] == "2" and listed[0]["code"] == "B0"


@pytest.mark.parametrize("signal_", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_import_leaves_nothing_and_a_rerun_works(fresh_settings, tmp_path, signal_):
    with db.transaction(fresh_settings) as session:
        make_base_grid(session)
        # A resident already there: not a first load (gridkit.io.subjects.resident_load), the file is staged.
        import_residents(session, many_residents_csv(tmp_path / "one.csv", 1, start=150_000), pii_key=KEY)
    path = many_residents_csv(tmp_path / "r.csv", 150_000)
    # Interrupted while it writes the staging table (COPY), mid-import.
    url = interrupt_import(fresh_settings, "residents", path, "COPY gk_stage_resident", signal_)
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM resident").fetchone()[0] == 1
    with db.transaction(fresh_settings) as session:
        result = import_residents(session, path, pii_key=KEY)
    assert result.created == 150_000
    with db.transaction(fresh_settings) as session:
        assert residents(session) == 150_001
        number = citizen_id(0, birth="19500101")
        assert session.scalar(select(Resident.id_number_masked).order_by(Resident.id).offset(1).limit(1)) == (
            number[:4] + "*" * 10 + number[-4:]
        )


def test_a_file_wrong_on_every_row_lists_the_first_problems_and_counts_the_rest(session, tmp_path, monkeypatch):
    # Residents imported before their buildings: every row names an unknown building. Past the listed
    # problems (50,000; here 40) the rest are counted by kind, so memory stays flat on a file of millions.
    monkeypatch.setattr(problems_module, "LISTED_PROBLEMS", 40)
    make_base_grid(session)
    rows = [f"{citizen_id(i)},居民{i},,H{i},registered,B{i:05d}" for i in range(130)]
    path = tmp_path / "no_buildings.csv"
    path.write_text("id_number,name,phone,household,population_type,building_code\n" + "\n".join(rows) + "\n")
    with pytest.raises(SubjectImportRefused) as info:
        import_residents(session, path, pii_key=KEY)
    problems = info.value.problems
    assert len(problems) == 40 and problems_module.problem_count(problems) == 130
    assert problems_module.unlisted_problems(problems) == {"unknown_building": 90}
    assert "130" in info.value.render("en") and "first 40" in info.value.render("en")
    json_path, text_path = write_report(tmp_path, "residents-import", problems, [], {"refused": True})
    assert json.loads(json_path.read_text(encoding="utf-8"))["problems_unlisted"] == {"unknown_building": 90}
    assert "90" in text_path.read_text(encoding="utf-8-sig") and "(130)" in text_path.read_text(encoding="utf-8-sig")
    with json_path.with_suffix(".csv").open(encoding="utf-8-sig") as f:
        lines = [r for r in csv.DictReader(f) if r["what"] == "problem"]
    assert len(lines) == 41 and lines[-1]["kind"] == "unknown_building" and "90" in lines[-1]["message"]
    assert session.scalar(select(func.count()).select_from(Resident)) == 0
