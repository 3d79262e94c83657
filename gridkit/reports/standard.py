"""The standard statistical reports (政务通): population, buildings, entities, incidents, workload,
evaluation. Each takes a session and the report parameters and returns its sections.

Counts follow each subject's base cell; unassigned subjects are not in any unit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.pii import mask_person_name
from gridkit.reports import resident_summary
from gridkit.reports.units import Section, Units
from gridkit.resident_cells import ASSIGNED_RESIDENTS
from gridkit.rules import FINISHED_INCIDENT_STATES, IncidentState, local_tz

_FINISHED = "('" + "', '".join(sorted(FINISHED_INCIDENT_STATES)) + "')"


def _rows(session: Session, sql: str, params: dict) -> list[dict]:
    return [
        {
            k: (float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float)) else v)
            for k, v in row._mapping.items()
        }
        for row in session.execute(text(sql), params)
    ]


def _unit_frame(u: Units) -> str:
    # Units with their names and base cell counts; every unit appears, with zeros where empty.
    return (
        f"WITH u AS ({u.sql}), "
        "cells AS (SELECT code, min(name) AS name, count(*)::int AS base_cells FROM u GROUP BY code)"
    )


def per_unit_counts(**counts: str) -> str:
    """Return WITH clauses (each preceded by a comma) counting subjects per unit through their base
    cell: `name=\"table [WHERE condition on s]\"` gives `name(code, n)`. The one rule every count
    per unit follows."""
    clauses = []
    for name, source in counts.items():
        table, _, condition = source.partition(" WHERE ")
        where = f" WHERE {condition}" if condition else ""
        clauses.append(
            f"{name} AS (SELECT u.code, count(*)::int AS n FROM {table} s "
            f"JOIN u ON u.cell_id = s.base_cell_id{where} GROUP BY u.code)"
        )
    return "".join(f",\n        {clause}" for clause in clauses)


OPEN_INCIDENTS = f"incident WHERE s.status NOT IN {_FINISHED}"


def coordinators_per_unit(u: Units) -> str:
    """Return a WITH clause (preceded by a comma) `k(code, n)`: the active coordinators of each unit's work
    cells in the department's version (:wc_version), through each base cell's own work cell (`Units.part`).
    A coordinator serving several work cells counts once per unit: once in the whole area's total, not once
    per cell as the rows' sum would."""
    return f""",
        k AS (SELECT p.code, count(DISTINCT ca.coordinator_id)::int AS n
              FROM (SELECT DISTINCT code, {u.part} AS part FROM u) p
              JOIN work_cell w ON w.code = p.part AND w.version_id = :wc_version
              JOIN coordinator_assignment ca ON ca.work_cell_id = w.id
              JOIN coordinator co ON co.id = ca.coordinator_id AND co.active
              GROUP BY p.code)"""


def population(session: Session, u: Units, **_) -> list[Section]:
    """Residents, registered and floating population and households per unit."""
    # From the per-cell summary (refreshed here when residents changed), not from every resident:
    # a household living in two base cells of one community is still one household of it.
    resident_summary.ensure_current(session)
    sql = resident_summary.population_sql(_unit_frame(u))
    rows = _rows(session, sql, u.params)
    return [
        Section(
            "report.population.title",
            ["code", "name", "base_cells", "residents", "registered", "floating", "households", "floating_pct"],
            rows,
            chart="residents",
        )
    ]


def buildings(session: Session, u: Units, **_) -> list[Section]:
    """Buildings, their floors and the residents living in them, per unit."""
    sql = (
        _unit_frame(u)
        + f""",
        b AS (SELECT u.code, count(*)::int AS buildings, coalesce(sum(s.floors), 0)::int AS floors,
                     round(avg(s.floors), 1)::float8 AS mean_floors
              FROM building s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        r AS (SELECT u.code, count(*)::int AS n FROM {ASSIGNED_RESIDENTS} s JOIN u ON u.cell_id = s.base_cell_id
              WHERE s.building_id IS NOT NULL GROUP BY u.code)
        SELECT c.code, c.name, coalesce(b.buildings, 0) AS buildings, coalesce(b.floors, 0) AS floors,
               b.mean_floors, coalesce(r.n, 0) AS residents_in_buildings
        FROM cells c LEFT JOIN b ON b.code = c.code LEFT JOIN r ON r.code = c.code ORDER BY c.code"""
    )
    return [
        Section(
            "report.buildings.title",
            ["code", "name", "buildings", "floors", "mean_floors", "residents_in_buildings"],
            _rows(session, sql, u.params),
            chart="buildings",
        )
    ]


