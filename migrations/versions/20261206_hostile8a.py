"""event categories beyond the standard's six major classes are kept, as the category table's rule allows

Revision ID: 20261206_hostile8a
Revises: 20261206_ops8e
Create Date: 2026-12-06

gridkit.standard.categories lets a deployment extend its event table with major classes past 06 (E0701
共享单车乱停放: a test says so), but the check on incident_category.code allowed events of 01-06 only, so
`gridkit import categories` of such a table ended in a traceback (IntegrityError). Components keep 01-06:
their major class is digits 7-8 of every component code.
"""

from alembic import op

revision = "20261206_hostile8a"
down_revision = "20261206_ops8e"
branch_labels = None
depends_on = None

_NAME = "ck_incident_category_code_format"
_OLD = "(kind = 'component' AND code ~ '^0[1-6][0-9]{2}$') OR (kind = 'event' AND code ~ '^E0[1-6][0-9]{2}$')"
_NEW = (
    "(kind = 'component' AND code ~ '^0[1-6][0-9]{2}$') "
    "OR (kind = 'event' AND code ~ '^E(0[1-9]|[1-9][0-9])[0-9]{2}$')"
)


def upgrade() -> None:
    op.drop_constraint(op.f(_NAME), "incident_category", type_="check")
    op.create_check_constraint(op.f(_NAME), "incident_category", _NEW)


def downgrade() -> None:
    # Refused (a check violation) while a category of an extended event class exists: delete it first.
    op.drop_constraint(op.f(_NAME), "incident_category", type_="check")
    op.create_check_constraint(op.f(_NAME), "incident_category", _OLD)
