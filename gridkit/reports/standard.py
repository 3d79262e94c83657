"""The standard statistical reports (政务通): population, buildings, entities, incidents, workload,
evaluation. Each takes a session and the report parameters and returns its sections.

Counts follow each subject's base cell; unassigned subjects are not in any unit.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.reports.units import Section, Units
from gridkit.rules import FINISHED_INCIDENT_STATES, IncidentState

# Memory for one report query's groups (this transaction only): households of millions of
# residents are grouped in memory instead of spilling to disk.
REPORT_WORK_MEM = "256MB"
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


def population(session: Session, u: Units, **_) -> list[Section]:
    """Residents, registered and floating population and households per unit."""
    # One pass over the residents, grouped by unit and household: the sums give the population,
    # the groups with a household id give the households (a household living in two base cells
    # of one community is one household of that community). The groups fit in memory.
    session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))
    sql = (
        _unit_frame(u)
        + """,
        g AS (SELECT u.code, s.household, count(*) AS n,
                     count(*) FILTER (WHERE s.population_type = 'registered') AS reg,
                     count(*) FILTER (WHERE s.population_type = 'floating') AS flo
              FROM resident s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code, s.household),
        r AS (SELECT code, sum(n)::int AS residents, sum(reg)::int AS registered, sum(flo)::int AS floating,
                     count(*) FILTER (WHERE household IS NOT NULL AND household <> '')::int AS households
              FROM g GROUP BY code)
        SELECT c.code, c.name, c.base_cells, coalesce(r.residents, 0) AS residents,
               coalesce(r.registered, 0) AS registered, coalesce(r.floating, 0) AS floating,
               coalesce(r.households, 0) AS households,
               round(100.0 * coalesce(r.floating, 0) / nullif(r.residents, 0), 1)::float8 AS floating_pct
        FROM cells c LEFT JOIN r ON r.code = c.code ORDER BY c.code"""
    )
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
        + """,
        b AS (SELECT u.code, count(*)::int AS buildings, coalesce(sum(s.floors), 0)::int AS floors,
                     round(avg(s.floors), 1)::float8 AS mean_floors
              FROM building s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        r AS (SELECT u.code, count(*)::int AS n FROM resident s JOIN u ON u.cell_id = s.base_cell_id
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
        SELECT to_char(s.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM') AS month, count(*)::int AS incidents,
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
            _rows(session, by_month, params),
            chart="incidents",
        ),
    ]


def workload(session: Session, u: Units, *, start=None, end=None, **_) -> list[Section]:
    """Per unit: subjects, open cases, cases of the period, coordinators and load per coordinator."""
    params = dict(u.params)
    when = _period_clause("s.reported_at", start, end, params)
    coordinators = "NULL::int"
    if u.by == "work-cell":
        params["wc_version"] = params["version"]
        coordinators = (
            "(SELECT count(DISTINCT ca.coordinator_id)::int FROM coordinator_assignment ca "
            "JOIN work_cell w ON w.id = ca.work_cell_id JOIN coordinator k ON k.id = ca.coordinator_id "
            "WHERE w.version_id = :wc_version AND w.code = c.code AND k.active)"
        )
    sql = (
        _unit_frame(u)
        + f""",
        r AS (SELECT u.code, count(*)::int AS n FROM resident s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        b AS (SELECT u.code, count(*)::int AS n FROM building s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        e AS (SELECT u.code, count(*)::int AS n FROM legal_entity s JOIN u ON u.cell_id = s.base_cell_id
              GROUP BY u.code),
        o AS (SELECT u.code, count(*)::int AS n FROM incident s JOIN u ON u.cell_id = s.base_cell_id
              WHERE s.status NOT IN {_FINISHED} GROUP BY u.code),
        p AS (SELECT u.code, count(*)::int AS n FROM incident s JOIN u ON u.cell_id = s.base_cell_id
              WHERE true {when} GROUP BY u.code),
        t AS (SELECT c.code, c.name, c.base_cells, coalesce(r.n, 0) AS residents, coalesce(b.n, 0) AS buildings,
                     coalesce(e.n, 0) AS entities, coalesce(o.n, 0) AS open_cases,
                     coalesce(p.n, 0) AS cases_in_period, {coordinators} AS coordinators
              FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN b ON b.code = c.code
              LEFT JOIN e ON e.code = c.code LEFT JOIN o ON o.code = c.code LEFT JOIN p ON p.code = c.code)
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
        )
    ]


# Evaluation (综合评价) from the workflow history: a case is on time when it was closed before its
# deadline; a rework is a transition from fed_back back to dispatched.
_EVALUATION_CASES = """
    ev AS (SELECT s.id, s.unit, s.coordinator_id, s.status, s.deadline, s.reported_at,
                  (SELECT max(h.at) FROM incident_history h WHERE h.incident_id = s.id AND h.to_status = 'closed')
                    AS closed_at,
                  (SELECT count(*) FROM incident_history h WHERE h.incident_id = s.id
                     AND h.from_status = 'fed_back' AND h.to_status = 'dispatched')::int AS reworks
           FROM i s)"""


def evaluation(session: Session, u: Units, *, start=None, end=None, **_) -> list[Section]:
    """Per unit and per coordinator: cases, closed, on-time rate, rework rate, mean hours to close."""
    params = dict(u.params)
    when = _period_clause("s.reported_at", start, end, params)
    base = (
        _unit_frame(u)
        + f""",
        i AS (SELECT s.*, u.code AS unit FROM incident s JOIN u ON u.cell_id = s.base_cell_id WHERE true {when}),
        {_EVALUATION_CASES}"""
    )
    measures = f"""count(*)::int AS cases, count(ev.closed_at)::int AS closed,
        count(*) FILTER (WHERE ev.closed_at IS NOT NULL AND (ev.deadline IS NULL OR ev.closed_at <= ev.deadline))::int
          AS on_time,
        round(100.0 * count(*) FILTER (WHERE ev.closed_at IS NOT NULL AND (ev.deadline IS NULL OR
          ev.closed_at <= ev.deadline)) / nullif(count(ev.closed_at), 0), 1)::float8 AS on_time_pct,
        count(*) FILTER (WHERE ev.reworks > 0)::int AS reworked,
        round(100.0 * count(*) FILTER (WHERE ev.reworks > 0) / nullif(count(ev.closed_at), 0), 1)::float8
          AS rework_pct,
        round((avg(extract(epoch FROM ev.closed_at - ev.reported_at)) / 3600)::numeric, 1)::float8 AS mean_hours,
        count(*) FILTER (WHERE ev.status NOT IN {_FINISHED})::int AS backlog"""
    per_unit = (
        base
        + f"""
        SELECT c.code, c.name, {measures} FROM cells c JOIN ev ON ev.unit = c.code GROUP BY c.code, c.name
        ORDER BY c.code"""
    )
    columns = ["cases", "closed", "on_time", "on_time_pct", "reworked", "rework_pct", "mean_hours", "backlog"]
    return [
        Section(
            "report.evaluation.title", ["code", "name", *columns], _rows(session, per_unit, params), chart="on_time_pct"
        ),
        _by_coordinator(session, u, start, end),
    ]


def _by_coordinator(session: Session, u: Units, start, end) -> Section:
    """Coordinators' figures from the incidents' own evaluation service (综合评价), names masked."""
    from gridkit.incidents.evaluate import evaluate as evaluate_incidents

    result = evaluate_incidents(session, by="coordinator", from_=start, to=end, dept=u.dept)
    rows = []
    for row in result["rows"]:
        name = row["name"] or "-"
        total = row["steps"]["total"]
        rows.append(
            {
                "coordinator_id": row["key"] or "-",
                "coordinator": name[:1] + "*" * max(len(name) - 1, 1) if row["name"] else "-",
                "cases": row["cases"],
                "closed": row["closed"],
                "on_time_pct": None if row["on_time_rate"] is None else round(100 * row["on_time_rate"], 1),
                "rework_pct": None if row["rework_rate"] is None else round(100 * row["rework_rate"], 1),
                "mean_hours": total["mean_hours"],
                "p90_hours": total["p90_hours"],
                "backlog": row["backlog"],
                "overdue": row["overdue"],
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
    )
