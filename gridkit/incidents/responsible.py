"""Who is responsible for a case: the one rule of dispatch and of the historic-case import (whois applies the
same rule to a point, in its own hot-path statement: gridkit.grids.work.responsibility).

For a case of department D reported at T: the base cell covering the case's place in the base grid edition in
force at T (ST_Covers, not ST_Contains: a point on an edge still gets one cell, ties to the smallest code), then
the work cell of D's work grid version valid at T that holds that cell's CODE (gridkit.grids.work.membership:
a version drawn on a retired edition keeps working after a new one), then the active coordinator of that work
cell with the smallest id. A case reported before any edition was published takes the cells of the version's
own edition. When one of these is missing, the case needs a manual dispatch and the reason says which
(`DispatchGap`). `responsible_sql` is that rule once, for one case (dispatch) or many (the import).
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.grids.work.membership import members_in_edition_sql
from gridkit.rules import WAS_IN_FORCE_VALUES, DispatchGap, IncidentState


def responsible_sql(cases: str) -> str:
    """Return the SQL of (id, work_cell_id, coordinator_id, gap) for each row of `cases`, a SQL relation with the
    columns id, dept_code, reported_at, geom (the rule of this module; parameter :was_in_force)."""
    members = members_in_edition_sql(version="v.id", edition="e.id")
    return f"""
    SELECT c.id, mm.work_cell_id, co.id AS coordinator_id,
           CASE WHEN cell.id IS NULL THEN '{DispatchGap.OUTSIDE_GRID}'
                WHEN mm.work_cell_id IS NULL THEN '{DispatchGap.NO_WORK_CELL}'
                WHEN co.id IS NULL THEN '{DispatchGap.NO_COORDINATOR}' END AS gap
    FROM ({cases}) c
    LEFT JOIN LATERAL (
      SELECT id, base_edition_id FROM work_grid_version
      WHERE dept_code = c.dept_code AND status = ANY(:was_in_force) AND valid_from <= c.reported_at
        AND (valid_to IS NULL OR valid_to > c.reported_at)
      ORDER BY valid_from DESC LIMIT 1) v ON true
    CROSS JOIN LATERAL (
      SELECT coalesce(
        (SELECT id FROM base_grid_edition WHERE status = ANY(:was_in_force) AND published_at <= c.reported_at
           AND (retired_at IS NULL OR retired_at > c.reported_at) ORDER BY published_at DESC LIMIT 1),
        v.base_edition_id) AS id) e
    LEFT JOIN LATERAL (
      SELECT b.id FROM base_cell b WHERE b.edition_id = e.id AND ST_Covers(b.geom, c.geom)
      ORDER BY b.code LIMIT 1) cell ON true
    LEFT JOIN LATERAL (SELECT x.work_cell_id FROM ({members}) x WHERE x.cell_id = cell.id) mm ON true
    LEFT JOIN LATERAL (
      SELECT p.id FROM coordinator_assignment ca JOIN coordinator p ON p.id = ca.coordinator_id
      WHERE ca.work_cell_id = mm.work_cell_id AND p.active ORDER BY p.id LIMIT 1) co ON true"""


class Responsible(NamedTuple):
    """Work cell and coordinator responsible for a case (None when none), and why a manual dispatch is needed."""

    work_cell_id: int | None
    coordinator_id: int | None
    gap: DispatchGap | None


_ONE_CASE = text(
    responsible_sql(
        "SELECT i.id, CAST(:dept AS text) AS dept_code, i.reported_at, i.geom FROM incident i WHERE i.id = :id"
    )
)


def responsible_for(session: Session, incident_id: int, dept_code: str) -> Responsible:
    """Return who in department `dept_code` is responsible for the stored case `incident_id` (the rule above)."""
    row = session.execute(_ONE_CASE, {"id": incident_id, "dept": dept_code, "was_in_force": WAS_IN_FORCE_VALUES}).one()
    return Responsible(row.work_cell_id, row.coordinator_id, DispatchGap(row.gap) if row.gap else None)


_MANY_CASES = text(f"""
UPDATE incident i SET work_cell_id = r.work_cell_id, coordinator_id = r.coordinator_id
FROM ({responsible_sql("SELECT id, dept_code, reported_at, geom FROM incident WHERE id = ANY(:ids)")}) r
WHERE i.id = r.id AND i.dept_code IS NOT NULL""")


def assign_work_cells(session: Session, ids: list[int]) -> int:
    """Set the work cell and coordinator of the stored cases `ids` that have a department by the rule above (as of
    their report time); return how many got a work cell."""
    session.execute(_MANY_CASES, {"ids": ids, "was_in_force": WAS_IN_FORCE_VALUES})
    session.expire_all()
    return session.scalar(
        text("SELECT count(*) FROM incident WHERE id = ANY(:ids) AND work_cell_id IS NOT NULL"), {"ids": ids}
    )


_MARK_GAPS = text(f"""
UPDATE incident i SET dispatch_gap = r.gap
FROM ({
    responsible_sql(
        "SELECT id, dept_code, reported_at, geom FROM incident WHERE id BETWEEN :first AND :last "
        f"AND status = '{IncidentState.DISPATCHED}' AND coordinator_id IS NULL"
    )
}) r
WHERE i.id = r.id""")


def mark_dispatch_gaps(session: Session, first: int, last: int) -> int:
    """Record why each dispatched case with an id in [first, last] and no coordinator has none (the rule above: a
    department's cases that the rule gives no work cell or coordinator); return how many now need a manual
    dispatch."""
    return session.execute(_MARK_GAPS, {"first": first, "last": last, "was_in_force": WAS_IN_FORCE_VALUES}).rowcount
