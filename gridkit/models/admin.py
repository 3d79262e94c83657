"""Admin units: city › district › street › community (GB/T 2260 + 3 + 3 digits)."""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, ForeignKey, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from gridkit.models.base import SRID, Base

ADMIN_LEVELS = ("city", "district", "street", "community")
# The level of the parent each level must have (a city has none).
PARENT_LEVEL = {"district": "city", "street": "district", "community": "street"}


class AdminUnit(Base):
    """One city, district, street or community with its boundary."""

    __tablename__ = "admin_unit"
    __table_args__ = (
        CheckConstraint(f"level IN {ADMIN_LEVELS}", name="level"),
        CheckConstraint(
            "(level IN ('city', 'district') AND code ~ '^[0-9]{6}$') OR "
            "(level = 'street' AND code ~ '^[0-9]{9}$') OR "
            "(level = 'community' AND code ~ '^[0-9]{12}$')",
            name="code_format",
        ),
        CheckConstraint(
            "parent_code IS NULL OR left(code, length(parent_code)) = parent_code OR level = 'district'",
            name="code_prefix",
        ),
        CheckConstraint("ST_IsValid(geom)", name="geom_valid"),
    )

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(10), index=True)
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("admin_unit.code"), index=True)
    geom = mapped_column(Geometry("MULTIPOLYGON", srid=SRID, spatial_index=True), nullable=False)
    # Every other attribute of the imported file, by field name (exported back as is).
    attributes: Mapped[dict] = mapped_column(JSONB, default=dict, server_default=text("'{}'::jsonb"))

    parent: Mapped[AdminUnit | None] = relationship(remote_side=[code])
