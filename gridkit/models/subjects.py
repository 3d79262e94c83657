"""Subjects assigned to base cells: buildings, residents, legal entities.

Subjects store only their base cell; department, work cell and coordinator are derived
through the published work grid valid at the time asked. Buildings and legal entities keep it in a
column; residents, the only subject counted in millions, in a narrow table of their own
(`ResidentCell`, migration 20261204_cell9f), so that assigning millions of them writes two integers
a resident instead of a new version of each wide resident row.
"""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, event, insert, inspect, select, text
from sqlalchemy.orm import Mapped, column_property, mapped_column

from gridkit.models.base import SRID, Base, created_at_column

POPULATION_TYPES = ("registered", "floating")


def _optional_geometry_index(table: str, column: str) -> Index:
    """The GiST index of an optional geometry, holding only the rows that have one (migration 20261205_lead9:
    a register's residents located by building code have no point; every spatial predicate implies NOT NULL)."""
    where = text(f"{column} IS NOT NULL")
    return Index(f"idx_{table}_{column}", column, postgresql_using="gist", postgresql_where=where)


class Building(Base):
    """A building: a location point and, where known, its footprint."""

    __tablename__ = "building"
    __table_args__ = (
        CheckConstraint("geom IS NOT NULL OR footprint IS NOT NULL", name="has_geometry"),
        _optional_geometry_index("building", "geom"),
        _optional_geometry_index("building", "footprint"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    address: Mapped[str | None] = mapped_column(String(200))
    floors: Mapped[int | None] = mapped_column(Integer)
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    footprint = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=False))
    # NULL = unassigned (outside every base cell): kept and listed, never dropped.
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()


class Resident(Base):
    """A person living in the city. The citizen ID is kept only as a keyed hash and a masked form."""

    __tablename__ = "resident"
    __table_args__ = (_optional_geometry_index("resident", "geom"),)
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
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    created_at: Mapped[datetime] = created_at_column()
    # base_cell_id: read-only, from ResidentCell (defined below it).


class ResidentCell(Base):
    """The base cell of an assigned resident; an unassigned resident (outside every cell) has no row.

    Written only by gridkit.resident_cells (one resident at a time, set-based, or COPY in bulk); read as
    `Resident.base_cell_id`. Deleting the resident or the base cell deletes the row.
    """

    __tablename__ = "resident_cell"

    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id", ondelete="CASCADE"), primary_key=True)
    base_cell_id: Mapped[int] = mapped_column(ForeignKey("base_cell.id", ondelete="CASCADE"), index=True)


# One name for a resident's cell everywhere (None = unassigned), usable in queries too; set it with
# gridkit.resident_cells.set_resident_cells (or give it to a new Resident: written with its row).
Resident.base_cell_id = column_property(
    select(ResidentCell.base_cell_id).where(ResidentCell.resident_id == Resident.id).scalar_subquery()
)


@event.listens_for(Resident.base_cell_id, "set")
def _cell_given_to_a_new_resident(target, value, oldvalue, initiator):
    # A stored resident's cell changes only through the service (the ORM would keep it in memory and never
    # store it: a silent loss, refused instead). A new resident may be given one: stored with it (below).
    if inspect(target).has_identity:
        raise AttributeError("Resident.base_cell_id is read-only: gridkit.resident_cells.set_resident_cells sets it")
    target._given_cell = value


@event.listens_for(Resident, "after_insert")
def _store_given_cell(mapper, connection, target):
    cell = target.__dict__.pop("_given_cell", None)
    if cell is not None:
        connection.execute(insert(ResidentCell.__table__).values(resident_id=target.id, base_cell_id=cell))


class LegalEntity(Base):
    """A company or organisation identified by its unified social credit code (GB 32100)."""

    __tablename__ = "legal_entity"
    __table_args__ = (
        CheckConstraint(
            "credit_code ~ '^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$'", name="credit_code_format"
        ),
        _optional_geometry_index("legal_entity", "geom"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    credit_code: Mapped[str] = mapped_column(String(18), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str | None] = mapped_column(String(200))
    geom = mapped_column(Geometry("POINT", srid=SRID, spatial_index=False))
    base_cell_id: Mapped[int | None] = mapped_column(ForeignKey("base_cell.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = created_at_column()
