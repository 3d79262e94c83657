"""the rollups and the resident summary are the database's to write: the application role reads them

Revision ID: 20261209_sec10b
Revises: 20261209_cal10c
Create Date: 2026-12-09

Five tables are derived from others and were written as the application role, which therefore held INSERT,
UPDATE and DELETE on them (the default privileges of gridkit.db.embedded.EmbeddedCluster.grant): a web process
compromised or wrong could forge an evaluation or a population count that no case or resident supports.

- `incident_eval` and `incident_heat` (migration 20261203_inc10) are written by the statement triggers on
  `incident` only; `resident_change` (20261203_exp12) by the trigger on `resident` and `resident_cell`. Their
  trigger functions ran as the role whose statement fired them. They now run as their owner (SECURITY DEFINER),
  their bodies unchanged (as 20261207_cal9e, 20261207_ops9d and 20261207_perf9c made them), with a search path
  pinned to pg_catalog, then public, where only the owner creates objects, then pg_temp (never a caller's
  temporary table first). `gridkit_rebuild_incident_eval()` (the owner's recount of 20261207_ops9d, run by
  `db up`) keeps its body: trigger and recount still count the same rows.
- `resident_cell_summary` and `resident_split_household` (the resident summary,
  gridkit.reports.resident_summary) and the emptying of `resident_change` were written by Python. Three owner's
  functions do it now, holding the statements that were there:
  `gridkit_refresh_resident_summary()` rebuilds the summary from the residents (the log emptied first);
  `gridkit_resident_summary_upkeep(cells)` recounts some base cells after this transaction changed residents and
  removes this transaction's log rows; `gridkit_load_resident_summary(...)` replaces the summary with the rows a
  first load of residents grouped on the client (gridkit.reports.resident_summary_rows), for a caller who may
  insert residents. Each takes the summary's advisory lock first, as the Python did.

`gridkit_truncate_for_load('resident')` emptied the summary too when its caller could delete its rows: it now
always does (the summary of no residents is empty), as the owner.

The writes (and TRUNCATE) on the five tables are taken back from every role but their owner (migration
20261208_pii9g's way); EmbeddedCluster.grant does the same after each grant of the whole schema
(gridkit.db.embedded.APP_DERIVED_TABLES). A later migration rewriting one of the trigger functions with CREATE OR
REPLACE must say SECURITY DEFINER and the search path again (`DEFINER` below): the clause is part of the definition.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "20261209_sec10b"
down_revision = "20261209_cal10c"
branch_labels = None
depends_on = None

# What a function that writes derived tables as their owner says after its RETURNS / LANGUAGE: the trigger
# functions' bodies name tables of public unqualified (base_cell, incident_eval, incident_heat).
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"

TRIGGER_FUNCTIONS = (
    "incident_eval_insert",
    "incident_eval_delete",
    "incident_eval_update",
    "incident_heat_insert",
    "incident_heat_delete",
    "incident_heat_update",
    "resident_changed",
)
DERIVED_TABLES = (
    "incident_eval",
    "incident_heat",
    "resident_change",
    "resident_cell_summary",
    "resident_split_household",
)

# The resident summary's advisory lock (any constant every maintainer of the summary shares).
_LOCK_KEY = 0x6772_6B12

_REBUILD = """
    WITH g AS MATERIALIZED (
        SELECT c.base_cell_id, r.household, count(*) AS n,
               count(*) FILTER (WHERE r.population_type = 'registered') AS reg,
               count(*) FILTER (WHERE r.population_type = 'floating') AS flo
        FROM resident_cell c JOIN resident r ON r.id = c.resident_id GROUP BY c.base_cell_id, r.household),
    split AS (
        INSERT INTO resident_split_household (household, base_cell_id)
        SELECT g.household, g.base_cell_id FROM g
        JOIN (SELECT household FROM g WHERE household <> '' GROUP BY household HAVING count(*) > 1) s
          ON s.household = g.household
        -- In the primary key's order: each insert goes to the index's last page (twice as fast for millions).
        ORDER BY g.base_cell_id, g.household
        RETURNING 1)
    INSERT INTO resident_cell_summary (base_cell_id, residents, registered, floating, households)
    SELECT base_cell_id, sum(n), sum(reg), sum(flo), count(*) FILTER (WHERE household <> '')
    FROM g GROUP BY base_cell_id"""

# The upkeep of a few cells ($1), in one statement that reads each member of the touched cells once (`m`: the cell's
# index, then each resident by its key; a lateral subquery kept apart by OFFSET 0 is looked up member by member
# whatever the statistics say, where a join may be planned as a hash join over every resident):
# - the cells' counts are written over the old ones (`put`), cells left without residents lose their row (`emptied`);
# - the households with a member there now (`m`) or a split-household row there before are counted again: their
#   (household, cell) pairs are those of `m` and those of their other members, found by the household's index,
#   whose cells are looked up only for the members not already in `m` (outside the touched cells);
# - of their split-household rows, those no longer true go (`stale`): the old rows of the touched cells that are
#   not split households' rows now, and, in the other cells, those of the households now in one cell only (a
#   household's members in an untouched cell have not changed: its old rows there are among its pairs), each
#   found by the primary key; the new rows are added, the rows that stay are not written again.
# The rows deleted and inserted by the same statement are never the same keys. Run by EXECUTE: planned for the
# cells given, each time.
_UPKEEP = """
    WITH m AS MATERIALIZED (
        SELECT c.base_cell_id, r.id, r.household, r.population_type FROM resident_cell c
        CROSS JOIN LATERAL (SELECT r.id, r.household, r.population_type FROM resident r
                            WHERE r.id = c.resident_id OFFSET 0) r
        WHERE c.base_cell_id = ANY($1)),
    counted AS MATERIALIZED (
        SELECT base_cell_id, count(*) AS residents,
               count(*) FILTER (WHERE population_type = 'registered') AS registered,
               count(*) FILTER (WHERE population_type = 'floating') AS floating,
               count(DISTINCT household) FILTER (WHERE household <> '') AS households
        FROM m GROUP BY base_cell_id),
    put AS (
        INSERT INTO resident_cell_summary (base_cell_id, residents, registered, floating, households)
        SELECT base_cell_id, residents, registered, floating, households FROM counted
        ON CONFLICT (base_cell_id) DO UPDATE SET residents = excluded.residents, registered = excluded.registered,
            floating = excluded.floating, households = excluded.households),
    emptied AS (
        DELETE FROM resident_cell_summary s WHERE s.base_cell_id = ANY($1)
        AND NOT EXISTS (SELECT 1 FROM counted n WHERE n.base_cell_id = s.base_cell_id)),
    h AS MATERIALIZED (
        SELECT household FROM m WHERE household <> ''
        UNION SELECT household FROM resident_split_household WHERE base_cell_id = ANY($1)),
    pairs AS MATERIALIZED (
        SELECT household, base_cell_id FROM m WHERE household <> ''
        UNION
        SELECT o.household, c.base_cell_id FROM h
        CROSS JOIN LATERAL (SELECT r.id, r.household FROM resident r WHERE r.household = h.household OFFSET 0) o
        CROSS JOIN LATERAL (SELECT c.base_cell_id FROM resident_cell c WHERE c.resident_id = o.id OFFSET 0) c
        WHERE NOT EXISTS (SELECT 1 FROM m WHERE m.id = o.id)),
    counted_pairs AS MATERIALIZED (
        SELECT household, base_cell_id, count(*) OVER (PARTITION BY household) AS k FROM pairs),
    split AS (SELECT household, base_cell_id FROM counted_pairs WHERE k > 1),
    stale AS (
        DELETE FROM resident_split_household s WHERE s.ctid = ANY(ARRAY(
            SELECT x.ctid FROM (
                SELECT household, base_cell_id FROM resident_split_household o WHERE o.base_cell_id = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM split n
                                WHERE n.household = o.household AND n.base_cell_id = o.base_cell_id)
                UNION ALL
                SELECT household, base_cell_id FROM counted_pairs WHERE k = 1 AND NOT base_cell_id = ANY($1)) o
            CROSS JOIN LATERAL (SELECT x.ctid FROM resident_split_household x
                                WHERE x.base_cell_id = o.base_cell_id AND x.household = o.household OFFSET 0) x)))
    INSERT INTO resident_split_household (household, base_cell_id)
    SELECT household, base_cell_id FROM split ORDER BY base_cell_id, household
    ON CONFLICT DO NOTHING"""

# Emptied before a full rebuild: first the log (only rows of committed changes are visible, and those are in the
# snapshot of the rebuild that follows), then the summary.
_CLEAR = f"""
    PERFORM pg_catalog.pg_advisory_xact_lock({_LOCK_KEY});
    DELETE FROM public.resident_change;
    DELETE FROM public.resident_split_household;
    DELETE FROM public.resident_cell_summary;"""

_FUNCTIONS = {
    "gridkit_refresh_resident_summary()": f"""
