"""The `gridkit demo` command: load the demo city and serve it."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import with_settings
from gridkit.cli.common import echo_json, json_option
from gridkit.cli.serve import check_port_free, serve_app


@click.command("demo")
@click.option("--serve/--no-serve", default=True, help="Serve the web app after loading (default: yes).")
@click.option("--host", help="Address to bind (default GRIDKIT_HOST, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default GRIDKIT_PORT, 5000).")
@json_option
@with_settings
def demo(settings, serve, host, port, as_json):
    """Load the demo city (Shenzhen, 福田区) into the database, then serve it on http://127.0.0.1:5000."""
    from gridkit.demo import DEMO_PASSWORD, DEMO_USERS, load_demo
    from gridkit.pii import pii_key

    if serve:
        check_port_free(host or settings.host, port or settings.port)
    db.up(settings)
    key = pii_key(settings)
    with db.transaction(settings) as session:
        if as_json:
            counts = load_demo(session, key)
        else:
            with click.progressbar(length=10, label="loading the demo city", show_pos=True,
                                   item_show_func=lambda s: s) as bar:
                counts = load_demo(session, key, progress=lambda label, n: bar.update(1, f"{label}: {n}"))
    if as_json:
        echo_json(counts)
    elif counts.get("already"):
        click.echo("the demo city is loaded already")
    else:
        click.echo(", ".join(f"{k} {v}" for k, v in counts.items()))
        click.echo(f"demo users: {', '.join(u for u, _, _ in DEMO_USERS)} (password: {DEMO_PASSWORD})")
    if serve:
        serve_app(settings, host, port)
