"""The file of a gridkit backup: one tar of the database dump and the incidents' attachments.

The photos of incidents live under GRIDKIT_HOME/attachments (the database holds their paths): a
backup without them would restore cases whose photos are gone. A backup is therefore a tar of
`database.dump` (pg_dump custom format) and `attachments/…`; a bare pg_dump archive (a backup of an
older gridkit) is still restored, leaving the attachments folder as it is. A restore swaps the
database and the attachments folder together (StagedPhotos): both change, or neither.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path, PurePosixPath

from gridkit.db.restore_recovery import STAGING_PREFIX, write_journal
from gridkit.errors import SetupError, ValidationError
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
def opened(path: Path, home: Path) -> Iterator[tuple[Path, StagedPhotos | None]]:
    """Yield (pg_dump archive, the backup's attachments staged beside home/attachments, or None for a
    bare pg_dump archive).

    The tar is read whole before anything changes: a truncated or foreign tar is a ValidationError,
    and a home where the photos cannot be staged (read-only, full, a file in the way) a SetupError.
    The photos are staged in a private folder in `home` (the same filesystem as home/attachments, so
    the swap is two renames); whatever is left of it is removed on exit."""
    if not tarfile.is_tarfile(path):
        yield path, None
        return
    photos = None
    try:
        photos = StagedPhotos.make(home, backup=str(path))
        # The extracted dump (every resident's record) in the staging folder too: a restore killed half-way
        # leaves no copy of it in /tmp, the recovery removes it with the rest (restore_recovery).
        dump = photos.root / DUMP
        try:
            _extract(path, dump, photos.staged)
        except (tarfile.TarError, EOFError, ValueError):
            raise ValidationError("db.not_a_backup", path=str(path)) from None
        except OSError as exc:
            raise SetupError("db.photos_unwritable", path=str(home), reason=exc.strerror or str(exc)) from None
        yield dump, photos
    finally:
        if photos is not None:
            shutil.rmtree(photos.root, ignore_errors=True)


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


class StagedPhotos:
    """A backup's attachments folder staged in `root` (a private folder in home), swapped in by rename.

    `swapped()` makes it home/attachments for the span of a block (the database's restore) and puts
    the old folder back if the block fails, so the database and its photos change together or not
    at all: a rename within one folder either happens whole or not."""

    def __init__(self, root: Path, home: Path, backup: str = ""):
        self.root = root
        self.backup = backup
        self.staged = root / FOLDER
        self.current = Path(home) / FOLDER
        self.old = root / (FOLDER + ".old")

    @classmethod
    def make(cls, home: Path, backup: str = "") -> StagedPhotos:
        """Create the private staging folder in `home` (made if missing) for the photos of the file
        `backup`; SetupError when it cannot be."""
        try:
            Path(home).mkdir(parents=True, exist_ok=True)
            root = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=home))
            (root / FOLDER).mkdir(mode=0o700)  # becomes home/attachments: owner-only, as attachments.store keeps it
        except OSError as exc:
            raise SetupError("db.photos_unwritable", path=str(home), reason=exc.strerror or str(exc)) from None
        return cls(root, home, backup)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """Make the staged folder home/attachments for the block; undo the swap if the block fails."""
        moved_old = False
        try:
            # What a recovery needs if this process dies before the database's swap is done (restore_recovery).
            write_journal(self.root, backup=self.backup)
            if os.path.lexists(self.current):
                os.rename(self.current, self.old)
                moved_old = True
            os.rename(self.staged, self.current)
        except OSError as exc:
            if moved_old:
                os.rename(self.old, self.current)
            raise SetupError(
                "db.photos_unwritable", path=str(self.current.parent), reason=exc.strerror or str(exc)
            ) from None
        try:
            yield
        except BaseException:
            os.rename(self.current, self.staged)
            if moved_old:
                os.rename(self.old, self.current)
            raise


def swapped_in(photos: StagedPhotos | None):
    """Return the context in which the staged photos are home/attachments (nothing to do without any)."""
    return nullcontext() if photos is None else photos.swapped()
