"""incident rollups kept by statement triggers on incident: incident_heat (cases per map bin at
zooms 13 and 15, report month, community) for the heatmap, and incident_eval (per report day in
Beijing time and department / work cell / coordinator / community: counts and summed step times)
for the evaluation, both at city scale

Revision ID: 20261203_inc10
Revises: 20261203_exp12
Create Date: 2026-12-03
"""
from alembic import op

revision = '20261203_inc10'
down_revision = '20261203_exp12'
branch_labels = None
depends_on = None

# The bins: floor(lon / size), floor(lat / size) with size = 360 / (256 · 2^zoom) · 24 degrees
# (gridkit.incidents.heatmap.bin_size); 135/32768 and 135/131072 are exact binary fractions, so
# a bin of zoom z is exactly the bin of zoom 13 (or 15) shifted right by 13 − z (15 − z) bits.
_LEVELS = "(VALUES (13::smallint, 135::float8 / 32768), (15::smallint, 135::float8 / 131072)) AS l(level, size)"


def _apply(rows: str) -> str:
    """SQL adding the signed counts of `rows` (lon, lat, reported_at, base_cell_id, s) to the rollup."""
    return f"""
    INSERT INTO incident_heat AS h (level, ix, iy, month, community_code, n)
    SELECT l.level, floor(r.lon / l.size)::int, floor(r.lat / l.size)::int,
           date_trunc('month', r.reported_at AT TIME ZONE 'UTC')::date, b.community_code, sum(r.s)
    FROM ({rows}) r CROSS JOIN {_LEVELS}
    LEFT JOIN base_cell b ON b.id = r.base_cell_id
    WHERE r.lon IS NOT NULL AND r.reported_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    HAVING sum(r.s) <> 0
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT (level, ix, iy, month, community_code) DO UPDATE SET n = h.n + EXCLUDED.n;
    """


_COLUMNS = "lon, lat, reported_at, base_cell_id"
# Rollup rows are written in key order (ORDER BY): two transactions moving cases between the same
# rows lock them in one order and cannot deadlock.


# One per-case row of the evaluation's measures (gridkit.incidents.evaluate); step times in
# microseconds (whole numbers: sums stay exact when cases move in and out).
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
_EVAL_COLUMNS = ("reported_at, status, deadline, closed_at, rework_count, dept_code, work_cell_id, coordinator_id, "
                 "base_cell_id, " + ", ".join(sorted({c for pair in _STEPS.values() for c in pair} - {"reported_at", "closed_at"})))


def _case_measures(alias: str = "r") -> str:
    r = alias
    parts = [
        f"{r}.s",
        f"CASE WHEN {r}.status = 'closed' THEN {r}.s ELSE 0 END",
        f"CASE WHEN {r}.status = 'closed' AND {r}.deadline IS NOT NULL THEN {r}.s ELSE 0 END",
        f"CASE WHEN {r}.status = 'closed' AND {r}.closed_at <= {r}.deadline THEN {r}.s ELSE 0 END",
        f"CASE WHEN {r}.status = 'closed' AND {r}.rework_count > 0 THEN {r}.s ELSE 0 END",
        f"CASE WHEN {r}.status NOT IN ('closed', 'rejected', 'duplicate') THEN {r}.s ELSE 0 END",
    ]
    for a, b in _STEPS.values():
        parts.append(f"CASE WHEN {r}.{a} IS NOT NULL AND {r}.{b} IS NOT NULL THEN {r}.s ELSE 0 END")
        parts.append(f"COALESCE(round(date_part('epoch', {r}.{a} - {r}.{b}) * 1000000)::bigint * {r}.s, 0)")
    return ", ".join(f"sum({p})" for p in parts)


def _apply_eval(rows: str) -> str:
    """SQL adding the signed measures of `rows` (incident columns and s) to incident_eval."""
    keys = "day, dept_code, work_cell_id, coordinator_id, community_code"
    return f"""
    INSERT INTO incident_eval AS e ({keys}, {", ".join(_MEASURES)})
    SELECT (r.reported_at AT TIME ZONE 'Asia/Shanghai')::date, r.dept_code, r.work_cell_id, r.coordinator_id,
           b.community_code, {_case_measures()}
    FROM ({rows}) r LEFT JOIN base_cell b ON b.id = r.base_cell_id
    WHERE r.reported_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({keys}) DO UPDATE SET {", ".join(f"{m} = e.{m} + EXCLUDED.{m}" for m in _MEASURES)};
    """


