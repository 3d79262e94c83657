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
    """A dated exception: a holiday (节假日, no work) or an adjusted working day (调休, worked as a Monday)."""

    __tablename__ = "work_calendar_day"
    __table_args__ = (CheckConstraint(f"kind IN {CALENDAR_DAY_KINDS}", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
