"""incidents workflow: per-step deadlines, idempotency key, rework count, components, attachments

Revision ID: 20261203_incidents
Revises: 20261203_geometry
Create Date: 2026-12-03
"""
import geoalchemy2
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '20261203_incidents'
down_revision = '20261203_geometry'
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_NEW_INCIDENT_TIMES = ("accepted_at", "classified_at", "dispatched_at", "fed_back_at", "step_deadline")


def upgrade() -> None:
    op.add_column('incident_category', sa.Column('dept_code', sa.String(length=6), nullable=True))
    op.add_column('incident_category', sa.Column('step_hours', postgresql.JSONB(), nullable=True))
    op.create_check_constraint(op.f('ck_incident_category_dept_code_format'), 'incident_category',
                               "dept_code IS NULL OR dept_code ~ '^[0-9]{6}$'")

    op.create_geospatial_table(
        'component',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('category_code', sa.String(length=8), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=True),
        sa.Column('geom', geoalchemy2.types.Geometry(srid=4490, spatial_index=False,
                                                     from_text='ST_GeomFromEWKT', name='geometry',
                                                     nullable=False), nullable=False),
        sa.Column('base_cell_id', sa.Integer(), nullable=True),
        sa.Column('created_at', _TZ, server_default=sa.text('now()'), nullable=False),
        sa.CheckConstraint("code ~ '^[0-9]{16}$'", name=op.f('ck_component_code_format')),
        sa.ForeignKeyConstraint(['base_cell_id'], ['base_cell.id'], name=op.f('fk_component_base_cell_id_base_cell'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['category_code'], ['incident_category.code'],
                                name=op.f('fk_component_category_code_incident_category')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_component')),
        sa.UniqueConstraint('code', name=op.f('uq_component_code')),
    )
    op.create_geospatial_index('idx_component_geom', 'component', ['geom'], unique=False,
                               postgresql_using='gist', postgresql_ops={})
    op.create_index(op.f('ix_component_base_cell_id'), 'component', ['base_cell_id'], unique=False)
    op.create_index(op.f('ix_component_category_code'), 'component', ['category_code'], unique=False)

    op.alter_column('incident', 'geom', nullable=True)
    op.add_column('incident', sa.Column('lon', sa.Float(), sa.Computed('ST_X(geom)', persisted=True), nullable=True))
    op.add_column('incident', sa.Column('lat', sa.Float(), sa.Computed('ST_Y(geom)', persisted=True), nullable=True))
    for name in _NEW_INCIDENT_TIMES:
        op.add_column('incident', sa.Column(name, _TZ, nullable=True))
    op.add_column('incident', sa.Column('work_cell_id', sa.Integer(), nullable=True))
    op.add_column('incident', sa.Column('component_id', sa.Integer(), nullable=True))
    op.add_column('incident', sa.Column('source', sa.String(length=30), nullable=True))
    op.add_column('incident', sa.Column('idempotency_key', sa.String(length=100), nullable=True))
    op.add_column('incident', sa.Column('external_id', sa.String(length=100), nullable=True))
    op.add_column('incident', sa.Column('deadlines', postgresql.JSONB(), nullable=True))
    op.add_column('incident', sa.Column('rework_count', sa.Integer(), server_default='0', nullable=False))
    op.add_column('incident', sa.Column('revision', sa.Integer(), server_default='0', nullable=False))
    op.create_check_constraint(op.f('ck_incident_rework_count'), 'incident', 'rework_count >= 0')
    op.create_foreign_key(op.f('fk_incident_work_cell_id_work_cell'), 'incident', 'work_cell', ['work_cell_id'], ['id'],
                          ondelete='SET NULL')
    op.create_foreign_key(op.f('fk_incident_component_id_component'), 'incident', 'component', ['component_id'],
                          ['id'], ondelete='SET NULL')
    op.create_index(op.f('ix_incident_work_cell_id'), 'incident', ['work_cell_id'], unique=False)
    op.create_index(op.f('ix_incident_coordinator_id'), 'incident', ['coordinator_id'], unique=False)
    op.create_index('ix_incident_reported_at', 'incident', ['reported_at'], unique=False)
    op.create_index('uq_incident_idempotency_key', 'incident', ['idempotency_key'], unique=True,
                    postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.create_index('ix_incident_open_step_deadline', 'incident', ['step_deadline'], unique=False,
                    postgresql_where=sa.text('step_deadline IS NOT NULL'))

    op.create_table(
        'incident_attachment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('incident_id', sa.Integer(), nullable=False),
        sa.Column('history_id', sa.Integer(), nullable=True),
        sa.Column('path', sa.String(length=300), nullable=False),
        sa.Column('media_type', sa.String(length=50), nullable=False),
        sa.Column('size', sa.BigInteger(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('original_name', sa.String(length=200), nullable=True),
        sa.Column('created_at', _TZ, server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['history_id'], ['incident_history.id'],
                                name=op.f('fk_incident_attachment_history_id_incident_history'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['incident_id'], ['incident.id'],
                                name=op.f('fk_incident_attachment_incident_id_incident'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_incident_attachment')),
    )
    op.create_index(op.f('ix_incident_attachment_incident_id'), 'incident_attachment', ['incident_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_incident_attachment_incident_id'), table_name='incident_attachment')
    op.drop_table('incident_attachment')
    op.drop_index('ix_incident_open_step_deadline', table_name='incident')
    op.drop_index('uq_incident_idempotency_key', table_name='incident')
    op.drop_index('ix_incident_reported_at', table_name='incident')
    op.drop_index(op.f('ix_incident_coordinator_id'), table_name='incident')
    op.drop_index(op.f('ix_incident_work_cell_id'), table_name='incident')
    op.drop_constraint(op.f('fk_incident_component_id_component'), 'incident', type_='foreignkey')
    op.drop_constraint(op.f('fk_incident_work_cell_id_work_cell'), 'incident', type_='foreignkey')
    op.drop_constraint(op.f('ck_incident_rework_count'), 'incident', type_='check')
    for name in ("lat", "lon", "revision", "rework_count", "deadlines", "external_id", "idempotency_key", "source",
                 "component_id", "work_cell_id", *_NEW_INCIDENT_TIMES):
        op.drop_column('incident', name)
    # Cases kept without a location cannot go back to a NOT NULL column.
    op.execute("DELETE FROM incident WHERE geom IS NULL")
    op.alter_column('incident', 'geom', nullable=False)
    op.drop_index(op.f('ix_component_category_code'), table_name='component')
    op.drop_index(op.f('ix_component_base_cell_id'), table_name='component')
    op.drop_geospatial_index('idx_component_geom', table_name='component', postgresql_using='gist',
                             column_name='geom')
    op.drop_geospatial_table('component')
    op.drop_constraint(op.f('ck_incident_category_dept_code_format'), 'incident_category', type_='check')
    op.drop_column('incident_category', 'step_hours')
    op.drop_column('incident_category', 'dept_code')
