"""Reading cases: one case with its history, lists with filters and pages, overdue and escalation."""

from __future__ import annotations

import string
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridkit.errors import NotFound, ValidationError
from gridkit.incidents.actors import ACTION_ROLES, Actor, check_scope
from gridkit.incidents.attachments import attachment_path
from gridkit.incidents.calendar import load_calendar
from gridkit.incidents.cases import COORDINATORS_CASE
from gridkit.incidents.deadlines import case_clock, time_left, times_left
from gridkit.incidents.personal import protect_case, protect_case_texts
from gridkit.incidents.report import CODE_PREFIX
from gridkit.incidents.workflow import (
    PENDING_STEP,
    allowed_actions,
    community_of,
    get_incident,
)
from gridkit.models import (
    BaseCell,
    Coordinator,
    Incident,
    IncidentAttachment,
    IncidentCategory,
    IncidentHistory,
    WorkCell,
)
from gridkit.rules import OPEN_CASE_SQL, OPEN_INCIDENT_STATES, IncidentState, local_tz, now, parse_time
from gridkit.search import like_literal

MAX_PAGE = 500
# The characters of a text, lower case, as an array (SQL; `{}`: the text): what the GIN index ix_incident_text_chars
# holds of a case's code and description (CASE_TEXT_CHARS, over `incident i`; migration 20261209_perf10e writes it
# exactly so). A search of one or two characters, which the trigram indexes cannot serve, finds from it the cases
# holding each character of the text (井盖, A1), and ILIKE keeps those holding the text itself. A text made of a
# case code's characters alone (SJ, 20, 5: incident_code) is in most cases anyway and is read from the cases: the
# condition would cost more on each of the many cases holding it than it saves.
CHARS = "string_to_array(lower({}), NULL)"
CASE_TEXT_CHARS = CHARS.format("COALESCE(i.code, '') || COALESCE(i.description, '')")
CODE_CHARS = frozenset(CODE_PREFIX.lower() + string.digits)
# Orders of a list of cases (fixed SQL; a page cut short by a most urgent order leaves out the least urgent).
# "deadline": the nearest (or most overdue) step deadline first, cases without one last; "todo": what a
# coordinator must do first (dispatched cases), then by deadline.
ORDERS = {
    "newest": "i.reported_at DESC, i.id DESC",
    "oldest": "i.reported_at, i.id",
    "deadline": "i.step_deadline NULLS LAST, i.id",
    "todo": "(i.status <> 'dispatched'), i.step_deadline NULLS LAST, i.id",
}


def _seen_case(session: Session, ident, actor: Actor | None) -> tuple[Incident, str | None]:
    """Return case `ident` and its community, refused (check_scope) to an actor outside its area."""
    incident = get_incident(session, ident)
    community = community_of(session, incident)
    if actor is not None:
        check_scope(actor, community, incident.code)
    return incident, community


def show_incident(session: Session, ident, actor: Actor | None = None) -> dict:
    """Return one case: state, category, places, responsibility, deadlines, overdue, history, attachments.

    The coordinator's name and phone and the reporter are in clear (and the read audited, one row
    in the caller's transaction) only for an actor who may read personal data there; masked otherwise.
    """
    incident, community = _seen_case(session, ident, actor)
    lonlat = session.execute(
        select(func.ST_X(Incident.geom), func.ST_Y(Incident.geom)).where(Incident.id == incident.id)
    ).one()
    cat = session.get(IncidentCategory, incident.category_code) if incident.category_code else None
    cell = session.get(BaseCell, incident.base_cell_id) if incident.base_cell_id else None
    work_cell = session.get(WorkCell, incident.work_cell_id) if incident.work_cell_id else None
    coordinator = None
    if incident.coordinator_id:
        person = session.get(Coordinator, incident.coordinator_id)
        coordinator = {"id": person.id, "name": person.name, "phone": person.phone}
    history = _history(session, incident.id)
    photos = _attachments(session, incident.id)
    shown = protect_case(
        session,
        coordinator,
        incident.reporter,
        actor,
        area=community,
        incident=incident.code,
        description=incident.description,
        notes=[h.note for h in history],
        photos=[f["name"] for f in photos],
    )
    for photo, name in zip(photos, shown.photos, strict=True):
        photo["name"] = name
    step = PENDING_STEP.get(incident.status)
    at = now()
    overdue = incident.step_deadline is not None and incident.step_deadline < at
    # How long the pending step has left (negative: how long it is overdue), counted as the case's limits count.
    left = time_left(incident.step_deadline, at, case_clock(session, cat)) if step is not None else None
    # An open case past its own deadline (after a rework the step's clock starts again, the case's does not).
    past_due = step is not None and incident.deadline is not None and incident.deadline < at
    allowed = allowed_actions(incident.status)
    return {
        "id": incident.id,
        "code": incident.code,
        "state": incident.status,
        "revision": incident.revision,
        "category": {"code": cat.code, "name": cat.name, "kind": cat.kind} if cat else None,
        "severity": incident.severity,
        "description": shown.description,
        "source": incident.source,
        "reporter": shown.reporter,
        "external_id": incident.external_id,
        "lon": lonlat[0],
        "lat": lonlat[1],
        "base_cell": cell.code if cell else None,
        "community": community,
        "department": incident.dept_code,
        "work_cell": work_cell.code if work_cell else None,
        "coordinator": coordinator,
        "needs_dispatch": needs_dispatch(incident.status, incident.dispatch_gap),
        "duplicate_of": incident.duplicate_of_id,
        "reported_at": _iso(incident.reported_at),
        "closed_at": _iso(incident.closed_at),
        "deadline": _iso(incident.deadline),
        "past_due": past_due,
        "deadlines": {step: _iso(parse_time(at)) for step, at in (incident.deadlines or {}).items()},
        "pending_step": step,
        "step_deadline": _iso(incident.step_deadline),
        "overdue": overdue,
        "time_left": left,
        "rework_count": incident.rework_count,
        "allowed": [a for a in allowed if actor is None or actor.role in ACTION_ROLES[a]],
        "history": [
            {"from": h.from_status, "to": h.to_status, "actor": h.actor, "at": _iso(h.at), "note": note}
            for h, note in zip(history, shown.notes, strict=True)
        ],
        "attachments": photos,
    }


