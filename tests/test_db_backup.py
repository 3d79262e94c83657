"""`gridkit db backup` / `restore` as a city's IT staff use them: the file is private, nothing is
half-written or overwritten, a foreign or newer archive is refused, and both are audited."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import psycopg
from factories_incidents import IN_C1, PNG, SUPERVISOR, coordinator_actor, make_incident_world
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from gridkit import db
from gridkit.config import Settings
from gridkit.db.backup import backup, restore
from gridkit.db.embedded import APP_ROLE, DEFAULT_PG_BIN, OWNER_ROLE
from gridkit.incidents import workflow as wf
from gridkit.incidents.attachments import attachment_path
from gridkit.models import IncidentAttachment
from tests.test_db_private import _build_city, _counts, _whois, embedded, run  # noqa: F401 (fixture)


def _audit(settings, action):
    with db.engine_for(settings).connect() as conn:
        return conn.execute(
            text("SELECT actor, object_type, detail FROM audit_log WHERE action = :a ORDER BY id"), {"a": action}
        ).all()


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_backup_is_owner_only_whatever_the_umask_and_audited(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    old = os.umask(0)
    try:
        run(fresh_owner_settings, "db", "backup", str(dump))
    finally:
        os.umask(old)
    # Residents' names and phones and the users' password hashes: readable by the owner alone.
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.dump"]
    # Personal data left the system: who took it and where is in the audit log.
    rows = _audit(fresh_owner_settings, "personal_data.read")
    assert len(rows) == 1 and rows[0].actor.startswith("cli") and rows[0].object_type == "database_backup"
    assert rows[0].detail["path"] == str(dump) and rows[0].detail["bytes"] == dump.stat().st_size


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_backup_never_overwrites_a_file_unless_forced(fresh_owner_settings, tmp_path):
    dump = tmp_path / "city.dump"
    dump.write_bytes(b"last week's backup")
    refused = run(fresh_owner_settings, "db", "backup", str(dump), ok=False)
    assert refused.exit_code == 1 and "exists already" in refused.output and "--force" in refused.output
    assert dump.read_bytes() == b"last week's backup"
    chinese = run(fresh_owner_settings, "db", "backup", str(dump), ok=False, env={})
    assert "已存在" in chinese.output
    os.chmod(dump, 0o644)
    run(fresh_owner_settings, "db", "backup", str(dump), "--force")
    assert tarfile.is_tarfile(dump) and stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.dump"]


def test_a_failed_backup_leaves_no_file_behind(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url="postgresql://x:pw@127.0.0.1:1/none")
    out = tmp_path / "out"
    out.mkdir()
    failed = run(settings, "db", "backup", str(out / "city.dump"), ok=False)
    assert failed.exit_code == 1 and "pg_dump failed" in failed.output
    assert list(out.iterdir()) == []


def _foreign_archive(pg_server, tmp_path):
    """A real pg_dump archive of another application's database (not gridkit's)."""
    pg_server.create_database(f"gk_foreign_{os.getpid()}")
    url = pg_server.owner_url(f"gk_foreign_{os.getpid()}")  # who may create tables in it
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE payroll (id int, name text)")
        conn.execute("INSERT INTO payroll VALUES (1, 'payroll')")
    path = tmp_path / "foreign.dump"
    subprocess.run(
        [f"{DEFAULT_PG_BIN}/pg_dump", "--format=custom", "--file", str(path), "--dbname", conninfo],
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
    )
    pg_server.drop_database(f"gk_foreign_{os.getpid()}")
    return path


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_restore_refuses_another_applications_archive(pg_server, fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    before = _counts(fresh_owner_settings)
    refused = run(fresh_owner_settings, "db", "restore", str(_foreign_archive(pg_server, tmp_path)), "--yes", ok=False)
    assert refused.exit_code == 1 and "is not a gridkit backup" in refused.output
    assert _counts(fresh_owner_settings) == before


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_restore_refuses_a_truncated_archive(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    before = _counts(fresh_owner_settings)
    cut = tmp_path / "cut.dump"
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    refused = run(fresh_owner_settings, "db", "restore", str(cut), "--yes", ok=False)
    assert refused.exit_code == 1 and str(cut) in refused.output, refused.output
    assert _counts(fresh_owner_settings) == before
    # A bare pg_dump archive cut short: its table of contents reads, its data does not.
    with tarfile.open(dump) as tar:
        whole = tar.extractfile("database.dump").read()
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    refused = run(fresh_owner_settings, "db", "restore", str(cut), "--yes", ok=False)
    assert refused.exit_code == 1 and str(cut) in refused.output, refused.output
    assert _counts(fresh_owner_settings) == before


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_restore_refuses_a_backup_from_a_newer_gridkit(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    owner = create_engine(db.owner_url(fresh_owner_settings))
    try:
        with owner.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '20991231_future'"))
        dump = tmp_path / "future.dump"
        run(fresh_owner_settings, "db", "backup", str(dump))
        with owner.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": db.head_revision()})
    finally:
        owner.dispose()
    before = _counts(fresh_owner_settings)
    refused = run(fresh_owner_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "newer gridkit" in refused.output and "20991231_future" in refused.output
    assert _counts(fresh_owner_settings) == before
    with db.engine_for(fresh_owner_settings).connect() as conn:
        assert db.revision_of(conn) == db.head_revision()


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_restore_is_audited_in_the_restored_database(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    result = json.loads(run(fresh_owner_settings, "db", "restore", str(dump), "--yes", "--json").output)
    assert result["path"] == str(dump)
    rows = _audit(fresh_owner_settings, "database.restored")
    assert len(rows) == 1 and rows[0].actor.startswith("cli") and rows[0].detail["path"] == str(dump)
    # The application role still works on the restored database: a whois answers, a write succeeds.
    assert _whois(fresh_owner_settings, "2099-01-01T00:00:00+00:00")["departments"]
    run(fresh_owner_settings, "dept", "add", "300001", "民政")


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_backup_carries_the_incidents_photos_to_a_new_machine(fresh_owner_settings, tmp_path):
    with db.transaction(fresh_owner_settings) as session:
        world = make_incident_world(session)
        case = wf.report_incident(session, lon=IN_C1[0], lat=IN_C1[1], actor=SUPERVISOR, description="井盖破损")
        case = case.incident
        wf.accept(session, case.id, SUPERVISOR)
        wf.classify(session, case.id, SUPERVISOR, category="0101")
        wf.dispatch(session, case.id, SUPERVISOR)
        case_id = case.id
    with db.transaction(fresh_owner_settings) as session:
        wf.feedback(
            session,
            case_id,
            coordinator_actor(world),
            note="好了",
            attachments=[("after.png", PNG)],
            home=fresh_owner_settings.home,
        )
    dump = tmp_path / "city.dump"
    done = json.loads(run(fresh_owner_settings, "db", "backup", str(dump), "--json").output)
    assert done["attachments"] == 1
    # The old machine is gone: a new home restores the backup, photos included.
    moved = Settings(home=tmp_path / "new-home", database_url=fresh_owner_settings.database_url)
    with db.transaction(fresh_owner_settings) as session:
        wf.rework(session, case_id, SUPERVISOR, note="重拍")
        wf.feedback(
            session,
            case_id,
            coordinator_actor(world),
            note="再拍",
            attachments=[("late.png", PNG + b"x")],
            home=moved.home,
        )
    run(moved, "db", "restore", str(dump), "--yes")
    with db.transaction(moved) as session:
        stored = session.scalars(select(IncidentAttachment)).all()
        assert len(stored) == 1 and attachment_path(moved.home, stored[0]).read_bytes() == PNG
    # The attachments folder is the backup's: the photo added after it (its row undone) is gone too.
    assert [p.name for p in (moved.home / "attachments").rglob("*.png")] == [Path(stored[0].path).name]


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_restore_asks_first_saying_what_would_be_lost(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    dump = tmp_path / "city.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    run(fresh_owner_settings, "dept", "add", "200001", "城管")
    before = _counts(fresh_owner_settings)
    asked = run(fresh_owner_settings, "db", "restore", str(dump), ok=False, input="n\n")
    assert asked.exit_code == 1
    assert "2 departments, 0 users and 1 work grid versions" in asked.output and "is lost" in asked.output
    assert _counts(fresh_owner_settings) == before
    chinese = run(fresh_owner_settings, "db", "restore", str(dump), ok=False, input="n\n", env={})
    assert "2 个部门" in chinese.output


def _bare_dump(settings, path):
    """Write the database as an older gridkit backed it up: a bare pg_dump archive (no tar, no photos)."""
    conninfo = make_url(db.database_url(settings)).set(drivername="postgresql")
    subprocess.run(
        [
            f"{DEFAULT_PG_BIN}/pg_dump",
            "--format=custom",
            "--file",
            str(path),
            "--dbname",
            conninfo.render_as_string(hide_password=False),
        ],
        check=True,
        env={k: v for k, v in os.environ.items() if not k.startswith("PG")},
    )
    return path


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_bare_archive_of_an_older_gridkit_is_restored_and_migrated(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    at = "2099-01-01T00:00:00+00:00"
    answer = _whois(fresh_owner_settings, at)
    # An older gridkit: one migration behind, its backup a bare pg_dump archive (no tar, no photos).
    db.forget_engine(fresh_owner_settings)
    db.downgrade(db.owner_url(fresh_owner_settings), "-1")
    dump = _bare_dump(fresh_owner_settings, tmp_path / "old.dump")
    db.upgrade(db.owner_url(fresh_owner_settings))
    run(fresh_owner_settings, "dept", "add", "200001", "城管")
    done = json.loads(run(fresh_owner_settings, "db", "restore", str(dump), "--yes", "--json").output)
    assert done["migrated"] is True
    with db.engine_for(fresh_owner_settings).connect() as conn:
        assert db.revision_of(conn) == db.head_revision()
    assert _counts(fresh_owner_settings)["department"] == 1
    assert _whois(fresh_owner_settings, at) == answer


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_an_external_restore_of_an_archive_from_before_a_migration_migrates(fresh_owner_settings, tmp_path):
    _build_city(fresh_owner_settings)
    owner = db.owner_url(fresh_owner_settings)
    db.forget_engine(fresh_owner_settings)
    # Before 20261204_imp9f, which creates a function the archive does not hold.
    db.downgrade(owner, "20261204_imp9d")
    dump = _bare_dump(fresh_owner_settings, tmp_path / "old.dump")
    db.upgrade(owner)
    done = json.loads(run(fresh_owner_settings, "db", "restore", str(dump), "--yes", "--json").output)
    assert done["migrated"] is True
    with db.engine_for(fresh_owner_settings).connect() as conn:
        assert db.revision_of(conn) == db.head_revision()


# As the owner: an external database is backed up and restored as its URL's one role, the schema's owner.
def test_a_backup_of_an_external_database_restores_into_the_embedded_one(fresh_owner_settings, embedded, tmp_path):
    _build_city(fresh_owner_settings)
    at = "2099-01-01T00:00:00+00:00"
    answer, before = _whois(fresh_owner_settings, at), _counts(fresh_owner_settings)
    dump = tmp_path / "external.dump"
    run(fresh_owner_settings, "db", "backup", str(dump))
    before["audit_log"] += 1  # the backup's own row, made after the dump
    run(embedded, "db", "restore", str(dump), "--yes")
    after = _counts(embedded)
    assert after.pop("audit_log") == before.pop("audit_log")  # the backup's row is not in it; the restore's is
    assert after == before
    assert _whois(embedded, at) == answer
    # The application role (no superuser, not the owner) still works on the restored tables.
    run(embedded, "dept", "add", "300001", "民政")
    with db.engine_for(embedded).connect() as conn:
        assert conn.scalar(text("SELECT current_user")) == APP_ROLE
        owners = conn.scalars(
            text(
                "SELECT DISTINCT tableowner FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'spatial_ref_sys'"
            )
        )
        assert set(owners) == {OWNER_ROLE}


def test_backup_and_restore_say_their_progress_table_by_table(embedded, tmp_path):
    # A city's database takes a minute or more to back up or restore: the CLI draws a bar of tables meanwhile.
    dumped, restored = [], []
    result = backup(embedded, tmp_path / "b.backup", progress=lambda done, total: dumped.append((done, total)))
    restore(embedded, tmp_path / "b.backup", progress=lambda done, total: restored.append((done, total)))
    for seen in (dumped, restored):
        total = seen[0][1]
        assert total > 10 and all(t == total for _, t in seen)
        assert [d for d, _ in seen] == list(range(1, len(seen) + 1))
        assert seen[-1][0] >= total - 2  # every table with rows (spatial_ref_sys's belong to PostGIS)
    assert result["bytes"] > 0
