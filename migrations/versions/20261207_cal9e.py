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
the others count working time. Existing event categories of the major class 突发事件 are set so, and the
public-safety components of the packaged seed (交通信号灯, 重大危险源, 输油气管线); the others' limits, written in
calendar hours, are made working time as the seed's are: up to 8 hours stay hours, a longer limit becomes
working days (part of a day or a day = 8 working hours, N days = N working days).
Cases already stored keep their stored deadlines.

Each step's time is kept on the case as its limits count (`incident.<step>_work_us`, set by the workflow and
the case import when the step is done), and the evaluation's rollup `incident_eval` sums it (its triggers'
functions are replaced, the rollup recounted); a case stored before has none and counts its steps around the
clock, as it did.
"""

import sqlalchemy as sa
from alembic import op

revision = "20261207_cal9e"
down_revision = "20261206_scale8b"
branch_labels = None
depends_on = None

# Monday to Friday, 09:00-12:00 and 14:00-18:00: the default working hours (gridkit.incidents.worktime).
DEFAULT_HOURS = [(day, start, end) for day in range(1, 6) for start, end in (("09:00", "12:00"), ("14:00", "18:00"))]


# The evaluation's steps (gridkit.incidents.evaluate.STEPS): (later timestamp, earlier timestamp).
_STEPS = {
    "accept": ("accepted_at", "reported_at"),
    "classify": ("classified_at", "accepted_at"),
    "dispatch": ("dispatched_at", "classified_at"),
    "handle": ("fed_back_at", "dispatched_at"),
    "verify": ("closed_at", "fed_back_at"),
    "total": ("closed_at", "reported_at"),
}
_MEASURES = ["cases", "closed", "closed_with_deadline", "on_time", "reworked", "backlog"] + [
    f"{s}_{m}" for s in _STEPS for m in ("n", "us")
]


def _eval_columns(work: bool) -> str:
    steps = sorted({c for pair in _STEPS.values() for c in pair} - {"reported_at", "closed_at"})
    kept = [f"{s}_work_us" for s in _STEPS] if work else []
    return ", ".join(
        [
            "reported_at, status, deadline, closed_at, rework_count, dept_code, work_cell_id, coordinator_id, base_cell_id"
        ]
        + steps
        + kept
    )


def _case_measures(work: bool) -> str:
    """The summed measures of rows `r` (signed by r.s), as migration 20261203_inc10 wrote them; `work`: a step's
    time is the case's own <step>_work_us where it has one."""
    parts = [
        "r.s",
        "CASE WHEN r.status = 'closed' THEN r.s ELSE 0 END",
        "CASE WHEN r.status = 'closed' AND r.deadline IS NOT NULL THEN r.s ELSE 0 END",
        "CASE WHEN r.status = 'closed' AND r.closed_at <= r.deadline THEN r.s ELSE 0 END",
        "CASE WHEN r.status = 'closed' AND r.rework_count > 0 THEN r.s ELSE 0 END",
        "CASE WHEN r.status NOT IN ('closed', 'rejected', 'duplicate') THEN r.s ELSE 0 END",
    ]
    for step, (a, b) in _STEPS.items():
        around = f"round(date_part('epoch', r.{a} - r.{b}) * 1000000)::bigint"
        spent = f"COALESCE(r.{step}_work_us, {around})" if work else around
        parts.append(f"CASE WHEN r.{a} IS NOT NULL AND r.{b} IS NOT NULL THEN r.s ELSE 0 END")
        parts.append(f"COALESCE({spent} * r.s, 0)")
    return ", ".join(f"sum({p})" for p in parts)


def _apply_eval(rows: str, work: bool) -> str:
    """SQL adding the signed measures of `rows` (incident columns and s) to incident_eval."""
    keys = "day, dept_code, work_cell_id, coordinator_id, community_code"
    return f"""
    INSERT INTO incident_eval AS e ({keys}, {", ".join(_MEASURES)})
    SELECT (r.reported_at AT TIME ZONE 'Asia/Shanghai')::date, r.dept_code, r.work_cell_id, r.coordinator_id,
           b.community_code, {_case_measures(work)}
    FROM ({rows}) r LEFT JOIN base_cell b ON b.id = r.base_cell_id
    WHERE r.reported_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({keys}) DO UPDATE SET {", ".join(f"{m} = e.{m} + EXCLUDED.{m}" for m in _MEASURES)};
    """


def _eval_functions(work: bool) -> None:
    """(Re)write the rollup's trigger functions and recount the rollup from the cases."""
    c = _eval_columns(work)
    bodies = {
        "insert": _apply_eval(f"SELECT {c}, 1 AS s FROM new_rows", work),
        "delete": _apply_eval(f"SELECT {c}, -1 AS s FROM old_rows", work),
        "update": _apply_eval(f"SELECT {c}, -1 AS s FROM old_rows UNION ALL SELECT {c}, 1 FROM new_rows", work),
    }
    for event, body in bodies.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION incident_eval_{event}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body} RETURN NULL; END $$"
        )
    op.execute("DELETE FROM incident_eval")
    op.execute(_apply_eval(f"SELECT {c}, 1 AS s FROM incident", work))


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
    # Public safety runs around the clock, as the packaged seed now says (a traffic light out, a major hazard
    # source, an oil or gas pipeline): these keep their limits in calendar hours.
    op.execute(
        "UPDATE incident_category SET around_the_clock = TRUE WHERE kind = 'component' AND (code, name) IN "
        "(('0206', '交通信号灯'), ('0601', '重大危险源'), ('0604', '输油气管线'))"
    )
    # The other limits were written in calendar hours: read as working hours, a day's limit (24) would last three
    # working days. Limits of up to 8 hours stay hours; a longer one becomes working days, as the seed's: part
    # of a day or a day = one working day (8 working hours), N days = N working days.
    working = "CASE WHEN {h} <= 8 THEN {h} ELSE greatest(1, {h} / 24) * 8 END"
    op.execute(
        f"UPDATE incident_category SET time_limit_hours = {working.format(h='time_limit_hours')}, "
        "step_hours = (SELECT jsonb_object_agg(k, " + working.format(h="v::int") + ") "
        "FROM jsonb_each_text(step_hours) AS t(k, v)) WHERE NOT around_the_clock"
    )
    for step in _STEPS:
        op.add_column("incident", sa.Column(f"{step}_work_us", sa.BigInteger(), nullable=True))
    _eval_functions(work=True)


def downgrade() -> None:
    _eval_functions(work=False)
    for step in _STEPS:
        op.drop_column("incident", f"{step}_work_us")
    op.drop_column("incident_category", "around_the_clock")
    op.drop_table("work_calendar_day")
    op.drop_table("work_calendar_hours")


def _time(text: str):
    from datetime import time

    hour, minute = text.split(":")
    return time(int(hour), int(minute))
