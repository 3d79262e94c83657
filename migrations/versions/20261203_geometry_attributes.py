"""base cell names; file attributes of base cells and admin units

Revision ID: 20261203_geometry
Revises: 20261203_imports
Create Date: 2026-12-03
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '20261203_geometry'
down_revision = '20261203_imports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('base_cell', sa.Column('name', sa.String(length=100), nullable=True))
    op.add_column('base_cell', sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()),
                                         server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.add_column('admin_unit', sa.Column('attributes', postgresql.JSONB(astext_type=sa.Text()),
                                          server_default=sa.text("'{}'::jsonb"), nullable=False))


def downgrade() -> None:
    op.drop_column('admin_unit', 'attributes')
    op.drop_column('base_cell', 'attributes')
    op.drop_column('base_cell', 'name')