CREATE FUNCTION public.gridkit_refresh_resident_summary() RETURNS void
LANGUAGE plpgsql {DEFINER} SET work_mem = '256MB' AS $$
BEGIN
{_CLEAR}
    -- work_mem (this call only): millions of (cell, household) groups stay in memory instead of spilling to disk.
    {_REBUILD};
END
$$""",
    # Its estimated cost (each lateral lookup priced at its worst) passes PostgreSQL's JIT thresholds over millions
    # of residents: compiling it with inlining and optimization took 0.5 s of server CPU, twice what running it
    # takes (5,000,000 residents, 20 cells: 0.72-0.91 s with JIT, 0.24-0.27 s without). No JIT in this call.
    "gridkit_resident_summary_upkeep(integer[])": f"""
CREATE FUNCTION public.gridkit_resident_summary_upkeep(cells integer[]) RETURNS void
LANGUAGE plpgsql {DEFINER} SET jit = off AS $$
BEGIN
    PERFORM pg_catalog.pg_advisory_xact_lock({_LOCK_KEY});
    DELETE FROM public.resident_change WHERE txid = pg_catalog.txid_current();
    IF pg_catalog.cardinality(cells) > 0 THEN
        EXECUTE $upkeep${_UPKEEP}$upkeep$ USING cells;
    END IF;
