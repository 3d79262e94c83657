"""信息采集: recording a new case, idempotently, with the open cases it may duplicate."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.base import check_lon_lat, current_edition
from gridkit.incidents.actors import Actor, as_actor, check_role, check_scope
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.cases import write_history
from gridkit.incidents.categories import category as category_of
from gridkit.incidents.deadlines import iso, past_time, start_clock
from gridkit.models import BaseCell, Component, Incident
from gridkit.rules import SRID, IncidentState, make_point, now, point_cell

# Duplicates: open cases of the same category this close in space and time.
DUPLICATE_METRES = 50


DUPLICATE_HOURS = 24
# The longest description a report may carry, in characters (a case is told in a paragraph, not a file).
DESCRIPTION_MAX = 2000


@dataclass
class Report:
    """The result of report_incident: the case, whether this call created it, suggested duplicates."""

    incident: Incident
    created: bool
    duplicates: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Return {"id", "code", "state", "created", "base_cell_id", "duplicates"} for JSON."""
        return {
            "id": self.incident.id,
            "code": self.incident.code,
            "state": self.incident.status,
            "created": self.created,
            "base_cell_id": self.incident.base_cell_id,
            "duplicates": self.duplicates,
        }


def report_incident(
    session: Session,
    *,
    description: str,
    lon: float | None = None,
    lat: float | None = None,
    category: str | None = None,
    component: str | None = None,
    source: str | None = None,
    reported_at: datetime | str | None = None,
    key: str | None = None,
    reporter: str | None = None,
    actor: Actor | str | None = None,
) -> Report:
    """Record a new case (信息采集) and return it with open cases it may duplicate.

    The place is (lon, lat) in CGCS2000, or the component's (`component`: its 16-digit code, whose
    category the case takes). `key` is an idempotency key: the same report sent twice with one key
    gives one case (the second call returns it with created=False; a different report under a used
    key is a Conflict). `actor`: an Actor, or the name of a public channel (e.g. "open311").
    A place outside every base cell is kept, unassigned, for the supervisor's queue.
    """
    actor = as_actor(actor)
    check_role(actor, "report")
    description = (description or "").strip()
    if not description:
        raise ValidationError("incident.description_missing")
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError("incident.description_too_long", length=len(description), limit=DESCRIPTION_MAX)
    if key is not None:
        key = key.strip()
        if not key or len(key) > 100:
            raise ValidationError("incident.bad_key", key=key)
        existing = session.scalar(select(Incident).where(Incident.idempotency_key == key))
        if existing is not None:
            return _same_report(existing, key, description)
    when = past_time(reported_at, "reported_at") or now()
    comp = None
    if component:
        comp, lon, lat = _component_place(session, component, category)
        category = comp.category_code
    if lon is None or lat is None:
        raise ValidationError("incident.location_missing")
    check_lon_lat(float(lon), float(lat))
    cat = category_of(session, category) if category else None
    cell = _cell_at(session, float(lon), float(lat))
    check_scope(actor, cell.community_code if cell else None, "-")
    new_id = session.scalar(text("SELECT nextval(pg_get_serial_sequence('incident', 'id'))"))
    incident = Incident(
        id=new_id,
        code=incident_code(new_id, when),
        category_code=cat.code if cat else None,
        description=description,
        status=IncidentState.REPORTED,
        geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID),
        base_cell_id=cell.id if cell else None,
        component_id=comp.id if comp else None,
        reporter=(reporter or actor.name)[:100],
        source=(source or None),
        idempotency_key=key,
        reported_at=when,
    )
    start_clock(incident, cat, load_calendar(session))
    existing = _insert_once(session, incident, key)
    if existing is not None:
        return _same_report(existing, key, description)
    write_history(session, incident, None, IncidentState.REPORTED, actor, when, None)
    return Report(incident, True, suggest_duplicates(session, incident))


def _component_place(session: Session, code: str, category: str | None) -> tuple[Component, float, float]:
    """Return the component with this code and a point on it; refuse an unknown code or another category."""
    comp = session.scalar(select(Component).where(Component.code == code.strip()))
    if comp is None:
        raise NotFound("incident.unknown_component", component=code)
    if category and category != comp.category_code:
        raise ValidationError(
            "incident.component_category", component=comp.code, category=comp.category_code, given=category
        )
    point = func.ST_PointOnSurface(Component.geom)
    lon, lat = session.execute(select(func.ST_X(point), func.ST_Y(point)).where(Component.id == comp.id)).one()
    return comp, lon, lat


def _insert_once(session: Session, incident: Incident, key: str | None) -> Incident | None:
    """Store the new case; with an idempotency key already used meanwhile, store nothing and return
    the case stored under it."""
    if key is None:
        session.add(incident)
        session.flush()
        return None
    # Two requests with one key at the same moment: the unique index lets one in.
    try:
        with session.begin_nested():
            session.add(incident)
            session.flush()
    except IntegrityError:
        existing = session.scalar(select(Incident).where(Incident.idempotency_key == key))
        if existing is None:
            raise
        return existing
    return None


def _same_report(existing: Incident, key: str, description: str) -> Report:
    if (existing.description or "") != description:
        raise Conflict("incident.key_reused", key=key, incident=existing.code)
    return Report(existing, False, [])


# A case's code starts so (incident_code): its other characters are digits.
CODE_PREFIX = "SJ"


def incident_code(incident_id: int, reported_at: datetime) -> str:
    """Return a case's code: SJ + report date (Beijing) + its id in 7 digits."""
    from gridkit.rules import local_tz

    return f"{CODE_PREFIX}{reported_at.astimezone(local_tz()):%Y%m%d}{incident_id:07d}"


def _cell_at(session: Session, lon: float, lat: float) -> BaseCell | None:
    edition = current_edition(session)
    if edition is None:
        return None
    cell_id = session.scalar(select(point_cell(BaseCell, edition.id, make_point(lon, lat))))
    return session.get(BaseCell, cell_id) if cell_id is not None else None


def suggest_duplicates(session: Session, incident: Incident) -> list[dict]:
    """Return open cases of the same category within 50 m and 24 h before or after, nearest first."""
    if incident.category_code is None or incident.geom is None:
        return []
    rows = session.execute(
        text("""
        SELECT o.id, o.code, o.status, o.reported_at,
               ST_Distance(o.geom::geography, n.geom::geography) AS metres
        FROM incident n JOIN incident o ON o.category_code = n.category_code AND o.id <> n.id
        WHERE n.id = :id AND o.status NOT IN ('closed', 'rejected', 'duplicate')
          AND o.reported_at BETWEEN n.reported_at - make_interval(hours => :h)
                                AND n.reported_at + make_interval(hours => :h)
          AND o.geom && ST_Expand(n.geom, 0.001)
          AND ST_DWithin(o.geom::geography, n.geom::geography, :m)
        ORDER BY metres, o.id LIMIT 10"""),
        {"id": incident.id, "h": DUPLICATE_HOURS, "m": DUPLICATE_METRES},
    )
    return [
        {
            "id": r.id,
            "code": r.code,
            "state": r.status,
            "reported_at": iso(r.reported_at),
            "metres": round(float(r.metres), 1),
        }
        for r in rows
    ]
