"""Writing staged residents (gridkit.io.subjects.residents): their rows into `resident` and their cells into
`resident_cell` (gridkit.resident_cells), then the resident summary's upkeep for the cells they entered or left."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.io.subjects.common import LISTED_ROWS
from gridkit.io.subjects.job import Job
from gridkit.io.subjects.staging import (
    KindSpec,
    Staged,
    absent_fields,
    kept_or_staged,
    rebuilt_for_insert,
    write_unique,
)
from gridkit.resident_cells import set_resident_cells_from
from gridkit.rules import SRID
from gridkit.spatial.bulk import rebuilt_indexes

__all__ = ["DUPLICATE_IDS", "STAGED_CELL", "counts_of_inserted", "residents_changed_cells", "write_staged_residents"]

_VALUES = (
    "s.id_number_masked, s.birth_date, s.name, s.phone, s.household, s.population_type, s.building_id, "
    "CASE WHEN s.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid) END"
)
# What --replace writes: a phone or household the file has no column for keeps its stored value.
_REPLACED = (
    "s.id_number_masked, s.birth_date, s.name, {phone}, {household}, s.population_type, s.building_id, "
    "CASE WHEN s.lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(s.lon, s.lat), :srid) END"
)
# A resident with a building takes the building's cell; otherwise its point's (both found while staging).
STAGED_CELL = "CASE WHEN s.building_id IS NOT NULL THEN s.building_cell ELSE s.cell END"


# Rows repeating a citizen ID (report_duplicates' keywords).
DUPLICATE_IDS = {"kind": "duplicate_id", "name": "id_number", "what": "imports.what.id_number"}


def _rebuilt_write(
    session: Session, staged: Staged, replace: bool, absent: frozenset = frozenset()
) -> tuple[int, int, int | None]:
    """`_write` with the table's indexes rebuilt once around it when that pays, and then (every row new) the ids
    reserved in file order (staging.rebuilt_for_insert); their cells' table's too (gridkit.resident_cells)."""
    with (
        rebuilt_for_insert(session, staged, "resident", replace) as offset,
        rebuilt_indexes(session, "resident_cell", staged.rows),
    ):
        return (*_write(session, staged.spec, replace, offset, absent), offset)


def _write(
    session: Session, spec: KindSpec, replace: bool, offset: int | None = None, absent: frozenset = frozenset()
) -> tuple[int, int]:
    """Insert the staged residents that are new and (replace) update the others; return (created, updated).

    Each staged row carries its building's id and cell (gridkit.io.subjects.building_codes): no join. `offset`:
    each new row's id is its row number plus this (file_order_ids), else the sequence's next in file order."""
    updated = 0
    if replace:
        updated = session.execute(
            text(
                "UPDATE resident t SET (id_number_masked, birth_date, name, phone, household, population_type, "
                f"building_id, geom) = ({_REPLACED.format(**kept_or_staged(('phone', 'household'), absent))}) "
                "FROM gk_stage_resident s WHERE t.id_number_hash = s.id_number_hash"
            ),
            {"srid": SRID},
        ).rowcount
        # Their cells (their own table: gridkit.resident_cells), set, changed or removed; before any new resident.
        set_resident_cells_from(
            session,
            text(
                f"SELECT t.id, {STAGED_CELL} AS cell FROM gk_stage_resident s "
                "JOIN resident t ON t.id_number_hash = s.id_number_hash"
            ),
        )
    # Without `replace` every staged ID was checked to be new (report_existing): no anti-join to pay for.
    new = "WHERE NOT EXISTS (SELECT 1 FROM resident r WHERE r.id_number_hash = s.id_number_hash) " if replace else ""
    if offset is not None:
        # Every staged row is new and its id known (row number + offset): the residents, then their cells (rows of
        # resident_cell) straight from the staged rows, nothing read back.
        created = session.execute(
            text(
                "INSERT INTO resident (id, id_number_hash, id_number_masked, birth_date, name, phone, household, "
                f"population_type, building_id, geom) SELECT s.row_no + :offset, s.id_number_hash, {_VALUES} "
                "FROM gk_stage_resident s"
            ),
            {"srid": SRID, "offset": offset},
        ).rowcount
        session.execute(
            text(
                "INSERT INTO resident_cell (resident_id, base_cell_id) "
                f"SELECT s.row_no + :offset, {STAGED_CELL} FROM gk_stage_resident s WHERE {STAGED_CELL} IS NOT NULL"
            ),
            {"offset": offset},
        )
        return created, updated
    # The new residents and, in the same statement, their cells (rows of resident_cell, inserted as the column
    # was written before: no resident is read again, nothing to update).
    created = session.execute(
        text(
            "WITH ins AS (INSERT INTO resident (id_number_hash, id_number_masked, birth_date, name, phone, household, "
            f"population_type, building_id, geom) SELECT s.id_number_hash, {_VALUES} "
            f"FROM gk_stage_resident s {new}"
            "ORDER BY s.row_no RETURNING id, id_number_hash), "
            f"put AS (INSERT INTO resident_cell (resident_id, base_cell_id) SELECT ins.id, {STAGED_CELL} FROM ins "
            f"JOIN gk_stage_resident s ON s.id_number_hash = ins.id_number_hash WHERE {STAGED_CELL} IS NOT NULL) "
            "SELECT count(*) FROM ins"
        ),
        {"srid": SRID},
    ).scalar_one()
    return created, updated


def _cells_of_staged(session: Session) -> set[int]:
    """Return the base cells the stored residents named in the staging table are in now."""
    return set(
        session.execute(
            text(
                "SELECT DISTINCT c.base_cell_id FROM resident r JOIN gk_stage_resident s "
                "ON r.id_number_hash = s.id_number_hash JOIN resident_cell c ON c.resident_id = r.id"
            )
        ).scalars()
    )


def write_staged_residents(
    session: Session, job: Job, staged: Staged, replace: bool
) -> tuple[int, int, set[int] | None, int | None]:
    """Write the staged residents (all or nothing: a repeated ID refuses the file); return (created, updated,
    the cells the stored residents named were in before: None for a first load into an empty table, where
    every cell with residents changes and the summary is rebuilt whole; the offset giving every staged row
    its id, `row_no + offset`, when each was inserted so, else None)."""
    before = _cells_of_staged(session) if replace else set()
    first = not session.scalar(text("SELECT EXISTS (SELECT 1 FROM resident)"))
    created, updated, offset = write_unique(
        job,
        staged,
        lambda: _rebuilt_write(session, staged, replace, absent_fields(job, ("phone", "household"))),
        constraint="uq_resident_id_number_hash",
        duplicates=DUPLICATE_IDS,
    )
    return created, updated, None if first else before, offset


def counts_of_inserted(session: Session, staged: Staged, offset: int, unassigned: int) -> dict:
    """Return finish's counts for staged rows all inserted with ids `row_no + offset` and their cells
    (STAGED_CELL) in the same step, `unassigned` of them without one: read from the staging table alone
    (finish joins it to the written rows by their IDs' hashes: 1M residents, ~1 server CPU s)."""
    listed = [
        {"row": r.row_no, "id": r.id, "code": r.label}
        for r in session.execute(
            text(
                "SELECT row_no, row_no + :offset AS id, id_number_masked AS label FROM gk_stage_resident s "
                f"WHERE {STAGED_CELL} IS NULL ORDER BY row_no LIMIT :n"
            ),
            {"offset": offset, "n": LISTED_ROWS},
        )
    ]
    session.expire_all()
    return {"assigned": staged.rows - unassigned, "unassigned": unassigned, "unassigned_rows": listed}


def residents_changed_cells(session: Session, before: set[int] | None) -> None:
    """Bring the resident summary up to date after `write_staged_residents`: the cells the written residents were
    in (`before`) and are in now, or all (None)."""
    from gridkit.reports.resident_summary import residents_changed  # gridkit.reports imports gridkit.io

    residents_changed(session, None if before is None else before | _cells_of_staged(session))
