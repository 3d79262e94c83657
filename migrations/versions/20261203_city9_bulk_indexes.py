"""bulk index rebuild for the application role: two SECURITY DEFINER functions owned by the schema owner

Revision ID: 20261203_city9
Revises: 20261203_web
Create Date: 2026-12-03

The application role (`gridkit` on the embedded database) does not own the tables, so it may not
drop and build their indexes around a bulk write (gridkit.spatial.bulk). These functions run as the
role that ran the migrations (the tables' owner) and do only that, for gridkit's subject tables, for
a caller who may write the table. The definitions of dropped indexes wait in a table of the schema
`gridkit_private`, which no other role may enter; everything happens in the caller's transaction,
so a rollback brings the indexes back as they were.
"""

from alembic import op

revision = "20261203_city9"
down_revision = "20261203_web"
branch_labels = None
depends_on = None

# The tables a bulk write may drop the indexes of (gridkit.assign.TABLES).
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


def upgrade() -> None:
    op.execute("CREATE SCHEMA gridkit_private")
    op.execute("REVOKE ALL ON SCHEMA gridkit_private FROM PUBLIC")
    op.execute(
        "CREATE TABLE gridkit_private.bulk_dropped_index (table_oid oid NOT NULL, index_name text NOT NULL, "
        "definition text NOT NULL, PRIMARY KEY (table_oid, index_name))"
    )
    op.execute("REVOKE ALL ON gridkit_private.bulk_dropped_index FROM PUBLIC")
    op.execute(
        f"""
CREATE FUNCTION public.gridkit_restore_bulk_indexes(target regclass) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    dropped record;
    built integer := 0;
BEGIN
{_CHECK}
    PERFORM pg_catalog.set_config('maintenance_work_mem', '256MB', true);
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
    )
    op.execute(
        f"""
CREATE FUNCTION public.gridkit_drop_bulk_indexes(target regclass) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    found record;
    dropped integer := 0;
BEGIN
{_CHECK}
    -- Indexes a previous bulk write left dropped (it committed without building them): build them first.
    PERFORM public.gridkit_restore_bulk_indexes(target);
    FOR found IN
        SELECT i.indexrelid, c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) AS definition
        FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = target
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.conindid = i.indexrelid)
    LOOP
        INSERT INTO gridkit_private.bulk_dropped_index VALUES (target, found.relname, found.definition);
        EXECUTE pg_catalog.format('DROP INDEX %s', found.indexrelid::regclass);
        dropped := dropped + 1;
    END LOOP;
    -- UNIQUE constraints too (not the primary key, nor one a foreign key refers to), and the table's
    -- foreign keys: checking each row against a unique index of random keys, and each row's reference
    -- by a trigger, cost most of a bulk write; adding the constraint again checks every row at once, in
    -- one query (the table stays locked meanwhile, so nobody else can write a duplicate or a dangling key).
    FOR found IN
        SELECT k.conname, pg_catalog.format('ALTER TABLE %s ADD CONSTRAINT %I %s', target, k.conname,
                                           pg_catalog.pg_get_constraintdef(k.oid)) AS definition
        FROM pg_catalog.pg_constraint k
        WHERE k.conrelid = target AND (k.contype = 'f' OR (k.contype = 'u' AND NOT EXISTS (
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


def downgrade() -> None:
    op.execute("DROP FUNCTION public.gridkit_drop_bulk_indexes(regclass)")
    op.execute("DROP FUNCTION public.gridkit_restore_bulk_indexes(regclass)")
    op.execute("DROP TABLE gridkit_private.bulk_dropped_index")
    op.execute("DROP SCHEMA gridkit_private")
