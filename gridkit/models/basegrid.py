"""Base grid editions and base cells: the city's unified spatial base grid."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridkit.models.base import SRID, Base, created_at_column
from gridkit.rules import EditionState

EDITION_STATUSES = tuple(s.value for s in EditionState)


class BaseGridEdition(Base):
    """One version of the whole base grid standard for the city."""

    __tablename__ = "base_grid_edition"
    __table_args__ = (
        CheckConstraint(f"status IN {EDITION_STATUSES}", name="status"),
        # Only one edition is in force at a time.
        Index(
            "uq_base_grid_edition_one_published",
            "status",
            unique=True,
            postgresql_where=text(f"status = '{EditionState.PUBLISHED.value}'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(
        String(10), default=EditionState.DRAFT.value, server_default=EditionState.DRAFT.value
    )
    code_profile: Mapped[str] = mapped_column(String(20), default="default", server_default="default")
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = created_at_column()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    cells: Mapped[list[BaseCell]] = relationship(back_populates="edition")


class BaseCell(Base):
    """The smallest unit of the grid; never crosses a community boundary."""

    __tablename__ = "base_cell"
    __table_args__ = (
        UniqueConstraint("edition_id", "code"),
        CheckConstraint("code ~ '^[0-9]{14,15}$'", name="code_format"),
        CheckConstraint("left(code, 12) = community_code", name="code_prefix"),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
        # Lets membership rows name (edition, cell) pairs.
        UniqueConstraint("id", "edition_id", name="uq_base_cell_id_edition"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    edition_id: Mapped[int] = mapped_column(ForeignKey("base_grid_edition.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(15), index=True)
    community_code: Mapped[str] = mapped_column(ForeignKey("admin_unit.code"), index=True)
    geom = mapped_column(Geometry("POLYGON", srid=SRID, spatial_index=True), nullable=False)
    name: Mapped[str | None] = mapped_column(String(100))
    # Every other attribute of the imported file, by field name (exported back as is).
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    edition: Mapped[BaseGridEdition] = relationship(back_populates="cells")
