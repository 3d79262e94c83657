"""The 7-step incident workflow: the one place a case changes state.

信息采集 report → 事件受理 accept (reject / duplicate) → 分级分类 classify → 任务执行 dispatch →
执行反馈 feedback → 汇总监督 close, or rework (back to dispatched) → 综合评价 (gridkit.incidents.evaluate).

Every function takes a session and an actor (gridkit.incidents.actors.Actor), checks the actor's
role and geographic scope, locks the case row (SELECT … FOR UPDATE: of two concurrent transitions
of one case exactly one wins, the other sees the new state and is refused), writes one history
row and never commits. Times default to now; a given time may not lie in the future nor before
the case's last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from gridkit.errors import (
    Conflict,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from gridkit.grids.base import check_lon_lat, current_edition
from gridkit.incidents import attachments as files
from gridkit.incidents.actors import Actor, as_actor, check_role, check_scope
from gridkit.incidents.categories import category as category_of
from gridkit.incidents.categories import step_hours
from gridkit.messages import Message
from gridkit.models import (
    BaseCell,
    Component,
    Coordinator,
    CoordinatorAssignment,
    Department,
    Incident,
    IncidentCategory,
    IncidentHistory,
)
from gridkit.rules import (
    FINISHED_INCIDENT_STATES,
    SEVERITIES,
    SRID,
    IncidentState,
    make_point,
    now,
    parse_time,
    point_cell,
)

S = IncidentState
# action → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[frozenset, IncidentState]] = {
    "accept": (frozenset({S.REPORTED}), S.ACCEPTED),
    "reject": (frozenset({S.REPORTED}), S.REJECTED),
    "duplicate": (frozenset({S.REPORTED, S.ACCEPTED}), S.DUPLICATE),
    "classify": (frozenset({S.ACCEPTED}), S.CLASSIFIED),
    "dispatch": (frozenset({S.CLASSIFIED}), S.DISPATCHED),
    "feedback": (frozenset({S.DISPATCHED}), S.FED_BACK),
    "close": (frozenset({S.FED_BACK}), S.CLOSED),
    "rework": (frozenset({S.FED_BACK}), S.DISPATCHED),
}
# The step a case in a state waits for (its deadline is step_deadline); finished states wait for none.
PENDING_STEP = {
    S.REPORTED: "accept",
    S.ACCEPTED: "classify",
    S.CLASSIFIED: "dispatch",
    S.DISPATCHED: "handle",
    S.FED_BACK: "verify",
}
# Handling time scales with severity: urgent cases get half the category's time limit.
SEVERITY_FACTOR = {"low": 1.5, "normal": 1.0, "high": 0.75, "urgent": 0.5}
# Duplicates: open cases of the same category this close in space and time.
DUPLICATE_METRES = 50
DUPLICATE_HOURS = 24
# A client clock a little ahead of ours is not "the future".
CLOCK_SKEW = timedelta(minutes=5)


def allowed_actions(state: str) -> list[str]:
    """Return the actions the workflow allows from `state`."""
    return [action for action, (sources, _) in TRANSITIONS.items() if state in sources]


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


# -- 信息采集 report --------------------------------------------------------------------------------


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
    if key is not None:
        key = key.strip()
        if not key or len(key) > 100:
            raise ValidationError("incident.bad_key", key=key)
        existing = session.scalar(select(Incident).where(Incident.idempotency_key == key))
        if existing is not None:
            return _same_report(existing, key, description)
    when = _past_time(reported_at, "reported_at") or now()
    comp = None
    if component:
        comp = session.scalar(select(Component).where(Component.code == component.strip()))
        if comp is None:
            raise NotFound("incident.unknown_component", component=component)
        if category and category != comp.category_code:
            raise ValidationError(
                "incident.component_category", component=comp.code, category=comp.category_code, given=category
            )
        category = comp.category_code
        lon, lat = session.execute(
            select(
                func.ST_X(func.ST_PointOnSurface(Component.geom)), func.ST_Y(func.ST_PointOnSurface(Component.geom))
            ).where(Component.id == comp.id)
        ).one()
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
        status=S.REPORTED,
        geom=func.ST_SetSRID(func.ST_MakePoint(lon, lat), SRID),
        base_cell_id=cell.id if cell else None,
        component_id=comp.id if comp else None,
        reporter=(reporter or actor.name)[:100],
        source=(source or None),
        idempotency_key=key,
        reported_at=when,
    )
    start_clock(incident, cat)
    if key is not None:
        # Two requests with one key at the same moment: the unique index lets one in.
        try:
            with session.begin_nested():
                session.add(incident)
                session.flush()
        except IntegrityError:
            existing = session.scalar(select(Incident).where(Incident.idempotency_key == key))
            if existing is None:
                raise
            return _same_report(existing, key, description)
    else:
        session.add(incident)
        session.flush()
    _history(session, incident, None, S.REPORTED, actor, when, None)
    return Report(incident, True, suggest_duplicates(session, incident))


def start_clock(incident: Incident, cat: IncidentCategory | None) -> None:
    """Give a newly reported case its first deadline: accept within the category's accept hours."""
    accept_by = incident.reported_at + _hours(cat)["accept"]
    incident.deadlines = {"accept": _iso(accept_by)}
    incident.step_deadline = accept_by


