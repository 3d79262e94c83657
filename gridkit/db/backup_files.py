"""The file of a gridkit backup: one tar of the database dump and the incidents' attachments.

The photos of incidents live under GRIDKIT_HOME/attachments (the database holds their paths): a
backup without them would restore cases whose photos are gone. A backup is therefore a tar of
`database.dump` (pg_dump custom format) and `attachments/…`; a bare pg_dump archive (a backup of an
older gridkit) is still restored, leaving the attachments folder as it is.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from gridkit.errors import ValidationError
from gridkit.incidents.attachments import FOLDER

DUMP = "database.dump"


def write_archive(target: Path, dump: Path, home: Path) -> int:
    """Write into the (already private) file `target` the tar of `dump` and home/attachments; return the photo count."""
    count = 0
    with tarfile.open(target, "w") as tar:
        tar.add(dump, arcname=DUMP)
        folder = Path(home) / FOLDER
        for path in sorted(folder.rglob("*")) if folder.is_dir() else ():
            if path.is_file() and not path.name.endswith(".part"):
                tar.add(path, arcname=str(PurePosixPath(FOLDER, *path.relative_to(folder).parts)), recursive=False)
                count += 1
    return count


@contextmanager
def opened(path: Path) -> Iterator[tuple[Path, Path | None]]:
    """Yield (pg_dump archive, attachments folder staged beside nothing yet, or None for a bare pg_dump archive).

    The tar is read whole before anything changes: a truncated or foreign tar is a ValidationError.
    The staged folder is a private temporary one, removed on exit unless `swap_in` moved it."""
    if not tarfile.is_tarfile(path):
        yield path, None
        return
    work = Path(tempfile.mkdtemp(prefix="gridkit-restore-"))
    try:
        staged = work / FOLDER
        staged.mkdir()
        dump = work / DUMP
        try:
            _extract(path, dump, staged)
        except (tarfile.TarError, EOFError, OSError, ValueError):
            raise ValidationError("db.not_a_backup", path=str(path)) from None
        yield dump, staged
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _extract(path: Path, dump: Path, staged: Path) -> None:
    found = False
    with tarfile.open(path) as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            if member.name == DUMP and member.isfile():
                found = True
                target = dump
            elif len(parts) > 1 and parts[0] == FOLDER and ".." not in parts and member.isfile():
                target = staged.joinpath(*parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
            else:
                raise ValueError(member.name)
            with tar.extractfile(member) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
    if not found:
        raise ValueError(DUMP)


def swap_in(staged: Path, home: Path) -> None:
    """Make the staged folder home/attachments, the old one removed (after the database was restored)."""
    current = Path(home) / FOLDER
    current.parent.mkdir(parents=True, exist_ok=True)
    old = current.with_name(FOLDER + ".replaced")
    shutil.rmtree(old, ignore_errors=True)
    if current.exists():
        os.replace(current, old)
    shutil.move(str(staged), str(current))
    shutil.rmtree(old, ignore_errors=True)
