"""resident: the masked ID format and the population type checked by domains, not by table CHECKs

Revision ID: 20261204_asg9d
Revises: 20261203_asg9b
Create Date: 2026-12-04

PostgreSQL checks every CHECK constraint of a table on every UPDATE of a row, whatever columns the
UPDATE sets. An assignment sets only base_cell_id, yet each of its millions of row updates ran the
masked-ID regular expression and the population-type test again: about a third of the UPDATE's time
(scripts/bench_import.py, 500,000 residents: 2.2 s with them, 1.4 s without).

A domain's constraint is checked where a value is given to the column (INSERT, COPY, an UPDATE that
sets that column), never when another column changes. So the two rules move into domains over the
same types, with the same conditions and names: `resident_id_masked` (id_masked_format) and
`resident_population_type` (population_type). The columns' types change without a rewrite (the
domains are added without their constraints first), then the constraints are added to the domains,
which checks the stored rows once. Clients see the base types (varchar).

And `gridkit_restore_bulk_indexes(table, columns)` takes the columns a column-scoped bulk write changed
(gridkit.spatial.bulk), so that its ANALYZE reads the statistics of those columns alone.
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "20261204_asg9d"
down_revision = "20261203_asg9b"
branch_labels = None
depends_on = None

_MASKED = "VALUE ~ '^[0-9]{4}\\*{10}[0-9]{3}[0-9X]$'"
_POPULATION = "VALUE IN ('registered', 'floating')"


# A column named in a trigger's UPDATE OF cannot change type: the trigger is made again, as it was.
_RETYPED_UNDER_TRIGGER = """
DO $$
DECLARE
    definition text := pg_get_triggerdef(
        (SELECT oid FROM pg_trigger WHERE tgrelid = 'public.resident'::regclass AND tgname = 'resident_changed_rows'));
BEGIN
    DROP TRIGGER resident_changed_rows ON public.resident;
    EXECUTE '{alter}';
    EXECUTE definition;
END $$"""




def _asg9b():
    """Migration 20261203_asg9b's module: its restore function, which this one narrows."""
    spec = importlib.util.spec_from_file_location(
        "gridkit_migration_asg9b", Path(__file__).with_name("20261203_asg9b_hot_assignment.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# After a write of a few columns (gridkit_drop_bulk_indexes_on), only their statistics changed: ANALYZE
# of those columns alone samples the same rows but skips every other column's (0.05 s instead of
# 0.25 s for 500,000 residents).
_ANALYZE_COLUMNS = """
    IF EXISTS (SELECT 1 FROM gridkit_private.bulk_dropped_index WHERE table_oid = target) THEN
        IF columns IS NULL THEN
            EXECUTE pg_catalog.format('ANALYZE %s', target);
        ELSE
            EXECUTE pg_catalog.format('ANALYZE %s (%s)', target,
                (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM pg_catalog.unnest(columns) c));
        END IF;
    END IF;"""


def _restore(columns: bool) -> str:
    old = _asg9b()
    text = old._RESTORE.replace("{check}", old._CHECK)
    if not columns:
        return text.replace("{analyze}", old._ANALYZE)
    signature = "(target regclass) RETURNS integer"
    return text.replace(signature, "(target regclass, columns text[] DEFAULT NULL) RETURNS integer").replace(
        "{analyze}", _ANALYZE_COLUMNS
    )


def upgrade() -> None:
    op.execute("DROP FUNCTION public.gridkit_restore_bulk_indexes(regclass)")
    op.execute(_restore(columns=True))
    op.execute("CREATE DOMAIN public.resident_id_masked AS varchar(18)")
    op.execute("CREATE DOMAIN public.resident_population_type AS varchar(10)")
    op.execute(
        _RETYPED_UNDER_TRIGGER.replace(
            "{alter}",
            "ALTER TABLE public.resident DROP CONSTRAINT ck_resident_id_masked_format, "
            "DROP CONSTRAINT ck_resident_population_type, "
            "ALTER COLUMN id_number_masked TYPE public.resident_id_masked, "
            "ALTER COLUMN population_type TYPE public.resident_population_type",
        )
    )
    op.execute(f"ALTER DOMAIN public.resident_id_masked ADD CONSTRAINT id_masked_format CHECK ({_MASKED})")
    op.execute(f"ALTER DOMAIN public.resident_population_type ADD CONSTRAINT population_type CHECK ({_POPULATION})")
    # Types are usable by PUBLIC by default; said here for the application role all the same.
    op.execute("GRANT USAGE ON DOMAIN public.resident_id_masked, public.resident_population_type TO PUBLIC")


def downgrade() -> None:
    op.execute("DROP FUNCTION public.gridkit_restore_bulk_indexes(regclass, text[])")
    op.execute(_restore(columns=False))
    checks = (
        f"ADD CONSTRAINT ck_resident_id_masked_format CHECK ({_MASKED.replace('VALUE', 'id_number_masked')}), "
        f"ADD CONSTRAINT ck_resident_population_type CHECK ({_POPULATION.replace('VALUE', 'population_type')})"
    )
    op.execute(
        _RETYPED_UNDER_TRIGGER.replace(
            "{alter}",
            "ALTER TABLE public.resident ALTER COLUMN id_number_masked TYPE varchar(18), "
            "ALTER COLUMN population_type TYPE varchar(10), " + checks.replace("'", "''"),
        )
    )
    op.execute("DROP DOMAIN public.resident_id_masked")
    op.execute("DROP DOMAIN public.resident_population_type")
