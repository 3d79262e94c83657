"""The `gridkit settings` command: every GRIDKIT_* setting."""

from __future__ import annotations

import click

from gridkit.cli import GridkitCommand, output
from gridkit.config import describe_settings


@click.command("settings", cls=GridkitCommand)
@output.command_output
def settings():
    """List every GRIDKIT_* setting with its default and meaning."""
    rows = [{"variable": v, "default": d, "meaning": h} for v, d, h in describe_settings()]
    return output.Result(rows, rows=rows)
