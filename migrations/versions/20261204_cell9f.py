"""a resident's base cell in a narrow table of its own, resident_cell (resident_id, base_cell_id)

Revision ID: 20261204_cell9f
Revises: 20261204_imp9f
Create Date: 2026-12-04

A first assignment (or a new base grid edition) gives millions of residents a cell. With the cell a
column of `resident`, PostgreSQL wrote a new version of every wide resident row (~2.3 µs of server CPU
a row even as heap-only tuples on half-empty pages), so 5,000,000 residents could not be assigned in
20 s (scripts/bench_import.py). Now the cell lives in `resident_cell`: one row of two integers for an
assigned resident, no row for an unassigned one (as NULL was). A bulk assignment deletes the rows of
the residents it places and COPYs the new ones (gridkit.resident_cells).

- The stored cells move into the new table; `resident.base_cell_id`, its index and its foreign key go.
- `resident` returns to the default fillfactor: the half-empty pages (migration 20261203_asg9b) were
  room for that UPDATE. Stored rows are not rewritten (new pages get the default).
- The summary's change log (migration 20261203_exp12) is marked by every statement that writes
  `resident_cell` (also TRUNCATE, and the cascades when a base cell or a resident is deleted), and by
  those that write a resident's household or population type, insert or delete residents.
- The bulk index functions (migration 20261203_city9) and the first load's truncation (migration
  20261204_imp9f) accept `resident_cell`, so the application role may drop and rebuild its index and
  foreign keys around a bulk write, and a first assignment empties the (empty) table in its transaction so
  that, on a server with wal_level minimal, its COPY writes no WAL; the restore checks a foreign key
  over the table's own primary key (resident_cell → resident) by a merge join (see _NEW_LOOP). The table's row privileges for
  the application role come from the owner's default privileges (gridkit.db.embedded), as for every table.

Downgrade puts the column back, with the cells, its index and foreign key, the trigger and fillfactor 50.
"""

from alembic import op


revision = "20261204_cell9f"
down_revision = "20261204_imp9f"
branch_labels = None
depends_on = None

_OLD_TABLES = "'resident', 'building', 'legal_entity', 'incident')"
_NEW_TABLES = "'resident', 'building', 'legal_entity', 'incident', 'resident_cell')"

# The restore re-adds a dropped foreign key over the table's own primary key (an extension table: resident_cell
# → resident) with hash joins off: PostgreSQL checks every row by one serial query, and a merge of the two
# primary keys in order took a quarter of the hash join it chose (3,000,000 rows: 0.7 s instead of 3.6 s),
# while for a small referenced table (base_cell) the hash join stays (0.7 s instead of 3.7 s merging).
_OLD_DECLARE = """    built integer := 0;
BEGIN"""
_NEW_DECLARE = """    built integer := 0;
    hashjoin text := pg_catalog.current_setting('enable_hashjoin');
BEGIN"""
_OLD_LOOP = """        EXECUTE dropped.definition;
        built := built + 1;"""
_NEW_LOOP = """        IF pg_catalog.strpos(dropped.definition, 'FOREIGN KEY (' || (
               SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
               FROM pg_catalog.pg_constraint c, pg_catalog.unnest(c.conkey) WITH ORDINALITY k(attnum, n),
                    pg_catalog.pg_attribute a
               WHERE c.conrelid = target AND c.contype = 'p' AND a.attrelid = target AND a.attnum = k.attnum
           ) || ') REFERENCES ') > 0 THEN
            -- A foreign key over the table's primary key: checked by merging two primary keys (20261204_cell9f).
            PERFORM pg_catalog.set_config('enable_hashjoin', 'off', true);
            EXECUTE dropped.definition;
            PERFORM pg_catalog.set_config('enable_hashjoin', hashjoin, true);
        ELSE
            EXECUTE dropped.definition;
        END IF;
        built := built + 1;"""

_BULK_FUNCTIONS = (
    "gridkit_drop_bulk_indexes",
    "gridkit_drop_bulk_indexes_on",
    "gridkit_restore_bulk_indexes",
    "gridkit_truncate_for_load",
)


