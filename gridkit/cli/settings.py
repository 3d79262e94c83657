"""The `gridkit settings` command: every GRIDKIT_* setting."""

from __future__ import annotations

import click

from gridkit.cli import GridkitCommand, output, say
from gridkit.config import describe_settings


@click.command("settings", cls=GridkitCommand)
@output.command_output
def settings():
    """List every GRIDKIT_* setting with its default and meaning."""
    rows = [{"variable": v, "default": d, "meaning": h} for v, d, h in describe_settings()]
    # The text says each meaning in the CLI's language (`cli.setting.<VARIABLE>`); JSON keeps config.py's help.
    # An unset default is said so (JSON: null), never Python's None.
    unset = say("cli.setting_unset")
    table = [
        dict(r, default=unset if r["default"] is None else r["default"], meaning=say(f"cli.setting.{r['variable']}"))
        for r in rows
    ]
    return output.Result(rows, rows=table)
