"""Subjects assigned to base cells: buildings, residents, legal entities.

Subjects store only their base cell; department, work cell and coordinator are derived
through the published work grid valid at the time asked.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gridkit.models.base import SRID, Base, created_at_column

POPULATION_TYPES = ("registered", "floating")


class Building(Base):
    """A building: a location point and, where known, its footprint."""

    __tablename__ = "building"
    __table_args__ = (CheckConstraint("geom IS NOT NULL OR footprint IS NOT NULL", name="has_geometry"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    address: Mapped[str | None] = mapped_column(String(200))
    floors: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    footprint = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True))
    # NULL = unassigned (outside every base cell): kept and listed, never dropped.
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()


class Resident(Base):
    """A person living in the city. The citizen ID is kept only as a keyed hash and a masked form."""

    __tablename__ = "resident"
    # The masked ID's format (4 digits, 10 '*', 3 digits, a digit or X) and the population type
    # (POPULATION_TYPES) are checked by the columns' domains, resident_id_masked and
    # resident_population_type (migration 20261204_asg9d), not by table CHECKs, which PostgreSQL
    # would run again on every UPDATE of any column (an assignment of millions of residents).

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id_number_hash: Mapped[str] = mapped_column(String(64, collation="C"), unique=True)
    id_number_masked: Mapped[str] = mapped_column(String(18))
    name: Mapped[str] = mapped_column(String(50))
    # Digits 7-14 of the citizen ID, kept at import (the ID itself only hashed): age bands need it.
    birth_date: Mapped[date | None] = mapped_column(Date)
    phone: Mapped[str | None] = mapped_column(String(20))
    household: Mapped[str | None] = mapped_column(String(40, collation="C"), index=True)
    population_type: Mapped[str] = mapped_column(String(10))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("building.id", ondelete="SET NULL"), index=True)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()


class LegalEntity(Base):
    """A company or organisation identified by its unified social credit code (GB 32100)."""

    __tablename__ = "legal_entity"
    __table_args__ = (
        CheckConstraint(
            "credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'", name="credit_code_format"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(200))
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=True))
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()
