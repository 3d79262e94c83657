"""Who is responsible for a point at a time: base cell, community, and per department the work cell
and coordinators of the version in force then (as-of lookups, one SQL statement).

The rule is that of the statistics (gridkit.grids.work.membership): the base cell of the edition in force
then covering the point, and the work cell holding its code in the version in force then, whichever
edition the version was drawn on. A cell of a code the version neither places nor excludes (a new cell
of a later edition, in the department's jurisdiction) is in no work cell and says so (`unplaced`), as
the publish of that edition did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.grids.base import check_lon_lat
from gridkit.grids.work.membership import members_in_edition_sql, unplaced_codes
from gridkit.models import Department
from gridkit.rules import EditionState

# The whois query stays one SQL text, the hot path (p95 ≤ 2 ms, scripts/bench_workgrid.py): the
# rules it applies are those of gridkit.rules (edition_in_force, version_in_force, point_cell),
# with the states and the SRID passed from there as parameters.
_RESPONSIBILITY_SQL = text(f"""
WITH e AS (
  SELECT id FROM base_grid_edition
  WHERE CASE WHEN CAST(:at_given AS boolean)
             THEN status = ANY(:was_in_force) AND published_at <= :at
                  AND (retired_at IS NULL OR retired_at > :at)
             ELSE status = :published END
  ORDER BY published_at DESC NULLS LAST LIMIT 1),
cell AS (
  SELECT b.id, b.code, b.community_code, a.name FROM base_cell b JOIN admin_unit a ON a.code = b.community_code
  WHERE b.edition_id = (SELECT id FROM e) AND ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(:lon, :lat), :srid))
  ORDER BY b.code LIMIT 1),
v AS (
  SELECT DISTINCT ON (dept_code) id, dept_code, number, base_edition_id FROM work_grid_version
  WHERE status = ANY(:was_in_force) AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)
  ORDER BY dept_code, valid_from DESC)
SELECT (SELECT id FROM e) AS edition, (SELECT code FROM cell) AS base_cell,
       (SELECT community_code FROM cell) AS community, (SELECT name FROM cell) AS community_name,
       coalesce(json_agg(json_build_object(
         'dept', d.code, 'dept_name', d.name, 'version', v.number, 'work_cell', hit.code,
         'work_cell_name', hit.name, 'version_id', v.id,
         -- A code the version's base edition lacks (a new cell): is it unplaced? (see responsibility_at)
         'new_code', hit.id IS NULL AND v.id IS NOT NULL AND EXISTS (SELECT 1 FROM cell) AND NOT EXISTS (
            SELECT 1 FROM base_cell vb WHERE vb.edition_id = v.base_edition_id AND vb.code = (SELECT code FROM cell)),
         'coordinators', coalesce((
            SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'phone', c.phone) ORDER BY c.id)
            FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
            WHERE ca.work_cell_id = hit.id AND c.active), '[]'::json))
         ORDER BY d.code) FILTER (WHERE d.code IS NOT NULL), '[]'::json) AS departments
FROM department d
LEFT JOIN v ON v.dept_code = d.code
LEFT JOIN LATERAL (
  -- The work cell holding the code of the cell covering the point (ST_Covers, not ST_Contains: a point on a
  -- shared edge still gets one cell, the smallest code), by the membership rule of the statistics.
  SELECT w.id, w.code, w.name FROM ({members_in_edition_sql(version="v.id", edition="(SELECT id FROM e)")}) mm
  JOIN work_cell w ON w.id = mm.work_cell_id
  WHERE mm.cell_id = (SELECT id FROM cell)) hit ON true
""")


def responsibility_at(session: Session, lon: float, lat: float, at: datetime | None = None) -> dict:
    """Return who is responsible for a point at a time: base cell, community, and per department
    the work cell and coordinators of the version valid then (one SQL round trip).

    Departments whose version valid then has no work cell there are listed with work_cell None, and
    `unplaced` true when the version neither places nor excludes the cell's code (a new cell).
    """
    check_lon_lat(lon, lat)
    edition_at_given = at is not None
    at = at or rules.now()
    row = session.execute(
        _RESPONSIBILITY_SQL,
        {
            "lon": lon,
            "lat": lat,
            "at": at,
            "at_given": edition_at_given,
            "srid": rules.SRID,
            "published": EditionState.PUBLISHED.value,
            "was_in_force": rules.WAS_IN_FORCE_VALUES,
        },
    ).one()
    departments = row.departments
    for dept in departments:
        # Publishing a version checks that it places or excludes every cell of its base edition in the
        # jurisdiction: only a cell of a code that edition lacks can be unplaced, and only those ask.
        version_id, new_code = dept.pop("version_id"), dept.pop("new_code")
        dept["unplaced"] = bool(
            new_code
            and unplaced_codes(session, session.get(Department, dept["dept"]), version_id, row.edition, row.base_cell)
        )
    return {
        "lon": lon,
        "lat": lat,
        "at": at.isoformat(),
        "base_cell": row.base_cell,
        "community": row.community,
        "community_name": row.community_name,
        "departments": departments,
    }
