"""the bulk index functions and the first load's truncation accept incident_history and component

Revision ID: 20261204_inc9j
Revises: 20261204_imp9g
Create Date: 2026-12-04

Two bulk writes that updated every index and checked every foreign key row by row now drop and build them
once around the write (gridkit.spatial.bulk.rebuilt_indexes), as the subject imports do:

- A bulk intake of historic cases (`gridkit import incidents`, gridkit.incidents.importer) writes a history
  row for each case into `incident_history` after the cases into `incident`. With their indexes and foreign
  keys kept, PostgreSQL checked each row's seven (cases) and one (history) foreign keys and updated thirteen
  indexes row by row: 100,000 cases took 13 s of COPY. `incident` was already accepted by the functions
  (migration 20261203_city9).
- The component inventory import (`gridkit import components`, gridkit.incidents.components) takes the
  subjects' streaming path: the file COPYed into a staging table and written with one INSERT … SELECT. A
  city's inventory holds millions of components; their UNIQUE code, foreign keys (category, base cell) and
  indexes (the spatial one among them) are rebuilt once after a bulk write.

`incident_history` and `component` are added to the tables the functions accept, so that the application role
may do so, and a first load into empty tables writes no WAL on the embedded cluster.
"""

from alembic import op

revision = "20261204_inc9j"
down_revision = "20261204_imp9g"
branch_labels = None
depends_on = None

_OLD_TABLES = "'resident', 'building', 'legal_entity', 'incident', 'resident_cell')"
_NEW_TABLES = "'resident', 'building', 'legal_entity', 'incident', 'resident_cell', 'incident_history', 'component')"
_BULK_FUNCTIONS = (
    "gridkit_drop_bulk_indexes",
    "gridkit_drop_bulk_indexes_on",
    "gridkit_restore_bulk_indexes",
    "gridkit_truncate_for_load",
)


def _rewrite(replacements: list[tuple[str, str]]) -> str:
    """A DO block making the bulk functions (public) again from their own definitions with `replacements`
    applied (each embeds the list of tables it accepts)."""
    definition = "pg_catalog.pg_get_functiondef(f)"
    for old, new in replacements:
        definition = f"pg_catalog.replace({definition}, $q${old}$q$, $q${new}$q$)"
    names = ", ".join(f"'{f}'" for f in _BULK_FUNCTIONS)
    return f"""
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ({names})
    LOOP
        IF pg_catalog.strpos(pg_catalog.pg_get_functiondef(f), $q${replacements[0][0]}$q$) = 0 THEN
            RAISE EXCEPTION 'function % does not list the tables it accepts as expected', f;
        END IF;
        EXECUTE {definition};
    END LOOP;
END $$"""


def upgrade() -> None:
    op.execute(_rewrite([(_OLD_TABLES, _NEW_TABLES)]))


def downgrade() -> None:
    # Left dropped by a write that committed without building them: nothing of these tables may stay.
    op.execute("SELECT public.gridkit_restore_bulk_indexes('public.incident_history'::regclass)")
    op.execute("SELECT public.gridkit_restore_bulk_indexes('public.component'::regclass)")
    op.execute(_rewrite([(_NEW_TABLES, _OLD_TABLES)]))