END
$$""",
    "gridkit_load_resident_summary(integer[], integer[], integer[], integer[], integer[], integer[], text[])": f"""
CREATE FUNCTION public.gridkit_load_resident_summary(
    cells integer[], residents integer[], registered integer[], floating integer[], households integer[],
    split_cells integer[], split_households text[]) RETURNS void
LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
    -- Inside the function current_user is the owner: the caller is session_user.
    IF NOT pg_catalog.has_table_privilege(session_user, 'public.resident', 'INSERT') THEN
        RAISE EXCEPTION 'permission denied for table resident' USING ERRCODE = '42501';
    END IF;
{_CLEAR}
    INSERT INTO public.resident_cell_summary (base_cell_id, residents, registered, floating, households)
    SELECT * FROM unnest(cells, residents, registered, floating, households);  -- ROWS FROM: not qualified
    INSERT INTO public.resident_split_household (base_cell_id, household)
    SELECT * FROM unnest(split_cells, split_households);
END
$$""",
}

# gridkit_truncate_for_load's emptying of the resident summary, as migration 20261204_imp9f wrote it and as it becomes.
_SUMMARY_CHECK = (
    "    IF target = 'public.resident'::regclass\n"
    "       AND pg_catalog.has_table_privilege(session_user, 'public.resident_cell_summary', 'DELETE')\n"
    "       AND pg_catalog.has_table_privilege(session_user, 'public.resident_split_household', 'DELETE') THEN",
    "    IF target = 'public.resident'::regclass THEN",
)


def _migration(name: str, file: str):
    """An earlier migration's module (those files are frozen: their helpers are reused, not copied)."""
    spec = importlib.util.spec_from_file_location(f"gridkit_migration_{name}", Path(__file__).with_name(file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pii9g = _migration("pii9g", "20261208_pii9g.py")
_WRITES = "INSERT, UPDATE, DELETE, TRUNCATE"


def _truncate_for_load(forward: bool) -> str:
    """A DO block making gridkit_truncate_for_load again from its definition with the summary's condition replaced
    (refused when the definition does not hold it)."""
    old, new = _SUMMARY_CHECK if forward else _SUMMARY_CHECK[::-1]
    return f"""
DO $$
DECLARE
    made text := pg_catalog.replace(
        pg_catalog.pg_get_functiondef('public.gridkit_truncate_for_load(regclass)'::regprocedure),
        $q${old}$q$, $q${new}$q$);
BEGIN
    IF made = pg_catalog.pg_get_functiondef('public.gridkit_truncate_for_load(regclass)'::regprocedure) THEN
        RAISE EXCEPTION 'gridkit_truncate_for_load does not empty the resident summary as expected';
    END IF;
    EXECUTE made;
END $$"""


def upgrade() -> None:
    for name in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION public.{name}() {DEFINER}")
    for sql in _FUNCTIONS.values():
        op.execute(sql)
    op.execute(_truncate_for_load(forward=True))
    op.execute(pii9g._for_each_reader("REVOKE %s ON %s FROM %s", dict.fromkeys(DERIVED_TABLES, _WRITES)))


def downgrade() -> None:
    # The writes given back to whoever reads the tables, as the default privileges gave them (TRUNCATE never was).
    given = dict.fromkeys(DERIVED_TABLES, _WRITES.removesuffix(", TRUNCATE"))
    op.execute(pii9g._for_each_reader("GRANT %s ON %s TO %s", given))
    op.execute(_truncate_for_load(forward=False))
    for signature in _FUNCTIONS:
        op.execute(f"DROP FUNCTION public.{signature}")
    for name in TRIGGER_FUNCTIONS:
        op.execute(f"ALTER FUNCTION public.{name}() SECURITY INVOKER RESET search_path")
