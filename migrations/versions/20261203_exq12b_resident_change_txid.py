"""resident_change rows name the transaction that wrote them

Revision ID: 20261203_exq12b
Revises: 20261203_inc10
Create Date: 2026-12-03

An import or assignment that changed residents brings the resident summary up to date itself, at
its end and inside its transaction (gridkit.reports.resident_summary.residents_changed), for the
cells it touched only; it then removes the change-log rows of its own transaction, which it finds
by this column (txid_current() is the top-level transaction's id, savepoints included). Rows of
other transactions stay, for the next report to act on.
"""

from alembic import op

revision = "20261203_exq12b"
down_revision = "20261203_inc10"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE resident_change ADD COLUMN txid bigint NOT NULL DEFAULT txid_current()")


def downgrade() -> None:
    op.execute("ALTER TABLE resident_change DROP COLUMN txid")
