"""Standard reports and decision support, checked against hand counts; files read back."""

from __future__ import annotations

import csv
from datetime import date

import pytest
from factories_exports import C1, C2, DEPT, WC1, WC2, make_city
from openpyxl import load_workbook
from sqlalchemy import text

from gridkit.errors import Conflict, ValidationError
from gridkit.reports import REPORTS, run_report
from gridkit.reports.render import report_html, write_report_file
from gridkit.resident_cells import RESIDENTS


@pytest.fixture
def city(session):
    return make_city(session)


def _csv_table(path) -> tuple[list[list[str]], list[dict]]:
    """Return a report CSV's header block and its table (rows keyed by the catalogued headings)."""
    lines = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    blank = lines.index([])
    return lines[:blank], [dict(zip(lines[blank + 1], row)) for row in lines[blank + 2 :]]


def _by_code(section):
    return {row["code"]: row for row in section.rows}


def with_birth_dates(session, ages_by_community: dict[str, list[int]], ref=date(2026, 6, 30)):
    """Give the residents of each community these ages on `ref` (None: birth date unknown)."""
    for community, ages in ages_by_community.items():
        ids = (
            session.execute(
                text(
                    f"SELECT s.id FROM {RESIDENTS} s JOIN base_cell b ON b.id = s.base_cell_id "
                    "WHERE b.community_code = :c ORDER BY s.id"
                ),
                {"c": community},
            )
            .scalars()
            .all()
        )
        for rid, age in zip(ids, ages):
            born = date(ref.year - age, ref.month, ref.day) if age is not None else None
            session.execute(text("UPDATE resident SET birth_date = :d WHERE id = :i"), {"d": born, "i": rid})


def test_population_by_community_and_work_cell(session, city):
    result = run_report(session, "population", by="community")
    rows = _by_code(result.main)
    assert rows[C1] == {
        "code": C1,
        "name": "测试1社区",
        "base_cells": 9,
        "residents": 18,
        "registered": 9,
        "floating": 9,
        "households": 9,
        "floating_pct": 50.0,
    }
    assert run_report(session, "population", by="district").main.rows[0]["residents"] == 36
    # Version 2 (in force now) moved community 2's first cell into work cell 1.
    now_rows = _by_code(run_report(session, "population", by="work-cell", dept=DEPT).main)
    assert now_rows[WC1]["residents"] == 20 and now_rows[WC2]["residents"] == 16
    old_rows = _by_code(run_report(session, "population", by="work-cell", dept=DEPT, at="2024-01-01").main)
    assert old_rows[WC1]["residents"] == 18
    assert len(run_report(session, "population", by="cell", area=C2).main.rows) == 9


def test_incidents_and_evaluation_against_hand_counts(session, city):
    result = run_report(session, "incidents", by="community")
    rows = _by_code(result.main)
    assert rows[C1]["incidents"] == 6 and rows[C1]["closed"] == 4 and rows[C1]["dispatched"] == 2
    assert rows[C2]["incidents"] == 0
    by_category = {r["category_code"]: r for r in result.sections[1].rows}
    assert by_category["0101"]["incidents"] == 3 and by_category["E0101"]["incidents"] == 3
    assert [r["month"] for r in result.sections[2].rows] == ["2026-03"]
    # Period: only the first three days of cases.
    first = run_report(session, "incidents", by="community", date_from="2026-03-10", date_to="2026-03-12")
    assert _by_code(first.main)[C1]["incidents"] == 3
    ev = run_report(session, "evaluation", by="work-cell", dept=DEPT)
    row = _by_code(ev.main)[WC1]
    # Closed: cases 0, 1 (10 h, on time) and 3, 4 (40 h, past the 24 h deadline); 2 and 5 still open.
    assert row["cases"] == 6 and row["closed"] == 4 and row["on_time_pct"] == 50.0
    assert row["mean_hours"] == 25.0 and row["backlog"] == 2 and row["rework_pct"] == 0.0
    # Per coordinator: the incidents' own evaluation service (closed_at - reported_at), names masked.
    (coordinator,) = ev.sections[1].rows
    assert coordinator["coordinator"] == "张**" and coordinator["cases"] == 6 and coordinator["closed"] == 4
    assert coordinator["on_time_pct"] == 50.0 and coordinator["mean_hours"] == 25.0


