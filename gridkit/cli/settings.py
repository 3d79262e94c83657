"""The `gridkit settings` command: every GRIDKIT_* setting."""

from __future__ import annotations

import click

from gridkit.cli.common import echo_json, echo_table, json_option
from gridkit.config import describe_settings


@click.command("settings")
@json_option
def settings(as_json):
    """List every GRIDKIT_* setting with its default and meaning."""
    rows = [{"variable": v, "default": d, "meaning": h} for v, d, h in describe_settings()]
    echo_json(rows) if as_json else echo_table(rows)
