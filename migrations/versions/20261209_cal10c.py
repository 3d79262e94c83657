"""the hours of an adjusted working day (调休): its own spans, or the weekday whose hours it works

Revision ID: 20261209_cal10c
Revises: 20261208_pii9g
Create Date: 2026-12-09

A city's 调休 notice declares a weekend day a working day: it follows the normal working-day schedule. An
adjusted working day worked the first weekday's hours (Monday's) whatever the calendar said. The calendar may
now say them: `work_calendar_day.hours` (spans "09:00-12:00,14:00-18:00", local time) or `as_weekday` (the ISO
weekday whose hours it works, 1 Monday … 7 Sunday: 按星期五上班); neither: the standard working day's hours
(gridkit.incidents.worktime.WorkCalendar.workday_hours). A holiday has neither.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261209_cal10c"
down_revision = "20261208_pii9g"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("work_calendar_day", sa.Column("hours", sa.String(100), nullable=True))
    op.add_column("work_calendar_day", sa.Column("as_weekday", sa.SmallInteger(), nullable=True))
    op.create_check_constraint("ck_work_calendar_day_as_weekday", "work_calendar_day", "as_weekday BETWEEN 1 AND 7")
    op.create_check_constraint(
        "ck_work_calendar_day_workday_hours",
        "work_calendar_day",
        "kind = 'workday' OR (hours IS NULL AND as_weekday IS NULL)",
    )
    op.create_check_constraint(
        "ck_work_calendar_day_one_hours", "work_calendar_day", "hours IS NULL OR as_weekday IS NULL"
    )


def downgrade() -> None:
    for name in ("one_hours", "workday_hours", "as_weekday"):
        op.drop_constraint(f"ck_work_calendar_day_{name}", "work_calendar_day", type_="check")
    op.drop_column("work_calendar_day", "as_weekday")
    op.drop_column("work_calendar_day", "hours")
