"""Backups of gridkit's database: pg_dump / pg_restore in PostgreSQL's custom format, in one tar
with the incidents' attachments (gridkit.db.backup_files).

Works on the embedded cluster (as its superuser; the restored objects belong to the owner role
and the application role gets its grants again) and on an external database (as the URL's user).
A restore is all-or-nothing: into a fresh database that replaces the old one only when complete
(embedded), or in one transaction replacing gridkit's own objects only (external: another
application's in the same database are kept, gridkit.db.restore_external). Afterwards the schema is
migrated to the head.
"""

from __future__ import annotations

import fcntl
import glob
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from psycopg import sql
from sqlalchemy import text as sql_text
from sqlalchemy.engine import make_url

from gridkit import audit
from gridkit.config import Settings
from gridkit.db import cluster_for, database_url, forget_engine, head_revision, is_known_revision, transaction, up
from gridkit.db.backup_files import StagedPhotos, opened, swapped_in, write_archive
from gridkit.db.embedded import ADMIN_ROLE, DB_NAME, DEFAULT_PG_BIN, OWNER_ROLE
from gridkit.db.restore_external import clear_script
from gridkit.db.restore_recovery import ADVISORY_KEY, COMMITTED_MARK, recover, restore_lock
from gridkit.errors import Conflict, NotFound, SetupError, ValidationError

# Archive entries a restore leaves out: the postgis extension (made by the superuser before), its reference
# table of coordinate systems, which the extension fills itself, and comments on extensions (their owner's).
# Other extensions (pg_trgm, migration 20261205_city7d: trusted, so the owner role makes it) are restored
# (pg_dump writes CREATE EXTENSION IF NOT EXISTS).
_SKIP = (" EXTENSION - postgis", "COMMENT - EXTENSION", " spatial_ref_sys ")


def _program(settings: Settings, name: str) -> str:
    path = Path(settings.pg_bin or DEFAULT_PG_BIN) / name
    if not path.exists():
        raise SetupError("db.program_missing", program=name, path=str(path))
    return str(path)


def _target(settings: Settings, dbname: str | None = None) -> tuple[str, dict]:
    """Return (libpq connection URI, environment) for pg_dump / pg_restore; no password on the command line.

    The embedded cluster is reached by its URL alone (the user's PG* settings, meant for another server, are
    dropped); an external database as gridkit's own connections reach it: with the libpq settings of the
    environment too (PGPASSWORD, PGSSLMODE, PGSSLROOTCERT...), which the URL's own parameters override."""
    if settings.embedded:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        cluster = cluster_for(settings)
        url = make_url(cluster.url(dbname or DB_NAME, role=ADMIN_ROLE))
    else:
        env = dict(os.environ)
        url = make_url(database_url(settings))
        if dbname:
            url = url.set(database=dbname)
        if url.password:
            env["PGPASSWORD"] = str(url.password)
            url = url.set(password=None)
    return url.set(drivername="postgresql").render_as_string(hide_password=False), env


def _ready(settings: Settings) -> None:
    """Start an existing embedded cluster if needed (never make one); an external server must be up."""
    if settings.embedded:
        cluster = cluster_for(settings)
        if not cluster.initialised:
            raise SetupError("db.no_cluster", home=str(settings.home))
        cluster.start()
        cluster.wait_ready()


# What pg_dump and pg_restore say with --verbose as they start each table's rows: the progress shown.
_TABLE_STARTED = re.compile(r'(?:dumping contents of|processing data for) table "([^"]+)"')
# Of the rest of a --verbose run's output, the lines that tell why it failed.
_FAILURE = re.compile(r"error|fatal|DETAIL:", re.IGNORECASE)