def entities(session: Session, u: Units, **_) -> list[Section]:
    """Legal entities per unit, with the share of the city's total."""
    sql = (
        _unit_frame(u)
        + """,
        e AS (SELECT u.code, count(*)::int AS n FROM legal_entity s JOIN u ON u.cell_id = s.base_cell_id
              GROUP BY u.code)
        SELECT c.code, c.name, coalesce(e.n, 0) AS entities,
               round(100.0 * coalesce(e.n, 0) / nullif(sum(coalesce(e.n, 0)) OVER (), 0), 1)::float8 AS share_pct
        FROM cells c LEFT JOIN e ON e.code = c.code ORDER BY c.code"""
    )
    return [
        Section(
            "report.entities.title",
            ["code", "name", "entities", "share_pct"],
            _rows(session, sql, u.params),
            chart="entities",
        )
    ]


def _period_clause(column: str, start, end, params: dict) -> str:
    clauses = []
    if start is not None:
        clauses.append(f"{column} >= :p_from")
        params["p_from"] = start
    if end is not None:
        clauses.append(f"{column} < :p_to")
        params["p_to"] = end
    return (" AND " + " AND ".join(clauses)) if clauses else ""


def incidents(session: Session, u: Units, *, start=None, end=None, **_) -> list[Section]:
    """Incidents reported in the period: per unit by state, then by category and by month."""
    params = dict(u.params)
    when = _period_clause("s.reported_at", start, end, params)
    states = [s.value for s in IncidentState]
    per_state = ", ".join(f"count(*) FILTER (WHERE s.status = '{s}')::int AS {s}" for s in states)
    base = (
        _unit_frame(u)
        + f""",
        i AS (SELECT s.*, u.code AS unit FROM incident s JOIN u ON u.cell_id = s.base_cell_id WHERE true {when})"""
    )
    main = (
        base
        + f""",
        agg AS (SELECT s.unit AS code, count(*)::int AS incidents, {per_state},
                       count(*) FILTER (WHERE s.deadline IS NOT NULL
                                        AND coalesce(s.closed_at, now()) > s.deadline)::int AS overdue
                FROM i s GROUP BY s.unit)
        SELECT c.code, c.name, coalesce(a.incidents, 0) AS incidents,
               {", ".join(f"coalesce(a.{s}, 0) AS {s}" for s in states)}, coalesce(a.overdue, 0) AS overdue
        FROM cells c LEFT JOIN agg a ON a.code = c.code ORDER BY c.code"""
    )
    by_category = (
        base
        + """
        SELECT coalesce(s.category_code, '-') AS category_code, coalesce(k.name, '-') AS category,
               count(*)::int AS incidents,
               count(*) FILTER (WHERE s.status NOT IN """
        + _FINISHED
        + """)::int AS open
        FROM i s LEFT JOIN incident_category k ON k.code = s.category_code
        GROUP BY 1, 2 ORDER BY incidents DESC, category_code"""
    )
    by_month = (
        base
        + """
        SELECT to_char(s.reported_at AT TIME ZONE :zone, 'YYYY-MM') AS month, count(*)::int AS incidents,
               count(*) FILTER (WHERE s.status = 'closed')::int AS closed
        FROM i s GROUP BY 1 ORDER BY 1"""
    )
    return [
        Section(
            "report.incidents.title",
            ["code", "name", "incidents", *states, "overdue"],
            _rows(session, main, params),
            chart="incidents",
        ),
        Section(
            "report.incidents.by_category",
            ["category_code", "category", "incidents", "open"],
            _rows(session, by_category, params),
            chart="incidents",
        ),
        Section(
            "report.incidents.by_month",
            ["month", "incidents", "closed"],
            _rows(session, by_month, {**params, "zone": local_tz().key}),
            chart="incidents",
        ),
    ]


def workload(session: Session, u: Units, *, start=None, end=None, **_) -> list[Section]:
    """Per unit: subjects, open cases, cases of the period, coordinators and load per coordinator."""
    params = dict(u.params)
    when = _period_clause("s.reported_at", start, end, params)
    # Coordinators serve work cells: counted for work cells only (for other units they would be a guess).
    per_cell = u.by == "work-cell"
    coordinators = "coalesce(k.n, 0)" if per_cell else "NULL::int"
    if per_cell:
        params["wc_version"] = params["version"]
    sql = (
        _unit_frame(u)
        + per_unit_counts(
            r=ASSIGNED_RESIDENTS, b="building", e="legal_entity", o=OPEN_INCIDENTS, p=f"incident WHERE true {when}"
        )
        + (coordinators_per_unit(u) if per_cell else ",\n        k AS (SELECT NULL::text AS code WHERE false)")
        + f""",
        t AS (SELECT c.code, c.name, c.base_cells, coalesce(r.n, 0) AS residents, coalesce(b.n, 0) AS buildings,
                     coalesce(e.n, 0) AS entities, coalesce(o.n, 0) AS open_cases,
                     coalesce(p.n, 0) AS cases_in_period, {coordinators} AS coordinators
              FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN b ON b.code = c.code
              LEFT JOIN e ON e.code = c.code LEFT JOIN o ON o.code = c.code LEFT JOIN p ON p.code = c.code
              LEFT JOIN k ON k.code = c.code)
        SELECT t.*, round(t.residents::numeric / nullif(t.coordinators, 0), 1)::float8 AS residents_per_coordinator
        FROM t ORDER BY t.code"""
    )
    return [
        Section(
            "report.workload.title",
            [
                "code",
                "name",
                "base_cells",
                "residents",
                "buildings",
                "entities",
                "open_cases",
                "cases_in_period",
                "coordinators",
                "residents_per_coordinator",
            ],
            _rows(session, sql, params),
            chart="open_cases",
            total_label="report.total_coordinators_once" if per_cell else "report.total",
        )
    ]


