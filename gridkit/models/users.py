"""Users, their roles and areas, and the audit log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, DateTime, ForeignKey, Index, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridkit.models.base import Base, created_at_column

ROLES = ("admin", "planner", "coordinator", "supervisor", "analyst")


class User(Base):
    """A person who signs in; the scope limits what area they may see (NULL = whole city)."""

    __tablename__ = "app_user"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES}", name="role"),
        CheckConstraint("name ~ '^[A-Za-z0-9_.@-]{2,50}$'", name="name_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    scope_code: Mapped[str | None] = mapped_column(ForeignKey("admin_unit.code"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    coordinator_id: Mapped[int | None] = mapped_column(ForeignKey("coordinator.id", ondelete="SET NULL"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    # Raised on sign-out and password change: sessions signed with an older number are over.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = created_at_column()


class AuditLog(Base):
    """One recorded action, above all every access to personal data that leaves the system."""

    __tablename__ = "audit_log"
    # The newest rows of a user or of an action, without reading the log backwards (migration 20261206_ops8e).
    __table_args__ = (
        Index("ix_audit_log_actor_id", "actor", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
    )

    # bigint (migration 20261207_ops9d): a row per view of personal data outgrows int4 within years.
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str | None] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict | None] = mapped_column(JSONB)
