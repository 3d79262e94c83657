"""The `gridkit subjects` commands: buildings, residents, entities, incidents."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import KIND_CHOICE, GridkitGroup, actor, parse_time, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option


@click.group(cls=GridkitGroup)
def subjects():
    """Subjects: buildings, residents, legal entities, incidents."""


@subjects.command("unassigned")
@click.option("--kind", type=KIND_CHOICE)
@click.option("--limit", type=int)
@json_option
@with_settings
def subjects_unassigned(settings, kind, limit, as_json):
    """List subjects that lie outside every base cell."""
    from gridkit.assign import unassigned_subjects

    with db.transaction(settings) as session:
        rows = unassigned_subjects(session, kind, limit)
    echo_json(rows) if as_json else echo_table(rows)


@subjects.command("stats")
@click.option("--by", type=click.Choice(["district", "street", "community", "cell", "work-cell"]),
              default="community", show_default=True)
@click.option("--dept", "dept_code", help="Department (needed with --by work-cell).")
@json_option
@with_settings
def subjects_stats(settings, by, dept_code, as_json):
    """Count residents, households, buildings and legal entities per unit."""
    from gridkit.subjects import subject_stats

    with db.transaction(settings) as session:
        rows = subject_stats(session, by, dept=dept_code)
    echo_json(rows) if as_json else echo_table(rows)


@subjects.command("responsible")
@click.option("--kind", type=KIND_CHOICE, required=True)
@click.argument("key")
@click.option("--at", "at", help="ISO-8601 time (default: now).")
@click.option("--show-phones", is_flag=True, help="Show coordinators' phones in clear (audited).")
@json_option
@with_settings
def subjects_responsible(settings, kind, key, at, show_phones, as_json):
    """Who is responsible for one subject (KEY: building code, credit code, incident code or citizen ID)."""
    from gridkit.audit import record
    from gridkit.pii import pii_key
    from gridkit.standard.ids import mask_phone
    from gridkit.subjects import responsibility_of_subject

    with db.transaction(settings) as session:
        result = responsibility_of_subject(session, kind, key, at=parse_time(at),
                                           pii_key=pii_key(settings) if kind == "residents" else None)
        if show_phones:
            record(session, actor(), "personal_data.read", object_type=kind[:-1], object_id=result["id"],
                   detail_fields=["coordinator.phone"])
    for d in result["departments"]:
        for c in d["coordinators"]:
            if c["phone"] and not show_phones:
                c["phone"] = mask_phone(c["phone"])
    if as_json:
        echo_json(result)
        return
    click.echo(f"{kind[:-1]} {result['identity']}: base cell {result['base_cell'] or '(unassigned)'}")
    echo_table([{"dept": d["dept"], "name": d["dept_name"], "version": d["version"], "work_cell": d["work_cell"],
                 "coordinators": ", ".join(f"{c['name']} {c['phone'] or ''}".strip() for c in d["coordinators"])}
                for d in result["departments"]])
