"""incident heat rollup: case counts per map bin (zooms 13 and 15), report month and community,
kept by statement triggers on incident, for the supervisor's heatmap at city scale

Revision ID: 20261203_inc10
Revises: 20261203_web
Create Date: 2026-12-03
"""
from alembic import op

revision = '20261203_inc10'
down_revision = '20261203_web'
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
    ON CONFLICT (level, ix, iy, month, community_code) DO UPDATE SET n = h.n + EXCLUDED.n;
    """


_COLUMNS = "lon, lat, reported_at, base_cell_id"


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


def downgrade() -> None:
    for event in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER incident_heat_{event} ON incident")
        op.execute(f"DROP FUNCTION incident_heat_{event}()")
    op.execute("DROP TABLE incident_heat")
