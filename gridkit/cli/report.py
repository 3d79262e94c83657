"""`gridkit report list` and `gridkit report NAME --by UNIT [-o PATH]`: standard reports (政务通)."""

from __future__ import annotations

from pathlib import Path

import click

from gridkit import db, messages
from gridkit.cli import GridkitGroup, as_option, cli_language, output, with_settings
from gridkit.errors import ValidationError
from gridkit.reports import GROUPINGS, REPORTS, report_list, run_report
from gridkit.reports.render import REPORT_FORMATS, cell, label, table_rows, write_report_file
from gridkit.users import area_in_scope, may_see_personal_data


class ReportGroup(GridkitGroup):
    """`list`, then one command per report; an unknown name gets the catalogue's message."""

    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            raise click.UsageError(
                ValidationError("report.unknown", report=args[0], reports=", ".join(REPORTS)).render(cli_language())
            )
        return super().resolve_command(ctx, args)


@click.group("report", cls=ReportGroup)
def report():
    """Standard reports (政务通) and decision support, as a table, CSV, XLSX or HTML."""


@report.command("list")
@output.command_output
def report_list_cmd():
    """List the reports with their default grouping."""
    lang = cli_language()
    rows = [dict(r, title=messages.render(r["title"], lang)) for r in report_list()]
    return output.Result(rows, rows=rows, columns=["name", "title", "default_by", "needs_dept"])


def _make_command(name: str):
    spec = REPORTS[name]

    @click.option(
        "--by", type=click.Choice(GROUPINGS), default=spec.default_by, show_default=True, help="Unit of the rows."
    )
    @click.option("--dept", help="Department (needed for --by work-cell).")
    @click.option("--area", help="Only this admin unit (district, street or community code).")
    @click.option("--from", "date_from", help="Start of the period (ISO date).")
    @click.option("--to", "date_to", help="End of the period (ISO date, included; ages are taken on it).")
    @click.option("--at", help="Time the base grid and work grid are taken at (default now).")
    @click.option(
        "--format", "format_", type=click.Choice(REPORT_FORMATS), help="File format (default: from the suffix of -o)."
    )
    @click.option("-o", "--output", "path", type=click.Path(dir_okay=False), help="Write the report to this file.")
    @click.option("--force", is_flag=True, help="Overwrite the output file.")
    @click.option("--capacity", type=click.Path(), help="school-age: CSV of places (code, band, capacity).")
    @click.option("--threshold", type=int, help="staffing: residents per coordinator above which a cell is listed.")
    @as_option()
    @output.command_output
    @with_settings
    def command(settings, by, dept, area, date_from, date_to, at, format_, path, force, capacity, threshold, as_user):
        from gridkit.cli.export import acting_user

        lang = cli_language()
        with db.transaction(settings) as session:
            # For a user named by --as who may not see residents there, counts of 1–2 residents are hidden.
            user = acting_user(session, as_user)
            area = area_in_scope(session, user, area) if user is not None else area  # a scoped user: its scope
            hidden = user is not None and not may_see_personal_data(user, area)
            result = run_report(
                session,
                name,
                by=by,
                dept=dept,
                area=area,
                date_from=date_from,
                date_to=date_to,
                at=at,
                capacity=capacity,
                threshold=threshold,
                hide_small_counts=hidden,
            )
        lines = []
        if path:
            fmt = format_ or Path(path).suffix.lstrip(".").lower()
            written = write_report_file(result, path, fmt, lang=lang, force=force)
            lines.append(f"{messages.render(f'report.{name}.title', lang)} → {written}")
            return output.Result(dict(result.to_dict(), path=str(written)), lines=lines)
        main = result.main
        rows = [{label(c, lang): cell(r, c, lang) for c in main.columns} for r in table_rows(main, lang)]
        return output.Result(result.to_dict(), lines=[messages.render(main.title, lang)], rows=rows)

    command.__doc__ = f"{name}: " + messages.render(f"report.{name}.title", "en") + " (see --help for options)."
    report.command(name)(command).help_message = messages.Message(
        "cli.report_help", name=name, title=messages.Message(f"report.{name}.title")
    )


for _name in REPORTS:
    _make_command(_name)
