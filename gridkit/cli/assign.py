"""The `gridkit assign` command: subjects to base cells."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.assign import assign_subjects
from gridkit.cli import KIND_CHOICE, output, with_settings


@click.command("assign")
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Subject kind (repeatable; default all).")
@output.command_output
@with_settings
def assign(settings, kind):
    """Assign subjects to base cells of the published edition; report assigned/unassigned/changed."""
    with db.transaction(settings) as session:
        result = assign_subjects(session, list(kind))
    return output.Result(result, rows=[{"kind": k, **v} for k, v in result.items()])
