"""Putting a home back together after a `gridkit db restore` that was killed half-way.

A restore stages the backup's photos in a private folder of the home (`.attachments-restore-*`,
gridkit.db.backup_files.StagedPhotos), swaps them for home/attachments, then swaps the database
(embedded: the restored database renamed in; external: psql's one transaction). A restore killed
in between (kill -9, power cut) leaves the photos of one and the database of the other, and the
old photos in the staging folder. The next `gridkit db up`, `gridkit db restore` or start of any
command or of the web app finds the staging folder and settles it:

- the database was not swapped: the old photos are put back (the restore is undone, and the
  staged database, the live one's rename, its closed connections are undone too);
- the database was swapped: the old photos are removed (the restore is finished, and recorded).

The running restore holds an exclusive lock on home/.restore.lock for its whole run (released by
the kernel when its process dies): a staging folder whose restore still holds the lock is left
alone, and a second restore is refused meanwhile.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from gridkit.config import Settings
from gridkit.errors import Conflict, SetupError
from gridkit.incidents.attachments import FOLDER

log = logging.getLogger(__name__)

STAGING_PREFIX = ".attachments-restore-"
JOURNAL = "journal.json"
LOCK = ".restore.lock"
# The advisory lock an external restore's transaction holds: recovery waits for a psql still running.
ADVISORY_KEY = 0x67726964
# What an external restore's transaction writes, as it commits, on the restored alembic_version table.
COMMITTED_MARK = "gridkit restore {}"
UNDONE, FINISHED = "undone", "finished"


def _lock(home: Path, *, wait: bool):
    """Return an open file holding the restore lock of `home`, or None when another process holds it."""
    Path(home).mkdir(parents=True, exist_ok=True)
    fh = open(Path(home) / LOCK, "a")  # noqa: SIM115 (held open as long as the lock)
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        fh.close()
        return None
    return fh


@contextmanager
def restore_lock(home: Path):
    """Hold the restore lock of `home` for the block; Conflict when another restore holds it."""
    try:
        fh = _lock(home, wait=False)
    except OSError as exc:
        # A home where nothing can be written: neither could the photos be staged.
        raise SetupError("db.photos_unwritable", path=str(home), reason=exc.strerror or str(exc)) from None
    if fh is None:
        raise Conflict("db.restore_running", home=str(home))
    try:
        yield
    finally:
        fh.close()


def stagings(home: Path) -> list[Path]:
    """Return the staging folders of restores in `home` (interrupted ones, or the running one's)."""
    home = Path(home)
    return sorted(p for p in home.glob(STAGING_PREFIX + "*") if p.is_dir()) if home.is_dir() else []


def state(home: Path) -> dict:
    """Return {interrupted_restore, restore_running} for `gridkit db status`, changing nothing."""
    found = stagings(home)
    if not found:
        return {"interrupted_restore": False, "restore_running": False}
    fh = _lock(home, wait=False)
    if fh is None:
        return {"interrupted_restore": False, "restore_running": True}
    fh.close()
    return {"interrupted_restore": True, "restore_running": False}


def write_journal(root: Path, *, backup: str) -> None:
    """Note in the staging folder, before the photos' swap, that it begins (and the backup's file)."""
    (root / JOURNAL).write_text(json.dumps({"backup": backup}))


def recover(settings: Settings) -> dict | None:
    """Settle an interrupted restore of `settings`' home (see the module); return {outcome, backup} or
    None when there was none (or a restore is running). The embedded server must be running."""
    found = stagings(settings.home)
    if not found:
        return None
    fh = _lock(settings.home, wait=False)
    if fh is None:
        return None
    try:
        outcome = None
        for root in found:
            journal = _journal(root)
            # The photos are the backup's (the staged folder gone into home/attachments).
            photos_in = journal is not None and not os.path.lexists(root / FOLDER)
            try:
                swapped = _database_swapped(settings, root.name, photos_in)
            except psycopg.OperationalError:
                return None  # the database cannot be reached: settled by the next command that reaches it
            if swapped:
                shutil.rmtree(root, ignore_errors=True)
            else:
                _photos_back(root, Path(settings.home))
            if journal is not None:
                outcome = {"outcome": FINISHED if swapped else UNDONE, "backup": journal["backup"]}
                log.warning("an interrupted restore of %s was %s", journal["backup"], outcome["outcome"])
        return outcome
    finally:
        fh.close()


def _journal(root: Path) -> dict | None:
    try:
        return json.loads((root / JOURNAL).read_text())
    except (OSError, ValueError):
        return None


def _photos_back(root: Path, home: Path) -> None:
    """Put the photos as they were before the swap (each step only if still to do), then drop the staging."""
    staged, old, current = root / FOLDER, root / (FOLDER + ".old"), home / FOLDER
    if not os.path.lexists(staged) and os.path.lexists(current) and (root / JOURNAL).exists():
        os.rename(current, staged)
    if os.path.lexists(old) and not os.path.lexists(current):
        os.rename(old, current)
    shutil.rmtree(root, ignore_errors=True)


def _database_swapped(settings: Settings, token: str, photos_in: bool) -> bool:
    """Return whether the interrupted restore's database step had completed (it begins only once the
    photos are in); undo a half-done one."""
    if settings.embedded:
        return _embedded_swapped(settings, photos_in)
    return photos_in and _external_committed(settings, token)


def _embedded_swapped(settings: Settings, photos_in: bool) -> bool:
    from gridkit.db import cluster_for
    from gridkit.db.embedded import DB_NAME

    cluster = cluster_for(settings)
    staging, replaced = f"{DB_NAME}_restore", f"{DB_NAME}_replaced"
    with cluster.connect("postgres") as conn:
        names = {r[0] for r in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'gridkit%'")}
        swapped = DB_NAME in names and staging not in names and photos_in
        if DB_NAME not in names and replaced in names:
            # Killed between the two renames: the live database back under its name.
            live = sql.Identifier(DB_NAME)
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(replaced), live))
            names.add(DB_NAME)
        if DB_NAME in names:
            # The swap closes the live database to new connections first.
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS true").format(sql.Identifier(DB_NAME)))
    cluster.drop_database(staging)
    cluster.drop_database(replaced)
    return swapped


def _external_committed(settings: Settings, token: str) -> bool:
    """Return whether the external restore's transaction committed (waiting for one still running)."""
    from gridkit.db.backup import _target

    target, env = _target(settings)
    with psycopg.connect(target, password=env.get("PGPASSWORD"), autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))
        try:
            mark = conn.execute("SELECT obj_description(to_regclass('public.alembic_version'), 'pg_class')").fetchone()[
                0
            ]
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
    return mark == COMMITTED_MARK.format(token)
