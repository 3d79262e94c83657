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
    """Return one row per unit: code, name, residents, registered, floating, households, buildings, entities.

    Counts follow each subject's base cell; units are the current base grid edition's cells
    grouped by code prefix, or the current work cells of department `dept`.
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
    query = text(f"""
        WITH u AS ({unit_sql}),
        r AS (SELECT base_cell_id, count(*) AS residents,
                     count(*) FILTER (WHERE population_type = 'registered') AS registered,
                     count(*) FILTER (WHERE population_type = 'floating') AS floating,
                     count(DISTINCT household) AS households
              FROM resident WHERE base_cell_id IS NOT NULL GROUP BY base_cell_id),
        bl AS (SELECT base_cell_id, count(*) AS n FROM building WHERE base_cell_id IS NOT NULL GROUP BY base_cell_id),
        en AS (SELECT base_cell_id, count(*) AS n FROM legal_entity WHERE base_cell_id IS NOT NULL GROUP BY base_cell_id)
        SELECT u.code, min(u.name) AS name, count(*) AS base_cells,
               coalesce(sum(r.residents), 0) AS residents, coalesce(sum(r.registered), 0) AS registered,
               coalesce(sum(r.floating), 0) AS floating, coalesce(sum(r.households), 0) AS households,
               coalesce(sum(bl.n), 0) AS buildings, coalesce(sum(en.n), 0) AS entities
        FROM u LEFT JOIN r ON r.base_cell_id = u.cell_id LEFT JOIN bl ON bl.base_cell_id = u.cell_id
        LEFT JOIN en ON en.base_cell_id = u.cell_id
        GROUP BY u.code ORDER BY u.code""")
    return [{k: (int(v) if k not in ("code", "name") else v) for k, v in row._mapping.items()}
            for row in session.execute(query, params)]
