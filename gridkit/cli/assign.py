"""The `gridkit assign` command: subjects to base cells."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.assign import KINDS, assign_subjects
from gridkit.cli import KIND_CHOICE, GridkitCommand, output, say, with_settings


@click.command("assign", cls=GridkitCommand)
@click.option("--kind", type=KIND_CHOICE, multiple=True, help="Subject kind (repeatable; default all).")
@output.command_output
@with_settings
def assign(settings, kind):
    """Assign subjects to base cells of the published edition; report assigned/unassigned/changed."""
    kinds = list(kind) or list(KINDS)
    # One step per kind; hidden with --json or when stderr is not a terminal (output.progress).
    with (
        output.progress(length=len(kinds), label=say("cli.progress.assign")) as bar,
        db.transaction(settings) as session,
    ):

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.pos)

        result = assign_subjects(session, kinds, progress=progress)
    return output.Result(result, rows=[{"kind": k, **v} for k, v in result.items()])
