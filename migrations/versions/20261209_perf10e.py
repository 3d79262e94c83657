"""publishing a base grid edition moves the cases by heap-only updates: incident pages half free, and the
column-scoped bulk drop takes only the indexes that read the column

Revision ID: 20261209_perf10e
Revises: 20261209_sec10b
Create Date: 2026-12-09

Publishing an edition gives every case a new base_cell_id (the new edition's cells have new ids, even those
that did not change: gridkit.grids.editions._move_cases). The UPDATE was done with every secondary index,
UNIQUE key and foreign key of `incident` dropped and built again after (18 indexes, 7 foreign keys): at
300,000 cases the rebuild took 5.5 CPU s, more than the UPDATE itself (scripts/bench_city.py,
docs/benchmarks.md). Only one index reads base_cell_id. When no index reads a column an UPDATE changes and
the new version fits on the row's own page, PostgreSQL writes a heap-only tuple: no index gets an entry, so
none needs rebuilding. So, as migration 20261203_asg9b once did for residents:

- `incident` gets fillfactor 50: every page keeps room for one new version of each row on it. Rows already
  stored are rewritten once here (CLUSTER on the primary key) so that they have it too.
- `gridkit_drop_bulk_indexes_on(table, columns)` dropped, besides the indexes over `columns`, every expression
  and partial index (it could not tell which columns those read): 7 of incident's 18, among them a GiST and
  a GIN index. It now drops those whose expression or predicate reads one of `columns`, as PostgreSQL records
  it (pg_depend: an index depends on each column its keys, expressions and predicate read). Dropping is
  only ever a saving: an index left in place is kept up to date by the UPDATE.

A search of the case lists of one or two characters cannot use the trigram indexes. The GIN index of each case's
characters (migration 20261207_perf9c) held only those beyond ASCII, so a short text of ASCII alone (A1) read every
case, twice (the page and its count: 460 ms at 300,000 cases, finding none). It now holds every character of the
code and description, lower case (string_to_array(…, NULL): no regular expression): a text whose characters some
case lacks (A1: no code holds an A) is found from it; one of characters every case holds (SJ, 20: every code) is
still read from the cases, as the planner tells from the index's statistics. 3.7 MB instead of 0.35 MB at
300,000 cases. gridkit.incidents.queries.CASE_TEXT_CHARS writes the expression exactly as here.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "20261209_perf10e"
down_revision = "20261209_sec10b"
branch_labels = None
depends_on = None

_ANY_EXPRESSION = "          AND (i.indkey::int2[] && keys OR i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)"
_READS_COLUMNS = (
    "          AND (i.indkey::int2[] && keys OR EXISTS (\n"
    "              SELECT 1 FROM pg_catalog.pg_depend d\n"
    "              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = i.indexrelid\n"
    "                AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = target\n"
    "                AND d.refobjsubid = ANY (keys)))"
)


def _rewrite(old: str, new: str) -> str:
    """A DO block making gridkit_drop_bulk_indexes_on again from its own definition with `old` replaced by `new`
    (refused when the definition does not hold `old`)."""
    definition = "pg_catalog.pg_get_functiondef('public.gridkit_drop_bulk_indexes_on(regclass, text[])'::regprocedure)"
    return f"""
DO $$
DECLARE
    made text := pg_catalog.replace({definition}, $q${old}$q$, $q${new}$q$);
BEGIN
    IF made = {definition} THEN
        RAISE EXCEPTION 'gridkit_drop_bulk_indexes_on does not choose its indexes as expected';
    END IF;
    EXECUTE made;
END $$"""


def _rewrite_cases() -> None:
    """Stored cases get the free space too (a rewrite keeps the table's fillfactor); an empty table skips it."""
    op.execute(
        "DO $$ BEGIN IF EXISTS (SELECT 1 FROM incident) THEN "
        "CLUSTER incident USING pk_incident; ALTER TABLE incident SET WITHOUT CLUSTER; END IF; END $$"
    )


def _migration(name: str, file: str):
    """An earlier migration's module (those files are frozen: their helpers are reused, not copied)."""
    spec = importlib.util.spec_from_file_location(f"gridkit_migration_{name}", Path(__file__).with_name(file))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The characters beyond ASCII, as migration 20261207_perf9c indexed them.
_WIDE_CHARS = _migration("perf9c", "20261207_perf9c.py")._CASE_TEXT_CHARS
_EVERY_CHAR = "string_to_array(lower(COALESCE(code, '') || COALESCE(description, '')), NULL)"


def _chars_index(expression: str) -> None:
    op.execute("DROP INDEX ix_incident_text_chars")
    op.execute(f"CREATE INDEX ix_incident_text_chars ON incident USING gin (({expression}))")


def upgrade() -> None:
    op.execute(_rewrite(_ANY_EXPRESSION, _READS_COLUMNS))
    op.execute("ALTER TABLE incident SET (fillfactor = 50)")
    _chars_index(_EVERY_CHAR)
    _rewrite_cases()


def downgrade() -> None:
    _chars_index(_WIDE_CHARS)
    op.execute("ALTER TABLE incident RESET (fillfactor)")
    _rewrite_cases()
    op.execute(_rewrite(_READS_COLUMNS, _ANY_EXPRESSION))
