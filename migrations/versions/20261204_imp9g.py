"""the bulk index restore checks a foreign key to a large table by a merge join

Revision ID: 20261204_imp9g
Revises: 20261204_cell9f
Create Date: 2026-12-04

`gridkit_restore_bulk_indexes` re-adds the foreign keys a bulk write dropped; PostgreSQL checks each by one
serial query, which it planned as a hash join, building a hash of the whole referenced table. Migration
20261204_cell9f turned hash joins off for a key over the table's own primary key (resident_cell → resident).
Now also for a key to a table of 100,000 rows or more by its statistics (resident → building): the two sides
are merged in order, the referenced one read through its primary key. 1,000,000 residents naming 1,000,000
buildings: 0.35–0.4 s instead of 1.5–1.7 s (scripts/bench_import.py). A key to a small table (base_cell) keeps
the hash join (a merge there sorts every referencing row: 0.7 s instead of 3.7 s, 20261204_cell9f).
"""

from alembic import op

revision = "20261204_imp9g"
down_revision = "20261204_cell9f"
branch_labels = None
depends_on = None

# The keys first, before the table's other indexes: a merge then reads the referencing table in one pass and
# sorts its column, where with the column's index already built it chose that index, whose every entry of a table
# just written costs a visit of the table's pages (3.2 s instead of 0.9 s, 1M residents on a loaded machine).
_OLD_ORDER = """    FOR dropped IN
        DELETE FROM gridkit_private.bulk_dropped_index WHERE table_oid = target RETURNING index_name, definition
    LOOP"""
_NEW_ORDER = """    FOR dropped IN
        SELECT index_name, definition FROM gridkit_private.bulk_dropped_index WHERE table_oid = target
        ORDER BY pg_catalog.strpos(definition, ' FOREIGN KEY (') > 0 DESC, ctid
    LOOP"""
_OLD_END = """        built := built + 1;
    END LOOP;"""
_NEW_END = """        built := built + 1;
    END LOOP;
    DELETE FROM gridkit_private.bulk_dropped_index WHERE table_oid = target;"""
_OLD_KEY = """           ) || ') REFERENCES ') > 0 THEN"""
_NEW_KEY = """           ) || ') REFERENCES ') > 0
           OR (pg_catalog.strpos(dropped.definition, ' FOREIGN KEY (') > 0
               AND (SELECT c.reltuples FROM pg_catalog.pg_class c
                    WHERE c.oid = pg_catalog.to_regclass(
                        pg_catalog.substring(dropped.definition, ' REFERENCES ([^ (]+)\\('))) >= 100000) THEN"""
_OLD_COMMENT = (
    "            -- A foreign key over the table's primary key: checked by merging two primary keys (20261204_cell9f)."
)
_NEW_COMMENT = (
    "            -- A foreign key over the table's primary key (20261204_cell9f) or to a large table (20261204_imp9g):"
    " merged."
)
_CHANGES = [(_OLD_ORDER, _NEW_ORDER), (_OLD_END, _NEW_END), (_OLD_KEY, _NEW_KEY), (_OLD_COMMENT, _NEW_COMMENT)]


def _rewrite(replacements: list[tuple[str, str]]) -> str:
    """A DO block making gridkit_restore_bulk_indexes again from its own definition with `replacements` applied."""
    definition = "pg_catalog.pg_get_functiondef(f)"
    checks = []
    for old, new in replacements:
        checks.append(f"pg_catalog.strpos(pg_catalog.pg_get_functiondef(f), $q${old}$q$) = 0")
        definition = f"pg_catalog.replace({definition}, $q${old}$q$, $q${new}$q$)"
    return f"""
DO $$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname = 'gridkit_restore_bulk_indexes'
    LOOP
        IF {" OR ".join(checks)} THEN
            RAISE EXCEPTION 'gridkit_restore_bulk_indexes is not the expected definition';
        END IF;
        EXECUTE {definition};
    END LOOP;
END $$"""


def upgrade() -> None:
    op.execute(_rewrite(_CHANGES))


def downgrade() -> None:
    op.execute(_rewrite([(new, old) for old, new in reversed(_CHANGES)]))
