"""the application role reads the database's settings and appends to the audit log and case history, no more

Revision ID: 20261208_pii9g
Revises: 20261207_perf9c
Create Date: 2026-12-08

Every table the owner creates is granted SELECT, INSERT, UPDATE, DELETE to the application role by default
privileges (gridkit.db.embedded.EmbeddedCluster.grant). Some of them it must not write:

- `gridkit_config` (migration 20261207_ops9d) and `alembic_version` are written by `gridkit db up` as the
  owner; the application may read them. A rewritten time zone would count the evaluation's days in
  another zone without a recount; a rewritten revision would make the next `db up` skip or replay migrations.
- `audit_log` and `incident_history` are append-only for the application: who read which personal data, and
  who did what to each case, when. Only the owner rewrites them (`gridkit db archive-audit`).

The writes are taken back from every role but the table's owner (the application role's name is the
deployment's). The owner's bulk functions (migrations 20261203_city9, 20261204_imp9f and 20261204_inc9j), which
a bulk intake of historic cases calls for `incident_history`, asked the caller for UPDATE (and, to truncate
empty tables for a first load, DELETE) on it: INSERT is enough there now, as nothing written is changed (the
indexes are built again, only empty tables are truncated). `gridkit_rebuild_incident_eval()`, which `db up` runs as the owner after a change of zone, is
no longer executable by PUBLIC. EmbeddedCluster.grant does the same after each grant of the whole schema
(APP_READ_ONLY_TABLES, APP_APPEND_ONLY_TABLES, OWNER_ONLY_FUNCTIONS), and also for PostGIS's spatial_ref_sys.
"""

from alembic import op

revision = "20261208_pii9g"
down_revision = "20261207_perf9c"
branch_labels = None
depends_on = None

# table → the writes taken back (as in gridkit.db.embedded, at this revision).
_RESTRICTED = {
    "gridkit_config": "INSERT, UPDATE, DELETE, TRUNCATE",
    "alembic_version": "INSERT, UPDATE, DELETE, TRUNCATE",
    "audit_log": "UPDATE, DELETE, TRUNCATE",
    "incident_history": "UPDATE, DELETE, TRUNCATE",
}


def _for_each_reader(verb: str, restricted: dict[str, str]) -> str:
    """A DO block running `verb` (GRANT … TO / REVOKE … FROM) of each table's writes in `restricted` for every
    role but its owner that may read it (when the migrating role may act as the table's owner)."""
    pairs = ", ".join(f"('{table}', '{writes}')" for table, writes in restricted.items())
    return f"""
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT DISTINCT c.oid::regclass AS tab, t.writes,
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END
                   AS who
        FROM (VALUES {pairs}) AS t (name, writes)
        JOIN pg_catalog.pg_class c ON c.relname = t.name AND c.relnamespace = 'public'::regnamespace
        CROSS JOIN LATERAL pg_catalog.aclexplode(c.relacl) a
        WHERE a.grantee <> c.relowner AND a.privilege_type = 'SELECT'
          AND pg_catalog.pg_has_role(c.relowner, 'MEMBER')
    LOOP
        EXECUTE pg_catalog.format('{verb}', r.writes, r.tab, r.who);
    END LOOP;
END $$"""


# The privilege checks of the bulk functions, as they are and as they become: an append-only table's caller needs
# INSERT only (the index functions check the target, the truncation each table it empties).
_INDEX_CHECK = (
    "            AND pg_catalog.has_table_privilege(session_user, target, 'UPDATE')) THEN",
    "            AND (pg_catalog.has_table_privilege(session_user, target, 'UPDATE')\n"
    "                 OR target = 'public.incident_history'::regclass)) THEN",
)
_TRUNCATE_CHECK = (
    "                AND pg_catalog.has_table_privilege(session_user, t, 'UPDATE')\n"
    "                AND pg_catalog.has_table_privilege(session_user, t, 'DELETE')) THEN",
    "                AND ((pg_catalog.has_table_privilege(session_user, t, 'UPDATE')\n"
    "                      AND pg_catalog.has_table_privilege(session_user, t, 'DELETE'))\n"
    "                     OR t = 'public.incident_history'::regclass)) THEN",
)
_BULK_FUNCTIONS = (
    "gridkit_drop_bulk_indexes",
    "gridkit_drop_bulk_indexes_on",
    "gridkit_restore_bulk_indexes",
    "gridkit_truncate_for_load",
)


def _rewrite(forward: bool) -> str:
    """A DO block making the bulk functions again from their own definitions with the checks replaced (each
    function holds one of them; one that holds neither is refused)."""
    pairs = [_INDEX_CHECK, _TRUNCATE_CHECK] if forward else [(new, old) for old, new in (_INDEX_CHECK, _TRUNCATE_CHECK)]
    definition = "pg_catalog.pg_get_functiondef(f)"
    for old, new in pairs:
        definition = f"pg_catalog.replace({definition}, $q${old}$q$, $q${new}$q$)"
    names = ", ".join(f"'{name}'" for name in _BULK_FUNCTIONS)
    return f"""
DO $$
DECLARE
    f regprocedure;
    made text;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_catalog.pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname IN ({names})
    LOOP
        made := {definition};
        IF made = pg_catalog.pg_get_functiondef(f) THEN
            RAISE EXCEPTION 'function % does not check its caller''s privileges as expected', f;
        END IF;
        EXECUTE made;
    END LOOP;
END $$"""


def upgrade() -> None:
    op.execute(_rewrite(forward=True))
    op.execute(_for_each_reader("REVOKE %s ON %s FROM %s", _RESTRICTED))
    op.execute("REVOKE EXECUTE ON FUNCTION public.gridkit_rebuild_incident_eval() FROM PUBLIC")


def downgrade() -> None:
    op.execute("GRANT EXECUTE ON FUNCTION public.gridkit_rebuild_incident_eval() TO PUBLIC")
    # The writes given back to whoever reads the tables, as the default privileges gave them (TRUNCATE never was).
    given = {table: writes.removesuffix(", TRUNCATE") for table, writes in _RESTRICTED.items()}
    op.execute(_for_each_reader("GRANT %s ON %s TO %s", given))
    op.execute(_rewrite(forward=False))
