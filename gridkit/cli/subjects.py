"""The `gridkit subjects` commands: buildings, residents, entities, incidents."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.assign import unassigned_subjects
from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.cli import KIND_CHOICE, GridkitGroup, actor, as_option, output, personal_argument, say, with_settings
from gridkit.cli.common import coordinators_of, responsibility_rows
from gridkit.cli.coordinator import SHOW_PHONES
from gridkit.errors import ValidationError
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
        residents = sum(row["kind"] == "residents" for row in rows)
        if residents:
            # A resident's point (its home, or its building's) is personal data, as its base cell is to
            # `subjects responsible`: listing them is a read, recorded by how many (no ID, name or point).
            record(
                session,
                actor(),
                PERSONAL_DATA_READ,
                object_type="resident",
                detail_fields=["lon", "lat"],
                count=residents,
                via="cli",
            )
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
@click.argument("key", required=False)
@click.option("--at", "at", help="ISO-8601 time (default: now).")
@SHOW_PHONES
@output.command_output
@with_settings
def subjects_responsible(settings, kind, key, at, show_phones):
    """Who is responsible for one subject (KEY: building code, credit code, incident code or citizen ID;
    a citizen ID is best not typed as KEY: '-' reads it from standard input, no KEY asks for it unseen)."""
    key = personal_argument(key, visible="cli.subjects.id_on_command_line" if kind == "residents" else None)
    with db.transaction(settings) as session:
        result = responsibility_of_subject(
            session,
            kind,
            key,
            at=parse_time(at, field="--at"),
            pii_key=pii_key(settings) if kind == "residents" else None,
        )
        if kind == "residents":
            # Where the holder of a citizen ID lives is personal data: the lookup itself is a read (the
            # resident's row id recorded, never the ID number).
            record(
                session,
                actor(),
                PERSONAL_DATA_READ,
                object_type="resident",
                object_id=result["id"],
                detail_fields=["base_cell"],
                via="cli",
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
        kind=say(f"cli.subject.{kind}"),
        identity=result["identity"],
        base_cell=result["base_cell"] or say("cli.subjects.unassigned"),
    )
    return output.Result(result, lines=[line], rows=responsibility_rows(result))


@subjects.command("erase")
@click.option(
    "--kind", type=click.Choice(["residents"]), required=True, help="Subject kind (only residents may be erased)."
)
@click.argument("key", required=False)
@click.option("--id", "row_id", type=int, help="The resident's row id (as `subjects responsible --json` gives it).")
@as_option()
@click.option("--yes", is_flag=True, help="Do not ask before erasing.")
@output.command_output
@with_settings
def subjects_erase(settings, kind, key, row_id, as_user, yes):
    """Erase one resident (moved away, or an erasure request): the row, its base cell and household membership,
    counts kept right, audited by row id (KEY: the citizen ID, '-' from standard input, left out asked unseen;
    or --id ROW_ID). Administrators only (--as), inside their scope."""
    from gridkit.cli.export import acting_user
    from gridkit.cli.language import confirm
    from gridkit.erasure import erase_resident, resident_to_erase

    if row_id is None:
        key = personal_argument(key)
    elif key is not None:
        raise ValidationError("erase.one_key")
    with db.transaction(settings) as session:
        user = acting_user(session, as_user)
        found = resident_to_erase(
            session, user, id_number=key if row_id is None else None, row_id=row_id, pii_key=pii_key(settings)
        )
        if not yes:
            confirm(say("cli.subjects.confirm_erase", id=found.id, identity=found.id_number_masked))
        result = erase_resident(session, found.id, user=user, actor=user.name if user else actor())
    # The database forgets the resident; earlier backups and import reports are files it cannot reach: said so.
    result["held_elsewhere"] = {"backups": True, "reports": str(settings.home / "reports")}
    result["report_retention_days"] = settings.report_retention_days
    elsewhere = say(
        "cli.subjects.erased_elsewhere", reports=settings.home / "reports", days=result["report_retention_days"]
    )
    return output.Result(result, lines=[say("cli.subjects.erased", id=result["id"]), elsewhere])
