"""The `gridkit whois` command: who is responsible for a point."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import actor, parse_time, with_settings
from gridkit.cli.common import echo_json, echo_table, json_option


@click.command("whois")
@click.argument("lon", type=float)
@click.argument("lat", type=float)
@click.option("--at", "at", help="ISO-8601 time (default: now); answers with the grids valid then.")
@click.option("--show-phones", is_flag=True, help="Show coordinators' phones in clear (audited).")
@json_option
@with_settings
def whois(settings, lon, lat, at, show_phones, as_json):
    """Tell who is responsible for a point (CGCS2000 LON LAT): base cell, community, work cells, coordinators."""
    from gridkit.audit import record
    from gridkit.grids.work import responsibility_at
    from gridkit.standard.ids import mask_phone

    when = parse_time(at)
    with db.transaction(settings) as session:
        result = responsibility_at(session, lon, lat, when)
        if show_phones:
            record(session, actor(), "personal_data.read", object_type="coordinator",
                   detail_fields=["phone"], lon=lon, lat=lat)
    for d in result["departments"]:
        for c in d["coordinators"]:
            if c["phone"] and not show_phones:
                c["phone"] = mask_phone(c["phone"])
    if as_json:
        echo_json(result)
        return
    if result["base_cell"] is None:
        click.echo(f"({lon}, {lat}) is outside the base grid")
    else:
        click.echo(f"base cell  {result['base_cell']}")
        click.echo(f"community  {result['community']} {result['community_name']}")
    echo_table([{"dept": d["dept"], "name": d["dept_name"], "version": d["version"], "work_cell": d["work_cell"],
                 "coordinators": ", ".join(f"{c['name']} {c['phone'] or ''}".strip() for c in d["coordinators"])}
                for d in result["departments"]])