def upgrade() -> None:
    op.execute("""
    CREATE TABLE incident_heat (
        level smallint NOT NULL,
        ix integer NOT NULL,
        iy integer NOT NULL,
        month date NOT NULL,
        community_code varchar(12),
        n integer NOT NULL,
        CONSTRAINT uq_incident_heat UNIQUE NULLS NOT DISTINCT (level, ix, iy, month, community_code)
    )""")
    op.execute("COMMENT ON TABLE incident_heat IS 'Cases per heatmap bin, report month (UTC) and community; "
               "kept by the triggers on incident (gridkit.incidents.heatmap)'")
    op.execute(f"""
    CREATE FUNCTION incident_heat_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply(f"SELECT {_COLUMNS}, 1 AS s FROM new_rows")} RETURN NULL; END $$""")
    op.execute(f"""
    CREATE FUNCTION incident_heat_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply(f"SELECT {_COLUMNS}, -1 AS s FROM old_rows")} RETURN NULL; END $$""")
    op.execute(f"""
    CREATE FUNCTION incident_heat_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply(f"SELECT {_COLUMNS}, -1 AS s FROM old_rows UNION ALL SELECT {_COLUMNS}, 1 FROM new_rows")}
    RETURN NULL; END $$""")
    op.execute("CREATE TRIGGER incident_heat_insert AFTER INSERT ON incident REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION incident_heat_insert()")
    op.execute("CREATE TRIGGER incident_heat_delete AFTER DELETE ON incident REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION incident_heat_delete()")
    op.execute("CREATE TRIGGER incident_heat_update AFTER UPDATE ON incident REFERENCING OLD TABLE AS old_rows "
               "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION incident_heat_update()")
    op.execute(_apply(f"SELECT {_COLUMNS}, 1 AS s FROM incident"))
    measures = ",\n".join(f"{m} {'bigint' if m.endswith('_us') else 'integer'} NOT NULL DEFAULT 0" for m in _MEASURES)
    op.execute(f"""
    CREATE TABLE incident_eval (
        day date NOT NULL,
        dept_code varchar(6),
        work_cell_id integer,
        coordinator_id integer,
        community_code varchar(12),
        {measures},
        CONSTRAINT uq_incident_eval UNIQUE NULLS NOT DISTINCT (day, dept_code, work_cell_id, coordinator_id, community_code)
    )""")
    op.execute("COMMENT ON TABLE incident_eval IS 'Evaluation measures per report day (Beijing) and responsibility; "
               "kept by the triggers on incident (gridkit.incidents.evaluate)'")
    c = _EVAL_COLUMNS
    op.execute(f"""
    CREATE FUNCTION incident_eval_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply_eval(f"SELECT {c}, 1 AS s FROM new_rows")} RETURN NULL; END $$""")
    op.execute(f"""
    CREATE FUNCTION incident_eval_delete() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply_eval(f"SELECT {c}, -1 AS s FROM old_rows")} RETURN NULL; END $$""")
    op.execute(f"""
    CREATE FUNCTION incident_eval_update() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN {_apply_eval(f"SELECT {c}, -1 AS s FROM old_rows UNION ALL SELECT {c}, 1 FROM new_rows")}
    RETURN NULL; END $$""")
    op.execute("CREATE TRIGGER incident_eval_insert AFTER INSERT ON incident REFERENCING NEW TABLE AS new_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION incident_eval_insert()")
    op.execute("CREATE TRIGGER incident_eval_delete AFTER DELETE ON incident REFERENCING OLD TABLE AS old_rows "
               "FOR EACH STATEMENT EXECUTE FUNCTION incident_eval_delete()")
    op.execute("CREATE TRIGGER incident_eval_update AFTER UPDATE ON incident REFERENCING OLD TABLE AS old_rows "
               "NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION incident_eval_update()")
    op.execute(_apply_eval(f"SELECT {c}, 1 AS s FROM incident"))
    # The evaluation's p90 over a long period ranks the fixed sample of cases whose id ends in 0.
    op.execute("CREATE INDEX ix_incident_p90_sample ON incident (reported_at) WHERE id % 10 = 0")


def downgrade() -> None:
    op.execute("DROP INDEX ix_incident_p90_sample")
    for table in ("incident_eval", "incident_heat"):
        for event in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER {table}_{event} ON incident")
            op.execute(f"DROP FUNCTION {table}_{event}()")
        op.execute(f"DROP TABLE {table}")
