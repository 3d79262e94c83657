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

from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from gridkit.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationError
from gridkit.incidents import attachments as files
from gridkit.incidents.actors import Actor, check_role, check_scope
from gridkit.incidents.cases import community_of, get_incident, responsible_at_report, works_on, write_history
from gridkit.incidents.categories import category as category_of
from gridkit.incidents.deadlines import (
    PENDING_STEP,
    SEVERITY_FACTOR,
    TRANSITIONS,
    allowed_actions,
    case_category,
    case_clock,
    due,
    iso,
    past_time,
    record_step_times,
    set_deadline,
    start_clock,
    step_times,
)
from gridkit.incidents.report import Report, incident_code, report_incident, suggest_duplicates
from gridkit.incidents.responsible import responsible_for
from gridkit.messages import Message
from gridkit.models import Coordinator, Department, Incident, IncidentHistory
from gridkit.pii import mask_typed_phone
from gridkit.rules import FINISHED_INCIDENT_STATES, SEVERITIES, IncidentState, now
from gridkit.standard.ids import validate_phone

# Names other modules (queries, the web, the CLI, scripts) read from here: the workflow's one entry.
__all__ = [
    "ACTIONS",
    "PENDING_STEP",
    "SEVERITY_FACTOR",
    "TRANSITIONS",
    "Report",
    "accept",
    "allowed_actions",
    "classify",
    "close",
    "community_of",
    "dispatch",
    "feedback",
    "get_incident",
    "incident_code",
    "mark_duplicate",
    "reject",
    "report_incident",
    "responsible_at_report",
    "rework",
    "start_clock",
    "suggest_duplicates",
    "transition",
]

