"""The audit log: every access to personal data that leaves the system is recorded."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridkit.models import AuditLog

# The action of every audit row for personal data read in clear.
PERSONAL_DATA_READ = "personal_data.read"
# The action of the audit row a restore writes into the database it restored.
DATABASE_RESTORED = "database.restored"


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
        query = query.where(AuditLog.actor.in_([*users, *(f"web:{name}" for name in users)]))
    return list(session.scalars(query))
