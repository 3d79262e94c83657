"""`gridkit reports prune`: remove import reports (GRIDKIT_HOME/reports) past their retention."""

from __future__ import annotations

import click

from gridkit.cli import GridkitGroup, output, say, with_settings
from gridkit.io.retention import prune_outputs


@click.group("reports", cls=GridkitGroup)
def reports():
    """The import reports under GRIDKIT_HOME/reports (they quote the rows an import refused)."""


@reports.command("prune")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=0),
    metavar="DAYS",
    help="Remove the reports written more than DAYS days ago (default: GRIDKIT_REPORT_RETENTION_DAYS).",
)
@output.command_output
@with_settings
def prune(settings, days):
    """Remove the import reports older than --older-than days, and abandoned download folders; list what went."""
    days = settings.report_retention_days if days is None else days
    removed = prune_outputs(settings.home, days)
    lines = [*removed["reports"], *removed["scratch"]]
    lines.append(say("cli.reports.pruned", count=len(removed["reports"]), scratch=len(removed["scratch"]), days=days))
    return output.Result({"older_than_days": days, **removed}, lines=lines)
