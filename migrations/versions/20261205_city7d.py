"""indexes of the case lists at city scale: search, open cases, deep pages

Revision ID: 20261205_city7d
Revises: 20261205_rule7a
Create Date: 2026-12-05

Measured by scripts/bench_pages.py (300,000 cases over a year, 10 % open):

- A search of the case lists (`?q=`: the text anywhere in the case's code or description, ILIKE) read
  every case twice, for the page and for the pager's count (~350 ms each at 300,000 cases). Trigram
  indexes (pg_trgm, a trusted extension the database's owner may create) find a text of three or more
  characters, Chinese ones too, from the index.
- The lists of open cases (the supervisor's cases and dashboard, newest first or by deadline) filtered
  all 300,000 cases for the 30,000 open ones and counted them the same way: partial indexes over the
  open cases, in the lists' orders, hold only those.
- A deep page (`?page=` far down, OFFSET) of every case newest first: `ix_incident_reported_at` takes
  the id too, the order's tie-break, so the page's ids are read from the index alone.
"""

from alembic import op

revision = "20261205_city7d"
down_revision = "20261205_rule7a"
branch_labels = None
depends_on = None

# An open case, as the lists write it (gridkit.rules.OPEN_CASE_SQL): not closed, rejected or duplicate.
_OPEN = "status::text <> ALL ('{closed,rejected,duplicate}'::text[])"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE INDEX ix_incident_code_trgm ON incident USING gin (code gin_trgm_ops)")
    op.execute("CREATE INDEX ix_incident_description_trgm ON incident USING gin (description gin_trgm_ops)")
    op.execute(f"CREATE INDEX ix_incident_open_reported_at ON incident (reported_at, id) WHERE {_OPEN}")
    op.execute(f"CREATE INDEX ix_incident_open_deadline ON incident (step_deadline, id) WHERE {_OPEN}")
    op.execute("DROP INDEX ix_incident_reported_at")
    op.execute("CREATE INDEX ix_incident_reported_at ON incident (reported_at, id)")


def downgrade() -> None:
    op.execute("DROP INDEX ix_incident_reported_at")
    op.execute("CREATE INDEX ix_incident_reported_at ON incident (reported_at)")
    op.execute("DROP INDEX ix_incident_open_deadline")
    op.execute("DROP INDEX ix_incident_open_reported_at")
    op.execute("DROP INDEX ix_incident_description_trgm")
    op.execute("DROP INDEX ix_incident_code_trgm")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
