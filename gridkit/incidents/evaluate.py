"""综合评价: on-time closure rate, rework rate, time per step and open backlog, per group.

Cases counted are those reported in [from, to). Per step, the time is read from the case's own
step times (set by the workflow and by imports):

    accept   = accepted_at   - reported_at
    classify = classified_at - accepted_at
    dispatch = dispatched_at - classified_at
    handle   = fed_back_at   - dispatched_at    (the last feedback: rework rounds count as handling)
    verify   = closed_at     - fed_back_at
    total    = closed_at     - reported_at

A step a case has not reached (or an import did not record) is left out of that step's figures.
on_time_rate = closed by the case deadline / closed cases that have a deadline; rework_rate =
closed cases sent back at least once / closed cases; backlog = cases still open now.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.incidents.actors import Actor
from gridkit.incidents.personal import protect_coordinators
from gridkit.rules import now, parse_time

STEPS = {
    "accept": ("accepted_at", "reported_at"),
    "classify": ("classified_at", "accepted_at"),
    "dispatch": ("dispatched_at", "classified_at"),
    "handle": ("fed_back_at", "dispatched_at"),
    "verify": ("closed_at", "fed_back_at"),
    "total": ("closed_at", "reported_at"),
}
# Group → (key expression, name expression, the joins it needs); only these fixed SQL fragments
# are ever formatted in.
GROUPS = {
    "work-cell": ("w.code", "w.name", "LEFT JOIN work_cell w ON w.id = i.work_cell_id"),
    "department": ("i.dept_code", "d.name", "LEFT JOIN department d ON d.code = i.dept_code"),
    "coordinator": (
        "CAST(i.coordinator_id AS text)",
        "co.name",
        "LEFT JOIN coordinator co ON co.id = i.coordinator_id",
    ),
    "community": ("b.community_code", "a.name", "LEFT JOIN admin_unit a ON a.code = b.community_code"),
}
_BASE_CELL = "LEFT JOIN base_cell b ON b.id = i.base_cell_id"


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
    start = parse_time(from_, field="from")
    end = parse_time(to, field="to") or now()
    if start is not None and start >= end:
        raise ValidationError("incident.bad_period", start=start.isoformat(), end=end.isoformat())
    key_sql, name_sql, join_sql = GROUPS[by]
    needs_cell = by == "community" or (actor is not None and actor.scope_code)
    clauses, params = ["i.reported_at < :end"], {"end": end, "now": now()}
    if start is not None:
        clauses.append("i.reported_at >= :start")
        params["start"] = start
    if dept:
        clauses.append("i.dept_code = :dept")
        params["dept"] = dept
    if actor is not None and actor.scope_code:
        clauses.append("b.community_code LIKE :scope")
        params["scope"] = f"{actor.scope_code}%"
    # Each step's hours computed once per case, then averaged and ranked; date_part gives a double
    # (extract gives numeric, several times slower to sum and sort).
    durations = ", ".join(f"date_part('epoch', i.{a} - i.{b}) / 3600 AS {s}_h" for s, (a, b) in STEPS.items())
    step_columns = ",\n".join(
        f"avg(c.{s}_h) AS {s}_mean, percentile_cont(0.9) WITHIN GROUP (ORDER BY c.{s}_h) AS {s}_p90, "
        f"count(c.{s}_h) AS {s}_n"
        for s in STEPS
    )
    sql = f"""
        WITH c AS (
          SELECT {key_sql} AS key, {name_sql} AS name, i.status, i.deadline, i.closed_at, i.rework_count,
                 i.step_deadline, {durations}
          FROM incident i {_BASE_CELL if needs_cell else ""} {join_sql}
          WHERE {" AND ".join(clauses)})
        SELECT c.key, min(c.name) AS name, GROUPING(c.key) AS is_total,
               count(*) AS cases,
               count(*) FILTER (WHERE c.status = 'closed') AS closed,
               count(*) FILTER (WHERE c.status = 'closed' AND c.deadline IS NOT NULL) AS closed_with_deadline,
               count(*) FILTER (WHERE c.status = 'closed' AND c.closed_at <= c.deadline) AS on_time,
               count(*) FILTER (WHERE c.status = 'closed' AND c.rework_count > 0) AS reworked,
               count(*) FILTER (WHERE c.status NOT IN ('closed', 'rejected', 'duplicate')) AS backlog,
               count(*) FILTER (WHERE c.step_deadline < :now) AS overdue,
               {step_columns}
        FROM c
        GROUP BY GROUPING SETS ((c.key), ())
        ORDER BY GROUPING(c.key), c.key NULLS LAST"""
    rows, total = [], None
    for r in session.execute(text(sql), params):
        row = _row(r)
        if r.is_total:
            total = row
        else:
            rows.append(row)
    if total is None:
        total = _row(None)
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
    return {"by": by, "from": start.isoformat() if start else None, "to": end.isoformat(), "rows": rows, "total": total}


def _row(r) -> dict:
    if r is None:
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
    return {
        "key": None if r.is_total else r.key,
        "name": None if r.is_total else r.name,
        "cases": r.cases,
        "closed": r.closed,
        "on_time_rate": _ratio(r.on_time, r.closed_with_deadline),
        "rework_rate": _ratio(r.reworked, r.closed),
        "backlog": r.backlog,
        "overdue": r.overdue,
        "steps": {
            s: {
                "mean_hours": _round(getattr(r, f"{s}_mean")),
                "p90_hours": _round(getattr(r, f"{s}_p90")),
                "n": getattr(r, f"{s}_n"),
            }
            for s in STEPS
        },
    }


def flat_rows(result: dict) -> list[dict]:
    """Return the evaluation as flat rows (one column per figure) for tables and CSV."""
    out = []
    for row in [*result["rows"], {**result["total"], "key": "*", "name": "合计 total"}]:
        flat = {
            k: row[k] for k in ("key", "name", "cases", "closed", "on_time_rate", "rework_rate", "backlog", "overdue")
        }
        for step, figures in row["steps"].items():
            flat[f"{step}_mean_h"] = figures["mean_hours"]
            flat[f"{step}_p90_h"] = figures["p90_hours"]
        out.append(flat)
    return out


def _ratio(part, whole) -> float | None:
    return round(part / whole, 4) if whole else None


def _round(value) -> float | None:
    return None if value is None else round(float(value), 2)