def test_workload_and_staffing(session, city):
    rows = _by_code(run_report(session, "workload", dept=DEPT).main)
    assert rows[WC1]["residents"] == 20 and rows[WC1]["open_cases"] == 2 and rows[WC1]["coordinators"] == 2
    assert rows[WC1]["residents_per_coordinator"] == 10.0
    result = run_report(session, "staffing", dept=DEPT, threshold=12)
    rows = _by_code(result.main)
    assert rows[WC2]["over_threshold"] and not rows[WC1]["over_threshold"]  # 16 for one vs 20 for two
    over = result.sections[1].rows
    assert [r["area"] for r in over] == [C2] and over[0]["cells_needed"] == 2
    assert "gridkit workgrid balance" in over[0]["command"] and f"--area {C2}" in over[0]["command"]
    with pytest.raises(ValidationError):
        run_report(session, "staffing", by="community")


def test_school_age_elderly_and_capacity(session, city, tmp_path):
    with_birth_dates(session, {C1: [0, 2, 3, 6, 11, 12, 15, 17, 18, 60, 79, 80, 95] + [30] * 5, C2: [None] + [40] * 17})
    result = run_report(session, "school-age", by="community", date_to="2026-06-30")
    rows = _by_code(result.main)
    assert {k: rows[C1][k] for k in ("age_0_2", "age_3_5", "age_6_11", "age_12_14", "age_15_17")} == {
        "age_0_2": 2,
        "age_3_5": 1,
        "age_6_11": 2,
        "age_12_14": 1,
        "age_15_17": 2,
    }
    assert rows[C2]["unknown_age"] == 1
    capacity = tmp_path / "places.csv"
    capacity.write_text(f"code,band,capacity\n{C1},age_6_11,1\n{C1},age_3_5,5\n", encoding="utf-8")
    result = run_report(session, "school-age", date_to="2026-06-30", capacity=capacity)
    gaps = {r["band"]: r for r in result.sections[1].rows}
    assert gaps["age_6_11"]["gap"] == 1 and gaps["age_3_5"]["gap"] == -4
    capacity.write_text(f"code,band,capacity\n{C1},age_99,1\n", encoding="utf-8")
    with pytest.raises(ValidationError) as err:
        run_report(session, "school-age", capacity=capacity)
    assert "line 2" in err.value.message
    old = _by_code(run_report(session, "elderly", date_to="2026-06-30").main)[C1]
    assert old["age_60_plus"] == 4 and old["age_80_plus"] == 2 and old["age_60_pct"] == round(400 / 18, 1)