def _history(session: Session, incident_id: int) -> list[IncidentHistory]:
    """Return a case's history rows, oldest first."""
    query = select(IncidentHistory).where(IncidentHistory.incident_id == incident_id)
    return list(session.scalars(query.order_by(IncidentHistory.at, IncidentHistory.id)))


def _attachments(session: Session, incident_id: int) -> list[dict]:
    """Return a case's photos as a case view lists them: id, media type, size, name, history row."""
    files = session.scalars(
        select(IncidentAttachment).where(IncidentAttachment.incident_id == incident_id).order_by(IncidentAttachment.id)
    )
    return [
        {"id": f.id, "media_type": f.media_type, "size": f.size, "name": f.original_name, "history_id": f.history_id}
        for f in files
    ]


def incident_photo(session: Session, ident, photo_id: int, actor: Actor | None, home: Path) -> tuple[Path, str]:
    """Return (file, media type) of the photo `photo_id` of case `ident`, for an actor who may see the case (the
    case view's scope rule); NotFound for a photo of another case or whose file is gone."""
    incident, _ = _seen_case(session, ident, actor)
    photo = session.get(IncidentAttachment, photo_id) if 0 < photo_id < 2**31 else None  # an id column's range
    path = attachment_path(home, photo) if photo is not None and photo.incident_id == incident.id else None
    if path is None or not path.is_file():
        raise NotFound("incident.photo_not_found", incident=incident.code, photo=photo_id)
    return path, photo.media_type


def list_incidents(
    session: Session,
    *,
    state: str | None = None,
    dept: str | None = None,
    area: str | None = None,
    overdue: bool = False,
    category: str | None = None,
    coordinator_id: int | None = None,
    unassigned: bool = False,
    needs_dispatch: bool = False,
    open_only: bool = False,
    actor: Actor | None = None,
    q: str | None = None,
    order: str = "newest",
    limit: int = 100,
    offset: int = 0,
    descriptions: bool = True,
) -> dict:
    """Return {"total", "limit", "offset", "items"}: cases matching the filters, in `order` (ORDERS).

    `area`: an admin unit code (prefix of the case's community); `unassigned`: cases outside every
    base cell or without a place (the supervisor's queue); `needs_dispatch`: dispatched cases no coordinator
    was found for (each with its reason, `needs_dispatch`); `q`: text found in the case's code or
    description; `order`: a key of ORDERS. A scoped actor sees only its area. Phone and citizen ID
    numbers in the descriptions are masked except where `actor` may read personal data, and those read
    in clear are one audit row in the caller's transaction (protect_case_texts); without
    `descriptions` (a list that shows none), the items carry none.
    """
    if state and state not in set(IncidentState):
        raise ValidationError("incident.bad_state", state=state, allowed=", ".join(IncidentState))
    if order not in ORDERS:
        raise ValidationError("incident.bad_order", order=order, allowed=", ".join(ORDERS))
    limit = max(1, min(int(limit), MAX_PAGE))
    offset = max(0, int(offset))
    where, params = _filters(
        state=state,
        dept=dept,
        area=area,
        overdue=overdue,
        category=category,
        coordinator_id=coordinator_id,
        unassigned=unassigned,
        needs_dispatch=needs_dispatch,
        open_only=open_only,
        actor=actor,
        q=q,
    )
    # The base cell is joined only for the filters on its community (area, scope): a case has at most one.
    by_community = bool(area) or (actor is not None and bool(actor.scope_code))
    cases = "incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id" if by_community else "incident i"
    total = session.scalar(text(f"SELECT count(*) FROM {cases} WHERE {where}"), params)
    # The page's ids first, then their rows: a deep page skips ids read from an index, not whole rows.
    rows = session.execute(
        text(f"""
        SELECT i.id, i.code, i.status, i.category_code, c.name AS category_name, i.severity, i.dept_code,
               b.code AS base_cell, b.community_code AS community, w.code AS work_cell, i.coordinator_id,
               i.reported_at, i.step_deadline, i.deadline, i.rework_count, i.revision, i.description, i.dispatch_gap,
               ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat, COALESCE(c.around_the_clock, FALSE) AS around_the_clock
        FROM ({_page_ids(cases, where, order, few="q_text" in params and total <= FEW_FOUND)}) page
        JOIN incident i ON i.id = page.id
        LEFT JOIN base_cell b ON b.id = i.base_cell_id
        LEFT JOIN incident_category c ON c.code = i.category_code
        LEFT JOIN work_cell w ON w.id = i.work_cell_id
        ORDER BY {ORDERS[order]}"""),
        {**params, "limit": limit, "offset": offset},
    )
    at = now()
    items = _items_with_time_left(session, rows.all(), at)
    if descriptions:
        protect_case_texts(session, items, actor)
    else:
        for item in items:
            item["description"] = None
    return {"total": total, "limit": limit, "offset": offset, "items": items}


