"""byte-order collation ("C") for the keys residents are imported, deduplicated and summarised by

Revision ID: 20261204_imp9d
Revises: 20261203_asg9b
Create Date: 2026-12-04

`resident.id_number_hash` (a hex digest), `resident.household` and `resident_split_household.household`
are keys: compared for equality, grouped, indexed; never shown sorted by language. Under the database's
collation (C.UTF-8 in the embedded cluster, anything elsewhere) every comparison of their btree indexes
calls the C library's strcoll; with COLLATE "C" it is a memcmp. A bulk import builds the unique index on
id_number_hash and the household index again and fills resident_split_household: those index builds
and inserts were measured about 1.6× faster (scripts/bench_import.py). For C.UTF-8 the order is the
same (code points); a hex digest sorts the same under any collation.

Columns compared with these (the import's staging table) are declared COLLATE "C" too.
"""

from alembic import op

revision = "20261204_imp9d"
down_revision = "20261204_asg9d"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("resident", "id_number_hash", "varchar(64)"),
    ("resident", "household", "varchar(40)"),
    ("resident_split_household", "household", "varchar(40)"),
)

# The summary's change trigger names household (migration 20261203_exp12): dropped and made again around it.
_TRIGGER = """
    CREATE TRIGGER resident_changed_rows
        AFTER INSERT OR DELETE OR UPDATE OF base_cell_id, household, population_type ON resident
        FOR EACH STATEMENT EXECUTE FUNCTION resident_changed()"""


def _collate(collation: str) -> None:
    op.execute("DROP TRIGGER resident_changed_rows ON resident")
    for table, column, type_ in _COLUMNS:
        op.execute(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_} COLLATE "{collation}"')
    op.execute(_TRIGGER)


def upgrade() -> None:
    _collate("C")


def downgrade() -> None:
    _collate("default")
