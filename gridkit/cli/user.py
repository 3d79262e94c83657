"""The `gridkit user` commands: users, roles and scopes."""

from __future__ import annotations

import sys

import click

from gridkit import db
from gridkit.cli import GridkitGroup, output, personal_argument, say, with_settings
from gridkit.errors import ValidationError
from gridkit.models import ROLES
from gridkit.users import add_user, link_coordinator, list_users


@click.group(cls=GridkitGroup)
def user():
    """Users, their roles and the area they may see."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(list(ROLES)))
@click.option("--scope", help="Admin unit code the user is limited to (default: whole city).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--coordinator",
    "coordinator_phone",
    metavar="PHONE",
    help="Link a coordinator login to the coordinator with this phone (their work cells are its scope); '-' reads "
    "the phone from standard input (the line after the password with --password-stdin).",
)
@output.command_output
@with_settings
def user_add(settings, name, role, scope, password_stdin, coordinator_phone):
    """Add a user with a role (and optionally a scope and a password)."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
        if not password:
            raise ValidationError("cli.user.no_password_on_stdin")
    if coordinator_phone is not None:
        from gridkit.cli.coordinator import PHONE_ARGUMENT

        # '-': the line after the password's, with --password-stdin.
        coordinator_phone = personal_argument(coordinator_phone, **PHONE_ARGUMENT)
    with db.transaction(settings) as session:
        u = add_user(session, name, role, scope=scope, password=password)
        result = {
            "id": u.id,
            "name": u.name,
            "role": u.role,
            "scope": u.scope_code,
            "has_password": password is not None,
        }
        if coordinator_phone:
            result["coordinator_id"] = link_coordinator(session, u, coordinator_phone).id
    role_name = output.cell(role, "role")  # the role named in the reader's language, as `user list` does
    line = say("cli.user.added_scoped" if scope else "cli.user.added", name=name, role=role_name, scope=scope)
    return output.Result(result, lines=[line])


@user.command("list")
@output.command_output
@with_settings
def user_list(settings):
    """List users with their roles and scopes."""
    with db.transaction(settings) as session:
        rows = [
            {
                "name": u.name,
                "role": u.role,
                "scope": u.scope_code,
                "active": u.active,
                "has_password": bool(u.password_hash),
            }
            for u in list_users(session)
        ]
    return output.Result(rows, rows=rows)