def _items_with_time_left(session: Session, rows, at) -> list[dict]:
    """Return the list's items, each with what its pending step has left (`time_left`, deadlines.times_left)."""
    pending = [r for r in rows if r.step_deadline is not None]
    left = times_left(
        load_calendar(session) if pending else None,
        [r.step_deadline for r in pending],
        [bool(r.around_the_clock) for r in pending],
        at,
    )
    left_of = {r.id: lf for r, lf in zip(pending, left, strict=True)}
    return [{**_list_item(r, at), "time_left": left_of.get(r.id)} for r in rows]


def _list_item(r, at) -> dict:
    """One case of a list, as list_incidents returns it (`at`: now, for "overdue")."""
    return {
        "id": r.id,
        "code": r.code,
        "state": r.status,
        "category": r.category_code,
        "category_name": r.category_name,
        "severity": r.severity,
        "department": r.dept_code,
        "base_cell": r.base_cell,
        "community": r.community,
        "work_cell": r.work_cell,
        "coordinator_id": r.coordinator_id,
        "needs_dispatch": needs_dispatch(r.status, r.dispatch_gap),
        "reported_at": _iso(r.reported_at),
        "pending_step": PENDING_STEP.get(r.status),
        "step_deadline": _iso(r.step_deadline),
        "deadline": _iso(r.deadline),
        "overdue": r.step_deadline is not None and r.step_deadline < at,
        "rework_count": r.rework_count,
        "revision": r.revision,
        "description": r.description,
        "lon": r.lon,
        "lat": r.lat,
    }


# At most this many cases holding a short text (found from the characters' index): their page is cut from them.
FEW_FOUND = 5000


def _page_ids(cases: str, where: str, order: str, *, few: bool) -> str:
    """SQL of the ids of a page of cases (:limit, :offset) in `order`. With `few`, the cases matching are read first
    and their page cut from them: the planner cannot tell how few cases hold a short text (no statistics of the
    match) and would walk the ordered index over every case, looking for a page that never fills (A1 at 300,000
    cases: 1.1 s instead of 0.1 ms)."""
    if not few:
        return f"SELECT i.id FROM {cases} WHERE {where} ORDER BY {ORDERS[order]} LIMIT :limit OFFSET :offset"
    return f"""
        WITH found AS MATERIALIZED (SELECT i.id, i.reported_at, i.step_deadline, i.status FROM {cases} WHERE {where})
        SELECT i.id FROM found i ORDER BY {ORDERS[order]} LIMIT :limit OFFSET :offset"""


