"""Base grid editions: draft → published (only when validation is clean) → retired; diffs.

Publishing a new edition retires the one in force and moves subjects to the new cells: a
subject whose cell exists unchanged (same code, same geometry) follows it by code; only
subjects of changed, removed or added cells (and unassigned ones) are located again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import column, func, or_, select, table, text, update
from sqlalchemy.orm import Session

from gridkit import rules
from gridkit.assign import CELL, CELL_TABLE, KINDS, WITH_CELL, assign_subjects, expire_cells, follow_buildings
from gridkit.config import Settings
from gridkit.errors import InvalidTransition, ValidationError
from gridkit.grids.base import current_edition, state_name
from gridkit.grids.problems import within_tolerance_sql
from gridkit.grids.work.membership import cells_in_no_work_cell
from gridkit.models import BaseCell, BaseGridEdition, Incident
from gridkit.rules import EditionState, point_cell
from gridkit.spatial.bulk import rebuilt_indexes

# Advisory lock keys (any constants shared by every caller): held while an edition is published, and from
# the check that a new edition's name is free until the edition is written and committed.
PUBLISH_LOCK_KEY = 0x6772_6B20
NAME_LOCK_KEY = 0x6772_6B21


def lock_edition_names(session: Session) -> None:
    """Hold, until commit, the right to name a new edition: of two imports or generations naming editions at
    once (the same name, or the same default name), the second waits and then finds the name taken."""
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": NAME_LOCK_KEY})


# Cells whose symmetric difference is below this many m² count as unchanged (floating noise).
RESHAPE_TOLERANCE_M2 = 0.01
# Changes thinner than this everywhere are reprojection noise (GRIDKIT_SLIVER_TOLERANCE_M's default).
DEFAULT_TOLERANCE_M = Settings.sliver_tolerance_m


def diff_editions(
    session: Session, old: BaseGridEdition, new: BaseGridEdition, *, tolerance_m: float = DEFAULT_TOLERANCE_M
) -> dict:
    """Return cells added, removed and reshaped from `old` to `new`, matched by code.

    Reshaped entries carry the old and new areas and the area that changed (m², geography). A change
    thinner than `tolerance_m` everywhere (a round trip through a Gauss-Kruger shapefile: centimetres along
    the edges) is reprojection noise, as validation counts it: the cell is unchanged.
    """
    rows = session.execute(
        text(f"""
        SELECT code, kind, old_area, new_area, coalesce(ST_Area(d::geography), 0) AS changed,
               d IS NULL OR ST_IsEmpty(d) OR {within_tolerance_sql("d")} AS thin
        FROM (SELECT coalesce(o.code, n.code) AS code,
                     CASE WHEN o.id IS NULL THEN 'added' WHEN n.id IS NULL THEN 'removed' ELSE 'kept' END AS kind,
                     ST_Area(o.geom::geography) AS old_area, ST_Area(n.geom::geography) AS new_area,
                     CASE WHEN o.id IS NOT NULL AND n.id IS NOT NULL AND NOT ST_Equals(o.geom, n.geom)
                          THEN ST_SymDifference(o.geom, n.geom) END AS d
              FROM (SELECT id, code, geom FROM base_cell WHERE edition_id = :old) o
              FULL JOIN (SELECT id, code, geom FROM base_cell WHERE edition_id = :new) n ON n.code = o.code) x
        ORDER BY 1"""),
        {"old": old.id, "new": new.id, "half_tol": tolerance_m / 2},
    )
    added, removed, reshaped = [], [], []
    unchanged = 0
    for r in rows:
        if r.kind == "added":
            added.append({"code": r.code, "area_m2": round(r.new_area, 1)})
        elif r.kind == "removed":
            removed.append({"code": r.code, "area_m2": round(r.old_area, 1)})
        elif r.changed > RESHAPE_TOLERANCE_M2 and not r.thin:
            reshaped.append(
                {
                    "code": r.code,
                    "old_area_m2": round(r.old_area, 1),
                    "new_area_m2": round(r.new_area, 1),
                    "changed_m2": round(r.changed, 1),
                }
            )
        else:
            unchanged += 1
    return {
        "from": old.name,
        "to": new.name,
        "added": added,
        "removed": removed,
        "reshaped": reshaped,
        "unchanged": unchanged,
    }


def publish_edition(
    session: Session,
    edition: BaseGridEdition,
    *,
    at: datetime | None = None,
    sliver_m2: float | None = None,
    tolerance_m: float | None = None,
) -> dict:
    """Publish a draft edition whose validation is clean; retire the current one; move subjects.

    `tolerance_m` is the width below which overlaps and gaps are reprojection noise (the setting
    GRIDKIT_SLIVER_TOLERANCE_M; None: validation's default). Returns the diff against the retired
    edition, the subject counts per kind and, per department, the cells its work grid in force
    holds in no work cell (`work_grids_uncovered`, see cells_in_no_work_cell).
    """
    from gridkit.grids.validate import validate_base_grid

    # Editions are published one at a time: the second of two at once waits for the first to commit, then
    # retires it (or finds its own edition published already) instead of failing on the unique index.
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": PUBLISH_LOCK_KEY})
    session.refresh(edition)
    if edition.status != EditionState.DRAFT:
        raise InvalidTransition("grids.edition_not_draft", name=edition.name, status=state_name(edition.status))
    problems = validate_base_grid(
        session, edition, tolerance_m=tolerance_m, **({"sliver_m2": sliver_m2} if sliver_m2 is not None else {})
    )
    if problems:
        raise ValidationError(
            "grids.edition_has_problems",
            name=edition.name,
            count=len(problems),
            kinds=", ".join(sorted({p.type for p in problems})),
            problems=[p.to_dict() for p in problems],
        )
    at = at or rules.now()
    previous = current_edition(session)
    result: dict = {"edition": edition.name, "retired": previous.name if previous else None}
    if previous is not None:
        previous.status = EditionState.RETIRED
        previous.retired_at = at
        session.flush()
    edition.status = EditionState.PUBLISHED
    edition.published_at = at
    session.flush()
    if previous is not None:
        diff = diff_editions(session, previous, edition)
        result["diff"] = {k: len(v) if isinstance(v, list) else v for k, v in diff.items()}
        result["subjects"] = _move_subjects(session, previous, edition)
    else:
        result["subjects"] = assign_subjects(session, edition=edition)
    # The work grids in force stay drawn on the retired edition: say which new cells none of them holds.
    result["work_grids_uncovered"] = cells_in_no_work_cell(session, edition.id)
    return result


def _move_subjects(session: Session, old: BaseGridEdition, new: BaseGridEdition) -> dict:
    """Follow unchanged cells by code; locate again only the subjects of changed cells."""
    session.execute(
        text("""
        CREATE TEMP TABLE IF NOT EXISTS gk_cell_map (old_id int PRIMARY KEY, new_id int NOT NULL) ON COMMIT DROP""")
    )
    session.execute(text("TRUNCATE gk_cell_map"))
    session.execute(
        text("""
        INSERT INTO gk_cell_map (old_id, new_id)
        SELECT o.id, n.id FROM base_cell o JOIN base_cell n ON n.code = o.code AND n.edition_id = :new
        WHERE o.edition_id = :old AND ST_Equals(o.geom, n.geom)"""),
        {"old": old.id, "new": new.id},
    )
    relocate: dict[str, list[int]] = {}
    followed = {}
    # Cases: one set-based statement of their own (_move_cases), not a follow then a relocation.
    kinds = [k for k in KINDS if k != "incidents"]
    for kind in kinds:
        table = CELL_TABLE[kind]
        placed = session.scalar(text(f"SELECT count(*) FROM {table} WHERE base_cell_id IS NOT NULL"))
        # Most subjects follow their cell: a bulk write, indexes built again after (gridkit.spatial.bulk).
        with rebuilt_indexes(session, table, placed):
            followed[kind] = session.execute(
                text(f"UPDATE {table} t SET base_cell_id = m.new_id FROM gk_cell_map m WHERE t.base_cell_id = m.old_id")
            ).rowcount
        relocate[kind] = list(
            session.scalars(
                text(
                    f"SELECT t.id FROM {WITH_CELL[kind]} WHERE {CELL[kind]} IS NULL OR {CELL[kind]} IN "
                    f"(SELECT id FROM base_cell WHERE edition_id = :old)"
                ),
                {"old": old.id},
            )
        )
    # Subjects of unchanged cells that lie in a new cell's area cannot exist: an unchanged
    # cell keeps its exact geometry and the new edition has no overlaps (validated).
    counts = assign_subjects(session, kinds, edition=new, where_ids=relocate)
    for kind in kinds:
        counts[kind]["followed"] = followed[kind]
        counts[kind]["relocated"] = len(relocate[kind])
    counts["incidents"] = _move_cases(session, old, new)
    # Residents inherit their building's cell: those whose building moved follow it.
    follow_buildings(session)
    return counts


# The cases' new cells in one pass (the rule of _move_subjects, set-based): a case of an unchanged cell follows it
# by code (gk_cell_map); a case of a changed or removed cell, or of none, is located again by the point rule
# (rules.point_cell: ST_Covers, smallest code on ties), evaluated only for those (COALESCE stops at the mapped
# cell). Cases in a cell of another edition are left alone, as before. Only the rows whose cell changes are
# written, once: one firing of the rollups' triggers. When most cases move (every case of a cell moves: the new
# edition's cells have new ids) only the index and foreign key over base_cell_id are dropped and built again
# after: the UPDATE is heap-only, the table's other indexes untouched (gridkit.spatial.bulk, migration
# 20261209_perf10e).
_CELL_MAP = table("gk_cell_map", column("old_id"), column("new_id"))


def _move_cases(session: Session, old: BaseGridEdition, new: BaseGridEdition) -> dict:
    """Move the cases to `new`'s cells in one UPDATE from the computed mapping; return assign_subjects' counts
    of the relocated cases (total, assigned, unassigned, changed) with followed and relocated."""
    cases, i, m = Incident.__table__, Incident.__table__.alias("i"), _CELL_MAP.alias("m")
    old_cells = select(BaseCell.id).where(BaseCell.edition_id == old.id)
    candidates = i.outerjoin(m, m.c.old_id == i.c.base_cell_id)
    to_move = or_(i.c.base_cell_id.is_(None), i.c.base_cell_id.in_(old_cells))
    # Every case with a cell of `old` gets another cell (a new id, or none): so many rows are written at least.
    counts = session.execute(
        select(
            func.count().filter(m.c.old_id.is_(None)).label("relocated"),
            func.count(i.c.base_cell_id).label("moving"),
        )
        .select_from(candidates)
        .where(to_move)
    ).one()
    relocated = counts.relocated
    n = (
        select(
            i.c.id,
            m.c.new_id.is_not(None).label("followed"),
            func.coalesce(m.c.new_id, point_cell(BaseCell, new.id, i.c.geom)).label("cell"),
        )
        .select_from(candidates)
        .where(to_move)
        .subquery("n")
    )
    moved = (
        update(cases)
        .values(base_cell_id=n.c.cell)
        .where(cases.c.id == n.c.id, cases.c.base_cell_id.is_distinct_from(n.c.cell))
        .returning(n.c.followed, cases.c.base_cell_id)
        .cte("moved")
    )
    with rebuilt_indexes(session, "incident", counts.moving, columns=("base_cell_id",)):
        row = session.execute(
            select(
                func.count().filter(moved.c.followed).label("followed"),
                func.count().filter(~moved.c.followed).label("changed"),
                func.count().filter(~moved.c.followed, moved.c.base_cell_id.is_not(None)).label("assigned"),
            )
        ).one()
    expire_cells(session, "incidents")
    return {
        "total": relocated,
        "assigned": row.assigned,
        "unassigned": relocated - row.assigned,
        "changed": row.changed,
        "followed": row.followed,
        "relocated": relocated,
    }