S = IncidentState
# The advisory lock key under which cases are linked as duplicates (any constant shared by every caller).
DUPLICATE_LOCK = 0x6772_6B10


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
    cat = case_category(session, incident)
    incident.accepted_at = when
    set_deadline(incident, "classify", due(when, step_times(cat)["classify"], case_clock(session, cat)))
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
    """Mark a case as a duplicate of another, still open (the original: followed if `of` is itself a duplicate)."""
    # One link at a time: two requests linking A to B and B to A at once each locked its own case, then
    # waited for the other's (the link's foreign key): a deadlock, a 500 for one. Now the second waits
    # here, then sees the first link and is refused (duplicate_of_itself).
    check_role(actor, "duplicate")
    session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DUPLICATE_LOCK})
    incident, when = _begin(session, incident_id, actor, "duplicate", at, expected_revision)
    original = get_incident(session, of)
    seen = {incident.id}
    while original.status == S.DUPLICATE and original.duplicate_of_id and original.id not in seen:
        seen.add(original.id)
        original = session.get(Incident, original.duplicate_of_id)
    if original.id in seen:
        raise ValidationError("incident.duplicate_of_itself", incident=incident.code)
    # Locked and read again: closed or rejected at this very moment, it is no original to link to.
    original = get_incident(session, original.id, lock=True)
    if original.status in FINISHED_INCIDENT_STATES:
        # Reported again after the original was closed (or rejected): the problem is back, or was never
        # the grid's: a case of its own to accept or reject, not one that vanishes from every open list.
        raise InvalidTransition(
            "incident.duplicate_of_finished",
            incident=incident.code,
            original=original.code,
            state=Message(f"incident.state.{original.status}"),
        )
    # The original is read and linked too: a scoped supervisor may not reach a case outside its area.
    check_scope(actor, community_of(session, original), original.code)
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
    hours = step_times(cat, severity)
    incident.category_code, incident.severity, incident.classified_at = cat.code, severity, when
    clock = case_clock(session, cat)
    dispatch_by = due(when, hours["dispatch"], clock)
    handle_by = due(dispatch_by, hours["handle"], clock)
    verify_by = due(handle_by, hours["verify"], clock)
    incident.deadlines = {
        **(incident.deadlines or {}),
        "dispatch": iso(dispatch_by),
        "handle": iso(handle_by),
        "verify": iso(verify_by),
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

    A case being handled may be dispatched again (改派: its coordinator stopped, or it went to the wrong
    department), with a reason; the first dispatch time and the handling deadline stay.

    When no coordinator is found (gridkit.incidents.responsible: outside every base cell, in no work cell of the
    department, no active coordinator), the case is dispatched all the same (to the department) with
    `dispatch_gap` saying why: it is listed as needing a manual dispatch until one names a coordinator.
    """
    incident, when = _begin(session, incident_id, actor, "dispatch", at, expected_revision)
    if incident.status == S.DISPATCHED and not (reason or "").strip():
        raise ValidationError("incident.redispatch_reason", incident=incident.code)
    cat = case_category(session, incident)
    dept_code = dept or (cat.dept_code if cat else None)
    if not dept_code:
        raise ValidationError("incident.no_department", incident=incident.code, category=incident.category_code or "-")
    if session.get(Department, dept_code) is None:
        raise NotFound("incident.unknown_department", dept=dept_code)
    work_cell_id, coordinator_id, gap = responsible_for(session, incident.id, dept_code)
    if coordinator_phone:
        if not (reason or "").strip():
            raise ValidationError("incident.reason_missing")
        chosen = session.scalar(
            select(Coordinator).where(Coordinator.phone == _phone(coordinator_phone), Coordinator.active.is_(True))
        )
        if chosen is None:
            # Masked: the phone was read unseen (gridkit.cli.personal_argument), and errors reach logs and screens.
            raise NotFound("incident.unknown_coordinator", phone=mask_typed_phone(coordinator_phone))
        coordinator_id, gap = chosen.id, None
    if (reason or "").strip():
        # Kept with the note whenever given (it was dropped unless a coordinator was named).
        note = " / ".join(x for x in (note, reason.strip()) if x)
    incident.dept_code, incident.work_cell_id, incident.coordinator_id = dept_code, work_cell_id, coordinator_id
    # No coordinator found: the case is dispatched but waits for a supervisor's manual dispatch, listed with why.
    incident.dispatch_gap = gap
    incident.dispatched_at = incident.dispatched_at or when
    set_deadline(incident, "handle", None)
    return _finish(session, incident, "dispatch", actor, when, note)


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

    `attachments`: paths, or (file name, bytes) pairs, at most attachments.MAX_FILES; each must be an
    image (JPEG, PNG, GIF, WebP by its first bytes) of at most attachments.MAX_BYTES. They are checked
    before anything changes and kept under `home`/attachments.
    """
    if not (note or "").strip():
        raise ValidationError("incident.note_missing", action=Message("incident.action.feedback"))
    attachments = list(attachments)
    if len(attachments) > files.MAX_FILES:
        raise ValidationError("incident.too_many_attachments", count=len(attachments), limit=files.MAX_FILES)
    checked = [files.check_attachment(a) for a in attachments]
    if checked and home is None:
        raise ValidationError("incident.no_home")
    incident, when = _begin(session, incident_id, actor, "feedback", at, expected_revision)
    if actor.role == "coordinator" and not works_on(session, actor, incident):
        raise PermissionDenied("incident.not_your_case", user=actor.name, incident=incident.code)
    incident.fed_back_at = when
    set_deadline(incident, "verify", None)
    _finish(session, incident, "feedback", actor, when, note.strip())
    history_id = session.scalar(select(func.max(IncidentHistory.id)).where(IncidentHistory.incident_id == incident.id))
    for item in checked:
        session.add(files.store(session, item, Path(home), incident.id, history_id))
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
    cat = case_category(session, incident)
    hours, clock = step_times(cat, incident.severity or "normal"), case_clock(session, cat)
    handle_by = due(when, hours["handle"], clock)
    incident.deadlines = {
        **(incident.deadlines or {}),
        "handle": iso(handle_by),
        "verify": iso(due(handle_by, hours["verify"], clock)),
    }
    incident.step_deadline = handle_by
    incident.rework_count += 1
    return _finish(session, incident, "rework", actor, when, note.strip())


def _phone(typed: str) -> str:
    """Return a typed phone as coordinators' phones are kept (138 0013 8000, +86 … → 13800138000), else as typed."""
    try:
        return validate_phone(typed)
    except ValueError:
        return typed.strip()


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
    when = past_time(at, "at") or now()
    last = session.scalar(select(func.max(IncidentHistory.at)).where(IncidentHistory.incident_id == incident.id))
    if last is not None and when < last:
        raise ValidationError("incident.before_last_step", incident=incident.code, at=iso(when), last=iso(last))
    return incident, when


def _finish(
    session: Session, incident: Incident, action: str, actor: Actor, when: datetime, note: str | None
) -> Incident:
    old = incident.status
    incident.status = TRANSITIONS[action][1]
    if incident.status in FINISHED_INCIDENT_STATES:
        incident.step_deadline = None
    incident.revision += 1
    record_step_times(session, incident)
    write_history(session, incident, old, incident.status, actor, when, note)
    session.flush()
    return incident
