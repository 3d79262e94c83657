"""The `gridkit db` commands: gridkit's own PostGIS or an external database."""

from __future__ import annotations

from dataclasses import asdict

import click

from gridkit import db
from gridkit.cli import GridkitGroup, with_settings
from gridkit.cli.common import echo_json, json_option
from gridkit.errors import SetupError


@click.group("db", cls=GridkitGroup)
def db_():
    """The database: start, stop, inspect gridkit's own PostGIS or check an external one."""


@db_.command("up")
@json_option
@with_settings
def db_up(settings, as_json):
    """Make the database ready: initdb, start, create, migrate (harmless when already done)."""
    done = db.up(settings)
    if as_json:
        echo_json(done)
        return
    if settings.embedded:
        cluster = db.cluster_for(settings)
        click.echo(f"embedded database {'started' if done['started'] else 'already running'} "
                   f"in {cluster.data_dir} (socket {cluster.socket_dir})")
    click.echo(f"schema {'migrated to' if done['migrated'] else 'already at'} {db.head_revision()}")


@db_.command("down")
@json_option
@with_settings
def db_down(settings, as_json):
    """Stop gridkit's own database server (never an external one)."""
    if not settings.embedded:
        raise SetupError("GRIDKIT_DATABASE_URL is set: gridkit does not run that server and will not stop it.")
    stopped = db.cluster_for(settings).stop()
    echo_json({"stopped": stopped}) if as_json else click.echo(
        "embedded database stopped" if stopped else "embedded database was not running")


@db_.command("status")
@json_option
@with_settings
def db_status(settings, as_json):
    """Report whether the database is running and at the current schema."""
    if settings.embedded:
        status = asdict(db.cluster_for(settings).status())
        status["mode"] = "embedded"
    else:
        status = {"mode": "external", "url": db.safe_url(db.database_url(settings))}
    status["schema_head"] = db.head_revision()
    status["schema_current"] = None
    if not settings.embedded or status["running"]:
        engine = db.make_engine(db.database_url(settings))
        try:
            db.check_connection(engine, what="the database")
            status["reachable"] = True
            status["schema_current"] = db.current_revision(engine)
        except SetupError as exc:
            status["reachable"] = False
            status["error"] = exc.message
        finally:
            engine.dispose()
    if as_json:
        echo_json(status)
        return
    for key, value in status.items():
        click.echo(f"{key:15} {value}")


@db_.command("url")
@with_settings
def db_url(settings):
    """Print the database URL gridkit uses (password hidden)."""
    click.echo(db.safe_url(db.database_url(settings)))
