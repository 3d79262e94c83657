"""The `gridkit subjects` commands: buildings, residents, entities, incidents."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.assign import unassigned_subjects
from gridkit.cli import KIND_CHOICE, GridkitGroup, actor, output, say, with_settings
from gridkit.cli.common import coordinators_of, responsibility_rows
from gridkit.cli.coordinator import SHOW_PHONES
from gridkit.pii import mask_or_reveal, pii_key
from gridkit.rules import parse_time
from gridkit.subjects import responsibility_of_subject, subject_stats


@click.group(cls=GridkitGroup)
def subjects():
    """Subjects: buildings, residents, legal entities, incidents."""


@subjects.command("unassigned")
@click.option("--kind", type=KIND_CHOICE)
@click.option("--limit", type=int)
@output.command_output
@with_settings
def subjects_unassigned(settings, kind, limit):
    """List subjects that lie outside every base cell."""
    with db.transaction(settings) as session:
        rows = unassigned_subjects(session, kind, limit)
    return output.Result(rows, rows=rows)


@subjects.command("stats")
@click.option(
    "--by",
    type=click.Choice(["district", "street", "community", "cell", "work-cell"]),
    default="community",
    show_default=True,
)
@click.option("--dept", "dept_code", help="Department (needed with --by work-cell).")
@output.command_output
@with_settings
def subjects_stats(settings, by, dept_code):
    """Count residents, households, buildings and legal entities per unit."""
    with db.transaction(settings) as session:
        rows = subject_stats(session, by, dept=dept_code)
    return output.Result(rows, rows=rows)


@subjects.command("responsible")
@click.option("--kind", type=KIND_CHOICE, required=True)
@click.argument("key")
@click.option("--at", "at", help="ISO-8601 time (default: now).")
@SHOW_PHONES
@output.command_output
@with_settings
def subjects_responsible(settings, kind, key, at, show_phones):
    """Who is responsible for one subject (KEY: building code, credit code, incident code or citizen ID)."""
    with db.transaction(settings) as session:
        result = responsibility_of_subject(
            session,
            kind,
            key,
            at=parse_time(at, field="--at"),
            pii_key=pii_key(settings) if kind == "residents" else None,
        )
        mask_or_reveal(
            session,
            coordinators_of(result),
            reveal=show_phones,
            actor=actor(),
            object_type="coordinator",
            subject=kind[:-1],
            subject_id=result["id"],
        )
    line = say(
        "cli.subjects.responsible",
        kind=kind[:-1],
        identity=result["identity"],
        base_cell=result["base_cell"] or say("cli.subjects.unassigned"),
    )
    return output.Result(result, lines=[line], rows=responsibility_rows(result))