def _run(args: list[str], env: dict, what: str, step: Callable[[str], None] | None = None) -> None:
    """Run a PostgreSQL program; a failure is a SetupError with its message. With `step`, the program
    runs --verbose and `step(table)` is called as it starts each table's rows."""
    if step is None:
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    else:
        with subprocess.Popen(
            [args[0], "--verbose", *args[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        ) as proc:
            lines = []
            for line in proc.stderr:
                started = _TABLE_STARTED.search(line)
                if started:
                    step(started.group(1))
                elif _FAILURE.search(line):
                    lines.append(line.strip())
    if proc.returncode != 0:
        # The error, and PostgreSQL's detail of it (which objects stood in the way of a DROP).
        detail = lines[:1] + [line for line in lines[1:] if line.startswith("DETAIL:")][:1]
        raise SetupError(
            "db.backup_program_failed", program=Path(args[0]).name, what=what, detail=" ".join(detail) or "-"
        )


def _stepper(progress: Callable[[int, int], None], total: Callable[[], int]) -> Callable[[str], None]:
    """Return a `step(table)` that calls `progress(tables started, total())` (never past the total);
    the total is asked at the first table, once the program has reached the database."""
    seen: list[str] = []
    known: list[int] = []

    def step(table: str) -> None:
        if not known:
            known.append(total())
        seen.append(table)
        progress(min(len(seen), known[0]), known[0])

    return step


def _tables(settings: Settings) -> int:
    """Return how many tables hold rows a dump writes (gridkit's schemas): the length of a backup's progress."""
    with transaction(settings) as session:
        return session.scalar(
            sql_text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_%'"
            )
        )


def backup(
    settings: Settings,
    path: str | Path,
    *,
    force: bool = False,
    actor: str = "cli",
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Write the whole database and the attachments to `path` (see backup_files); return {path, bytes, attachments}.

    The file holds residents' personal data and password hashes: it is written owner-only (0600)
    whatever the umask, under a temporary name in the same folder that becomes `path` only when
    everything was written (nothing is left behind otherwise), and an existing `path` is kept unless
    `force`. The backup is recorded in the audit log as a read of personal data by `actor`.
    `progress(done, total)` is called as pg_dump starts each table's rows.
    """
    _ready(settings)
    path = Path(path).absolute()
    if not path.parent.is_dir():
        raise NotFound("db.backup_folder_missing", path=str(path.parent))
    if path.exists() and not force:
        raise Conflict("db.backup_exists", path=str(path))
    target, env = _target(settings)
    with private_temps(path, (".dump.partial", ".partial")) as (dump, partial):
        step = None if progress is None else _stepper(progress, lambda: _tables(settings))
        _run(
            [_program(settings, "pg_dump"), "--format=custom", "--file", str(dump), "--dbname", target],
            env,
            str(path),
            step,
        )
        photos = write_archive(partial, dump, settings.home)
        settle(partial, path, force)
    size = path.stat().st_size
    with transaction(settings) as session:
        audit.record(
            session,
            actor,
            audit.PERSONAL_DATA_READ,
            object_type="database_backup",
            path=str(path),
            bytes=size,
            attachments=photos,
        )
    return {"path": str(path), "bytes": size, "attachments": photos}


# A temporary file of a writer killed half-way is removed by the next writer of the same name once it is
# unlocked and older than this (a file just made is locked a moment after it is made).
STALE_SECONDS = 60.0


@contextmanager
def private_temps(path: Path, suffixes: tuple[str, ...]) -> Iterator[list[Path]]:
    """Yield new empty owner-only (0600) files beside `path`, whatever the umask, one per suffix, removed on exit.

    Each is locked (flock) while its writer lives: those of a writer of `path` killed half-way (kill -9, a
    power cut), full copies of the personal data, are removed by the next one instead of staying forever."""
    _remove_stale_temps(path)
    made, locks = [], []
    try:
        for suffix in suffixes:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
            locks.append(fd)
            made.append(Path(name))
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield made
    finally:
        for name in made:
            name.unlink(missing_ok=True)
        for fd in locks:
            os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if time.time() - os.fstat(fd).st_mtime > STALE_SECONDS:
                stale.unlink(missing_ok=True)
        except OSError:
            pass  # a live writer's
        finally:
            os.close(fd)


def settle(partial: Path, path: Path, force: bool) -> None:
    """Give the finished dump its name: replacing `path` only when `force`, else never over a file made meanwhile."""
    if force:
        os.replace(partial, path)
        return
    try:
        os.link(partial, path)
    except FileExistsError:
        raise Conflict("db.backup_exists", path=str(path)) from None


def _restore_list(settings: Settings, path: Path, env: dict, *, shown: Path) -> Path:
    """Return a pg_restore list file of the archive's entries without the postgis extension's own.

    Refuses an archive that is not a gridkit database (no `alembic_version` with a revision of
    gridkit's migrations) and one made by a newer gridkit (a revision this version does not know),
    before anything changes."""
    proc = subprocess.run(
        [_program(settings, "pg_restore"), "--list", str(path)], capture_output=True, text=True, env=env
    )
    if proc.returncode != 0 or not any(" TABLE DATA public alembic_version " in x for x in proc.stdout.splitlines()):
        raise ValidationError("db.not_a_backup", path=str(shown))
    revision = _archive_revision(settings, path, env)
    if revision is None:
        raise ValidationError("db.not_a_backup", path=str(shown))
    if not is_known_revision(revision):
        raise ValidationError("db.backup_too_new", path=str(shown), revision=revision, head=head_revision())
    kept = [line for line in proc.stdout.splitlines() if not any(s in line for s in _SKIP)]
    fd, name = tempfile.mkstemp(prefix="gridkit-restore-", suffix=".list")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(kept) + "\n")
    return Path(name)


def _archive_revision(settings: Settings, path: Path, env: dict) -> str | None:
    """Return the Alembic revision held in the archive's `alembic_version` rows (None when unreadable)."""
    proc = subprocess.run(
        [_program(settings, "pg_restore"), "--data-only", "--table=alembic_version", "--file=-", str(path)],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        return None
    lines = proc.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("COPY ") and "alembic_version" in line]
    if not starts:
        return None
    rows = []
    for line in lines[starts[0] + 1 :]:
        if line == "\\.":
            break
        rows.append(line.strip())
    return rows[0] if len(rows) == 1 else None


# What a restore replaces, counted for the question before it (`gridkit db restore` without --yes).
HELD = ("incident", "resident", "building", "coordinator", "department", "app_user", "work_grid_version")


def holdings(settings: Settings) -> dict[str, int]:
    """Return the row count of each table of HELD: what the database holds now, lost unless in the backup."""
    with transaction(settings) as session:
        return {t: session.scalar(sql_text(f"SELECT count(*) FROM {t}")) for t in HELD}


def restore(
    settings: Settings, path: str | Path, *, actor: str = "cli", progress: Callable[[int, int], None] | None = None
) -> dict:
    """Replace the database's contents and the attachments with the backup at `path`, then migrate;
    return {path, migrated}.

    The database and the photos change together or not at all: the photos are staged beside
    home/attachments first (refused before anything changes when they cannot be), swapped in by
    rename just before the database is (embedded: the restored database renamed in; external: the
    restore's one transaction), and swapped back if the database's step fails.

    The restore is recorded by `actor` in the restored database's audit log (the old one is replaced).
    `progress(done, total)` is called as pg_restore starts each table's rows (embedded database)."""
    path = Path(path).absolute()
    if not path.is_file():
        raise NotFound("db.backup_missing", path=str(path))
    _ready(settings)
    recover(settings)  # a restore killed before this one: its photos and database first set right
    _, env = _target(settings)
    with restore_lock(settings.home), opened(path, settings.home) as (dump, photos):
        listing = _restore_list(settings, dump, env, shown=path)
        try:
            if settings.embedded:
                tables = sum(" TABLE DATA " in line for line in listing.read_text().splitlines())
                step = None if progress is None else _stepper(progress, lambda: tables)
                _restore_embedded(settings, dump, listing, shown=path, photos=photos, step=step)
            else:
                _restore_external(settings, dump, listing, shown=path, photos=photos)
        finally:
            listing.unlink(missing_ok=True)
    forget_engine(settings)
    done = up(settings, create=False)
    with transaction(settings) as session:
        audit.record(
            session,
            actor,
            audit.DATABASE_RESTORED,
            object_type="database_backup",
            path=str(path),
            migrated=done["migrated"],
        )
    return {"path": str(path), "migrated": done["migrated"]}


def _restore_embedded(
    settings: Settings, path: Path, listing: Path, *, shown: Path, photos: StagedPhotos | None, step=None
) -> None:
    """Restore into a new database owned by the owner role; swap it and the photos in only when the
    restore succeeded (the photos back if the database's swap fails)."""
    cluster = cluster_for(settings)
    staging = f"{DB_NAME}_restore"
    cluster.drop_database(staging)
    cluster.ensure_database(staging)
    target, env = _target(settings, staging)
    try:
        _run(
            [
                _program(settings, "pg_restore"),
                "--no-owner",
                "--no-acl",
                f"--role={OWNER_ROLE}",
                "--exit-on-error",
                "--single-transaction",
                "--use-list",
                str(listing),
                "--dbname",
                target,
                str(path),
            ],
            env,
            str(shown),
            step,
        )
    except SetupError:
        cluster.drop_database(staging)
        raise
    forget_engine(settings)
    replaced = f"{DB_NAME}_replaced"
    cluster.drop_database(replaced)
    try:
        with swapped_in(photos), cluster.connect("postgres") as conn:
            _swap_databases(conn, staging, replaced)
    except BaseException:
        cluster.drop_database(staging)
        raise
    cluster.drop_database(replaced)
    cluster.grant(DB_NAME)


def _rename_database(conn, old: str, new: str) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))


# How long the sessions on the live database are waited for, once told to end, before its rename.
SESSIONS_END_SECONDS = 10.0


def _end_sessions(conn) -> None:
    """End every session on the live database and wait until they are gone (a rename needs none)."""
    deadline = time.monotonic() + SESSIONS_END_SECONDS
    ask = "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"
    while conn.execute(ask, (DB_NAME,)).fetchone()[0] and time.monotonic() < deadline:
        time.sleep(0.05)


def _swap_databases(conn, staging: str, replaced: str) -> None:
    """Rename the live database to `replaced` and `staging` to the live name; both or neither.

    The live database takes no new connection from the start (a server's pool reconnecting would
    make the rename fail), and takes them again if the swap is undone."""
    live = sql.Identifier(DB_NAME)
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(live))
    try:
        _end_sessions(conn)
        _rename_database(conn, DB_NAME, replaced)
        try:
            _rename_database(conn, staging, DB_NAME)
        except BaseException:
            _rename_database(conn, replaced, DB_NAME)
            raise
    except BaseException:
        conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(live))
        raise


