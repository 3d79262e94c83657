"""the spatial indexes of subjects' optional geometries hold only the rows that have one

Revision ID: 20261205_lead9
Revises: 20261204_inc9j
Create Date: 2026-12-05

A resident located by the building code of a register has no point of its own; a building known by its
point has no footprint, one drawn as a footprint no point. Their GiST indexes held a NULL entry for every
such row: a city's first load of 1,000,000 residents with building codes built a GiST index of a million
NULLs (0.3 s of the import's 7.8 s, and the same again on `building.footprint` for buildings given as
points: scripts/bench_import.py). Each is now partial (`WHERE column IS NOT NULL`). Every spatial
predicate gridkit writes (`&&`, ST_Intersects, ST_Covers, ST_DWithin, ST_Contains: strict functions) implies
the column is not NULL, so the planner still uses them; gridkit orders by distance (`<->`) nowhere.
"""

from alembic import op

revision = "20261205_lead9"
down_revision = "20261204_inc9j"
branch_labels = None
depends_on = None

# (table, column): the subjects' optional geometries (models/subjects.py).
OPTIONAL_GEOMETRIES = (("building", "geom"), ("building", "footprint"), ("resident", "geom"), ("legal_entity", "geom"))


def _rebuild(partial: bool) -> None:
    for table, column in OPTIONAL_GEOMETRIES:
        where = f" WHERE {column} IS NOT NULL" if partial else ""
        op.execute(f"DROP INDEX IF EXISTS public.idx_{table}_{column}")
        op.execute(f"CREATE INDEX idx_{table}_{column} ON public.{table} USING gist ({column}){where}")


def upgrade() -> None:
    _rebuild(partial=True)


def downgrade() -> None:
    _rebuild(partial=False)