def _same_report(existing: Incident, key: str, description: str) -> Report:
    if (existing.description or "") != description:
        raise Conflict("incident.key_reused", key=key, incident=existing.code)
    return Report(existing, False, [])


def incident_code(incident_id: int, reported_at: datetime) -> str:
    """Return a case's code: SJ + report date (Beijing) + its id in 7 digits."""
    from gridkit.rules import LOCAL_TZ

    return f"SJ{reported_at.astimezone(LOCAL_TZ):%Y%m%d}{incident_id:07d}"


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
            "reported_at": _iso(r.reported_at),
            "metres": round(float(r.metres), 1),
        }
        for r in rows
    ]


# -- the transitions ---------------------------------------------------------------------------------


def accept(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """事件受理: accept a reported case; the classify step's clock starts."""
    incident, when = _begin(session, incident_id, actor, "accept", at, expected_revision)
    hours = _hours(_category(session, incident))
    incident.accepted_at = when
    _set_deadline(incident, "classify", when + hours["classify"])
    return _finish(session, incident, "accept", actor, when, note)


def reject(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """Reject a reported case (not a matter for the grid, or no case at all)."""
    incident, when = _begin(session, incident_id, actor, "reject", at, expected_revision)
    incident.accepted_at = when
    return _finish(session, incident, "reject", actor, when, note)


def mark_duplicate(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    of: int | str,
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """Mark a case as a duplicate of another (the original: followed if `of` is itself a duplicate)."""
    incident, when = _begin(session, incident_id, actor, "duplicate", at, expected_revision)
    original = get_incident(session, of)
    seen = {incident.id}
    while original.status == S.DUPLICATE and original.duplicate_of_id and original.id not in seen:
        seen.add(original.id)
        original = session.get(Incident, original.duplicate_of_id)
    if original.id in seen:
        raise ValidationError("incident.duplicate_of_itself", incident=incident.code)
    incident.duplicate_of_id = original.id
    incident.accepted_at = incident.accepted_at or when
    return _finish(session, incident, "duplicate", actor, when, note or original.code)


def classify(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    category: str,
    severity: str = "normal",
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """分级分类: set category and severity; compute the deadline of every later step.

    dispatch = now + the category's dispatch hours; handle = dispatch deadline + time limit ×
    severity factor; verify = handle deadline + verify hours; the case's deadline is the last.
    """
    if severity not in SEVERITIES:
        raise ValidationError("incident.bad_severity", severity=severity, allowed=", ".join(SEVERITIES))
    incident, when = _begin(session, incident_id, actor, "classify", at, expected_revision)
    cat = category_of(session, category)
    hours = _hours(cat, severity)
    incident.category_code, incident.severity, incident.classified_at = cat.code, severity, when
    dispatch_by = when + hours["dispatch"]
    handle_by = dispatch_by + hours["handle"]
    verify_by = handle_by + hours["verify"]
    incident.deadlines = {
        **(incident.deadlines or {}),
        "dispatch": _iso(dispatch_by),
        "handle": _iso(handle_by),
        "verify": _iso(verify_by),
    }
    incident.step_deadline = dispatch_by
    incident.deadline = verify_by
    return _finish(session, incident, "classify", actor, when, note)


def dispatch(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    dept: str | None = None,
    coordinator_phone: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """任务执行: send the case to a department and the coordinator of its work cell.

    The department is the category's unless `dept` is given. Work cell and coordinator come from
    the department's work grid version valid at the REPORT time (as-of), not the one in force now.
    Another coordinator may be named by phone, with a reason (kept in the history).
    """
    incident, when = _begin(session, incident_id, actor, "dispatch", at, expected_revision)
    cat = _category(session, incident)
    dept_code = dept or (cat.dept_code if cat else None)
    if not dept_code:
        raise ValidationError("incident.no_department", incident=incident.code, category=incident.category_code or "-")
    if session.get(Department, dept_code) is None:
        raise NotFound("incident.unknown_department", dept=dept_code)
    work_cell_id, coordinator_id = responsible_at_report(session, incident, dept_code)
    if coordinator_phone:
        if not (reason or "").strip():
            raise ValidationError("incident.reason_missing")
        chosen = session.scalar(
            select(Coordinator).where(Coordinator.phone == coordinator_phone.strip(), Coordinator.active.is_(True))
        )
        if chosen is None:
            raise NotFound("incident.unknown_coordinator", phone=coordinator_phone)
        coordinator_id = chosen.id
        note = " / ".join(x for x in (note, reason.strip()) if x)
    incident.dept_code, incident.work_cell_id, incident.coordinator_id = dept_code, work_cell_id, coordinator_id
    incident.dispatched_at = when
    _set_deadline(incident, "handle", None)
    return _finish(session, incident, "dispatch", actor, when, note)


def responsible_at_report(session: Session, incident: Incident, dept_code: str) -> tuple[int | None, int | None]:
    """Return (work cell id, coordinator id) of the department's version valid when the case was reported.

    ST_Covers on the base cells of that version's edition, ties to the smallest code; the
    coordinator is the active one with the smallest id covering the cell. (None, None) when the
    place has no work cell then (or the case has no place).
    """
    row = session.execute(
        text("""
        WITH v AS (
          SELECT id, base_edition_id FROM work_grid_version
          WHERE dept_code = :dept AND status IN ('published', 'retired') AND valid_from <= :at
            AND (valid_to IS NULL OR valid_to > :at)
          ORDER BY valid_from DESC LIMIT 1)
        SELECT m.work_cell_id,
               (SELECT c.id FROM coordinator_assignment ca JOIN coordinator c ON c.id = ca.coordinator_id
                WHERE ca.work_cell_id = m.work_cell_id AND c.active ORDER BY c.id LIMIT 1) AS coordinator_id
        FROM v JOIN base_cell b ON b.edition_id = v.base_edition_id
        JOIN work_cell_member m ON m.base_cell_id = b.id AND m.version_id = v.id
        JOIN incident i ON i.id = :id
        WHERE ST_Covers(b.geom, i.geom)
        ORDER BY b.code LIMIT 1"""),
        {"dept": dept_code, "at": incident.reported_at, "id": incident.id},
    ).first()
    return (row.work_cell_id, row.coordinator_id) if row else (None, None)


def feedback(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    note: str,
    attachments=(),
    home: Path | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """执行反馈: the coordinator reports the work done, with a note and optional photos.

    `attachments`: paths, or (file name, bytes) pairs; each must be an image (JPEG, PNG, GIF,
    WebP by its first bytes) of at most attachments.MAX_BYTES. They are checked before anything
    changes and kept under `home`/attachments.
    """
    if not (note or "").strip():
        raise ValidationError("incident.note_missing", action=Message("incident.action.feedback"))
    checked = [files.check_attachment(a) for a in attachments]
    if checked and home is None:
        raise ValidationError("incident.no_home")
    incident, when = _begin(session, incident_id, actor, "feedback", at, expected_revision)
    if actor.role == "coordinator" and not _works_on(session, actor, incident):
        raise PermissionDenied("incident.not_your_case", user=actor.name, incident=incident.code)
    incident.fed_back_at = when
    _set_deadline(incident, "verify", None)
    _finish(session, incident, "feedback", actor, when, note.strip())
    history_id = session.scalar(select(func.max(IncidentHistory.id)).where(IncidentHistory.incident_id == incident.id))
    for item in checked:
        session.add(files.store(item, Path(home), incident.id, history_id))
    session.flush()
    return incident


def close(
    session: Session,
    incident_id: int,
    actor: Actor,
    *,
    note: str | None = None,
    at=None,
    expected_revision: int | None = None,
) -> Incident:
    """汇总监督: verify the feedback and close the case."""
    incident, when = _begin(session, incident_id, actor, "close", at, expected_revision)
    incident.closed_at = when
    incident.step_deadline = None
    return _finish(session, incident, "close", actor, when, note)


def rework(
    session: Session, incident_id: int, actor: Actor, *, note: str, at=None, expected_revision: int | None = None
) -> Incident:
    """Send a fed-back case back to its coordinator; the handling clock starts again from now."""
    if not (note or "").strip():
        raise ValidationError("incident.note_missing", action=Message("incident.action.rework"))
    incident, when = _begin(session, incident_id, actor, "rework", at, expected_revision)
    hours = _hours(_category(session, incident), incident.severity or "normal")
    handle_by = when + hours["handle"]
    incident.deadlines = {
        **(incident.deadlines or {}),
        "handle": _iso(handle_by),
        "verify": _iso(handle_by + hours["verify"]),
    }
    incident.step_deadline = handle_by
    incident.rework_count += 1
    return _finish(session, incident, "rework", actor, when, note.strip())


ACTIONS = {
    "accept": accept,
    "reject": reject,
    "duplicate": mark_duplicate,
    "classify": classify,
    "dispatch": dispatch,
    "feedback": feedback,
    "close": close,
    "rework": rework,
}


def transition(session: Session, incident_id: int, action: str, actor: Actor, **params) -> Incident:
    """Run workflow action `action` (a key of ACTIONS) with its parameters."""
    if action not in ACTIONS:
        raise NotFound("incident.unknown_action", action=action, allowed=", ".join(ACTIONS))
    return ACTIONS[action](session, incident_id, actor, **params)


# -- shared steps ------------------------------------------------------------------------------------


def get_incident(session: Session, ident: int | str, *, lock: bool = False) -> Incident:
    """Return the case with this id or code (locked FOR UPDATE if `lock`), or raise NotFound."""
    query = select(Incident)
    text_ident = str(ident).strip()
    query = (
        query.where(Incident.id == int(text_ident))
        if text_ident.isdigit() and len(text_ident) < 10
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


def _begin(session: Session, incident_id, actor: Actor, action: str, at, expected_revision):
    check_role(actor, action)
    incident = get_incident(session, incident_id, lock=True)
    check_scope(actor, community_of(session, incident), incident.code)
    if expected_revision is not None and int(expected_revision) != incident.revision:
        raise Conflict("incident.stale", incident=incident.code, seen=expected_revision, now=incident.revision)
    sources, _ = TRANSITIONS[action]
    if incident.status not in sources:
        allowed = allowed_actions(incident.status)
        raise InvalidTransition(
            "incident.illegal_transition",
            incident=incident.code,
            action=Message(f"incident.action.{action}"),
            state=Message(f"incident.state.{incident.status}"),
            allowed=[Message(f"incident.action.{a}") for a in allowed] or Message("incident.nothing_allowed"),
        )
    when = _past_time(at, "at") or now()
    last = session.scalar(select(func.max(IncidentHistory.at)).where(IncidentHistory.incident_id == incident.id))
    if last is not None and when < last:
        raise ValidationError("incident.before_last_step", incident=incident.code, at=_iso(when), last=_iso(last))
    return incident, when


def _finish(
    session: Session, incident: Incident, action: str, actor: Actor, when: datetime, note: str | None
) -> Incident:
    old = incident.status
    incident.status = TRANSITIONS[action][1]
    if incident.status in FINISHED_INCIDENT_STATES:
        incident.step_deadline = None
    incident.revision += 1
    _history(session, incident, old, incident.status, actor, when, note)
    session.flush()
    return incident


def _history(session: Session, incident: Incident, old, new, actor: Actor, when: datetime, note) -> None:
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


def _set_deadline(incident: Incident, step: str, when: datetime | None) -> None:
    """Make `step` the pending one: its deadline is `when`, or the one computed at classify."""
    deadlines = dict(incident.deadlines or {})
    if when is not None:
        deadlines[step] = _iso(when)
        incident.deadlines = deadlines
    incident.step_deadline = parse_time(deadlines[step]) if deadlines.get(step) else None


def _category(session: Session, incident: Incident) -> IncidentCategory | None:
    return session.get(IncidentCategory, incident.category_code) if incident.category_code else None


def _hours(cat: IncidentCategory | None, severity: str = "normal") -> dict[str, timedelta]:
    """Return the time allowed per step for a category (defaults without one) and severity."""
    from gridkit.standard.categories import STEP_DEFAULT_HOURS

    hours = step_hours(cat) if cat is not None else {**STEP_DEFAULT_HOURS, "handle": 24}
    result = {step: timedelta(hours=h) for step, h in hours.items()}
    result["handle"] = result["handle"] * SEVERITY_FACTOR[severity]
    return result


def _past_time(value, field_name: str) -> datetime | None:
    when = parse_time(value, field=field_name)
    if when is not None and when > now() + CLOCK_SKEW:
        raise ValidationError("incident.future_time", field=field_name, value=_iso(when))
    return when


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _works_on(session: Session, actor: Actor, incident: Incident) -> bool:
    """True when the coordinator actor is the case's coordinator or covers its work cell."""
    if actor.coordinator_id is None:
        return False
    if incident.coordinator_id == actor.coordinator_id:
        return True
    if incident.work_cell_id is None:
        return False
    return (
        session.scalar(
            select(func.count())
            .select_from(CoordinatorAssignment)
            .where(
                CoordinatorAssignment.coordinator_id == actor.coordinator_id,
                CoordinatorAssignment.work_cell_id == incident.work_cell_id,
            )
        )
        > 0
    )