def _rewrite(functions: tuple[str, ...], replacements: list[tuple[str, str]]) -> str:
    """A DO block making `functions` (public) again from their own definitions with `replacements` applied."""
    definition = "pg_catalog.pg_get_functiondef(f)"
    for old, new in replacements:
        definition = f"pg_catalog.replace({definition}, $q${old}$q$, $q${new}$q$)"
    names = ", ".join(f"'{f}'" for f in functions)
    return f"""
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ({names})
    LOOP
        EXECUTE {definition};
    END LOOP;
END $$"""


def _trigger(columns: str) -> str:
    return f"""
    CREATE TRIGGER resident_changed_rows
        AFTER INSERT OR DELETE OR UPDATE OF {columns} ON resident
        FOR EACH STATEMENT EXECUTE FUNCTION resident_changed()"""


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE resident_cell (
            resident_id integer NOT NULL,
            base_cell_id integer NOT NULL,
            CONSTRAINT pk_resident_cell PRIMARY KEY (resident_id))"""
    )
    op.execute(
        "INSERT INTO resident_cell (resident_id, base_cell_id) "
        "SELECT id, base_cell_id FROM resident WHERE base_cell_id IS NOT NULL ORDER BY id"
    )
    # Index and keys after the rows: built once, not row by row.
    op.execute("CREATE INDEX ix_resident_cell_base_cell_id ON resident_cell (base_cell_id)")
    op.execute(
        "ALTER TABLE resident_cell "
        "ADD CONSTRAINT fk_resident_cell_resident_id_resident FOREIGN KEY (resident_id) "
        "    REFERENCES resident (id) ON DELETE CASCADE, "
        "ADD CONSTRAINT fk_resident_cell_base_cell_id_base_cell FOREIGN KEY (base_cell_id) "
        "    REFERENCES base_cell (id) ON DELETE CASCADE"
    )
    op.execute("DROP TRIGGER resident_changed_rows ON resident")
    op.execute("ALTER TABLE resident DROP COLUMN base_cell_id")  # its index and foreign key with it
    op.execute(_trigger("household, population_type"))
    op.execute(
        """
        CREATE TRIGGER resident_cell_changed_rows AFTER INSERT OR DELETE OR UPDATE ON resident_cell
            FOR EACH STATEMENT EXECUTE FUNCTION resident_changed();
        CREATE TRIGGER resident_cell_changed_truncate AFTER TRUNCATE ON resident_cell
            FOR EACH STATEMENT EXECUTE FUNCTION resident_changed()"""
    )
    op.execute("ALTER TABLE resident RESET (fillfactor)")
    # Every bulk index function embeds the list of tables it accepts.
    op.execute(_rewrite(_BULK_FUNCTIONS, [(_OLD_TABLES, _NEW_TABLES)]))
    op.execute(_rewrite(("gridkit_restore_bulk_indexes",), [(_OLD_DECLARE, _NEW_DECLARE), (_OLD_LOOP, _NEW_LOOP)]))
    op.execute("ANALYZE resident_cell")
    op.execute("INSERT INTO resident_change DEFAULT VALUES")


def downgrade() -> None:
    # Left dropped by a bulk write that committed without building them: nothing of resident_cell may stay.
    op.execute("SELECT public.gridkit_restore_bulk_indexes('public.resident_cell'::regclass)")
    op.execute(_rewrite(("gridkit_restore_bulk_indexes",), [(_NEW_LOOP, _OLD_LOOP), (_NEW_DECLARE, _OLD_DECLARE)]))
    op.execute(_rewrite(_BULK_FUNCTIONS, [(_NEW_TABLES, _OLD_TABLES)]))
    op.execute("ALTER TABLE resident SET (fillfactor = 50)")
    op.execute("DROP TRIGGER resident_changed_rows ON resident")
    op.execute("ALTER TABLE resident ADD COLUMN base_cell_id integer")
    op.execute("UPDATE resident r SET base_cell_id = c.base_cell_id FROM resident_cell c WHERE c.resident_id = r.id")
    op.execute("CREATE INDEX ix_resident_base_cell_id ON resident (base_cell_id)")
    op.execute(
        "ALTER TABLE resident ADD CONSTRAINT fk_resident_base_cell_id_base_cell FOREIGN KEY (base_cell_id) "
        "REFERENCES base_cell (id) ON DELETE SET NULL"
    )
    op.execute(_trigger("base_cell_id, household, population_type"))
    op.execute("DROP TABLE resident_cell")  # its triggers with it
    op.execute("INSERT INTO resident_change DEFAULT VALUES")
