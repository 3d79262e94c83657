"""first load: the application role may empty an empty subject table in its own transaction (TRUNCATE)

Revision ID: 20261204_imp9f
Revises: 20261204_imp9d
Create Date: 2026-12-04

A city's first import of a subject kind writes millions of rows into an empty table. When the table's
storage was created in the writing transaction (CREATE or TRUNCATE), PostgreSQL with wal_level
minimal (the embedded cluster) writes those rows and the indexes built after them without WAL: the
files are synced once at commit instead (and a rollback simply drops the new files). TRUNCATE gives
a table new storage, but only its owner (or a role granted TRUNCATE) may run it, and the application
role does not own the tables.

`gridkit_truncate_for_load(table)` runs as the owner and does only this: for gridkit's subject tables,
for a caller who may insert, update and delete their rows, it locks the table and the tables whose
foreign keys refer to it, directly or through another (ACCESS EXCLUSIVE, until the caller's transaction ends; those without waiting:
one another transaction is using is left alone, and false returned), and only when all of
them are empty then (read under the lock, in a transaction at READ COMMITTED, whose every statement
sees what was committed before it) empties them again with TRUNCATE, in the caller's transaction,
and returns true (for `resident`, its summary tables, derived from the residents alone, are emptied
too: the import rebuilds them). Otherwise it changes nothing and returns false. Identity sequences go on (no
RESTART): ids are those an ordinary insert would give. Nothing is ever lost: only empty tables are
truncated. Under REPEATABLE READ or SERIALIZABLE the transaction's snapshot could hide rows committed
after it began, and TRUNCATE is not MVCC-safe: it returns false there.
"""

from alembic import op

revision = "20261204_imp9f"
down_revision = "20261204_imp9d"
branch_labels = None
depends_on = None

# The subject tables of migration 20261203_city9's bulk functions (gridkit.assign.TABLES).
_TABLES = "'resident', 'building', 'legal_entity', 'incident'"

_FUNCTION = f"""
CREATE FUNCTION public.gridkit_truncate_for_load(target regclass) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tables regclass[];
    t regclass;
    found boolean;
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
        WHERE c.oid = target AND c.relname IN ({_TABLES}) AND c.relnamespace = 'public'::regnamespace
    ) THEN
        RAISE EXCEPTION 'truncation for a load is only for gridkit''s subject tables, not %', target
            USING ERRCODE = '42501';
    END IF;
    IF pg_catalog.current_setting('transaction_isolation') <> 'read committed' THEN
        RETURN false;
    END IF;
    -- The table first, then the tables referring to it, directly or through another (resident_cell refers to
    -- resident, which refers to building): TRUNCATE must empty them all in the same command.
    WITH RECURSIVE referring(t) AS (
        SELECT target
        UNION
        SELECT k.conrelid::regclass FROM pg_catalog.pg_constraint k JOIN referring r ON k.confrelid = r.t
        WHERE k.contype = 'f'
    )
    SELECT ARRAY[target] || coalesce(pg_catalog.array_agg(r.t) FILTER (WHERE r.t <> target), '{{}}')
    INTO tables FROM referring r;
    FOREACH t IN ARRAY tables LOOP
        -- Inside the function current_user is the owner: the caller is session_user.
        IF NOT (pg_catalog.has_table_privilege(session_user, t, 'INSERT')
                AND pg_catalog.has_table_privilege(session_user, t, 'UPDATE')
                AND pg_catalog.has_table_privilege(session_user, t, 'DELETE')) THEN
            RAISE EXCEPTION 'permission denied for table %', t USING ERRCODE = '42501';
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', target);
    -- A table referring to it that another transaction is using (say, a residents import writing its rows
    -- while it reads buildings) is not waited for: that could deadlock, and the table has rows by then.
    BEGIN
        FOREACH t IN ARRAY tables[2:] LOOP
            EXECUTE pg_catalog.format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE NOWAIT', t);
        END LOOP;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
    -- Each statement of this (volatile) function reads a new snapshot, taken after the locks: every
    -- row committed by anyone is seen, and nobody else can write these tables until the caller ends.
    FOREACH t IN ARRAY tables LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM %s)', t) INTO found;
        IF found THEN
            RETURN false;
        END IF;
    END LOOP;
    EXECUTE pg_catalog.format('TRUNCATE %s',
        (SELECT pg_catalog.string_agg(pg_catalog.format('%s', x), ', ') FROM pg_catalog.unnest(tables) x));
    -- The resident summary (migration 20261203_exp12) is derived from the residents alone: with none, its
    -- right content is none. It is emptied too, unless another transaction is using it (not waited for), so
    -- that the import's rebuild of it writes new storage as well.
    IF target = 'public.resident'::regclass
       AND pg_catalog.has_table_privilege(session_user, 'public.resident_cell_summary', 'DELETE')
       AND pg_catalog.has_table_privilege(session_user, 'public.resident_split_household', 'DELETE') THEN
        BEGIN
            LOCK TABLE public.resident_cell_summary, public.resident_split_household
                IN ACCESS EXCLUSIVE MODE NOWAIT;
            TRUNCATE public.resident_cell_summary, public.resident_split_household;
        EXCEPTION WHEN lock_not_available THEN
            NULL;
        END;
    END IF;
    RETURN true;
END
$$"""


def upgrade() -> None:
    op.execute(_FUNCTION)


def downgrade() -> None:
    op.execute("DROP FUNCTION public.gridkit_truncate_for_load(regclass)")
