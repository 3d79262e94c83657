"""One case: finding it (by id or code, locked for a transition), where it lies, who is responsible
for it as of its report time, and its history rows."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.incidents.actors import Actor
from gridkit.incidents.responsible import responsible_for
from gridkit.models import BaseCell, Incident, IncidentHistory


def get_incident(session: Session, ident: int | str, *, lock: bool = False) -> Incident:
    """Return the case with this id or code (locked FOR UPDATE if `lock`), or raise NotFound."""
    query = select(Incident)
    text_ident = str(ident).strip()
    # An id is ASCII digits: '²' is a digit to str.isdigit() but no number to int() (it was a 500), and
    # '٣' or '３' named case 3.
    query = (
        query.where(Incident.id == int(text_ident))
        if text_ident.isascii() and text_ident.isdigit() and len(text_ident) < 10
        else query.where(Incident.code == text_ident)
    )
    if lock:
        # Row lock: a concurrent transition waits, then reads the state this one left.
        query = query.with_for_update().execution_options(populate_existing=True)
    incident = session.scalar(query)
    if incident is None:
        raise NotFound("incident.not_found", incident=ident)
    return incident


def community_of(session: Session, incident: Incident) -> str | None:
    """Return the community code of the case's base cell, or None when unassigned."""
    if incident.base_cell_id is None:
        return None
    return session.scalar(select(BaseCell.community_code).where(BaseCell.id == incident.base_cell_id))


def responsible_at_report(session: Session, incident: Incident, dept_code: str) -> tuple[int | None, int | None]:
    """Return (work cell id, coordinator id) of the department's version valid when the case was reported, by the
    one rule of gridkit.incidents.responsible ((None, None) when the place has no work cell then)."""
    found = responsible_for(session, incident.id, dept_code)
    return found.work_cell_id, found.coordinator_id


# The longest note a step may carry, in characters (every view of the case shows every note).
NOTE_MAX = 2000


def write_history(session: Session, incident: Incident, old, new, actor: Actor, when: datetime, note) -> None:
    """Add the history row of one step; refuse a note over NOTE_MAX characters (the caller's transaction fails)."""
    if note and len(note) > NOTE_MAX:
        raise ValidationError("incident.note_too_long", length=len(note), limit=NOTE_MAX)
    session.add(
        IncidentHistory(
            incident_id=incident.id,
            at=when,
            actor=actor.name[:100],
            from_status=str(old) if old else None,
            to_status=str(new),
            note=(note or None),
        )
    )
    session.flush()


# A coordinator's cases (over `incident i`, parameter :coordinator): their own, or in one of their work
# cells; a stopped coordinator has none. The one rule of the lists, the case view and feedback (works_on).
# `= ANY (ARRAY(…))`, not `IN (SELECT …)`: the work cells are read once and the cases found from the index of
# work_cell_id (a subquery was a filter over every case of the city: 90 ms at 300,000 cases).
COORDINATORS_CASE = (
    "(EXISTS (SELECT 1 FROM coordinator c WHERE c.id = :coordinator AND c.active) AND (i.coordinator_id = :coordinator "
    "OR i.work_cell_id = ANY (ARRAY(SELECT work_cell_id FROM coordinator_assignment "
    "WHERE coordinator_id = :coordinator))))"
)


def coordinator_case(session: Session, coordinator_id: int, incident_id: int) -> bool:
    """True when the case is the coordinator's own or lies in one of their work cells (a stopped coordinator has
    none)."""
    return bool(
        session.scalar(
            text(f"SELECT EXISTS (SELECT 1 FROM incident i WHERE i.id = :id AND {COORDINATORS_CASE})"),
            {"id": incident_id, "coordinator": coordinator_id},
        )
    )


def works_on(session: Session, actor: Actor, incident: Incident) -> bool:
    """True when the coordinator actor, still active, is the case's coordinator or covers its work cell."""
    return actor.coordinator_id is not None and coordinator_case(session, actor.coordinator_id, incident.id)
