"""The `gridkit demo` command: load the demo city and serve it."""

from __future__ import annotations

import click

from gridkit import db
from gridkit.cli import GridkitCommand, output, say, with_settings
from gridkit.cli.serve import HOST, PORT, check_port_free, serve_app
from gridkit.demo import DEMO_PASSWORD, DEMO_STEPS, DEMO_USERS, load_demo
from gridkit.pii import pii_key


def _step(label: str, count: int) -> str:
    """Return one progress line of the demo load: what was loaded, how many."""
    return f"{say('cli.demo.step.' + label.replace(' ', '_'))}: {count}"


@click.command("demo", cls=GridkitCommand)
@click.option("--serve/--no-serve", default=True, help="Serve the web app after loading (default: yes).")
@HOST
@PORT
@output.command_output
@with_settings
def demo(settings, serve, host, port):
    """Load the demo city (Shenzhen, 福田区) into the database (again: nothing changes), then serve it (default http://127.0.0.1:5000)."""
    if serve:
        check_port_free(host or settings.host, port or settings.port)
    db.up(settings)
    key = pii_key(settings)
    with (
        db.transaction(settings) as session,
        output.progress(length=DEMO_STEPS, label=say("cli.demo.loading"), item_show_func=lambda s: s) as bar,
    ):
        counts = load_demo(session, key, progress=lambda label, n: bar.update(1, _step(label, n)))
    if counts.get("already"):
        lines = [say("cli.demo.already")]
    else:
        lines = [
            output.pairs(counts),
            say("cli.demo.users", users=", ".join(u for u, _, _ in DEMO_USERS), password=DEMO_PASSWORD),
        ]
    result = output.Result(counts, lines=lines)
    if not serve:
        return result
    output.write(result, output.wants_json())
    serve_app(settings, host, port)
    return None
