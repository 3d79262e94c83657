"""The working calendar: working hours per weekday and dated exceptions (holidays, adjusted working days)."""

from __future__ import annotations

from datetime import date, time

from sqlalchemy import CheckConstraint, Date, SmallInteger, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from gridkit.models.base import Base

CALENDAR_DAY_KINDS = ("holiday", "workday")


class WorkCalendarHours(Base):
    """One span of working hours (local time) on an ISO weekday (1 Monday … 7 Sunday)."""

    __tablename__ = "work_calendar_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 1 AND 7", name="weekday"),
        CheckConstraint("starts < ends", name="span"),
    )

    weekday: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    starts: Mapped[time] = mapped_column(Time, primary_key=True)
    ends: Mapped[time] = mapped_column(Time)


class WorkCalendarDay(Base):
    """A dated exception: a holiday (节假日, no work) or an adjusted working day (调休), which works its own
    `hours` (spans "09:00-12:00,14:00-18:00"), else those of weekday `as_weekday`, else the standard working
    day's (migration 20261209_cal10c)."""

    __tablename__ = "work_calendar_day"
    __table_args__ = (
        CheckConstraint(f"kind IN {CALENDAR_DAY_KINDS}", name="kind"),
        CheckConstraint("as_weekday BETWEEN 1 AND 7", name="as_weekday"),
        CheckConstraint("kind = 'workday' OR (hours IS NULL AND as_weekday IS NULL)", name="workday_hours"),
        CheckConstraint("hours IS NULL OR as_weekday IS NULL", name="one_hours"),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    hours: Mapped[str | None] = mapped_column(String(100))
    as_weekday: Mapped[int | None] = mapped_column(SmallInteger)
