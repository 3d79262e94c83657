"""first assignment by HOT updates: resident pages half free, and a column-scoped bulk index drop

Revision ID: 20261203_asg9b
Revises: 20261203_exq12b
Create Date: 2026-12-03

A first assignment (or the reassignment when a new base grid edition is published) sets base_cell_id
of millions of residents. PostgreSQL writes a new version of each row; when the new version fits on
the row's own page and no indexed column changed, it is a heap-only tuple (HOT): no index gets a new
entry. So:

- `resident` gets fillfactor 50: an import leaves each page half free, room for one new version of
  every row on it (an UPDATE of every row doubles a table anyway; this takes the space up front).
  Rows already stored are rewritten once here (CLUSTER on the primary key) so that they have it too.
- `gridkit_drop_bulk_indexes_on(table, columns)` drops only the secondary indexes, UNIQUE
  constraints and foreign keys that involve `columns` (here: base_cell_id), keeping their definitions
  for `gridkit_restore_bulk_indexes(table)` as `gridkit_drop_bulk_indexes` does. With those gone the
  UPDATE is HOT, and only the one index on base_cell_id and its foreign key are built again after,
  instead of every index of the table (measured in scripts/bench_import.py; gridkit.spatial.bulk).
- `gridkit_restore_bulk_indexes(table)` first refreshes the table's statistics (ANALYZE): after a bulk
  write of base_cell_id they still said "all NULL", and re-adding the foreign key then checked the
  rows by a nested loop planned for one row (315 s instead of 1 s for 500,000 residents, seen in
  the benchmark); the statistics also serve every later query of the same transaction.
"""

from alembic import op

revision = "20261203_asg9b"
down_revision = "20261203_exq12b"
branch_labels = None
depends_on = None

# The same guard as migration 20261203_city9's functions: only gridkit's subject tables, and only for a
# caller who may write the table.
_TABLES = "'resident', 'building', 'legal_entity', 'incident'"
_CHECK = f"""
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
        WHERE c.oid = target AND c.relname IN ({_TABLES}) AND c.relnamespace = 'public'::regnamespace
    ) THEN
        RAISE EXCEPTION 'bulk index rebuild is only for gridkit''s subject tables, not %', target
            USING ERRCODE = '42501';
    END IF;
    -- Inside the function current_user is the owner: the caller is session_user.
    IF NOT (pg_catalog.has_table_privilege(session_user, target, 'INSERT')
            AND pg_catalog.has_table_privilege(session_user, target, 'UPDATE')) THEN
        RAISE EXCEPTION 'permission denied for table %', target USING ERRCODE = '42501';
    END IF;
"""


_RESTORE = """
CREATE OR REPLACE FUNCTION public.gridkit_restore_bulk_indexes(target regclass) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dropped record;
    built integer := 0;
BEGIN
{check}
    PERFORM pg_catalog.set_config('maintenance_work_mem', '256MB', true);{analyze}
    FOR dropped IN
        DELETE FROM gridkit_private.bulk_dropped_index WHERE table_oid = target RETURNING index_name, definition
    LOOP
        -- Written by gridkit_drop_bulk_indexes from pg_get_indexdef / pg_get_constraintdef: no caller's
        -- text is ever run.
        EXECUTE dropped.definition;
        built := built + 1;
    END LOOP;
    RETURN built;
END
$$"""

# Statistics of the rows as written, before the constraints are checked against them (set-based plans).
_ANALYZE = """
    IF EXISTS (SELECT 1 FROM gridkit_private.bulk_dropped_index WHERE table_oid = target) THEN
        EXECUTE pg_catalog.format('ANALYZE %s', target);
    END IF;"""


def upgrade() -> None:
    op.execute(_RESTORE.replace("{check}", _CHECK).replace("{analyze}", _ANALYZE))
    op.execute(
        f"""
CREATE FUNCTION public.gridkit_drop_bulk_indexes_on(target regclass, columns text[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found record;
    dropped integer := 0;
    keys int2[];
BEGIN
{_CHECK}
    SELECT coalesce(array_agg(a.attnum), '{{}}') INTO keys FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = target AND a.attname = ANY (columns) AND a.attnum > 0 AND NOT a.attisdropped;
    IF cardinality(keys) <> cardinality(columns) THEN
        RAISE EXCEPTION 'table % has no column among %', target, columns USING ERRCODE = '42703';
    END IF;
    -- Indexes a previous bulk write left dropped (it committed without building them): build them first.
    PERFORM public.gridkit_restore_bulk_indexes(target);
    -- Indexes on those columns; an expression or partial index might read them: dropped too.
    FOR found IN
        SELECT i.indexrelid, c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = target AND NOT i.indisprimary
          AND (i.indkey::int2[] && keys OR i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid)
    LOOP
        INSERT INTO gridkit_private.bulk_dropped_index VALUES (target, found.relname, found.definition);
        EXECUTE pg_catalog.format('DROP INDEX %s', found.indexrelid::regclass);
        dropped := dropped + 1;
    END LOOP;
    -- Foreign keys and UNIQUE constraints over those columns (not one a foreign key refers to).
    FOR found IN
        SELECT k.conname, pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', target, k.conname,
                                           pg_catalog.pg_get_constraintdef(k.oid)) AS definition
        FROM pg_catalog.pg_constraint k
        WHERE k.conrelid = target AND k.conkey && keys AND (k.contype = 'f' OR (k.contype = 'u' AND NOT EXISTS (
            SELECT 1 FROM pg_catalog.pg_constraint f WHERE f.contype = 'f' AND f.conindid = k.conindid)))
    LOOP
        INSERT INTO gridkit_private.bulk_dropped_index VALUES (target, found.conname, found.definition);
        EXECUTE pg_catalog.format('ALTER TABLE %s DROP CONSTRAINT %I', target, found.conname);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$"""
    )
    op.execute("ALTER TABLE resident SET (fillfactor = 50)")
    # Stored rows get the free space too (a rewrite keeps the table's fillfactor); empty tables skip it.
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM resident) THEN "
        "CLUSTER resident USING pk_resident; ALTER TABLE resident SET WITHOUT CLUSTER; END IF; END $$"
    )


def downgrade() -> None:
    op.execute(_RESTORE.replace("{check}", _CHECK).replace("{analyze}", ""))
    op.execute("ALTER TABLE resident RESET (fillfactor)")
    op.execute("DROP FUNCTION public.gridkit_drop_bulk_indexes_on(regclass, text[])")
