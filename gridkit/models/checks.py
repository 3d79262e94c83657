"""Stored results of expensive work and the sign-in failure counter."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from gridkit.models.base import Base


class EditionCheck(Base):
    """The validation result of a base grid edition in one state (its fingerprint)."""

    __tablename__ = "edition_check"

    edition_id: Mapped[int] = mapped_column(ForeignKey("base_grid_edition.id", ondelete="CASCADE"), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    checked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    result: Mapped[dict] = mapped_column(JSONB)


class LoginFailure(Base):
    """One failed sign-in: counted per user name and per address to slow down guessing."""

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now(), index=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)
