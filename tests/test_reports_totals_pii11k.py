"""Total rows of the workload, staffing and evaluation reports, against figures computed here from the
tables: a coordinator serving two work cells counts once in the total (the rows' sum counts them twice),
each case once; in every format the reports are written to."""

from __future__ import annotations

import csv
import re
from datetime import timedelta

import pytest
from click.testing import CliRunner
from factories_exports import DEPT, REPORTED, WC1, WC2, make_city
from openpyxl import load_workbook
from sqlalchemy import select, update

from gridkit import db
from gridkit.cli import main
from gridkit.grids import work
from gridkit.models import BaseGridEdition, Coordinator, CoordinatorAssignment, Incident, Resident, WorkCell
from gridkit.reports import run_report
from gridkit.reports.render import report_html, table_rows, write_report_file

SHARED = "13600136666"


@pytest.fixture
def city(session):
    facts = make_city(session)
    # One coordinator serving both work cells of version 2 (多员合一), as many cities staff them.
    work.add_coordinator(session, "赵六", SHARED, DEPT, [WC1, WC2], version=facts["v2"])
    session.flush()
    return facts


def _coordinators(session, version_id: int) -> tuple[int, int]:
    """Return (active coordinators of the version's work cells, their count summed per work cell)."""
    pairs = session.execute(
        select(WorkCell.code, CoordinatorAssignment.coordinator_id)
        .join(CoordinatorAssignment, CoordinatorAssignment.work_cell_id == WorkCell.id)
        .join(Coordinator, Coordinator.id == CoordinatorAssignment.coordinator_id)
        .where(WorkCell.version_id == version_id, Coordinator.active)
    ).all()
    return len({c for _, c in pairs}), len(set(pairs))


def test_workload_and_staffing_count_each_coordinator_once_in_the_total(session, city, tmp_path):
    distinct, summed = _coordinators(session, city["v2"].id)
    assert summed > distinct  # the shared coordinator: in both rows
    residents = session.query(Resident).filter(Resident.base_cell_id.isnot(None)).count()
    workload = run_report(session, "workload", dept=DEPT)
    rows, total = workload.main.rows, workload.main.total
    assert sum(r["coordinators"] for r in rows) == summed
    assert total["coordinators"] == distinct
    assert total["residents"] == residents == sum(r["residents"] for r in rows) == 36
    assert total["base_cells"] == 18 and total["open_cases"] == 2 and total["buildings"] == 18
    assert total["residents_per_coordinator"] == round(residents / distinct, 1)
    staffing = run_report(session, "staffing", dept=DEPT, threshold=10)
    assert staffing.main.total["coordinators"] == distinct
    assert staffing.main.total["residents_per_coordinator"] == round(residents / distinct, 1)
    assert staffing.main.total["over_threshold"] is (residents / distinct > 10)
    assert all(r["work_cells"] for r in staffing.sections[1].rows)  # no suggestion for the total
    # A grouping other than work cells has no coordinator figures, in its rows or its total.
    by_community = run_report(session, "workload", by="community", dept=DEPT)
    assert by_community.main.total["coordinators"] is None and by_community.main.total["residents"] == 36
    # Every format ends with the total, its label saying what it counts.
    write_report_file(workload, tmp_path / "w.csv", "csv")
    lines = list(csv.reader((tmp_path / "w.csv").read_text(encoding="utf-8-sig").splitlines()))
    header, last = lines[-len(rows) - 2], lines[-1]
    named = dict(zip(header, last))
    assert named["名称"] == "合计（每名网格员只计一次）" and named["编码"] == ""
    assert named["网格员数"] == str(distinct) and named["人口"] == "36"
    write_report_file(staffing, tmp_path / "s.xlsx", "xlsx", lang="en")
    sheet = load_workbook(tmp_path / "s.xlsx").worksheets[0]
    headings = next(r for r in sheet.iter_rows(values_only=True) if r and r[0] == "Code")
    last_row = [r for r in sheet.iter_rows() if r[0].value is None and r[1].value][-1]
    values = dict(zip(headings, (c.value for c in last_row)))
    assert values["Name"] == "Total (each coordinator counted once)" and last_row[1].font.bold
    assert values["Coordinators"] == distinct
    assert "<td>Total (each coordinator counted once)</td>" in report_html(workload, "en")
    assert workload.to_dict()["sections"][0]["total_label"] == "report.total_coordinators_once"


def _hours(case) -> float:
    return (case.closed_at - case.reported_at).total_seconds() / 3600


