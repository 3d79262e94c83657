"""a draft records the version in force when it was started; a dispatched case records why it has no coordinator

Revision ID: 20261205_rule7a
Revises: 20261205_lead9
Create Date: 2026-12-05

- `work_grid_version.in_force_at_start_id`: for a draft, the department's version in force when it was started.
  Publishing a draft is refused once another version is in force (gridkit.grids.work.publishing). The check
  compared the version's publish time (the application's clock) with the draft's creation time (the database's
  transaction start): a web host whose clock lags the database's let a draft started before another publish
  undo it silently. Existing drafts get the version published last before their creation.
- `incident.dispatch_gap`: why a dispatch found no coordinator (outside every base cell, in no work cell of the
  department, a work cell without an active coordinator; gridkit.rules.DispatchGap). Such a case waits for a
  manual dispatch and is listed as such for the supervisors. Dispatched cases without a coordinator get theirs.

The application role reads and writes both through its table privileges (they cover new columns).
"""

import sqlalchemy as sa
from alembic import op

revision = "20261205_rule7a"
down_revision = "20261205_lead9"
branch_labels = None
depends_on = None

_GAPS = ("outside_grid", "no_work_cell", "no_coordinator")


def upgrade() -> None:
    op.add_column("work_grid_version", sa.Column("in_force_at_start_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_work_grid_version_in_force_at_start_id_work_grid_version"),
        "work_grid_version",
        "work_grid_version",
        ["in_force_at_start_id"],
        ["id"],
    )
    op.execute(
        "UPDATE work_grid_version d SET in_force_at_start_id = ("
        " SELECT v.id FROM work_grid_version v WHERE v.dept_code = d.dept_code AND v.status <> 'draft'"
        " AND v.published_at <= d.created_at ORDER BY v.published_at DESC LIMIT 1) WHERE d.status = 'draft'"
    )
    op.add_column("incident", sa.Column("dispatch_gap", sa.String(length=20), nullable=True))
    op.create_check_constraint(
        op.f("ck_incident_dispatch_gap"), "incident", f"dispatch_gap IS NULL OR dispatch_gap IN {_GAPS}"
    )
    op.execute(
        "UPDATE incident i SET dispatch_gap = CASE WHEN i.base_cell_id IS NULL THEN 'outside_grid' "
        "WHEN i.work_cell_id IS NULL THEN 'no_work_cell' ELSE 'no_coordinator' END "
        "WHERE i.status = 'dispatched' AND i.coordinator_id IS NULL"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_incident_dispatch_gap"), "incident", type_="check")
    op.drop_column("incident", "dispatch_gap")
    op.drop_constraint(
        op.f("fk_work_grid_version_in_force_at_start_id_work_grid_version"), "work_grid_version", type_="foreignkey"
    )
    op.drop_column("work_grid_version", "in_force_at_start_id")
