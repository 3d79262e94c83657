"""`gridkit db restore` changes the database and the incidents' photos together or not at all, and
on an external database replaces gridkit's own objects only (priv7b): another application's tables
and functions in `public` survive, and one in the way of gridkit's is refused before anything changes."""

from __future__ import annotations

import contextlib
import os
import subprocess

import psycopg
from sqlalchemy.engine import make_url

from gridkit import db
from gridkit.config import Settings
from gridkit.db import restore_external
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


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_restore_whose_photos_cannot_be_put_in_place_changes_nothing(fresh_owner_settings, tmp_path):
    dump = _backup_then_change(fresh_owner_settings, tmp_path)
    before = _counts(fresh_owner_settings)
    with _pinned(fresh_owner_settings.home):
        refused = run(fresh_owner_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "neither the database nor the photos were changed" in refused.output
    # Before: the database was restored, then the photos' move failed (the department was gone, late.png kept).
    assert _counts(fresh_owner_settings) == before
    assert _photos(fresh_owner_settings) == {"2026/before.png", "2026/late.png"}
    assert _leftovers(fresh_owner_settings) == []
    run(fresh_owner_settings, "db", "restore", str(dump), "--yes")
    assert _counts(fresh_owner_settings)["department"] == before["department"] - 1
    assert _photos(fresh_owner_settings) == {"2026/before.png"} and _leftovers(fresh_owner_settings) == []


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_failed_database_restore_puts_the_photos_back(fresh_owner_settings, tmp_path):
    dump = _backup_then_change(fresh_owner_settings, tmp_path)
    # Another application's table typed with gridkit's domain: not seen by the checks before the
    # transaction, its DROP (no CASCADE) fails in it, after the photos were swapped in.
    _sql(fresh_owner_settings, "CREATE TABLE public.visitors (card public.resident_id_masked)")
    before = _counts(fresh_owner_settings)
    refused = run(fresh_owner_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "psql failed" in refused.output, refused.output
    assert "visitors" in refused.output
    assert _counts(fresh_owner_settings) == before
    assert (
        _photos(fresh_owner_settings) == {"2026/before.png", "2026/late.png"} and _leftovers(fresh_owner_settings) == []
    )
    assert _sql(fresh_owner_settings, "SELECT count(*) FROM public.visitors") == [(0,)]


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


def test_the_catalogue_of_gridkits_objects_is_what_the_migrations_make(fresh_settings):
    # A migration that adds a table, function or type must name it in gridkit.db.restore_external,
    # or an external restore would keep its old copy (and the migrations after it would fail).
    conninfo = make_url(db.owner_url(fresh_settings)).set(drivername="postgresql")
    with psycopg.connect(conninfo.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute("SET search_path = ''")
        made = {(kind, name) for kind, name, _ in conn.execute(restore_external._PUBLIC_OBJECTS)}
        schemas = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'gridkit%'")}
    listed = (
        {("table", n) for n in restore_external.OWN_TABLES}
        | {("function", n) for n in restore_external.OWN_FUNCTIONS}
        | {("domain", n) for n in restore_external.OWN_TYPES}
    )
    assert made == listed
    assert schemas == set(restore_external.OWN_SCHEMAS)


FOREIGN = """
CREATE TABLE public.payroll (id int PRIMARY KEY, name text);
INSERT INTO public.payroll VALUES (1, '工资');
CREATE FUNCTION public.payroll_total() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM public.payroll';
CREATE VIEW public.payroll_names AS SELECT name FROM public.payroll;
CREATE SCHEMA gridkit_reports;
CREATE TABLE gridkit_reports.monthly (n int);
"""


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_an_external_restore_keeps_another_applications_objects(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    _sql(fresh_owner_settings, FOREIGN)
    run(fresh_owner_settings, "dept", "add", "200001", "城管")
    run(fresh_owner_settings, "db", "restore", str(dump), "--yes")
    # Before: every object of public not made by an extension was dropped, and the schemas named gridkit*.
    assert _sql(fresh_owner_settings, "SELECT public.payroll_total(), (SELECT name FROM public.payroll_names)") == [
        (1, "工资")
    ]
    assert _sql(fresh_owner_settings, "SELECT count(*) FROM gridkit_reports.monthly") == [(0,)]
    assert _counts(fresh_owner_settings)["department"] == 1
    with db.engine_for(fresh_owner_settings).connect() as conn:
        assert db.revision_of(conn) == db.head_revision()


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_restore_that_would_clobber_anothers_objects_is_refused(pg_server, fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    # Another application's view over gridkit's table: dropping the table would take it along.
    _sql(fresh_owner_settings, "CREATE VIEW public.dept_names AS SELECT name FROM public.department")
    run(fresh_owner_settings, "dept", "add", "200001", "城管")
    before = _counts(fresh_owner_settings)
    refused = run(fresh_owner_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "not gridkit's" in refused.output and "dept_names" in refused.output
    assert _counts(fresh_owner_settings) == before
    assert len(_sql(fresh_owner_settings, "SELECT * FROM public.dept_names")) == 2
    # A database that is not gridkit's, holding another's table named as one of gridkit's.
    name = f"gk_shared_{os.getpid()}"
    pg_server.create_database(name)
    shared = Settings(home=tmp_path / "shared-home", database_url=pg_server.owner_url(name))
    try:
        _sql(shared, "CREATE TABLE public.building (id int, owner text); INSERT INTO public.building VALUES (1, 'x')")
        refused = run(shared, "db", "restore", str(dump), "--yes", ok=False)
        assert refused.exit_code == 1 and "building" in refused.output, refused.output
        assert _sql(shared, "SELECT * FROM public.building") == [(1, "x")]
        chinese = run(shared, "db", "restore", str(dump), "--yes", ok=False, env={})
        assert "不属于 gridkit" in chinese.output
    finally:
        db.forget_engine(shared)
        pg_server.drop_database(name)
