"""The `gridkit whois` command: who is responsible for a point."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitCommand, actor, output, say, with_settings
from gridkit.cli.common import coordinators_of, responsibility_rows
from gridkit.cli.coordinator import SHOW_PHONES
from gridkit.grids.work import responsibility_at
from gridkit.pii import mask_or_reveal
from gridkit.rules import parse_time


@click.command("whois", cls=GridkitCommand)
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--at", "at", help="ISO-8601 time (default: now); answers with the grids valid then.")
@SHOW_PHONES
@output.command_output
@with_settings
def whois(settings, lon, lat, at, show_phones):
    """Tell who is responsible for a point (CGCS2000 LON LAT): base cell, community, work cells, coordinators."""
    when = parse_time(at, field="--at")
    with db.transaction(settings) as session:
        result = responsibility_at(session, lon, lat, when)
        mask_or_reveal(
            session,
            coordinators_of(result),
            reveal=show_phones,
            actor=actor(),
            object_type="coordinator",
            lon=lon,
            lat=lat,
        )
    if result["base_cell"] is None:
        lines = [say("cli.whois.outside", lon=lon, lat=lat)]
    else:
        lines = [
            say("cli.whois.base_cell", base_cell=result["base_cell"]),
            say("cli.whois.community", community=result["community"], name=result["community_name"]),
        ]
        lines += [
            say("cli.whois.unplaced", dept=d["dept"], number=d["version"], code=result["base_cell"])
            for d in result["departments"]
            if d["unplaced"]
        ]
    return output.Result(result, lines=lines, rows=responsibility_rows(result))
