"""综合评价: on-time closure rate, rework rate, time per step and open backlog, per group.

Cases counted are those reported in [from, to) (a date alone is that whole day in Beijing time, at
either end: gridkit.rules.period_bounds, as the statistical reports read it). Per step, the time is
read from the case's own step times (set by the workflow and by imports):

    accept   = accepted_at   - reported_at
    classify = classified_at - accepted_at
    dispatch = dispatched_at - classified_at
    handle   = fed_back_at   - dispatched_at    (the last feedback: rework rounds count as handling)
    verify   = closed_at     - fed_back_at
    total    = closed_at     - reported_at

A step a case has not reached (or an import did not record) is left out of that step's figures.
Each time counts as the case's limits count (`<step>_work_us`, set by the workflow and imports with
gridkit.incidents.worktime): in working time, or around the clock for a category that runs so; a
case stored before working time was kept counts its step around the clock, as it did then.
on_time_rate = closed by the case deadline / closed cases that have a deadline; rework_rate =
closed cases sent back at least once / closed cases; backlog = cases still open now; overdue =
open cases past their current step's deadline now.

At city scale the counts and summed step times come from the rollup `incident_eval` (per report
day in Beijing time and responsibility, kept by triggers on incident) for the whole days of the
period, and from the cases only for the hours before the first and after the last whole day; the
p90 times rank the cases' own step times.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.actors import Actor
from gridkit.incidents.deadlines import STEP_TIMES
from gridkit.incidents.personal import protect_coordinators
from gridkit.rules import OPEN_INCIDENT_STATES, local_tz, now, period_bounds

# Step → (the timestamp it ends at, the one it starts at): the workflow's, which keeps each step's time.
STEPS = STEP_TIMES
# Group → (key expression, name expression, the join it needs) over parts `p` (rollup rows and case
# rows alike: dept_code, work_cell_id, coordinator_id, community_code); only these fixed SQL
# fragments are ever formatted in.
GROUPS = {
    "work-cell": ("w.code", "w.name", "LEFT JOIN work_cell w ON w.id = p.work_cell_id"),
    "department": ("p.dept_code", "d.name", "LEFT JOIN department d ON d.code = p.dept_code"),
    "coordinator": (
        "CAST(p.coordinator_id AS text)",
        "co.name",
        "LEFT JOIN coordinator co ON co.id = p.coordinator_id",
    ),
    "community": ("p.community_code", "a.name", "LEFT JOIN admin_unit a ON a.code = p.community_code"),
}
# The counted measures of incident_eval, and the same per case (1 or 0; step times in microseconds).
_OPEN = ", ".join(f"'{s}'" for s in sorted(OPEN_INCIDENT_STATES))
CASE_MEASURES = {
    "cases": "1",
    "closed": "(i.status = 'closed')::int",
    "closed_with_deadline": "(i.status = 'closed' AND i.deadline IS NOT NULL)::int",
    "on_time": "(i.status = 'closed' AND i.closed_at <= i.deadline)::int",
    "reworked": "(i.status = 'closed' AND i.rework_count > 0)::int",
    "backlog": f"(i.status IN ({_OPEN}))::int",
    **{
        f"{s}_{m}": (
            f"(i.{a} IS NOT NULL AND i.{b} IS NOT NULL)::int"
            if m == "n"
            else f"COALESCE(i.{s}_work_us, round(date_part('epoch', i.{a} - i.{b}) * 1000000)::bigint, 0)"
        )
        for s, (a, b) in STEPS.items()
        for m in ("n", "us")
    },
}
# p90 ranks every case of the period up to this many; beyond, the cases whose id is a multiple of
# P90_SAMPLE (a fixed sample, the same on every call: about one in ten cases, spread evenly over
# time and place as ids follow the order of reports), so its cost stops growing with the period.
P90_ALL_MAX = 100_000
P90_SAMPLE = 10
_CASE_KEYS = "i.dept_code, i.work_cell_id, i.coordinator_id, b.community_code"
_ROLLUP_KEYS = "e.dept_code, e.work_cell_id, e.coordinator_id, e.community_code"


def evaluate(
    session: Session,
    *,
    by: str = "department",
    from_: datetime | str | None = None,
    to: datetime | str | None = None,
    actor: Actor | None = None,
    dept: str | None = None,
) -> dict:
    """Return {"by", "from", "to", "rows", "total"}: one row per group (key None: no group, e.g.
    not dispatched or unassigned) and the total over all cases, each with counts, rates and
    mean/p90 hours per step. A scoped actor's figures cover only its area. By coordinator, the
    names are personal data: in clear (and recorded in the audit log, in the caller's transaction)
    only for an actor who may read personal data in its area, masked for any other caller."""
    if by not in GROUPS:
        raise ValidationError("incident.bad_group", by=by, allowed=", ".join(GROUPS))
    start, end = period_bounds(from_, to)
    end = end or now()
    if start is not None and start >= end:
        raise ValidationError("incident.bad_period", start=start.isoformat(), end=end.isoformat())
    params = {"start": start, "end": end, "now": now(), "dept": dept}
    params["scope"] = actor.scope_pattern if actor is not None else None
    params["first"], params["last"] = _whole_days(start, end)
    figures = _figures(session, by, params)
    cases = int(figures[-1].cases or 0) if figures else 0
    sampled = cases > P90_ALL_MAX
    p90s = _p90s(session, by, params, sampled) if cases else {}
    rows, total = [], _row(None, {})
    for r in figures:
        row = _row(r, p90s.get((bool(r.is_total), None if r.is_total else r.key), {}))
        if r.is_total:
            total = row
        else:
            rows.append(row)
    if by == "coordinator":
        # Coordinators' names are personal data: clear (and audited) only for who may read them.
        protect_coordinators(
            session,
            rows,
            actor,
            area=actor.scope_code if actor is not None else None,
            evaluation=by,
            period_from=start.isoformat() if start else None,
            period_to=end.isoformat(),
        )
    return {
        "by": by,
        "from": start.isoformat() if start else None,
        "to": end.isoformat(),
        "p90_sample": f"1/{P90_SAMPLE}" if sampled else None,
        "rows": rows,
        "total": total,
    }


def _whole_days(start: datetime | None, end: datetime) -> tuple:
    """Return (first, last): the whole Beijing days in [start, end) run from day `first` to before
    day `last` (first None: from the beginning)."""
    local_end = end.astimezone(local_tz())
    last = local_end.date()
    if start is None:
        return None, last
    local_start = start.astimezone(local_tz())
    first = local_start.date() + timedelta(days=local_start.time() != time(0))
    return first, max(first, last)


def _where_cases(params: dict) -> str:
    """The cases `i` (with base cell `b`) of the period outside its whole days, in the scope and department:
    two ranges of report times, each read from the report time index."""
    last = datetime.combine(params["last"], time(0), local_tz())
    params["last_at"] = max(last, params["start"]) if params["start"] is not None else last
    ranges = ["i.reported_at >= :last_at AND i.reported_at < :end"]
    if params["start"] is not None:
        params["first_at"] = datetime.combine(params["first"], time(0), local_tz())
        ranges.append("i.reported_at >= :start AND i.reported_at < :first_at")
    where = " AND ".join(_filters("i.dept_code", "b.community_code", params)) or "TRUE"
    return " OR ".join(f"({r} AND {where})" for r in ranges)


def _filters(dept_column: str, community_column: str, params: dict) -> list[str]:
    clauses = []
    if params["dept"]:
        clauses.append(f"{dept_column} = :dept")
    if params["scope"]:
        clauses.append(f"{community_column} LIKE :scope")
    return clauses


def _figures(session: Session, by: str, params: dict) -> list:
    """Return one row of summed measures per group and a total row (GROUPING(key) = 1)."""
    key_sql, name_sql, join_sql = GROUPS[by]
    measures = list(CASE_MEASURES)
    rollup_where = ["e.day < :last", *_filters("e.dept_code", "e.community_code", params)]
    if params["first"] is not None:
        rollup_where.append("e.day >= :first")
    case_rows = ", ".join(f"{sql} AS {m}" for m, sql in CASE_MEASURES.items())
    overdue_where = [
        "i.reported_at < :end",
        "i.step_deadline < :now",
        *_filters("i.dept_code", "b.community_code", params),
    ]
    if params["start"] is not None:
        overdue_where.append("i.reported_at >= :start")
    zeros = ", ".join(f"0 AS {m}" for m in measures)
    sql = f"""
        WITH p AS (
          SELECT {_ROLLUP_KEYS}, {", ".join(f"e.{m}" for m in measures)}, 0 AS overdue
          FROM incident_eval e WHERE {" AND ".join(rollup_where)}
          UNION ALL
          SELECT {_CASE_KEYS}, {case_rows}, 0
          FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE {_where_cases(params)}
          UNION ALL
          SELECT {_CASE_KEYS}, {zeros}, 1
          FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE {" AND ".join(overdue_where)})
        SELECT {key_sql} AS key, min({name_sql}) AS name, GROUPING({key_sql}) AS is_total,
               {", ".join(f"sum(p.{m}) AS {m}" for m in measures)}, sum(p.overdue) AS overdue
        FROM p {join_sql}
        GROUP BY GROUPING SETS (({key_sql}), ())
        HAVING sum(p.cases) > 0 OR GROUPING({key_sql}) = 1
        ORDER BY GROUPING({key_sql}), {key_sql} NULLS LAST"""
    return [r for r in session.execute(text(sql), params) if r.is_total or r.cases]


def _p90s(session: Session, by: str, params: dict, sampled: bool) -> dict:
    """Return {(is_total, key): {step: p90 hours}} ranking the cases' own step times per group and in all
    (`sampled`: only the cases whose id is a multiple of P90_SAMPLE, read from their partial index)."""
    key_sql, _, join_sql = GROUPS[by]
    where = ["i.reported_at < :end", *_filters("i.dept_code", "b.community_code", params)]
    if sampled:
        # A literal, matching the predicate of ix_incident_p90_sample.
        where.append(f"i.id % {P90_SAMPLE} = 0")
    if params["start"] is not None:
        where.append("i.reported_at >= :start")
    # date_part gives a double (extract gives numeric, several times slower to sort).
    hours = ", ".join(
        f"COALESCE(CAST(i.{s}_work_us AS float8) / 3600000000, date_part('epoch', i.{a} - i.{b}) / 3600) AS {s}_h"
        for s, (a, b) in STEPS.items()
    )
    p90 = ", ".join(f"percentile_cont(0.9) WITHIN GROUP (ORDER BY p.{s}_h) AS {s}" for s in STEPS)
    rows = session.execute(
        text(f"""
        WITH p AS (SELECT {_CASE_KEYS}, {hours}
                   FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE {" AND ".join(where)})
        SELECT {key_sql} AS key, GROUPING({key_sql}) AS is_total, {p90}
        FROM p {join_sql} GROUP BY GROUPING SETS (({key_sql}), ())"""),
        params,
    )
    return {(bool(r.is_total), r.key): {s: getattr(r, s) for s in STEPS} for r in rows}


def _row(r, p90: dict) -> dict:
    """Return one group's figures from its summed measures and p90 hours (r None or empty: no cases)."""
    if r is None or not r.cases:
        return {
            "key": None,
            "name": None,
            "cases": 0,
            "closed": 0,
            "on_time_rate": None,
            "rework_rate": None,
            "backlog": 0,
            "overdue": 0,
            "steps": {s: {"mean_hours": None, "p90_hours": None, "n": 0} for s in STEPS},
        }
    steps = {}
    for s in STEPS:
        n = int(getattr(r, f"{s}_n"))
        mean = int(getattr(r, f"{s}_us")) / n / 3.6e9 if n else None
        steps[s] = {"mean_hours": _round(mean), "p90_hours": _round(p90.get(s)) if n else None, "n": n}
    return {
        "key": None if r.is_total else r.key,
        "name": None if r.is_total else r.name,
        "cases": int(r.cases),
        "closed": int(r.closed),
        "on_time_rate": _ratio(r.on_time, r.closed_with_deadline),
        "rework_rate": _ratio(r.reworked, r.closed),
        "backlog": int(r.backlog),
        "overdue": int(r.overdue),
        "steps": steps,
    }


def flat_rows(result: dict, total_name: str) -> list[dict]:
    """Return the evaluation as flat rows (one column per figure) for tables and CSV, the total last,
    named `total_name` (in the reader's language)."""
    out = []
    for row in [*result["rows"], {**result["total"], "key": "*", "name": total_name}]:
        flat = {
            k: row[k] for k in ("key", "name", "cases", "closed", "on_time_rate", "rework_rate", "backlog", "overdue")
        }
        for step, figures in row["steps"].items():
            flat[f"{step}_mean_h"] = figures["mean_hours"]
            flat[f"{step}_p90_h"] = figures["p90_hours"]
        out.append(flat)
    return out


def _ratio(part, whole) -> float | None:
    return round(int(part) / int(whole), 4) if whole else None


def _round(value) -> float | None:
    return None if value is None else round(float(value), 2)


# Orders of the evaluation's rows: the worst first (most cases, largest backlog, lowest on-time
# closure, highest rework); rows without the figure last; ties by key, so pages never overlap.
SORTS = {
    "cases": ("cases", True),
    "backlog": ("backlog", True),
    "overdue": ("overdue", True),
    "on_time": ("on_time_rate", False),
    "rework": ("rework_rate", True),
    "key": ("key", False),
}


def sort_rows(rows: list[dict], sort: str) -> list[dict]:
    """Return the evaluation's `rows` in the order SORTS[sort] (the worst first)."""
    if sort not in SORTS:
        raise ValidationError("incident.bad_sort", sort=sort, allowed=", ".join(SORTS))
    field, descending = SORTS[sort]
    present = [r for r in rows if r[field] is not None]
    present.sort(key=lambda r: str(r["key"] or ""))
    present.sort(key=lambda r: r[field], reverse=descending)
    return present + sorted((r for r in rows if r[field] is None), key=lambda r: str(r["key"] or ""))
