"""The `gridkit db` commands: gridkit's own PostGIS or an external database."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict

import click

from gridkit import db
from gridkit.cli import GridkitGroup, actor, cli_language, output, say, with_settings
from gridkit.cli.language import confirm
from gridkit.db.backup import backup, holdings, restore
from gridkit.errors import SetupError
from gridkit.incidents.categories import seed_standard_categories


@click.group("db", cls=GridkitGroup)
def db_():
    """The database: start, stop, inspect gridkit's own PostGIS or check an external one."""


@db_.command("up")
@output.command_output
@with_settings
def db_up(settings):
    """Make the database ready: initdb, start, create, migrate (harmless when already done)."""
    done = db.up(settings)
    lines = []
    if settings.embedded:
        cluster = db.cluster_for(settings)
        key = "cli.db.started" if done["started"] else "cli.db.already_running"
        lines.append(say(key, data_dir=str(cluster.data_dir), socket_dir=str(cluster.socket_dir)))
    key = "cli.db.migrated" if done["migrated"] else "cli.db.at_head"
    lines.append(say(key, revision=db.head_revision()))
    with db.transaction(settings) as session:
        done["categories_seeded"] = seed_standard_categories(session)
    if done["categories_seeded"]:
        lines.append(say("cli.db.categories_seeded", count=done["categories_seeded"]))
    return output.Result(done, lines=lines)


@db_.command("down")
@output.command_output
@with_settings
def db_down(settings):
    """Stop gridkit's own database server (never an external one)."""
    if not settings.embedded:
        raise SetupError("db.external_not_stopped")
    stopped = db.cluster_for(settings).stop()
    return output.Result({"stopped": stopped}, lines=[say("cli.db.stopped" if stopped else "cli.db.was_not_running")])


def _reach(settings, status: dict) -> None:
    """Add `reachable`, `schema_current` (and `error` when unreachable) to `status`."""
    status["reachable"] = False
    status["schema_current"] = None
    if settings.embedded and not status["running"]:
        status["error"] = say("cli.db.not_running")
        return
    engine = db.make_engine(db.database_url(settings))
    try:
        db.check_connection(engine, what=say("cli.db.the_database"))
        status["reachable"] = True
        status["schema_current"] = db.current_revision(engine)
    except SetupError as exc:
        status["error"] = exc.render(cli_language())
    finally:
        engine.dispose()


@db_.command("status")
@output.command_output
@with_settings
def db_status(settings):
    """Report whether the database is running, reachable and at the current schema; exit 1 when not reachable."""
    if settings.embedded:
        status = {"mode": "embedded", **asdict(db.cluster_for(settings).status())}
    else:
        status = {"mode": "external", "url": db.safe_url(db.database_url(settings))}
    status["schema_head"] = db.head_revision()
    _reach(settings, status)
    lines = output.field_lines(status)
    return output.Result(status, lines=lines, exit_code=0 if status["reachable"] else 1)


@db_.command("url")
@output.command_output
@with_settings
def db_url(settings):
    """Print the database URL gridkit uses (password hidden)."""
    url = db.safe_url(db.database_url(settings))
    return output.Result({"url": url}, lines=[url])


@contextmanager
def _table_progress(label: str):
    """Yield a `progress(done, total)` drawing a bar of tables on stderr (a backup's or a restore's)."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = output.progress(length=total, label=say(label))
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


@db_.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite the backup file if it exists.")
@output.command_output
@with_settings
def db_backup(settings, path, force):
    """Write the whole database and the incidents' photos to PATH (owner-only; pg_dump custom format and
    attachments/ in one tar), embedded or external."""
    with _table_progress("cli.db.backing_up") as progress:
        result = backup(settings, path, force=force, actor=actor(), progress=progress)
    return output.Result(result, lines=[say("cli.db.backed_up", path=result["path"], bytes=result["bytes"])])


@db_.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask before replacing the database's contents.")
@output.command_output
@with_settings
def db_restore(settings, path, yes):
    """Replace the database's contents with the backup at PATH (all-or-nothing), then migrate."""
    if not yes:
        confirm(say("cli.db.confirm_restore", path=path, **holdings(settings)))
    with _table_progress("cli.db.restoring") as progress:
        result = restore(settings, path, actor=actor(), progress=progress)
    return output.Result(result, lines=[say("cli.db.restored", path=result["path"])])
