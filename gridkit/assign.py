"""Assignment of subjects (buildings, residents, legal entities, incidents) to base cells.

Rules (the same in bulk and for one subject):
- a point goes to the base cell that covers it (ST_Covers, so edges count); a point on a
  shared edge or corner goes to the covering cell with the smallest code;
- a building with a footprint goes to the cell holding the largest part of the footprint
  (ties: smallest code); without a footprint, by its point;
- a resident with a building inherits the building's cell; otherwise by its own point;
- a subject outside every cell keeps base_cell_id NULL: it stays, is counted and listed.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.models import BaseGridEdition

KINDS = ("buildings", "residents", "entities", "incidents")
TABLES = {"buildings": "building", "residents": "resident", "entities": "legal_entity", "incidents": "incident"}

_POINT_CELL = ("(SELECT b.id FROM base_cell b WHERE b.edition_id = :e AND ST_Covers(b.geom, {t}.geom) "
               "ORDER BY b.code LIMIT 1)")
_FOOTPRINT_CELL = ("(SELECT b.id FROM base_cell b WHERE b.edition_id = :e AND ST_Intersects(b.geom, {t}.footprint) "
                   "ORDER BY ST_Area(ST_Intersection(b.geom, {t}.footprint)) DESC, b.code LIMIT 1)")


def _new_cell_sql(kind: str) -> str:
    table = TABLES[kind]
    if kind == "buildings":
        return (f"CASE WHEN {table}.footprint IS NOT NULL THEN {_FOOTPRINT_CELL.format(t=table)} "
                f"ELSE {_POINT_CELL.format(t=table)} END")
    if kind == "residents":
        return (f"CASE WHEN {table}.building_id IS NOT NULL THEN "
                f"(SELECT bl.base_cell_id FROM building bl WHERE bl.id = {table}.building_id) "
                f"ELSE {_POINT_CELL.format(t=table)} END")
    return _POINT_CELL.format(t=table)


def assign_subjects(session: Session, kinds: list[str] | None = None, *,
                    edition: BaseGridEdition | None = None, where_ids: dict[str, list[int]] | None = None) -> dict:
    """Assign subjects of `kinds` (default all) to the edition's base cells; return counts per kind.

    Counts: total, assigned, unassigned, changed (base cell differs from before).
    Buildings are assigned before residents, who inherit their building's cell.
    """
    kinds = list(KINDS) if not kinds else kinds
    for kind in kinds:
        if kind not in KINDS:
            raise ValidationError(f"unknown subject kind {kind!r}: use one of {', '.join(KINDS)}.")
    edition = edition or current_edition(session)
    if edition is None:
        raise NotFound("no base grid edition is published: publish one before assigning subjects.")
    ordered = [k for k in KINDS if k in kinds]
    result = {}
    for kind in ordered:
        table = TABLES[kind]
        ids = (where_ids or {}).get(kind)
        filter_ = "" if ids is None else f"WHERE {table}.id = ANY(:ids)"
        changed = session.execute(text(
            f"WITH n AS (SELECT {table}.id, {_new_cell_sql(kind)} AS cell FROM {table} {filter_}) "
            f"UPDATE {table} SET base_cell_id = n.cell FROM n WHERE {table}.id = n.id "
            f"AND {table}.base_cell_id IS DISTINCT FROM n.cell"), {"e": edition.id, "ids": ids}).rowcount
        counts = session.execute(text(
            f"SELECT count(*) AS total, count(base_cell_id) AS assigned FROM {table} {filter_}"),
            {"ids": ids}).one()
        result[kind] = {"total": counts.total, "assigned": counts.assigned,
                        "unassigned": counts.total - counts.assigned, "changed": changed}
    return result


def unassigned_subjects(session: Session, kind: str | None = None, limit: int | None = None) -> list[dict]:
    """Return subjects outside every base cell: kind, id, code or masked identity, location."""
    kinds = [kind] if kind else list(KINDS)
    queries = {
        "buildings": "SELECT id, code AS ident, COALESCE(geom, ST_PointOnSurface(footprint)) AS loc "
                     "FROM building WHERE base_cell_id IS NULL",
        # A resident's location is its own point or its building's.
        "residents": "SELECT r.id, r.id_number_masked AS ident, COALESCE(r.geom, bl.geom) AS loc "
                     "FROM resident r LEFT JOIN building bl ON bl.id = r.building_id WHERE r.base_cell_id IS NULL",
        "entities": "SELECT id, credit_code AS ident, geom AS loc FROM legal_entity WHERE base_cell_id IS NULL",
        "incidents": "SELECT id, code AS ident, geom AS loc FROM incident WHERE base_cell_id IS NULL",
    }
    rows: list[dict] = []
    for k in kinds:
        if k not in KINDS:
            raise ValidationError(f"unknown subject kind {k!r}: use one of {', '.join(KINDS)}.")
        query = f"SELECT id, ident, ST_X(loc) AS lon, ST_Y(loc) AS lat FROM ({queries[k]}) q ORDER BY id"
        if limit:
            query += " LIMIT :limit"
        for r in session.execute(text(query), {"limit": limit}):
            rows.append({"kind": k, "id": r.id, "identity": r.ident,
                         "lon": None if r.lon is None else round(r.lon, 7),
                         "lat": None if r.lat is None else round(r.lat, 7)})
    return rows
