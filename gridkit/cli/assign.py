"""The `gridkit assign` command: subjects to base cells."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import KIND_CHOICE, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option


@click.command("assign")
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Subject kind (repeatable; default all).")
@json_option
@with_settings
def assign(settings, kind, as_json):
    """Assign subjects to base cells of the published edition; report assigned/unassigned/changed."""
    from gridkit.assign import assign_subjects

    with db.transaction(settings) as session:
        result = assign_subjects(session, list(kind))
    echo_json(result) if as_json else echo_table([{"kind": k, **v} for k, v in result.items()])
