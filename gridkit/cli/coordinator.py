"""The `gridkit coordinator` commands: coordinators (网格员)."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, actor, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option


@click.group(cls=GridkitGroup)
def coordinator():
    """Coordinators (网格员) and the work cells they cover."""


@coordinator.command("add")
@click.argument("name")
@click.option("--phone", required=True)
@click.option("--dept", "dept_code", required=True)
@click.option("--work-cell", "work_cells", required=True, help="Work cell codes, separated by commas.")
@json_option
@with_settings
def coordinator_add(settings, name, phone, dept_code, work_cells, as_json):
    """Add a coordinator covering work cells of a department's current work grid."""
    from gridkit.grids.work import add_coordinator

    codes = [c.strip() for c in work_cells.split(",") if c.strip()]
    with db.transaction(settings) as session:
        c = add_coordinator(session, name, phone, dept_code, codes)
        result = {"id": c.id, "name": c.name, "dept": dept_code, "work_cells": codes}
    echo_json(result) if as_json else click.echo(f"coordinator {c.id} {name} covers {', '.join(codes)}")


@coordinator.command("list")
@click.option("--dept", "dept_code", help="Only this department.")
@click.option("--show-phones", is_flag=True, help="Show phone numbers in clear (recorded in the audit log).")
@json_option
@with_settings
def coordinator_list(settings, dept_code, show_phones, as_json):
    """List coordinators and their work cells (phones masked unless --show-phones)."""
    from gridkit.audit import record
    from gridkit.grids.work import list_coordinators
    from gridkit.standard.ids import mask_phone

    with db.transaction(settings) as session:
        rows = list_coordinators(session, dept_code)
        if show_phones and rows:
            record(session, actor(), "personal_data.read", object_type="coordinator",
                   detail_fields=["phone"], count=len(rows), dept=dept_code)
    for row in rows:
        if row["phone"] and not show_phones:
            row["phone"] = mask_phone(row["phone"])
        row["work_cells"] = list(row["work_cells"])
    echo_json(rows) if as_json else echo_table(
        [dict(r, work_cells=",".join(r["work_cells"])) for r in rows])
