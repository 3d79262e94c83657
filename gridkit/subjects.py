"""Statistics of subjects per admin unit, base cell or work cell."""

from __future__ import annotations

from functools import lru_cache

from sqlalchemy import DateTime, String, bindparam, select, text
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.errors import NotFound, ValidationError
from gridkit.grids.base import current_edition
from gridkit.grids.work.coordinators import coordinators_json
from gridkit.grids.work.departments import department
from gridkit.grids.work.membership import MEMBERS_IN_EDITION_SQL, work_cell_of_code
from gridkit.grids.work.versions import current_version, versions_in_force
from gridkit.models import BaseCell, Building, Department, Incident, LegalEntity, Resident, WorkCell
from gridkit.resident_cells import ASSIGNED_RESIDENTS

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
        raise ValidationError("stats.unknown_grouping", by=by, choices=", ".join(GROUPINGS))
    edition = current_edition(session)
    if edition is None:
        return []
    if by == "work-cell":
        if dept is None:
            raise ValidationError("stats.work_cell_needs_dept")
        department(session, dept)
        version = current_version(session, dept)
        if version is None:
            return []
        # The version may be drawn on an older edition than the one in force: its cells matched by code.
        unit_sql = (
            f"SELECT m.cell_id, w.code AS code, w.name AS name FROM ({MEMBERS_IN_EDITION_SQL}) m "
            "JOIN work_cell w ON w.id = m.work_cell_id"
        )
        params = {"edition": edition.id, "version": version.id}
    else:
        n = _PREFIX[by]
        name = "NULL::text" if by == "cell" else "a.name"
        join = "" if by == "cell" else f"LEFT JOIN admin_unit a ON a.code = left(b.code, {n})"
        if by == "cell":
            unit_sql = (
                f"SELECT b.id AS cell_id, b.code AS code, {name} AS name FROM base_cell b WHERE b.edition_id = :edition"
            )
        else:
            unit_sql = (
                f"SELECT b.id AS cell_id, left(b.code, {n}) AS code, {name} AS name FROM base_cell b "
                f"{join} WHERE b.edition_id = :edition"
            )
        params = {"edition": edition.id}
    # Count per unit, not per base cell: a household whose members live in two base cells of one
    # community is still one household of that community.
    query = text(f"""
        WITH u AS ({unit_sql}),
        cells AS (SELECT code, min(name) AS name, count(*) AS base_cells FROM u GROUP BY code),
        r AS (SELECT u.code, count(*) AS residents,
                     count(*) FILTER (WHERE s.population_type = 'registered') AS registered,
                     count(*) FILTER (WHERE s.population_type = 'floating') AS floating,
                     count(DISTINCT s.household) AS households
              FROM {ASSIGNED_RESIDENTS} s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        bl AS (SELECT u.code, count(*) AS n FROM building s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code),
        en AS (SELECT u.code, count(*) AS n FROM legal_entity s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code)
        SELECT c.code, c.name, c.base_cells,
               coalesce(r.residents, 0) AS residents, coalesce(r.registered, 0) AS registered,
               coalesce(r.floating, 0) AS floating, coalesce(r.households, 0) AS households,
               coalesce(bl.n, 0) AS buildings, coalesce(en.n, 0) AS entities
        FROM cells c LEFT JOIN r ON r.code = c.code LEFT JOIN bl ON bl.code = c.code
        LEFT JOIN en ON en.code = c.code
        ORDER BY c.code""")
    return [
        {k: (int(v) if k not in ("code", "name") else v) for k, v in row._mapping.items()}
        for row in session.execute(query, params)
    ]


_SUBJECT_KEYS = {
    "buildings": (Building, Building.code),
    "entities": (LegalEntity, LegalEntity.credit_code),
    "incidents": (Incident, Incident.code),
    "residents": (Resident, Resident.id_number_hash),
}


@lru_cache(maxsize=1)
def _cell_responsibility_query():
    """Return per department the work cell holding base cell :cell in the version in force at :at (built once)."""
    v = versions_in_force(bindparam("at", type_=DateTime(timezone=True)))
    base_cell_code = bindparam("cell", type_=String)
    # A version may be drawn on an older base grid edition: its base cells are matched by code (the rule of
    # gridkit.grids.work.membership).
    return (
        select(
            Department.code.label("dept"),
            Department.name.label("dept_name"),
            v.c.number.label("version"),
            WorkCell.code.label("work_cell"),
            WorkCell.name.label("work_cell_name"),
            coordinators_json(WorkCell.id).label("coordinators"),
        )
        .select_from(Department)
        .outerjoin(v, v.c.dept_code == Department.code)
        .outerjoin(WorkCell, WorkCell.id == work_cell_of_code(v.c.id, v.c.base_edition_id, base_cell_code))
        .order_by(Department.code)
    )


def responsibility_of_subject(session: Session, kind: str, key: str, *, at=None, pii_key: bytes | None = None) -> dict:
    """Return a subject's base cell and, per department, its work cell and coordinators valid at `at`.

    Derived through the work grid versions valid then, never from copies on the subject row.
    `key` is the building code, credit code, incident code, or a resident's citizen ID number
    (matched by its keyed hash; the answer shows only the masked form).
    """
    from gridkit.pii import hash_citizen_id

    if kind not in _SUBJECT_KEYS:
        raise ValidationError("whois.unknown_kind", kind=kind, choices=", ".join(_SUBJECT_KEYS))
    model, column = _SUBJECT_KEYS[kind]
    lookup = key.strip()
    if kind == "residents":
        if pii_key is None:
            raise ValidationError("whois.needs_pii_key")
        lookup = hash_citizen_id(pii_key, lookup)
    ident = Resident.id_number_masked if kind == "residents" else column
    row = session.execute(
        select(model.id, ident.label("ident"), BaseCell.code.label("base_cell"), BaseCell.community_code)
        .outerjoin(BaseCell, BaseCell.id == model.base_cell_id)
        .where(column == lookup)
    ).first()
    if row is None:
        raise NotFound(f"whois.{kind}_not_found", key=key)
    at = at or rules.now()
    departments = []
    if row.base_cell is not None:
        departments = [
            dict(r._mapping) for r in session.execute(_cell_responsibility_query(), {"cell": row.base_cell, "at": at})
        ]
    return {
        "kind": kind,
        "id": row.id,
        "identity": row.ident,
        "base_cell": row.base_cell,
        "community": row.community_code,
        "at": at.isoformat(),
        "departments": departments,
    }
