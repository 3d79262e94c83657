"""the audit log's pages stay fast as it grows for years: indexes by actor and by action, newest first

Revision ID: 20261206_ops8e
Revises: 20261205_city7d
Create Date: 2026-12-06

The administration page lists the newest audit rows, of one action (?action=) and, for an administrator
with a scope, of the users in it (gridkit.audit.recent). With only the primary key to walk newest first,
PostgreSQL read the whole log backwards for a user or an action whose rows are few or old (0.55 s at two
million rows, growing with the log). `(actor, id)` answers each user's newest rows from an index;
`(action, id)` replaces the index on `action` alone (the same lookups, newest first without a sort).
"""

from alembic import op

revision = "20261206_ops8e"
down_revision = "20261205_city7d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_log_actor_id", "audit_log", ["actor", "id"])
    op.create_index("ix_audit_log_action_id", "audit_log", ["action", "id"])
    op.drop_index("ix_audit_log_action", table_name="audit_log")


def downgrade() -> None:
    op.create_index("ix_audit_log_action", "audit_log", ["action"])
    op.drop_index("ix_audit_log_action_id", table_name="audit_log")
    op.drop_index("ix_audit_log_actor_id", table_name="audit_log")
