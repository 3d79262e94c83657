"""The audit log: every access to personal data that leaves the system is recorded."""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path

from sqlalchemy import String, column, delete, select, true, values
from sqlalchemy.orm import Session

from gridkit import messages, rules
from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.models import AuditLog

# The action of every audit row for personal data read in clear.
PERSONAL_DATA_READ = "personal_data.read"
# The action of the audit row a restore writes into the database it restored.
DATABASE_RESTORED = "database.restored"
# A person's data erased at their request (gridkit.erasure).
PERSONAL_DATA_ERASED = "personal_data.erased"
# The action of the audit row an archive of the log writes (the rows it moved out are in the file).
AUDIT_ARCHIVED = "audit.archived"
# Accounts managed by an administrator: added, role changed, password reset, signing in allowed or stopped.
USER_ADDED = "user.add"
USER_ROLE_CHANGED = "user.role"
USER_PASSWORD_RESET = "user.password_reset"
USER_ACTIVATED = "user.active"
USER_STOPPED = "user.stopped"
# Finished cases' step times and deadlines counted again on the calendar in force (gridkit calendar recount).
CASES_RECOUNTED = "calendar.recount"

# Every action the code records: each has a label, `audit.action.<code>` in the catalogue (a test collects the
# actions of every record() call and checks both).
ACTIONS = (
    PERSONAL_DATA_READ,
    PERSONAL_DATA_ERASED,
    DATABASE_RESTORED,
    AUDIT_ARCHIVED,
    USER_ADDED,
    USER_ROLE_CHANGED,
    USER_PASSWORD_RESET,
    USER_ACTIVATED,
    USER_STOPPED,
    CASES_RECOUNTED,
)


def action_label(action: str, lang: str | None = None) -> str:
    """Return an action's label in `lang` from the catalogue; the code itself for one it has no label for (a row an
    older release wrote)."""
    key = f"audit.action.{action}"
    return messages.render(key, lang) if key in messages.catalogue(messages.DEFAULT_LANGUAGE) else action


def record(
    session: Session, actor: str, action: str, *, object_type: str | None = None, object_id: str | None = None, **detail
) -> AuditLog:
    """Add one audit row in the caller's transaction and return it."""
    row = AuditLog(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=None if object_id is None else str(object_id),
        detail=detail or None,
    )
    session.add(row)
    return row


def recent(
    session: Session,
    limit: int = 100,
    action: str | None = None,
    *,
    before: int | None = None,
    users: list[str] | None = None,
) -> list[AuditLog]:
    """Return the newest audit rows (older than id `before`, if given), newest first; with `users`,
    only the rows those users made (on the web, an export is recorded as "web:NAME")."""
    query = select(AuditLog).order_by(AuditLog.id.desc()).limit(limit)
    if action:
        query = query.where(AuditLog.action == action)
    if before is not None:
        query = query.where(AuditLog.id < before)
    if users is not None:
        if not users:
            return []
        return _recent_of(session, query, [*users, *(f"web:{name}" for name in users)], limit)
    return list(session.scalars(query))


# The newest rows of the log a scoped administrator's page looks through first (see _recent_of).
RECENT_WINDOW = 20_000


def _recent_of(session: Session, query, actors: list[str], limit: int) -> list[AuditLog]:
    """Return the rows of `query` (newest first, at most `limit`) made by `actors`.

    `actor IN (…)` over the whole log made PostgreSQL walk it backwards to its start for users whose rows
    are few or old (0.7 s at two million rows, growing with the log). The newest RECENT_WINDOW rows are
    looked through first (the answer when it holds `limit` of theirs: many or busy users); else each
    actor's newest rows come from the (actor, id) index (few or quiet users), and the newest of them."""
    window = query.with_only_columns(AuditLog.id, AuditLog.actor).limit(RECENT_WINDOW).subquery()
    ids = select(window.c.id).where(window.c.actor.in_(actors))
    found = list(
        session.scalars(select(AuditLog).where(AuditLog.id.in_(ids)).order_by(AuditLog.id.desc()).limit(limit))
    )
    if len(found) == limit:
        return found
    named = values(column("actor", String), name="actors").data([(name,) for name in actors])
    newest = query.with_only_columns(AuditLog.id).where(AuditLog.actor == named.c.actor).lateral()
    ids = select(newest.c.id).select_from(named).join(newest, true())
    return _newest(session, ids, limit)


def _newest(session: Session, ids, limit: int) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.id.in_(ids)).order_by(AuditLog.id.desc()).limit(limit)))


ARCHIVE_BATCH = 10_000


def archive(session: Session, path, before: datetime, *, actor: str, force: bool = False) -> dict:
    """Move the audit rows older than `before` to the file `path` (gzip'd JSON lines, one row each, oldest
    first) and return {path, rows, before}: the log is kept for as long as the city must, and its table
    stays as large as the retention period, not as the years of use.

    The file holds who read which personal data: owner-only (0600), written under a temporary name that
    becomes `path` only when complete (an existing `path` kept unless `force`), before the rows are deleted
    in the caller's transaction; a failure leaves the log as it was. The archive itself is recorded."""
    from gridkit.db.backup import private_temps, settle

    path = Path(path).absolute()
    if not path.parent.is_dir():
        raise NotFound("audit.archive_folder_missing", path=str(path.parent))
    if path.exists() and not force:
        raise Conflict("audit.archive_exists", path=str(path))
    if before > rules.now():
        raise ValidationError("audit.archive_future", before=rules.iso(before))
    rows, last = 0, None
    with private_temps(path, (".partial",)) as (partial,):
        with gzip.open(partial, "wt", encoding="utf-8") as out:
            query = select(AuditLog).where(AuditLog.at < before).order_by(AuditLog.id)
            for row in session.scalars(query.execution_options(yield_per=ARCHIVE_BATCH)):
                out.write(json.dumps(_archived(row), ensure_ascii=False) + "\n")
                rows, last = rows + 1, row.id
        settle(partial, path, force)
    if last is not None:
        session.execute(delete(AuditLog).where(AuditLog.at < before, AuditLog.id <= last))
    record(session, actor, AUDIT_ARCHIVED, object_type="audit_log", path=str(path), rows=rows, before=rules.iso(before))
    return {"path": str(path), "rows": rows, "before": rules.iso(before)}


def _archived(row: AuditLog) -> dict:
    return {
        "id": row.id,
        "at": row.at.astimezone(rules.local_tz()).isoformat(),
        "actor": row.actor,
        "action": row.action,
        "object_type": row.object_type,
        "object_id": row.object_id,
        "detail": row.detail,
    }