def _restore_external(
    settings: Settings, path: Path, listing: Path, *, shown: Path, photos: StagedPhotos | None
) -> None:
    """Replace gridkit's own objects in the external database by the archive's, in one transaction
    (another application's objects in it are left alone, or the restore refused: restore_external),
    the photos swapped in for it and back if it fails.

    The archive is turned into a script in a private folder first: an archive that cannot be read
    whole is refused before psql starts (a cut script would otherwise be committed)."""
    target, env = _target(settings)
    clear = clear_script(target, env.get("PGPASSWORD"), listing.read_text(), shown=str(shown))
    # Beside the staged photos when there are some: a restore killed half-way leaves no script of the data in /tmp.
    work = Path(tempfile.mkdtemp(prefix="gridkit-restore-", dir=photos.root if photos is not None else None))
    try:
        script = work / "restore.sql"
        _run(
            [
                _program(settings, "pg_restore"),
                "--no-owner",
                "--no-acl",
                "--exit-on-error",
                "--use-list",
                str(listing),
                "--file",
                str(script),
                str(path),
            ],
            env,
            str(shown),
        )
        # Marked in its own transaction, under a lock a recovery waits on (restore_recovery).
        token = photos.root.name if photos is not None else "-"
        begin = f"SELECT pg_advisory_xact_lock({ADVISORY_KEY})"
        mark = f"COMMENT ON TABLE public.alembic_version IS '{COMMITTED_MARK.format(token)}'"
        with swapped_in(photos):
            _psql_transaction(settings, target, env, [begin, clear], script, [mark], shown)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _psql_transaction(
    settings: Settings, target: str, env: dict, before: list[str], script: Path, after: list[str], shown: Path
) -> None:
    """Run the statements `before`, `script`, then `after` in one transaction (nothing of it stays if any
    statement fails)."""
    _run(
        [
            _program(settings, "psql"),
            "--no-psqlrc",
            "--quiet",
            "--single-transaction",
            "--set=ON_ERROR_STOP=1",
            *(f"--command={statement}" for statement in before),
            "--file",
            str(script),
            *(f"--command={statement}" for statement in after),
            "--dbname",
            target,
        ],
        env,
        str(shown),
    )
