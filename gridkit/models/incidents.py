"""Incident categories, incidents and their workflow history."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridkit.models.base import SRID, Base, created_at_column
from gridkit.rules import SEVERITIES, IncidentState

CATEGORY_KINDS = ("component", "event")
# The 7 steps: report → accept (reject / duplicate) → classify → dispatch → feedback → close
# (or back to dispatched for rework) → evaluation (computed from the history, not a state).
INCIDENT_STATUSES = tuple(s.value for s in IncidentState)


class IncidentCategory(Base):
    """A category of component (部件) or event (事件) with its time limit; seeded from data."""

    __tablename__ = "incident_category"
    __table_args__ = (
        CheckConstraint(f"kind IN {CATEGORY_KINDS}", name="kind"),
        CheckConstraint("(kind = 'component' AND code ~ '^0[1-6][0-9]{2}$') OR "
                        "(kind = 'event' AND code ~ '^E0[1-6][0-9]{2}$')", name="code_format"),
        CheckConstraint("time_limit_hours > 0", name="time_limit_positive"),
    )

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    major_code: Mapped[str] = mapped_column(String(2))
    major_name: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    time_limit_hours: Mapped[int] = mapped_column(Integer)


class Incident(Base):
    """A case with a category, a location, a base cell and a workflow history."""

    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint(f"status IN {INCIDENT_STATUSES}", name="status"),
        CheckConstraint(f"severity IS NULL OR severity IN {SEVERITIES}", name="severity"),
        CheckConstraint(f"status <> '{IncidentState.DUPLICATE.value}' OR duplicate_of_id IS NOT NULL", name="duplicate_has_original"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("incident_category.code"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default=IncidentState.REPORTED.value,
                                        server_default=IncidentState.REPORTED.value, index=True)
    severity: Mapped[str | None] = mapped_column(String(10))
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=False)
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    dept_code: Mapped[str | None] = mapped_column(ForeignKey("department.code"))
    coordinator_id: Mapped[int | None] = mapped_column(ForeignKey("coordinator.id", ondelete="SET NULL"))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id"))
    reporter: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    history: Mapped[list[IncidentHistory]] = relationship(
        back_populates="incident", order_by="IncidentHistory.id")


class IncidentHistory(Base):
    """One workflow transition of an incident: who, when, from, to, note."""

    __tablename__ = "incident_history"
    __table_args__ = (
        CheckConstraint(f"to_status IN {INCIDENT_STATUSES}", name="to_status"),
        CheckConstraint(f"from_status IS NULL OR from_status IN {INCIDENT_STATUSES}", name="from_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(100))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()

    incident: Mapped[Incident] = relationship(back_populates="history")
