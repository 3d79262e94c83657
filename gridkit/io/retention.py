"""Retention of what gridkit writes for a while under GRIDKIT_HOME: import reports (reports/, the rows an
import refused, personal data among them) past GRIDKIT_REPORT_RETENTION_DAYS, and the scratch folders
of web downloads (exports/gk-*) that a server stopped mid-download left behind.

Only names gridkit writes are removed (gridkit.io.report.write_report's, tempfile's gk- folders), only
regular files and folders (never a link, never what it points to), so a file put there by someone
else stays. Photos (attachments/) are data, kept with the cases, and never pruned here.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path

# <YYYYMMDD>-<HHMMSS>-<name>[-<n>].<json|txt|csv>: the names write_report gives (its `safe` name is \w . -),
# and .<that name>.part<pid>: its temporary names, which a process killed while writing left.
REPORT_NAME = re.compile(r"(\d{8}-\d{6}-[\w.-]+\.(?:json|txt|csv)|\.\d{8}-\d{6}-[\w.-]+\.(?:json|txt|csv)\.part\d+)")
# tempfile.mkdtemp(prefix="gk-") under exports/ (web.analyst): removed once sent; one older than a day was
# never sent (the server stopped mid-write) and holds a whole layer, unmasked perhaps.
SCRATCH_NAME = re.compile(r"gk-[A-Za-z0-9_]+")
DAY_SECONDS = 24 * 3600
SCRATCH_SECONDS = DAY_SECONDS


def _old_entries(folder: Path, pattern: re.Pattern, cutoff: float, *, dirs: bool) -> list[os.DirEntry]:
    """Return the entries of `folder` named by `pattern`, regular files (or `dirs`) not links, older than `cutoff`."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if not pattern.fullmatch(entry.name) or entry.is_symlink():
            continue
        if not (entry.is_dir(follow_symlinks=False) if dirs else entry.is_file(follow_symlinks=False)):
            continue
        if entry.stat(follow_symlinks=False).st_mtime < cutoff:
            found.append(entry)
    return sorted(found, key=lambda e: e.name)


def prune_outputs(home, older_than_days: float, *, now: float | None = None) -> dict:
    """Remove the import reports under `home`/reports written more than `older_than_days` days ago and the
    abandoned download folders under `home`/exports; return {"reports": [paths], "scratch": [paths]}."""
    now = time.time() if now is None else now
    removed = {"reports": [], "scratch": []}
    for entry in _old_entries(Path(home) / "reports", REPORT_NAME, now - older_than_days * DAY_SECONDS, dirs=False):
        try:
            os.unlink(entry.path)
        except FileNotFoundError:  # another process pruned it meanwhile
            continue
        removed["reports"].append(entry.path)
    for entry in _old_entries(Path(home) / "exports", SCRATCH_NAME, now - SCRATCH_SECONDS, dirs=True):
        shutil.rmtree(entry.path, ignore_errors=True)
        removed["scratch"].append(entry.path)
    return removed


def scratch_folder(home, older_than_days: float) -> Path:
    """Return a new private folder (0700) under `home`/exports for a file a web request writes or takes and removes
    once done (a download, an upload), after pruning what `prune_outputs` prunes; a stopped server's leftovers are
    removed a day later."""
    prune_outputs(home, older_than_days)
    folder = Path(home) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="gk-", dir=folder))
