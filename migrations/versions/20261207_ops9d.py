"""the city's time zone is a setting the database knows; audit_log ids are bigint

Revision ID: 20261207_ops9d
Revises: 20261207_cal9e
Create Date: 2026-12-07

The evaluation rollup (incident_eval, migrations 20261203_inc10 and 20261207_cal9e) counted cases per report
day in Beijing time, written into its trigger functions, while the days the evaluation asks for follow the city's zone
(GRIDKIT_TIME_ZONE, gridkit.rules.local_tz). The zone is now kept in the one-row table gridkit_config,
which the trigger functions read; `gridkit db up` writes it from the setting and recounts the rollup by
the new days when it changed (gridkit_rebuild_incident_eval(), gridkit.db.timezone). A new database says
Asia/Shanghai, the default, until then.

audit_log gets a row per view of personal data: at a city's rate its int4 id (2,147,483,647 rows) runs
out within years. The id and its sequence become bigint (the table is rewritten once; no column refers
to it).
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "20261207_ops9d"
down_revision = "20261207_cal9e"
branch_labels = None
depends_on = None

_BEIJING = "'Asia/Shanghai'"
# Read once per statement (an uncorrelated subquery): the zone of the days the rollup counts.
_CITY_ZONE = "(SELECT c.time_zone FROM public.gridkit_config c)"


def _cal9e():
    """Migration 20261207_cal9e's module: the rollup's SQL (step times in working time where a case has them),
    whose zone this one makes the configured one."""
    spec = importlib.util.spec_from_file_location(
        "gridkit_migration_cal9e", Path(__file__).with_name("20261207_cal9e.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _eval_sql(rows: str, zone: str) -> str:
    """The rollup's INSERT of the signed measures of `rows` (incident columns and s), its days in `zone` (SQL)."""
    sql = _cal9e()._apply_eval(rows, work=True)
    assert _BEIJING in sql
    return sql.replace(_BEIJING, zone)


def _eval_functions(zone: str) -> list[str]:
    """The CREATE OR REPLACE of incident_eval's three trigger functions counting days in `zone` (SQL)."""
    c = _cal9e()._eval_columns(work=True)
    rows = {
        "insert": f"SELECT {c}, 1 AS s FROM new_rows",
        "delete": f"SELECT {c}, -1 AS s FROM old_rows",
        "update": f"SELECT {c}, -1 AS s FROM old_rows UNION ALL SELECT {c}, 1 FROM new_rows",
    }
    return [
        f"""CREATE OR REPLACE FUNCTION incident_eval_{event}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_eval_sql(sql, zone)} RETURN NULL; END $$"""
        for event, sql in rows.items()
    ]


def upgrade() -> None:
    op.execute("""
    CREATE TABLE gridkit_config (
        one boolean PRIMARY KEY DEFAULT true CHECK (one),
        -- A name PostgreSQL does not know would make the triggers refuse every case: refused here first.
        time_zone text NOT NULL CHECK (pg_catalog.now() AT TIME ZONE time_zone IS NOT NULL)
    )""")
    op.execute("COMMENT ON TABLE gridkit_config IS 'Settings the database itself uses: the city''s time zone "
               "(GRIDKIT_TIME_ZONE, written by gridkit db up)'")
    op.execute(f"INSERT INTO gridkit_config (time_zone) VALUES ({_BEIJING})")
    for sql in _eval_functions(_CITY_ZONE):
        op.execute(sql)
    c = _cal9e()._eval_columns(work=True)
    # The incidents are locked against writes while the rollup is recounted: none is counted twice or never.
    op.execute(f"""
    CREATE FUNCTION gridkit_rebuild_incident_eval() RETURNS void LANGUAGE plpgsql AS $$
    BEGIN
        LOCK TABLE incident IN SHARE MODE;
        DELETE FROM incident_eval;
        {_eval_sql(f"SELECT {c}, 1 AS s FROM incident", _CITY_ZONE)}
    END $$""")
    op.execute("ALTER TABLE audit_log ALTER COLUMN id TYPE bigint")
    op.execute("DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS bigint', pg_get_serial_sequence('audit_log', 'id')); END $$")


def downgrade() -> None:
    op.execute("DO $$ BEGIN EXECUTE format('ALTER SEQUENCE %s AS integer', pg_get_serial_sequence('audit_log', 'id')); END $$")
    op.execute("ALTER TABLE audit_log ALTER COLUMN id TYPE integer")
    op.execute("DROP FUNCTION gridkit_rebuild_incident_eval()")
    for sql in _eval_functions(_BEIJING):
        op.execute(sql)
    op.execute("DROP TABLE gridkit_config")
    # The rollup's days are Beijing days again.
    op.execute("DELETE FROM incident_eval")
    c = _cal9e()._eval_columns(work=True)
    op.execute(_eval_sql(f"SELECT {c}, 1 AS s FROM incident", _BEIJING))
