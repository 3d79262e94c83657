"""Incident categories, components (部件), incidents, their workflow history and attachments."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridkit.models.base import SRID, Base, created_at_column
from gridkit.rules import DISPATCH_GAPS, OPEN_CASE_SQL, SEVERITIES, IncidentState

CATEGORY_KINDS = ("component", "event")
# The 7 steps: report → accept (reject / duplicate) → classify → dispatch → feedback → close
# (or back to dispatched for rework) → evaluation (computed from the history, not a state).
INCIDENT_STATUSES = tuple(s.value for s in IncidentState)


class IncidentCategory(Base):
    """A category of component (部件) or event (事件): default department and time limit per step."""

    __tablename__ = "incident_category"
    __table_args__ = (
        CheckConstraint(f"kind IN {CATEGORY_KINDS}", name="kind"),
        # Components' major classes are the standard's six (digits 7-8 of a component code); an event table is
        # data a deployment may extend beyond them (gridkit.standard.categories), with any major class but 00.
        CheckConstraint(
            "(kind = 'component' AND code ~ '^0[1-6][0-9]{2}$') "
            "OR (kind = 'event' AND code ~ '^E(0[1-9]|[1-9][0-9])[0-9]{2}$')",
            name="code_format",
        ),
        CheckConstraint("time_limit_hours > 0", name="time_limit_positive"),
        CheckConstraint("dept_code IS NULL OR dept_code ~ '^[0-9]{6}$'", name="dept_code_format"),
    )

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    major_code: Mapped[str] = mapped_column(String(2))
    major_name: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(100))
    # Handling time (dispatch → feedback), the limit the standards name.
    time_limit_hours: Mapped[int] = mapped_column(Integer)
    # The responsible department by default. Not a foreign key: the seed names departments a
    # deployment creates later; dispatch says so when the department does not exist.
    dept_code: Mapped[str | None] = mapped_column(String(6))
    # Hours allowed for the other steps: {"accept": 2, "classify": 2, "dispatch": 2, "verify": 24}.
    step_hours: Mapped[dict | None] = mapped_column(JSONB)
    # True: the limits run around the clock (突发事件); False: in working time (gridkit.incidents.worktime).
    around_the_clock: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))


class Component(Base):
    """A component (部件): a manhole cover, lamp post, bench … with its 16-digit code and location."""

    __tablename__ = "component"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{16}$'", name="code_format"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("incident_category.code"), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    # A point, or a line (railings, pipes); its base cell is the one covering ST_PointOnSurface.
    geom = mapped_column(Geometry("GEOMETRY", srid=SRID, spatial_index=True), nullable=False)
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()


class Incident(Base):
    """A case with a category, a location, a base cell and a workflow history."""

    __tablename__ = "incident"
    __table_args__ = (
        CheckConstraint(f"status IN {INCIDENT_STATUSES}", name="status"),
        CheckConstraint(f"severity IS NULL OR severity IN {SEVERITIES}", name="severity"),
        CheckConstraint(
            f"status <> '{IncidentState.DUPLICATE.value}' OR duplicate_of_id IS NOT NULL", name="duplicate_has_original"
        ),
        CheckConstraint("rework_count >= 0", name="rework_count"),
        CheckConstraint(f"dispatch_gap IS NULL OR dispatch_gap IN {DISPATCH_GAPS}", name="dispatch_gap"),
        Index(
            "uq_incident_idempotency_key",
            "idempotency_key",
            unique=True,
            postgresql_where=text("idempotency_key IS NOT NULL"),
        ),
        Index("ix_incident_open_step_deadline", "step_deadline", postgresql_where=text("step_deadline IS NOT NULL")),
        # The order of the case lists newest first (and its tie-break): a deep page's ids from the index alone.
        Index("ix_incident_reported_at", "reported_at", "id"),
        # The lists of open cases, newest first and by deadline (migration 20261205_city7d).
        Index("ix_incident_open_reported_at", "reported_at", "id", postgresql_where=text(OPEN_CASE_SQL)),
        Index("ix_incident_open_deadline", "step_deadline", "id", postgresql_where=text(OPEN_CASE_SQL)),
        # A search of the case lists: any text of three characters or more, from the index.
        Index("ix_incident_code_trgm", "code", postgresql_using="gin", postgresql_ops={"code": "gin_trgm_ops"}),
        Index(
            "ix_incident_description_trgm",
            "description",
            postgresql_using="gin",
            postgresql_ops={"description": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(30), unique=True)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("incident_category.code"), index=True)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12), default="reported", server_default="reported", index=True)
    severity: Mapped[str | None] = mapped_column(String(10))
    # NULL: the report came without a usable location (kept, unassigned, in the supervisor's queue).
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True), nullable=True)
    # The point's coordinates as plain numbers, kept by PostgreSQL: density maps bin millions of
    # cases by arithmetic on them instead of reading each geometry.
    lon: Mapped[float | None] = mapped_column(Float, Computed("ST_X(geom)", persisted=True))
    lat: Mapped[float | None] = mapped_column(Float, Computed("ST_Y(geom)", persisted=True))
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    dept_code: Mapped[str | None] = mapped_column(ForeignKey("department.code"))
    # Fixed at dispatch from the work grid version valid at the report time.
    work_cell_id: Mapped[int | None] = mapped_column(ForeignKey("work_cell.id", ondelete="SET NULL"), index=True)
    coordinator_id: Mapped[int | None] = mapped_column(ForeignKey("coordinator.id", ondelete="SET NULL"), index=True)
    # Set when a dispatch found no coordinator (gridkit.rules.DispatchGap: why): the case waits for a manual
    # dispatch, listed for the supervisors; cleared by a dispatch that finds or names one.
    dispatch_gap: Mapped[str | None] = mapped_column(String(20))
    component_id: Mapped[int | None] = mapped_column(ForeignKey("component.id", ondelete="SET NULL"))
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("incident.id"))
    reporter: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(30))
    idempotency_key: Mapped[str | None] = mapped_column(String(100))
    # An imported case keeps the identifier it had in the system it came from.
    external_id: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When each step was done (the first time; fed_back_at the last time): evaluation reads these.
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    classified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    fed_back_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Each step's time (µs) counted as its limits count (gridkit.incidents.deadlines.record_step_times: working
    # time, or around the clock for the category's that runs so), set when the step is done; NULL for cases stored
    # before (the evaluation then reads the step's time around the clock).
    accept_work_us: Mapped[int | None] = mapped_column(BigInteger)
    classify_work_us: Mapped[int | None] = mapped_column(BigInteger)
    dispatch_work_us: Mapped[int | None] = mapped_column(BigInteger)
    handle_work_us: Mapped[int | None] = mapped_column(BigInteger)
    verify_work_us: Mapped[int | None] = mapped_column(BigInteger)
    total_work_us: Mapped[int | None] = mapped_column(BigInteger)
    # Deadline of the whole case (closure), set at classify; on-time closure is measured against it.
    deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Per-step deadlines {"accept": iso, "classify": iso, …} and the one of the step now pending.
    deadlines: Mapped[dict | None] = mapped_column(JSONB)
    step_deadline: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    rework_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Bumped by every transition: a client may name the revision it saw (optimistic check).
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    history: Mapped[list[IncidentHistory]] = relationship(back_populates="incident", order_by="IncidentHistory.id")


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


class IncidentAttachment(Base):
    """A file (photo) sent with a feedback, kept under GRIDKIT_HOME/attachments."""

    __tablename__ = "incident_attachment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incident.id", ondelete="CASCADE"), index=True)
    history_id: Mapped[int | None] = mapped_column(ForeignKey("incident_history.id", ondelete="SET NULL"))
    # Relative to GRIDKIT_HOME: the home may move.
    path: Mapped[str] = mapped_column(String(300))
    media_type: Mapped[str] = mapped_column(String(50))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    original_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = created_at_column()
