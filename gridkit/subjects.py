"""Statistics of subjects per admin unit, base cell or work cell."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.work import current_version, department

GROUPINGS = ("district", "street", "community", "cell", "work-cell")
_PREFIX = {"district": 6, "street": 9, "community": 12, "cell": 15}


def subject_stats(session: Session, by: str = "community", *, dept: str | None = None) -> list[dict]:
    """Return one row per unit: code, name, base_cells and the counts of residents, registered,
    floating, households, buildings and entities.

    Counts follow each subject's base cell; units are the current base grid edition's cells
    grouped by code prefix, or the current work cells of department `dept`. Households are the
    distinct non-empty household ids of the unit's residents; unassigned subjects are not counted.
    """
    if by not in GROUPINGS:
        raise ValidationError(f"unknown grouping {by!r}: use one of {', '.join(GROUPINGS)}.")
    edition = current_edition(session)
    if edition is None:
        return []
    if by == "work-cell":
        if dept is None:
            raise ValidationError("--by work-cell needs --dept CODE: work cells belong to a department.")
        department(session, dept)
        version = current_version(session, dept)
        if version is None:
            return []
        unit_sql = ("SELECT b.id AS cell_id, w.code AS code, w.name AS name FROM base_cell b "
                    "JOIN work_cell_member m ON m.base_cell_id = b.id AND m.version_id = :v "
                    "JOIN work_cell w ON w.id = m.work_cell_id WHERE b.edition_id = :e")
        params = {"e": edition.id, "v": version.id}
    else:
        n = _PREFIX[by]
        name = "NULL::text" if by == "cell" else "a.name"
        join = "" if by == "cell" else f"LEFT JOIN admin_unit a ON a.code = left(b.code, {n})"
        if by == "cell":
            unit_sql = f"SELECT b.id AS cell_id, b.code AS code, {name} AS name FROM base_cell b WHERE b.edition_id = :e"
        else:
            unit_sql = (f"SELECT b.id AS cell_id, left(b.code, {n}) AS code, {name} AS name FROM base_cell b "
                        f"{join} WHERE b.edition_id = :e")
        params = {"e": edition.id}
    # Count per unit, not per base cell: a household whose members live in two base cells of one
    # community is still one household of that community.
    query = text(f"""
        WITH u AS ({unit_sql}),
        cells AS (SELECT code, min(name) AS name, count(*) AS base_cells FROM u GROUP BY code),
        r AS (SELECT u.code, count(*) AS residents,
                     count(*) FILTER (WHERE s.population_type = 'registered') AS registered,
                     count(*) FILTER (WHERE s.population_type = 'floating') AS floating,
                     count(DISTINCT s.household) AS households
              FROM resident s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        bl AS (SELECT u.code, count(*) AS n FROM building s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        en AS (SELECT u.code, count(*) AS n FROM legal_entity s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code)
        SELECT c.code, c.name, c.base_cells,
               coalesce(r.residents, 0) AS residents, coalesce(r.registered, 0) AS registered,
               coalesce(r.floating, 0) AS floating, coalesce(r.households, 0) AS households,
               coalesce(bl.n, 0) AS buildings, coalesce(en.n, 0) AS entities
        FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN bl ON bl.code = c.code
        LEFT JOIN en ON en.code = c.code
        ORDER BY c.code""")
    return [{k: (int(v) if k not in ("code", "name") else v) for k, v in row._mapping.items()}
            for row in session.execute(query, params)]


_SUBJECT_KEYS = {"buildings": ("building", "code"), "entities": ("legal_entity", "credit_code"),
                 "incidents": ("incident", "code"), "residents": ("resident", "id_number_hash")}

_CELL_RESPONSIBILITY_SQL = text("""
WITH v AS (
  SELECT DISTINCT ON (dept_code) id, dept_code, number, base_edition_id FROM work_grid_version
  WHERE status IN ('published', 'retired') AND valid_from <= :at AND (valid_to IS NULL OR valid_to > :at)
  ORDER BY dept_code, valid_from DESC)
SELECT d.code AS dept, d.name AS dept_name, v.number AS version, w.code AS work_cell, w.name AS work_cell_name,
       coalesce((SELECT json_agg(json_build_object('id', c.id, 'name', c.name, 'phone', c.phone) ORDER BY c.id)
                 FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
                 WHERE ca.work_cell_id = w.id AND c.active), '[]'::json) AS coordinators
FROM department d
LEFT JOIN v ON v.dept_code = d.code
-- A version may be drawn on an older base grid edition: its base cells are matched by code.
LEFT JOIN base_cell b ON b.edition_id = v.base_edition_id AND b.code = :cell
LEFT JOIN work_cell_member m ON m.version_id = v.id AND m.base_cell_id = b.id
LEFT JOIN work_cell w ON w.id = m.work_cell_id
ORDER BY d.code""")


def responsibility_of_subject(session: Session, kind: str, key: str, *, at=None, pii_key: bytes | None = None) -> dict:
    """Return a subject's base cell and, per department, its work cell and coordinators valid at `at`.

    Derived through the work grid versions valid then, never from copies on the subject row.
    `key` is the building code, credit code, incident code, or a resident's citizen ID number
    (matched by its keyed hash; the answer shows only the masked form).
    """
    from datetime import datetime, timezone

    from gridkit.errors import NotFound
    from gridkit.pii import hash_citizen_id

    if kind not in _SUBJECT_KEYS:
        raise ValidationError(f"unknown subject kind {kind!r}: use one of {', '.join(_SUBJECT_KEYS)}.")
    table, column = _SUBJECT_KEYS[kind]
    lookup = key.strip()
    if kind == "residents":
        if pii_key is None:
            raise ValidationError("finding a resident by citizen ID needs the personal-data key.")
        lookup = hash_citizen_id(pii_key, lookup)
    ident = "id_number_masked" if kind == "residents" else column
    row = session.execute(text(
        f"SELECT s.id, s.{ident} AS ident, b.code AS base_cell, b.community_code FROM {table} s "
        f"LEFT JOIN base_cell b ON b.id = s.base_cell_id WHERE s.{column} = :k"), {"k": lookup}).first()
    if row is None:
        shown = "that citizen ID number" if kind == "residents" else repr(key)
        raise NotFound(f"no {kind[:-1]} has {shown}.")
    at = at or datetime.now(timezone.utc)
    departments = []
    if row.base_cell is not None:
        departments = [dict(r._mapping) for r in session.execute(_CELL_RESPONSIBILITY_SQL, {"at": at, "cell": row.base_cell})]
    return {"kind": kind, "id": row.id, "identity": row.ident, "base_cell": row.base_cell,
            "community": row.community_code, "at": at.isoformat(), "departments": departments}
