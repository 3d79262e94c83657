"""Standard reports (政务通) and decision support: one registry, one way to run, several renderers.

result = run_report(session, "population", by="community", area="440304")
write_report_file(result, Path("pop.xlsx"), "xlsx", lang="zh-CN")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.reports import decision, small_counts, standard
from gridkit.reports.units import GROUPINGS, ReportResult, Section, period, units, whole_area
from gridkit.rules import now, parse_time

__all__ = ["GROUPINGS", "REPORTS", "ReportResult", "Section", "report_list", "run_report"]


@dataclass(frozen=True)
class Report:
    """A report: its name, the function computing it, and what it needs."""

    name: str
    compute: Callable
    default_by: str = "community"
    needs_dept: bool = False
    uses_period: bool = False
    # The first section gets a total row: the same computation over the whole area as one unit (so a
    # coordinator serving several work cells counts once: workload, staffing). Evaluation's totals are
    # the incidents' service's own (each case once), set by the report itself.
    totals: bool = False


REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report("population", standard.population, totals=True),
        Report("buildings", standard.buildings, totals=True),
        Report("entities", standard.entities, totals=True),
        Report("incidents", standard.incidents, uses_period=True, totals=True),
        Report("workload", standard.workload, default_by="work-cell", needs_dept=True, uses_period=True, totals=True),
        Report("evaluation", standard.evaluation, default_by="work-cell", needs_dept=True, uses_period=True),
        Report("school-age", decision.school_age, totals=True),
        Report("elderly", decision.elderly, totals=True),
        Report("staffing", decision.staffing, default_by="work-cell", needs_dept=True, totals=True),
    )
}


def report_list() -> list[dict]:
    """Return every report with its title key, default grouping and whether it needs a department."""
    return [
        {
            "name": r.name,
            "title": f"report.{r.name}.title",
            "default_by": r.default_by,
            "needs_dept": r.needs_dept,
            "uses_period": r.uses_period,
        }
        for r in REPORTS.values()
    ]


def run_report(
    session: Session,
    name: str,
    *,
    by: str | None = None,
    dept: str | None = None,
    area: str | None = None,
    date_from=None,
    date_to=None,
    at=None,
    capacity=None,
    threshold: int | None = None,
    hide_small_counts: bool = False,
) -> ReportResult:
    """Compute report `name` grouped `by` unit and return its sections (nothing is written); with
    `hide_small_counts` (a reader who may not see residents there), under the small-count rule
    (gridkit.reports.small_counts)."""
    if name not in REPORTS:
        raise ValidationError("report.unknown", report=name, reports=", ".join(REPORTS))
    report = REPORTS[name]
    by = by or report.default_by
    if by == "work-cell" and not dept:
        raise ValidationError("report.work_cell_needs_dept")
    start, end = period(date_from, date_to)
    at_time = parse_time(at, field="at") if at else None
    u = units(session, by, dept=dept, area=area, at=at_time)
    sections = report.compute(session, u, start=start, end=end, capacity=capacity, threshold=threshold)
    if report.totals:
        whole = report.compute(session, whole_area(u), start=start, end=end, capacity=None, threshold=threshold)
        sections[0].total = whole[0].rows[0] if whole[0].rows else None
    params = {
        "by": by,
        "dept": dept,
        "version": u.version,
        "area": area,
        "area_name": u.area_name,
        "from": _text(date_from),
        "to": _text(date_to),
        "at": _text(at),
        "edition": u.edition,
    }
    result = ReportResult(
        name=name, params={k: v for k, v in params.items() if v is not None}, sections=sections, generated_at=now()
    )
    return small_counts.hide_small_counts(result) if hide_small_counts else result


def _text(value):
    return None if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))
