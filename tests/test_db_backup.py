"""`gridkit db backup` / `restore` as a city's IT staff use them: the file is private, nothing is
half-written or overwritten, a foreign or newer archive is refused, and both are audited."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from gridkit import db
from gridkit.config import Settings
from gridkit.db.embedded import DEFAULT_PG_BIN
from tests.test_db_private import _build_city, _counts, _whois, run


def _audit(settings, action):
    with db.engine_for(settings).connect() as conn:
        return conn.execute(
            text("SELECT actor, object_type, detail FROM audit_log WHERE action = :a ORDER BY id"), {"a": action}
        ).all()


def test_a_backup_is_owner_only_whatever_the_umask_and_audited(fresh_settings, tmp_path):
    _build_city(fresh_settings)
    dump = tmp_path / "city.dump"
    old = os.umask(0)
    try:
        run(fresh_settings, "db", "backup", str(dump))
    finally:
        os.umask(old)
    # Residents' names and phones and the users' password hashes: readable by the owner alone.
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["city.dump"]
    # Personal data left the system: who took it and where is in the audit log.
    rows = _audit(fresh_settings, "personal_data.read")
    assert len(rows) == 1 and rows[0].actor.startswith("cli") and rows[0].object_type == "database_backup"
    assert rows[0].detail["path"] == str(dump) and rows[0].detail["bytes"] == dump.stat().st_size


def test_a_backup_never_overwrites_a_file_unless_forced(fresh_settings, tmp_path):
    dump = tmp_path / "city.dump"
    dump.write_bytes(b"last week's backup")
    refused = run(fresh_settings, "db", "backup", str(dump), ok=False)
    assert refused.exit_code == 1 and "exists already" in refused.output and "--force" in refused.output
    assert dump.read_bytes() == b"last week's backup"
    chinese = run(fresh_settings, "db", "backup", str(dump), ok=False, env={})
    assert "已存在" in chinese.output
    os.chmod(dump, 0o644)
    run(fresh_settings, "db", "backup", str(dump), "--force")
    assert dump.read_bytes().startswith(b"PGDMP") and stat.S_IMODE(dump.stat().st_mode) == 0o600
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
    url = pg_server.create_database(f"gk_foreign_{os.getpid()}")
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


def test_restore_refuses_another_applications_archive(pg_server, fresh_settings, tmp_path):
    _build_city(fresh_settings)
    before = _counts(fresh_settings)
    refused = run(fresh_settings, "db", "restore", str(_foreign_archive(pg_server, tmp_path)), "--yes", ok=False)
    assert refused.exit_code == 1 and "is not a gridkit backup" in refused.output
    assert _counts(fresh_settings) == before


def test_restore_refuses_a_truncated_archive(fresh_settings, tmp_path):
    _build_city(fresh_settings)
    dump = tmp_path / "city.dump"
    run(fresh_settings, "db", "backup", str(dump))
    before = _counts(fresh_settings)
    cut = tmp_path / "cut.dump"
    cut.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])
    refused = run(fresh_settings, "db", "restore", str(cut), "--yes", ok=False)
    assert refused.exit_code == 1, refused.output
    assert _counts(fresh_settings) == before


def test_restore_refuses_a_backup_from_a_newer_gridkit(fresh_settings, tmp_path):
    _build_city(fresh_settings)
    owner = create_engine(db.owner_url(fresh_settings))
    try:
        with owner.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '20991231_future'"))
        dump = tmp_path / "future.dump"
        run(fresh_settings, "db", "backup", str(dump))
        with owner.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": db.head_revision()})
    finally:
        owner.dispose()
    before = _counts(fresh_settings)
    refused = run(fresh_settings, "db", "restore", str(dump), "--yes", ok=False)
    assert refused.exit_code == 1 and "newer gridkit" in refused.output and "20991231_future" in refused.output
    assert _counts(fresh_settings) == before
    with db.engine_for(fresh_settings).connect() as conn:
        assert db.revision_of(conn) == db.head_revision()


def test_a_restore_is_audited_in_the_restored_database(fresh_settings, tmp_path):
    _build_city(fresh_settings)
    dump = tmp_path / "city.dump"
    run(fresh_settings, "db", "backup", str(dump))
    result = json.loads(run(fresh_settings, "db", "restore", str(dump), "--yes", "--json").output)
    assert result["path"] == str(dump)
    rows = _audit(fresh_settings, "database.restored")
    assert len(rows) == 1 and rows[0].actor.startswith("cli") and rows[0].detail["path"] == str(dump)
    # The application role still works on the restored database: a whois answers, a write succeeds.
    assert _whois(fresh_settings, "2099-01-01T00:00:00+00:00")["departments"]
    run(fresh_settings, "dept", "add", "300001", "民政")
