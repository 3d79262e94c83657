"""The `gridkit db` commands: gridkit's own PostGIS or an external database."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import asdict

import click
import psycopg

from gridkit import audit, db
from gridkit.cli import GridkitGroup, actor, cli_language, output, say, with_settings
from gridkit.cli.language import confirm
from gridkit.db.backup import backup, holdings, restore
from gridkit.db.restore_recovery import recover
from gridkit.db.restore_recovery import state as restore_state
from gridkit.errors import SetupError
from gridkit.incidents.categories import seed_standard_categories
from gridkit.rules import parse_time


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
    if done["interrupted_restore"]:
        lines.append(say(f"cli.db.restore_{done['interrupted_restore']['outcome']}", **done["interrupted_restore"]))
    key = "cli.db.migrated" if done["migrated"] else "cli.db.at_head"
    lines.append(say(key, revision=db.head_revision()))
    if done["time_zone_changed"]:
        lines.append(say("cli.db.time_zone_changed", zone=settings.time_zone))
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


def _settle_restore(settings, status: dict) -> dict:
    """Return {interrupted_restore, restore_running}: an interrupted restore is settled when the server
    is reachable (its outcome given), else only reported (True: `gridkit db up` settles it)."""
    found = restore_state(settings.home)
    if found["interrupted_restore"] and (not settings.embedded or status["running"]):
        try:
            found["interrupted_restore"] = recover(settings) or False
        except (SetupError, OSError, psycopg.Error) as exc:
            status["error"] = str(exc)
    return found


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
    status.update(_settle_restore(settings, status))
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


@db_.command("archive-audit")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option(
    "--before",
    required=True,
    help="Archive the rows before this day or time (YYYY-MM-DD: its 00:00 in the city's time zone).",
)
@click.option("--force", is_flag=True, help="Overwrite the archive file if it exists.")
@output.command_output
@with_settings
def db_archive_audit(settings, path, before, force):
    """Move the audit rows older than --before to PATH (gzip'd JSON lines, owner-only), all-or-nothing."""
    when = parse_time(before, field="before")
    # As the owner: the application role only appends to the audit log (migration 20261208_pii9g).
    with db.owner_transaction(settings) as session:
        result = audit.archive(session, path, when, actor=actor(), force=force)
    return output.Result(result, lines=[say("cli.db.audit_archived", **result)])
