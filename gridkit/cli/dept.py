"""The `gridkit dept` commands: departments."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, output, say, with_settings
from gridkit.grids.work import add_department, list_departments


@click.group(cls=GridkitGroup)
def dept():
    """Departments that own work grids (综治, 城管, 民政 …)."""


@dept.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--jurisdiction", help="Admin unit code the work grid must cover (default: the whole city).")
@output.command_output
@with_settings
def dept_add(settings, code, name, jurisdiction):
    """Add a department with a 6-digit CODE and a NAME."""
    with db.transaction(settings) as session:
        d = add_department(session, code, name, jurisdiction=jurisdiction)
        result = {"code": d.code, "name": d.name, "jurisdiction": d.jurisdiction_code}
    return output.Result(result, lines=[say("cli.dept.added", code=code, name=name)])


@dept.command("list")
@output.command_output
@with_settings
def dept_list(settings):
    """List departments with their current work grid version."""
    with db.transaction(settings) as session:
        rows = list_departments(session)
    return output.Result(rows, rows=rows)
