"""The `gridkit user` commands: users, roles and scopes."""

from __future__ import annotations

import sys

import click

from gridkit import db
from gridkit.cli import GridkitGroup, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option
from gridkit.errors import ValidationError


@click.group(cls=GridkitGroup)
def user():
    """Users, their roles and the area they may see."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(["admin", "planner", "coordinator", "supervisor", "analyst"]))
@click.option("--scope", help="Admin unit code the user is limited to (default: whole city).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@json_option
@with_settings
def user_add(settings, name, role, scope, password_stdin, as_json):
    """Add a user with a role (and optionally a scope and a password)."""
    from gridkit.users import add_user

    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ValidationError("--password-stdin was given but standard input held no password.")
    with db.transaction(settings) as session:
        u = add_user(session, name, role, scope=scope, password=password)
        result = {"id": u.id, "name": u.name, "role": u.role, "scope": u.scope_code, "has_password": password is not None}
    echo_json(result) if as_json else click.echo(f"user {name} ({role}{', ' + scope if scope else ''}) added")


@user.command("list")
@json_option
@with_settings
def user_list(settings, as_json):
    """List users with their roles and scopes."""
    from gridkit.users import list_users

    with db.transaction(settings) as session:
        rows = [{"name": u.name, "role": u.role, "scope": u.scope_code, "active": u.active,
                 "has_password": bool(u.password_hash)} for u in list_users(session)]
    echo_json(rows) if as_json else echo_table(rows)
