"""the application role may refresh base_cell's statistics; the public points of cases indexed

Revision ID: 20261206_scale8b
Revises: 20261206_hostile8a
Create Date: 2026-12-06

Validation (on import, `basegrid validate`, publish) joins the edition's cells with each other through
the spatial index. Right after an import, before autovacuum has looked at the table (and always inside
the import's own transaction), the planner believes the new edition holds about one cell and pairs
every cell with every other by the edition index instead: 10,000 cells, 100,000,000 pairs, 19–49 s
for the overlap check alone (1.6 s planned with the statistics). The application role does not own
the table, so it may not ANALYZE it: this function does, as the owner, for a caller who may write
base cells, and for that table only.

The OGC API's collections (and every layer query with a bbox) filter on the point a layer shows: a
case's location snapped to 0.001° (gridkit.pii.public_location_sql). It is not a column, so the GiST index
of `geom` could not serve it and every bbox request read the whole table (a 100 m view: 1.4 s at
300,000); a GiST index on that very expression does (3 ms). (A building's point, or else a point on its
footprint, is served by the partial indexes of `geom` and `footprint` through the layer's `bbox_sql`: an
index of that expression too cost every import of 1,000,000 buildings ~1.5 s.)
"""

from alembic import op

revision = "20261206_scale8b"
down_revision = "20261206_hostile8a"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
CREATE FUNCTION public.gridkit_analyze_base_cell() RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    -- Inside the function current_user is the owner: the caller is session_user.
    IF NOT pg_catalog.has_table_privilege(session_user, 'public.base_cell', 'INSERT') THEN
        RAISE EXCEPTION 'permission denied for table base_cell' USING ERRCODE = '42501';
    END IF;
    ANALYZE public.base_cell;
END
$$"""
    )


    # The expressions exactly as the layer queries write them (gridkit.io.export_layers, gridkit.pii).
    op.execute("CREATE INDEX ix_incident_public_location ON incident USING gist (ST_SnapToGrid(geom, 0.001::float8))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_incident_public_location")
    op.execute("DROP FUNCTION public.gridkit_analyze_base_cell()")
