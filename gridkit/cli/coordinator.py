"""The `gridkit coordinator` commands: coordinators (网格员)."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, actor, codes_list, output, personal_argument, say, with_settings
from gridkit.grids.work import add_coordinator, list_coordinators
from gridkit.pii import mask_or_reveal

SHOW_PHONES = click.option(
    "--show-phones", is_flag=True, help="Show phone numbers in clear (recorded in the audit log)."
)
# How a phone given to a command is read (gridkit.cli.personal_argument): '-' from standard input, left out
# asked without echo; typed on the command line, it shows in `ps` and the shell's history (said).
PHONE_ARGUMENT = dict(prompt="cli.phone_prompt", visible="cli.phone_on_command_line", missing="cli.phone_missing")


@click.group(cls=GridkitGroup)
def coordinator():
    """Coordinators (网格员) and the work cells they cover."""


@coordinator.command("add")
@click.argument("name")
@click.option(
    "--phone",
    metavar="PHONE",
    help="Mobile phone number: '-' reads it from standard input, left out it is asked for unseen; typed here it "
    "shows in ps and the shell history.",
)
@click.option("--dept", "dept_code", required=True)
@click.option("--work-cell", "work_cells", required=True, help="Work cell codes, separated by commas.")
@output.command_output
@with_settings
def coordinator_add(settings, name, phone, dept_code, work_cells):
    """Add a coordinator covering work cells of a department's current work grid."""
    codes = codes_list(work_cells)
    phone = personal_argument(phone, **PHONE_ARGUMENT)
    with db.transaction(settings) as session:
        c = add_coordinator(session, name, phone, dept_code, codes)
        result = {"id": c.id, "name": c.name, "dept": dept_code, "work_cells": codes}
    return output.Result(result, lines=[say("cli.coordinator.added", id=c.id, name=name, work_cells=", ".join(codes))])


@coordinator.command("list")
@click.option("--dept", "dept_code", help="Only this department.")
@SHOW_PHONES
@output.command_output
@with_settings
def coordinator_list(settings, dept_code, show_phones):
    """List coordinators and their work cells (phones masked unless --show-phones)."""
    with db.transaction(settings) as session:
        rows = mask_or_reveal(
            session,
            list_coordinators(session, dept_code),
            reveal=show_phones,
            actor=actor(),
            object_type="coordinator",
            dept=dept_code,
        )
    for row in rows:
        row["work_cells"] = list(row["work_cells"])
    return output.Result(rows, rows=[dict(r, work_cells=",".join(r["work_cells"])) for r in rows])