def test_files_csv_xlsx_html(session, city, tmp_path):
    result = run_report(session, "population", by="community", area="440304")
    write_report_file(result, tmp_path / "p.csv", "csv")
    head, rows = _csv_table(tmp_path / "p.csv")
    assert rows[0]["编码"] == C1 and rows[0]["人口"] == "18" and rows[1]["编码"] == C2
    # The date, the grids' time and the edition are in the file, headings from the catalogue.
    assert (
        head[0] == ["报表", "人口统计"] and head[4][0] == "生成时间" and head[5] == ["网格生效时点", "当前（生成时间）"]
    )
    assert head[6][0] == "数据来源" and "2026" in head[6][1]
    write_report_file(result, tmp_path / "p-en.csv", "csv", lang="en")
    head, rows = _csv_table(tmp_path / "p-en.csv")
    assert head[0] == ["Report", "Population"] and rows[0]["Code"] == C1 and rows[0]["Residents"] == "18"
    dated = run_report(session, "population", by="community", at="2026-06-01")
    write_report_file(dated, tmp_path / "p-at.csv", "csv", lang="en")
    assert _csv_table(tmp_path / "p-at.csv")[0][5] == ["Grids as of", "2026-06-01"]
    write_report_file(result, tmp_path / "p.xlsx", "xlsx", lang="zh-CN")
    sheet = load_workbook(tmp_path / "p.xlsx").worksheets[0]
    values = [tuple(v for v in row if v is not None) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == ("报表", "人口统计")
    assert values[1][0] == "区域" and "福田区" in values[1][1] and "440304" in values[1][1]
    assert values[4][0] == "生成时间" and values[5][0] == "网格生效时点" and values[6][0] == "数据来源"
    assert "2026" in values[6][1]
    header = values.index(("编码", "名称", "基础网格数", "人口", "户籍人口", "流动人口", "户数", "流动人口占比%"))
    assert values[header + 1][0] == C1 and values[header + 1][3] == 18
    html = report_html(run_report(session, "incidents"), "en")
    assert "<svg" in html and "Incidents by state" in html
    assert "<script" not in html and "http" not in html.split("<svg")[0]  # works offline
    write_report_file(result, tmp_path / "p.html", "html")
    with pytest.raises(Conflict):
        write_report_file(result, tmp_path / "p.html", "html")


def test_every_report_runs(session, city):
    with_birth_dates(session, {C1: [5] * 18})
    for name in REPORTS:
        result = run_report(session, name, dept=DEPT)
        assert result.main.rows, name
    with pytest.raises(ValidationError):
        run_report(session, "weather")


def test_names_that_look_like_formulas_stay_text_in_report_files(session, city, tmp_path):
    # A community named like a formula (imported data): never a formula in the XLSX, escaped in the CSV.
    formula = '=HYPERLINK("http://example.invalid","点击")'
    session.execute(text("UPDATE admin_unit SET name = :n WHERE code = :c"), {"n": formula, "c": C1})
    result = run_report(session, "population", by="community", area="440304")
    write_report_file(result, tmp_path / "p.xlsx", "xlsx")
    cells = [c for row in load_workbook(tmp_path / "p.xlsx").worksheets[0].iter_rows() for c in row]
    named = [c for c in cells if c.value == formula]
    assert len(named) == 1 and named[0].data_type == "s"
    assert not [c for c in cells if c.data_type == "f"]
    write_report_file(result, tmp_path / "p.csv", "csv")
    assert [r["名称"] for r in _csv_table(tmp_path / "p.csv")[1] if r["编码"] == C1] == ["'" + formula]


def _csv_total(path):
    return _csv_table(path)[1][-1]


def test_totals_count_the_whole_area_once(session, city, tmp_path):
    # Household H0000 of community 1 has a member in community 2 as well: one household of each
    # community, but one household of the street, not two.
    session.execute(
        text(
            "UPDATE resident SET household = 'H0000' WHERE id = (SELECT min(r.id) FROM resident r "
            "JOIN resident_cell rc ON rc.resident_id = r.id JOIN base_cell b ON b.id = rc.base_cell_id "
            "WHERE b.code LIKE :c)"
        ),
        {"c": C2 + "%"},
    )
    result = run_report(session, "population", by="community")
    rows, total = _by_code(result.main), result.main.total
    assert rows[C1]["households"] == 9 and rows[C2]["households"] == 10
    assert total["households"] == 18  # not the 19 the rows add up to
    assert total["residents"] == sum(r["residents"] for r in rows.values()) == 36
    assert total["registered"] + total["floating"] == 36 and total["base_cells"] == 18
    assert total["floating_pct"] == 50.0
    # Districts add up to the city; the whole city is the same total whatever the grouping.
    by_district = run_report(session, "population", by="district")
    (district,) = by_district.main.rows
    whole = by_district.main.total
    assert (whole["residents"], whole["households"]) == (district["residents"], district["households"]) == (36, 18)
    # The files end with the total, named from the catalogue; an area without cases shows 0.
    write_report_file(result, tmp_path / "p.csv", "csv")
    last = _csv_total(tmp_path / "p.csv")
    assert last["编码"] == "" and last["名称"] == "合计" and last["户数"] == "18" and last["人口"] == "36"
    empty = run_report(session, "incidents", by="community", area=C2)
    assert empty.main.total["incidents"] == 0 and _by_code(empty.main)[C2]["incidents"] == 0
    incidents = run_report(session, "incidents", by="community")
    assert incidents.main.total["incidents"] == sum(r["incidents"] for r in incidents.main.rows) == 6
    write_report_file(incidents, tmp_path / "i.xlsx", "xlsx", lang="en")
    sheet = load_workbook(tmp_path / "i.xlsx").worksheets[0]
    *_, last_row = sheet.iter_rows()
    assert last_row[1].value == "Total" and last_row[2].value == 6 and last_row[1].font.bold
    assert "<td>合计</td>" in report_html(result, "zh-CN")
