"""case deadlines in working time: the working calendar (hours per weekday, holidays and adjusted working days)
and each category's clock

Revision ID: 20261207_cal9e
Revises: 20261206_scale8b
Create Date: 2026-12-07

Digital city-management standards count time limits in working hours (工作时): a case reported on Friday at
17:00 with 8 hours to handle is due on Monday, not on Saturday at 01:00. The calendar is data:
`work_calendar_hours` holds the working hours per ISO weekday (1 Monday … 7 Sunday; seeded with Monday to
Friday 09:00-12:00 and 14:00-18:00, a deployment sets its own), `work_calendar_day` the dated exceptions: a
holiday (节假日, no work) or an adjusted working day (调休, e.g. a Saturday worked, with the hours of a Monday).
No holiday is seeded: a city imports the State Council's dates itself (`gridkit calendar import`).

`incident_category.around_the_clock` says a category's limits run around the clock (突发事件: urgent cases);
the others count working time. Existing event categories of the major class 突发事件 are set so.
Cases already stored keep their stored deadlines.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261207_cal9e"
down_revision = "20261206_scale8b"
branch_labels = None
depends_on = None

# Monday to Friday, 09:00-12:00 and 14:00-18:00: the default working hours (gridkit.incidents.worktime).
DEFAULT_HOURS = [(day, start, end) for day in range(1, 6) for start, end in (("09:00", "12:00"), ("14:00", "18:00"))]


def upgrade() -> None:
    hours = op.create_table(
        "work_calendar_hours",
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name="ck_work_calendar_hours_weekday"),
        sa.CheckConstraint("starts < ends", name="ck_work_calendar_hours_span"),
        sa.PrimaryKeyConstraint("weekday", "starts", name="pk_work_calendar_hours"),
    )
    op.create_table(
        "work_calendar_day",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name="ck_work_calendar_day_kind"),
        sa.PrimaryKeyConstraint("day", name="pk_work_calendar_day"),
    )
    op.bulk_insert(hours, [{"weekday": d, "starts": _time(s), "ends": _time(e)} for d, s, e in DEFAULT_HOURS])
    op.add_column(
        "incident_category",
        sa.Column("around_the_clock", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.execute("UPDATE incident_category SET around_the_clock = TRUE WHERE kind = 'event' AND major_name = '突发事件'")


def downgrade() -> None:
    op.drop_column("incident_category", "around_the_clock")
    op.drop_table("work_calendar_day")
    op.drop_table("work_calendar_hours")


def _time(text: str):
    from datetime import time

    hour, minute = text.split(":")
    return time(int(hour), int(minute))