# Groupings the incidents' evaluation service (gridkit.incidents.evaluate, 综合评价) computes; the
# report shows its figures and computes none of its own.
EVALUATION_GROUPINGS = ("community", "work-cell")
EVALUATION_COLUMNS = ["cases", "closed", "on_time_pct", "rework_pct", "mean_hours", "p90_hours", "backlog", "overdue"]


def evaluation(session: Session, u: Units, *, start=None, end=None, **_) -> list[Section]:
    """Per unit and per coordinator: cases, closed, on-time and rework rates, hours to close, backlog."""
    from gridkit.incidents.evaluate import evaluate as evaluate_incidents

    if u.by not in EVALUATION_GROUPINGS:
        raise ValidationError("report.evaluation_grouping", by=u.by, groupings=", ".join(EVALUATION_GROUPINGS))
    # Incidents are grouped by the service: by their base cell's community, or by the work cell they
    # were dispatched to. Rows are the report's units (of --area, of the edition in force), every one:
    # a unit without cases shows 0 cases (its rates and hours empty), as every other report does.
    result = evaluate_incidents(session, by=u.by, from_=start, to=end, dept=u.dept, actor=_area_actor(u))
    names = dict(session.execute(text(f"SELECT DISTINCT code, name FROM ({u.sql}) u"), u.params).all())
    figures = {row["key"]: _figures(row) for row in result["rows"]}
    rows = [{"code": code, "name": names[code], **figures.get(code, _NO_CASES)} for code in sorted(names)]
    main = Section("report.evaluation.title", ["code", "name", *EVALUATION_COLUMNS], rows, chart="on_time_pct")
    # The total is the service's own: every case of the area and period once, rates over all of them
    # (a case in no row, e.g. not dispatched yet, too), never a sum or mean of the rows.
    main.total, main.total_label = _figures(result["total"]), "report.total_cases_once"
    return [main, _by_coordinator(session, u, start, end)]


# The figures of a unit without cases: counts 0, rates and hours undefined.
_NO_CASES = {
    "cases": 0,
    "closed": 0,
    "on_time_pct": None,
    "rework_pct": None,
    "mean_hours": None,
    "p90_hours": None,
    "backlog": 0,
    "overdue": 0,
}


def _area_actor(u: Units):
    from gridkit.incidents.actors import Actor

    # The service narrows to an area through an actor's scope (a code prefix of base cells' communities).
    return Actor("report", "analyst", scope_code=u.area) if u.area else None


def _figures(row: dict) -> dict:
    """Return one row of the evaluation service as the report's columns (rates in %)."""
    total = row["steps"]["total"]
    return {
        "cases": row["cases"],
        "closed": row["closed"],
        "on_time_pct": None if row["on_time_rate"] is None else round(100 * row["on_time_rate"], 1),
        "rework_pct": None if row["rework_rate"] is None else round(100 * row["rework_rate"], 1),
        "mean_hours": total["mean_hours"],
        "p90_hours": total["p90_hours"],
        "backlog": row["backlog"],
        "overdue": row["overdue"],
    }


def _by_coordinator(session: Session, u: Units, start, end) -> Section:
    """Coordinators' figures from the incidents' own evaluation service (综合评价), names masked."""
    from gridkit.incidents.evaluate import evaluate as evaluate_incidents

    result = evaluate_incidents(session, by="coordinator", from_=start, to=end, dept=u.dept, actor=_area_actor(u))
    total = {"coordinator_id": None, **_figures(result["total"])}
    rows = []
    for row in result["rows"]:
        rows.append(
            {
                "coordinator_id": row["key"] or "-",
                "coordinator": mask_person_name(row["name"]) if row["name"] else "-",
                **_figures(row),
            }
        )
    return Section(
        "report.evaluation.by_coordinator",
        [
            "coordinator_id",
            "coordinator",
            "cases",
            "closed",
            "on_time_pct",
            "rework_pct",
            "mean_hours",
            "p90_hours",
            "backlog",
            "overdue",
        ],
        rows,
        chart="on_time_pct",
        total=total,
        total_label="report.total_cases_once",
    )
