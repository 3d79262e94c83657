"""residents: birth date (from digits 7-14 of the citizen ID, kept at import)

Revision ID: 20261203_imports
Revises: 0002
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op

revision = '20261203_imports'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Residents imported before this have only a hash and a masked ID: their birth date stays NULL
    # until they are imported again (--replace).
    op.add_column('resident', sa.Column('birth_date', sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column('resident', 'birth_date')
