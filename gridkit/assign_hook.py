"""Incremental assignment: a subject inserted or moved through the ORM (geometry, footprint or building
changed) gets its base cell in the same flush, by session events that `install_assignment_hook` attaches to
a session factory (gridkit.db.session_factory does): no caller of such a session can forget it. Bulk
loaders may set session.info[AUTO_ASSIGN] = False and call gridkit.assign.assign_subjects once.
"""

from __future__ import annotations

from sqlalchemy import event, inspect, text
from sqlalchemy.orm import Session

from gridkit.assign import AUTO_ASSIGN, MODELS, subject_cell
from gridkit.grids.base import current_edition
from gridkit.resident_cells import set_resident_cells, set_resident_cells_from

__all__ = ["install_assignment_hook"]

# Incremental assignment: a subject inserted or moved through the ORM gets its base cell in the
# same flush, so no caller can forget it. Bulk paths (Core inserts, COPY) call assign_subjects.
_LOCATION = {
    "buildings": ("geom", "footprint"),
    "residents": ("geom", "building_id"),
    "entities": ("geom",),
    "incidents": ("geom",),
}


def install_assignment_hook(target) -> None:
    """Make sessions of `target` (a sessionmaker, or one Session) assign subjects moved through the ORM at flush.

    Wired explicitly by the session factories that want it (gridkit.db.session_factory, the tests'
    session): importing this module changes no session. Installing twice is harmless.
    """
    for name, listener in (("after_flush", _note_moved_subjects), ("after_flush_postexec", _assign_moved_subjects)):
        if not event.contains(target, name, listener):
            event.listen(target, name, listener)


def _note_moved_subjects(session: Session, flush_context) -> None:
    # A bulk loader may turn it off (session.info[AUTO_ASSIGN] = False) and assign in one go.
    if session.info.get(AUTO_ASSIGN) is False:
        return
    moved = session.info.setdefault("gridkit_moved_subjects", [])
    for obj in list(session.new) + list(session.dirty):
        kind = next((k for k, m in MODELS.items() if isinstance(obj, m)), None)
        if kind is None:
            continue
        state = inspect(obj)
        if obj in session.new or any(state.attrs[a].history.has_changes() for a in _LOCATION[kind]):
            moved.append((kind, obj))


def _assign_moved_subjects(session: Session, flush_context) -> None:
    moved = session.info.pop("gridkit_moved_subjects", None)
    if not moved:
        return
    with session.no_autoflush:
        edition = current_edition(session)
        if edition is None:
            return
        live = [(k, o) for k, o in moved if not (inspect(o).deleted or inspect(o).detached)]
        # Buildings first: their residents take the building's cell.
        cells_of_buildings = {}
        for obj in (o for k, o in live if k == "buildings"):
            cell = subject_cell(session, "buildings", obj, edition)
            if obj.base_cell_id != cell:
                # Changed here, flushed by the flush loop's next pass, in the same transaction.
                obj.base_cell_id = cell
            cells_of_buildings[obj.id] = cell
        if cells_of_buildings:
            # The buildings' new cells reach the table only in the next flush pass: give them here.
            followers = text(
                "SELECT r.id, n.cell FROM resident r JOIN unnest(CAST(:b AS int[]), CAST(:c AS int[])) AS n(b, cell) "
                "ON r.building_id = n.b"
            )
            given = {"b": list(cells_of_buildings), "c": list(cells_of_buildings.values())}
            set_resident_cells_from(session, followers.bindparams(**given))
        residents = {}
        for kind, obj in live:
            if kind == "buildings":
                continue
            if kind == "residents" and obj.building_id in cells_of_buildings:
                cell = cells_of_buildings[obj.building_id]
            else:
                cell = subject_cell(session, kind, obj, edition)
            if kind == "residents":
                residents[obj.id] = cell
            elif obj.base_cell_id != cell:
                obj.base_cell_id = cell
        # Written now, not by a flush: a resident's cell is not one of its columns.
        set_resident_cells(session, residents)