def test_evaluation_total_counts_each_case_once(session, city, tmp_path):
    # A case of the department not dispatched yet: no work cell, no coordinator, in no work cell's row.
    first = session.scalar(select(Incident).order_by(Incident.id))
    session.add(
        Incident(
            code="INC0100",
            category_code="0101",
            description="新报",
            status="classified",
            severity="normal",
            geom=first.geom,
            base_cell_id=first.base_cell_id,
            dept_code=DEPT,
            reporter="test",
            reported_at=REPORTED + timedelta(days=1, hours=2),
        )
    )
    session.flush()
    cases = session.scalars(select(Incident)).all()
    closed = [c for c in cases if c.status == "closed"]
    on_time = [c for c in closed if c.deadline is not None and c.closed_at <= c.deadline]
    with_deadline = [c for c in closed if c.deadline is not None]
    expected = {
        "cases": len(cases),
        "closed": len(closed),
        "on_time_pct": round(100 * len(on_time) / len(with_deadline), 1),
        "rework_pct": round(100 * sum(c.rework_count > 0 for c in closed) / len(closed), 1),
        "mean_hours": round(sum(_hours(c) for c in closed) / len(closed), 2),
        "backlog": len(cases) - len(closed),
    }
    assert (expected["cases"], expected["closed"], expected["on_time_pct"]) == (7, 4, 50.0)
    result = run_report(session, "evaluation", dept=DEPT)
    main, by_coordinator = result.sections
    assert sum(r["cases"] for r in main.rows) == 6  # the new case is in no work cell's row
    assert {k: main.total[k] for k in expected} == expected
    assert {k: by_coordinator.total[k] for k in expected} == expected
    assert main.total_label == by_coordinator.total_label == "report.total_cases_once"
    # By community: every case has one, so there the rows add up to the total.
    by_community = run_report(session, "evaluation", by="community", dept=DEPT)
    assert sum(r["cases"] for r in by_community.main.rows) == by_community.main.total["cases"] == 7
    # Every format: the coordinator table's total is named in its coordinator column.
    label = "合计（每宗案件只计一次，含未归入任何一行的案件）"
    last = table_rows(by_coordinator, "zh-CN")[-1]
    assert last["coordinator"] == label and last["cases"] == 7
    write_report_file(result, tmp_path / "e.csv", "csv", lang="en")
    *_, last_line = csv.reader((tmp_path / "e.csv").read_text(encoding="utf-8-sig").splitlines())  # the main table
    assert last_line[:5] == ["", "Total (each case counted once, also those in no row)", "7", "4", "50.0"]
    write_report_file(result, tmp_path / "e.html", "html")
    assert (tmp_path / "e.html").read_text(encoding="utf-8").count(f"<td>{label}</td>") == 2
    write_report_file(result, tmp_path / "e.xlsx", "xlsx")
    for sheet in load_workbook(tmp_path / "e.xlsx").worksheets:
        *_, (name_cell, cases_cell) = ((row[1], row[2]) for row in sheet.iter_rows())
        assert (name_cell.value, cases_cell.value, name_cell.font.bold) == (label, 7, True)


# -- zh-CN output: no English word in the reports touched here, nor in the export's summary line ------------

# Words that are names, not English prose: the product, and the commands the staffing report suggests.
_NOT_PROSE = {"gridkit"}


def _english_words(texts) -> set[str]:
    words = set()
    for text in texts:
        if isinstance(text, str) and not text.startswith("gridkit "):  # a command to run, as written
            words |= set(re.findall(r"[A-Za-z]{3,}", text)) - _NOT_PROSE
    return words


@pytest.fixture
def cli_city(fresh_settings):
    def fill(session):
        facts = make_city(session)
        work.add_coordinator(session, "赵六", SHARED, DEPT, [WC1, WC2], version=facts["v2"])
        session.execute(update(BaseGridEdition).values(name="二〇二六版"))

    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        fill(session)
    return fresh_settings


@pytest.mark.parametrize("env", [{}, {"GRIDKIT_LANG": "zh-CN"}], ids=["default", "zh-CN"])
def test_reports_and_exports_speak_chinese_only(cli_city, tmp_path, env):
    def run(*args):
        result = CliRunner().invoke(main, list(args), obj=cli_city, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    for name in ("workload", "staffing", "evaluation"):
        args = ("report", name, "--dept", DEPT, "--threshold", "10")
        table = run(*args)
        assert "合计（" in table and _english_words(table.splitlines()) == set(), (name, table)
        for fmt in ("csv", "html", "xlsx"):
            path = tmp_path / f"{name}-{'-'.join(env.values()) or 'default'}.{fmt}"
            run(*args, "-o", str(path))
            if fmt == "xlsx":
                texts = [
                    v for s in load_workbook(path).worksheets for row in s.iter_rows(values_only=True) for v in row
                ]
                texts += [s.title for s in load_workbook(path).worksheets]
            elif fmt == "html":
                page = re.sub(r"<style>.*?</style>|<svg.*?</svg>", "", path.read_text(encoding="utf-8"), flags=re.S)
                texts = re.findall(r">([^<]+)<", page)
            else:
                texts = path.read_text(encoding="utf-8-sig").splitlines()
            assert _english_words(texts) == set(), (name, fmt)
    # Staffing flags its cells 是/否, never True/False.
    assert "否" in run("report", "staffing", "--dept", DEPT, "--threshold", "10000")
    exported = run("export", "residents", "-o", str(tmp_path / f"r{len(env)}.csv"))  # its one summary line
    path = tmp_path / f"r{len(env)}.csv"
    assert exported.startswith(f"36 条人口（residents）→ {path}（csv，EPSG:4490，utf-8，") and exported.endswith(
        " 秒）\n"
    )
