"""The `gridkit calendar` commands: the working calendar case deadlines count in (hours, holidays, 调休)."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitGroup, output, say, with_settings
from gridkit.cli.common import run_import


@click.group("calendar", cls=GridkitGroup)
def calendar_():
    """The working calendar: working hours per weekday, holidays and adjusted working days."""


@calendar_.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--encoding", help="Text encoding of a CSV file (default: UTF-8, else GB18030).")
@click.option("--sheet", help="Worksheet of an XLSX file (default: the first).")
@click.option("--workday-hours", metavar="SPANS", help="Hours of the adjusted working days that give none.")
@click.option("--workday-as", metavar="WEEKDAY", help="Weekday whose hours the adjusted working days giving none work.")
@output.command_output
@with_settings
def calendar_import(settings, path, encoding, sheet, workday_hours, workday_as):
    """Add or update holidays and adjusted working days from a CSV/XLSX file (date, kind, name; optional hours or
    as_weekday of an adjusted working day), all or nothing."""
    from gridkit.incidents.calendar import import_calendar_days

    return run_import(
        settings,
        "calendar-import",
        lambda session: import_calendar_days(
            session, path, encoding=encoding, sheet=sheet, workday_hours=workday_hours, workday_as=workday_as
        ),
    )


@calendar_.command("list")
@click.option("--year", type=int, help="Only the days of this year.")
@output.command_output
@with_settings
def calendar_list(settings, year):
    """List the holidays and adjusted working days."""
    from gridkit.incidents.calendar import list_calendar_days

    with db.transaction(settings) as session:
        rows = list_calendar_days(session, year)
    table = [
        {**r, "weekday": say(f"cli.weekday.{r['weekday']}"), "kind": say(f"cli.calendar.kind.{r['kind']}")}
        for r in rows
    ]
    return output.Result(rows, rows=table)


@calendar_.command("remove")
@click.argument("days", nargs=-1, required=True)
@output.command_output
@with_settings
def calendar_remove(settings, days):
    """Remove the exceptions of the dates DAYS (YYYY-MM-DD): they become ordinary days again."""
    from gridkit.incidents.calendar import remove_calendar_days

    with db.transaction(settings) as session:
        result = remove_calendar_days(session, list(days))
    lines = [say("cli.calendar.removed", count=result["removed"]), say("cli.calendar.recounted", **result)]
    return output.Result(result, lines=lines)


@calendar_.command("hours")
@click.option("--set", "specs", multiple=True, metavar="DAYS=SPANS", help="e.g. 1-5=09:00-12:00,14:00-18:00; 6= none.")
@output.command_output
@with_settings
def calendar_hours(settings, specs):
    """Show the working hours per weekday (1 Monday … 7 Sunday), or set those of some weekdays."""
    from gridkit.incidents.calendar import hours_rows, set_hours

    with db.transaction(settings) as session:
        changed = set_hours(session, list(specs)) if specs else None
        rows = changed["hours"] if changed else hours_rows(session)
    table = [
        {"weekday": say(f"cli.weekday.{r['weekday']}"), "hours": r["hours"] or say("cli.calendar.no_work")}
        for r in rows
    ]
    lines = [say("cli.calendar.recounted", recounted=changed["recounted"])] if changed else []
    return output.Result(rows, rows=table, lines=lines)


@calendar_.command("recount")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), help="Only cases with a step done on or after this day.")
@output.command_output
@with_settings
def calendar_recount(settings, since):
    """Count the step times of finished cases (and open ones) again on the calendar as it is now, in one
    transaction, audited: after a holiday added late or hours changed."""
    from gridkit.audit import CASES_RECOUNTED, record
    from gridkit.cli import actor
    from gridkit.incidents.calendar import load_calendar
    from gridkit.incidents.recount import recount_cases
    from gridkit.rules import local_tz

    start = since.replace(tzinfo=local_tz()) if since else None
    with db.transaction(settings) as session, output.progress_callback(say("cli.progress.recount")) as progress:
        result = recount_cases(session, load_calendar(session), since=start, progress=progress)
        record(session, actor(), CASES_RECOUNTED, since=start.date().isoformat() if start else None, **result)
    return output.Result(result, lines=[say("cli.calendar.recount_done", **result)])