def _filters(
    *,
    state=None,
    dept=None,
    area=None,
    overdue=False,
    category=None,
    coordinator_id=None,
    unassigned=False,
    needs_dispatch=False,
    open_only=False,
    actor: Actor | None = None,
    q=None,
) -> tuple[str, dict]:
    """Return the WHERE text (bound parameters only) and its parameters."""
    clauses, params = ["TRUE"], {}
    if q and q.strip():
        # The user's text is matched literally: % and _ are escaped for LIKE.
        params["q"] = f"%{like_literal(q.strip())}%"
        if len(q.strip()) >= 3:
            clauses.append("(i.code ILIKE :q OR i.description ILIKE :q)")
        else:
            # Too short for the trigram indexes, which would hand over every case (the planner takes them for
            # selective): matched on the columns' text, which no index holds. The case must hold the text's
            # characters, from their index (井盖, A1), unless they are a case code's (in most cases anyway).
            clauses.append("(COALESCE(i.code, '') ILIKE :q OR COALESCE(i.description, '') ILIKE :q)")
            if not set(q.strip().lower()) <= CODE_CHARS:
                clauses.append(f"{CASE_TEXT_CHARS} @> {CHARS.format(':q_text')}")
                params["q_text"] = q.strip()
    if state:
        clauses.append("i.status = :state")
        params["state"] = state
    if open_only:
        clauses.append(f"i.{OPEN_CASE_SQL}")
    if dept:
        clauses.append("i.dept_code = :dept")
        params["dept"] = dept
    if category:
        clauses.append("i.category_code = :category")
        params["category"] = category
    if area:
        clauses.append("b.community_code LIKE :area")
        params["area"] = f"{area}%"
    if overdue:
        clauses.append("i.step_deadline < now()")
    if coordinator_id is not None:
        clauses.append(COORDINATORS_CASE)
        params["coordinator"] = coordinator_id
    if unassigned:
        clauses.append("i.base_cell_id IS NULL")
    if needs_dispatch:
        clauses.append(f"i.status = '{IncidentState.DISPATCHED}' AND i.dispatch_gap IS NOT NULL")
    if actor is not None and actor.scope_code:
        clauses.append("b.community_code LIKE :scope")
        params["scope"] = actor.scope_pattern
    return " AND ".join(clauses), params


def overdue_cases(session: Session, *, actor: Actor | None = None, dept: str | None = None, limit: int = 500) -> dict:
    """Return open cases past their current step's deadline: counts per step, the cases, and the
    escalation list (overdue by more than a day of its clock, or sent back for rework twice or more: a day is 24
    hours around the clock, the standard working day's hours in working time, deadlines.day_hours).

    How long a case is overdue (`hours_late`) counts as its limits count: working hours (`working_time`), or
    hours around the clock for a category that runs so (deadlines.left_many)."""
    where, params = _filters(dept=dept, overdue=True, actor=actor)
    rows = session.execute(
        text(f"""
        SELECT i.id, i.code, i.status, i.category_code, i.dept_code, b.community_code AS community,
               w.code AS work_cell, i.coordinator_id, i.step_deadline, i.rework_count,
               COALESCE(c.around_the_clock, FALSE) AS around_the_clock, now() AS at
        FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id
        LEFT JOIN work_cell w ON w.id = i.work_cell_id
        LEFT JOIN incident_category c ON c.code = i.category_code
        WHERE {where} ORDER BY i.step_deadline LIMIT :limit"""),
        {**params, "limit": limit},
    ).all()
    calendar = load_calendar(session)
    at = rows[0].at if rows else now()
    left = times_left(calendar, [r.step_deadline for r in rows], [bool(r.around_the_clock) for r in rows], at)
    per_step = dict(
        session.execute(
            text(f"""
        SELECT i.status, count(*) FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id
        WHERE {where} GROUP BY i.status"""),
            params,
        ).all()
    )
    cases = [
        {
            "id": r.id,
            "code": r.code,
            "state": r.status,
            "step": PENDING_STEP.get(r.status),
            "category": r.category_code,
            "department": r.dept_code,
            "community": r.community,
            "work_cell": r.work_cell,
            "coordinator_id": r.coordinator_id,
            "step_deadline": _iso(r.step_deadline),
            "hours_late": -lf["hours"],
            "working_time": lf["working"],
            "day_hours": lf["day_hours"],
            "rework_count": r.rework_count,
            "escalate": -lf["hours"] > lf["day_hours"] or r.rework_count >= 2,
        }
        for r, lf in zip(rows, left, strict=True)
    ]
    return {
        # In the workflow's order (accept first), whatever order the database grouped them in.
        "per_step": {PENDING_STEP[IncidentState(s)]: per_step[s] for s in open_states() if s in per_step},
        "total": sum(per_step.values()),
        "cases": cases,
        "escalation": [c for c in cases if c["escalate"]],
    }


def needs_dispatch(status: str, gap: str | None) -> str | None:
    """Return why a case waits for a manual dispatch (a DispatchGap value: dispatched, no coordinator), else None."""
    return gap if status == IncidentState.DISPATCHED and gap else None


def open_states() -> list[str]:
    """Return the open states, in workflow order."""
    return [s.value for s in IncidentState if s in OPEN_INCIDENT_STATES]


def _iso(value: datetime | None) -> str | None:
    # Beijing time whatever the database session's time zone (an external server may run in UTC):
    # pages show the first 16 characters as the local time.
    return value.astimezone(local_tz()).isoformat() if value is not None else None
