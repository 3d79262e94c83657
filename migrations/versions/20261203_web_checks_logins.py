"""web: stored edition checks, sign-in failures, session generation per user

Revision ID: 20261203_web
Revises: 20261203_incidents
Create Date: 2026-12-03 16:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '20261203_web'
down_revision = '20261203_incidents'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('edition_check',
    sa.Column('edition_id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('result', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.ForeignKeyConstraint(['edition_id'], ['base_grid_edition.id'],
                            name=op.f('fk_edition_check_edition_id_base_grid_edition'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('edition_id', name=op.f('pk_edition_check'))
    )
    op.create_table('login_failure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_login_failure'))
    )
    op.create_index(op.f('ix_login_failure_address'), 'login_failure', ['address'], unique=False)
    op.create_index(op.f('ix_login_failure_at'), 'login_failure', ['at'], unique=False)
    op.create_index(op.f('ix_login_failure_name'), 'login_failure', ['name'], unique=False)
    op.add_column('app_user', sa.Column('session_generation', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('app_user', 'session_generation')
    op.drop_index(op.f('ix_login_failure_name'), table_name='login_failure')
    op.drop_index(op.f('ix_login_failure_at'), table_name='login_failure')
    op.drop_index(op.f('ix_login_failure_address'), table_name='login_failure')
    op.drop_table('login_failure')
    op.drop_table('edition_check')
