"""The `gridkit dept` commands: departments."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option


@click.group(cls=GridkitGroup)
def dept():
    """Departments that own work grids (综治, 城管, 民政 …)."""


@dept.command("add")
@click.argument("code")
@click.argument("name")
@click.option("--jurisdiction", help="Admin unit code the work grid must cover (default: the whole city).")
@json_option
@with_settings
def dept_add(settings, code, name, jurisdiction, as_json):
    """Add a department with a 6-digit CODE and a NAME."""
    from gridkit.grids.work import add_department

    with db.transaction(settings) as session:
        d = add_department(session, code, name, jurisdiction=jurisdiction)
        result = {"code": d.code, "name": d.name, "jurisdiction": d.jurisdiction_code}
    echo_json(result) if as_json else click.echo(f"department {code} {name} added")


@dept.command("list")
@json_option
@with_settings
def dept_list(settings, as_json):
    """List departments with their current work grid version."""
    from gridkit.grids.work import list_departments

    with db.transaction(settings) as session:
        rows = list_departments(session)
    echo_json(rows) if as_json else echo_table(rows)
