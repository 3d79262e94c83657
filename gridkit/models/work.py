"""Departments, work grid versions, work cells, their base-cell membership and coordinators."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridkit.models.base import SRID, Base, created_at_column
from gridkit.rules import VersionState

VERSION_STATUSES = tuple(s.value for s in VersionState)


class Department(Base):
    """An owner of a work grid layer (综治, 城管, 民政 …)."""

    __tablename__ = "department"
    __table_args__ = (CheckConstraint("code ~ '^[0-9]{6}$'", name="code_format"),)

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # The admin unit whose base cells the department's work grid must cover; NULL = whole city.
    jurisdiction_code: Mapped[str | None] = mapped_column(ForeignKey("admin_unit.code"))
    created_at: Mapped[datetime] = created_at_column()

    versions: Mapped[list[WorkGridVersion]] = relationship(back_populates="department")


class WorkGridVersion(Base):
    """A department's whole work grid layer at one point in time: draft → published → retired."""

    __tablename__ = "work_grid_version"
    __table_args__ = (
        UniqueConstraint("dept_code", "number"),
        CheckConstraint(f"status IN {VERSION_STATUSES}", name="status"),
        CheckConstraint("valid_to IS NULL OR valid_from IS NULL OR valid_to >= valid_from", name="validity"),
        CheckConstraint(
            f"status = '{VersionState.DRAFT.value}' OR valid_from IS NOT NULL", name="published_has_valid_from"
        ),
        # At most one version of a department is in force (published, not yet superseded).
        Index(
            "uq_work_grid_version_current",
            "dept_code",
            unique=True,
            postgresql_where=text(f"status = '{VersionState.PUBLISHED.value}' AND valid_to IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dept_code: Mapped[str] = mapped_column(ForeignKey("department.code"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(
        String(10), default=VersionState.DRAFT.value, server_default=VersionState.DRAFT.value
    )
    base_edition_id: Mapped[int] = mapped_column(ForeignKey("base_grid_edition.id"))
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("work_grid_version.id"))
    # A draft: the department's version in force when it was started (None: none was). Publishing it is refused
    # once another version is in force (gridkit.grids.work.publishing): it would undo that one unseen.
    in_force_at_start_id: Mapped[int | None] = mapped_column(ForeignKey("work_grid_version.id"))
    # Optimistic locking: every saved edit of a draft bumps the revision.
    revision: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at_column()
    updated_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_from: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    department: Mapped[Department] = relationship(back_populates="versions")
    work_cells: Mapped[list[WorkCell]] = relationship(back_populates="version")


class WorkCell(Base):
    """One department's unit of responsibility: a set of whole base cells."""

    __tablename__ = "work_cell"
    __table_args__ = (
        UniqueConstraint("version_id", "code"),
        UniqueConstraint("id", "version_id", name="uq_work_cell_id_version"),
        CheckConstraint("code ~ '^[0-9]{20}$'", name="code_format"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("work_grid_version.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str | None] = mapped_column(String(100))
    # Union of the member base cells, cached on publish (NULL while the version is a draft).
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))

    version: Mapped[WorkGridVersion] = relationship(back_populates="work_cells")


class WorkCellMember(Base):
    """A base cell belonging to a work cell; at most one work cell per base cell per version."""

    __tablename__ = "work_cell_member"
    __table_args__ = (
        ForeignKeyConstraint(
            ["work_cell_id", "version_id"],
            ["work_cell.id", "work_cell.version_id"],
            ondelete="CASCADE",
            name="fk_work_cell_member_work_cell",
        ),
    )

    version_id: Mapped[int] = mapped_column(ForeignKey("work_grid_version.id", ondelete="CASCADE"), primary_key=True)
    base_cell_id: Mapped[int] = mapped_column(ForeignKey("base_cell.id"), primary_key=True)
    work_cell_id: Mapped[int] = mapped_column(Integer, index=True)


class Coordinator(Base):
    """A person responsible for work cells (网格员/协管员). Name and phone are personal data."""

    __tablename__ = "coordinator"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    created_at: Mapped[datetime] = created_at_column()


class CoordinatorAssignment(Base):
    """A coordinator covering one work cell of one version (one person may cover many)."""

    __tablename__ = "coordinator_assignment"

    coordinator_id: Mapped[int] = mapped_column(ForeignKey("coordinator.id", ondelete="CASCADE"), primary_key=True)
    work_cell_id: Mapped[int] = mapped_column(
        ForeignKey("work_cell.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class WorkGridExclusion(Base):
    """A base cell deliberately left out of every work cell of a version, with the reason."""

    __tablename__ = "work_grid_exclusion"

    version_id: Mapped[int] = mapped_column(ForeignKey("work_grid_version.id", ondelete="CASCADE"), primary_key=True)
    base_cell_id: Mapped[int] = mapped_column(ForeignKey("base_cell.id"), primary_key=True)
    reason: Mapped[str] = mapped_column(Text)
