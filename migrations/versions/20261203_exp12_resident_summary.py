"""resident summary per base cell, kept for reports, and a change log that marks it stale

Revision ID: 20261203_exp12
Revises: 20261203_city9
Create Date: 2026-12-03

Reports over millions of residents read `resident_cell_summary` (residents, registered, floating
and households per base cell) and `resident_split_household` (the few households whose residents
live in more than one base cell, so that a unit counts each household once) instead of grouping
every resident by household. gridkit.reports.resident_summary refreshes both when `resident_change`
has rows: a statement-level trigger adds one row per statement that changes residents (an import
of a million rows adds one), so imports stay as fast as they were and nothing else has to
remember to refresh.
"""
from alembic import op

revision = '20261203_exp12'
down_revision = '20261203_city9'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE resident_change (id bigserial PRIMARY KEY, changed_at timestamptz NOT NULL DEFAULT now());
        CREATE TABLE resident_cell_summary (
            base_cell_id integer PRIMARY KEY,
            residents integer NOT NULL,
            registered integer NOT NULL,
            floating integer NOT NULL,
            households integer NOT NULL);
        CREATE TABLE resident_split_household (
            household varchar(40) NOT NULL,
            base_cell_id integer NOT NULL,
            PRIMARY KEY (base_cell_id, household));
        CREATE FUNCTION resident_changed() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.resident_change DEFAULT VALUES;
            RETURN NULL;
        END $$;
        CREATE TRIGGER resident_changed_rows
            AFTER INSERT OR DELETE OR UPDATE OF base_cell_id, household, population_type ON resident
            FOR EACH STATEMENT EXECUTE FUNCTION resident_changed();
        CREATE TRIGGER resident_changed_truncate AFTER TRUNCATE ON resident
            FOR EACH STATEMENT EXECUTE FUNCTION resident_changed();
        INSERT INTO resident_change DEFAULT VALUES;
        """
    )


def downgrade() -> None:
    op.execute(
        """
        DROP TRIGGER resident_changed_truncate ON resident;
        DROP TRIGGER resident_changed_rows ON resident;
        DROP FUNCTION resident_changed();
        DROP TABLE resident_split_household;
        DROP TABLE resident_cell_summary;
        DROP TABLE resident_change;
        """
    )
