"""`gridkit db restore` changes the database and the incidents' photos together or not at all, and
on an external database replaces gridkit's own objects only (priv7b): another application's tables
and functions in `public` survive, and one in the way of gridkit's is refused before anything changes."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile

import psycopg
from sqlalchemy.engine import make_url

from gridkit import db
from tests.test_db_private import _build_city, _counts, embedded, run  # noqa: F401 (fixture)


def _photos(settings) -> set[str]:
    folder = settings.home / "attachments"
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _leftovers(settings) -> list[str]:
    return sorted(p.name for p in settings.home.iterdir() if p.name.startswith(".attachments"))


def _put_photo(settings, name: str, data: bytes = b"\x89PNG") -> None:
    path = settings.home / "attachments" / "2026" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextlib.contextmanager
def _pinned(folder):
    """Nothing can be created, renamed or removed in `folder` (root: the immutable flag; others: 0555)."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)


def _backup_then_change(settings, tmp_path):
    """A city with one photo, backed up; then a department and a photo added after the backup."""
    _build_city(settings)
    _put_photo(settings, "before.png")
    dump = tmp_path / "city.dump"
    run(settings, "db", "backup", str(dump))
    run(settings, "dept", "add", "200001", "城管")
    _put_photo(settings, "late.png")
    return dump


def test_a_restore_whose_photos_cannot_be_put_in_place_changes_nothing(fresh_settings, tmp_path):
    dump = _backup_then_change(fresh_settings, tmp_path)
    before = _counts(fresh_settings)
    with _pinned(fresh_settings.home):
        refused = run(fresh_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "neither the database nor the photos were changed" in refused.output
    # Before: the database was restored, then the photos' move failed (the department was gone, late.png kept).
    assert _counts(fresh_settings) == before
    assert _photos(fresh_settings) == {"2026/before.png", "2026/late.png"}
    assert _leftovers(fresh_settings) == []
    run(fresh_settings, "db", "restore", str(dump), "--yes")
    assert _counts(fresh_settings)["department"] == before["department"] - 1
    assert _photos(fresh_settings) == {"2026/before.png"} and _leftovers(fresh_settings) == []


def _cut_dump(dump, tmp_path):
    """The backup with its database's last data cut off (its table of contents and revision read, its
    last table's rows do not), photos whole."""
    cut = tmp_path / "cut.dump"
    with tarfile.open(dump) as src, tarfile.open(cut, "w") as out:
        for member in src:
            data = src.extractfile(member).read()
            if member.name == "database.dump":
                data = data[: len(data) * 99 // 100]
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return cut


def test_a_failed_database_restore_puts_the_photos_back(fresh_settings, tmp_path):
    dump = _backup_then_change(fresh_settings, tmp_path)
    before = _counts(fresh_settings)
    refused = run(fresh_settings, "db", "restore", str(_cut_dump(dump, tmp_path)), "--yes", ok=False)
    # Read whole and staged, the photos were swapped in; the database's step failed and swapped them back.
    assert refused.exit_code == 1 and "pg_restore failed" in refused.output, refused.output
    assert _counts(fresh_settings) == before
    assert _photos(fresh_settings) == {"2026/before.png", "2026/late.png"} and _leftovers(fresh_settings) == []


def test_an_embedded_restore_swaps_the_photos_with_the_database(fresh_settings, embedded, tmp_path):  # noqa: F811
    _put_photo(embedded, "before.png")
    dump = tmp_path / "embedded.dump"
    run(embedded, "db", "backup", str(dump))
    run(embedded, "dept", "add", "200001", "城管")
    _put_photo(embedded, "late.png")
    before = _counts(embedded)
    with _pinned(embedded.home / "attachments"):
        refused = run(embedded, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "neither the database nor the photos were changed" in refused.output
    assert _counts(embedded) == before
    assert _photos(embedded) == {"2026/before.png", "2026/late.png"}
    run(embedded, "db", "restore", str(dump), "--yes")
    assert _counts(embedded)["department"] == before["department"] - 1
    assert _photos(embedded) == {"2026/before.png"}
    assert _leftovers(embedded) == []


def _sql(settings, statement: str):
    conninfo = make_url(db.owner_url(settings)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else None
