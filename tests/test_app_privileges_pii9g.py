"""What the application role may write (pii9g): the database's settings, the migrations' revision and PostGIS's
coordinate systems it only reads; the audit log and the cases' history it only appends to; the owner's
recount it may not run. Tested as the application role on a database migrated by the owner, and on the embedded
database after starts that grant the whole schema again. (What it may do with every table, as one matrix:
tests/test_app_privileges_sec10b.py.)"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError

from gridkit import audit, db
from gridkit.cli import main
from gridkit.config import Settings
from gridkit.db.embedded import APP_DERIVED_TABLES, OWNER_ROLE
from gridkit.incidents import workflow as wf
from gridkit.models import AuditLog, IncidentHistory
from gridkit.rules import parse_time
from tests.factories_app_role import app_role_engine, rolled_back_session
from tests.factories_incidents import IN_C1, SUPERVISOR, make_incident_world

DBNAME = "gridkit_pii9g_app"
PORT = 5670
OLD_ROW = "INSERT INTO audit_log (at, actor, action) VALUES ('2025-06-01T10:00:00+08:00', 'a', 'x')"

# (privilege, table) the application role holds, for every table and view of public.
_PRIVILEGES = """
SELECT c.relname, p.privilege
FROM pg_class c, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p (privilege)
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm')
  AND has_table_privilege(c.oid, p.privilege)
"""


def _privileges(conn) -> dict[str, set[str]]:
    held: dict[str, set[str]] = {}
    for table, privilege in conn.execute(text(_PRIVILEGES)):
        held.setdefault(table, set()).add(privilege)
    return held


@pytest.fixture(scope="module")
def app_engine(pg_server):
    with app_role_engine(pg_server, DBNAME, port=PORT) as engine:
        yield engine


@pytest.fixture
def app_session(app_engine):
    with rolled_back_session(app_engine) as session:
        yield session


def _refused(session, statement: str, params: dict | None = None) -> None:
    with pytest.raises(ProgrammingError, match="permission denied"):
        with session.begin_nested():
            session.execute(text(statement), params or {})


def test_the_city_time_zone_is_the_owners_to_write(app_session):
    assert app_session.scalar(text("SELECT time_zone FROM gridkit_config")) == "Asia/Shanghai"
    _refused(app_session, "UPDATE gridkit_config SET time_zone = 'Europe/Berlin'")
    _refused(app_session, "DELETE FROM gridkit_config")
    _refused(app_session, "SELECT gridkit_rebuild_incident_eval()")
    _refused(app_session, "UPDATE alembic_version SET version_num = '20261127_0001'")
    _refused(app_session, "UPDATE spatial_ref_sys SET proj4text = '' WHERE srid = 4490")
    assert app_session.scalar(text("SELECT time_zone FROM gridkit_config")) == "Asia/Shanghai"


def test_the_audit_log_and_case_history_are_append_only(app_session):
    make_incident_world(app_session)
    # The workflow appends history and audit rows as the application role.
    case = wf.report_incident(
        app_session, lon=IN_C1[0], lat=IN_C1[1], category="0101", actor=SUPERVISOR, description="井盖破损"
    ).incident
    wf.accept(app_session, case.id, SUPERVISOR)
    audit.record(app_session, "admin1", audit.PERSONAL_DATA_READ, object_type="resident", object_id=1)
    app_session.flush()
    assert app_session.query(IncidentHistory).filter_by(incident_id=case.id).count() == 2
    assert app_session.query(AuditLog).count() >= 1
    _refused(app_session, "DELETE FROM audit_log")
    _refused(app_session, "UPDATE audit_log SET actor = 'nobody'")
    _refused(app_session, "UPDATE incident_history SET note = 'rewritten' WHERE incident_id = :i", {"i": case.id})
    _refused(app_session, "DELETE FROM incident_history WHERE incident_id = :i", {"i": case.id})


def test_old_audit_rows_are_archived_by_the_owner_only(app_engine, tmp_path):
    with rolled_back_session(app_engine) as session:
        session.execute(text(OLD_ROW))
        with pytest.raises(ProgrammingError, match="permission denied"):
            with session.begin_nested():
                audit.archive(session, tmp_path / "app.gz", parse_time("2026-01-01"), actor="app")
    owner = db.make_engine(make_url(app_engine.url).set(username=OWNER_ROLE).render_as_string(hide_password=False))
    try:
        with rolled_back_session(owner) as session:
            session.execute(text(OLD_ROW))
            done = audit.archive(session, tmp_path / "owner.gz", parse_time("2026-01-01"), actor="admin")
            assert done["rows"] == 1
    finally:
        owner.dispose()


def test_the_embedded_database_keeps_the_restrictions_across_starts(tmp_path):
    home = Path(tempfile.mkdtemp(prefix="gk-pii9g-"))
    os.chmod(home, 0o755)  # the server's user reaches it when the tests run as root
    settings = Settings(home=home / "home", pg_port=PORT)
    try:
        db.up(settings)
        db.forget_engine(settings)
        db.up(settings)  # a start grants the whole schema again: the restrictions follow it
        engine = db.engine_for(settings)
        with engine.connect() as conn:
            held = _privileges(conn)
            assert held["gridkit_config"] == {"SELECT"} and held["spatial_ref_sys"] == {"SELECT"}
            assert held["audit_log"] == {"SELECT", "INSERT"}
            assert all(held[table] == {"SELECT"} for table in APP_DERIVED_TABLES)  # migration 20261209_sec10b
            conn.execute(text(OLD_ROW))
            conn.commit()
        # `db archive-audit` moves the rows out as the owner.
        target = tmp_path / "audit-2025.jsonl.gz"
        done = CliRunner().invoke(
            main,
            ["db", "archive-audit", str(target), "--before", "2026-01-01", "--json"],
            obj=settings,
            env={"GRIDKIT_LANG": "en", "GRIDKIT_USER": "admin"},
            catch_exceptions=False,
        )
        assert done.exit_code == 0, done.output
        assert json.loads(done.output)["rows"] == 1
        assert [json.loads(line)["actor"] for line in gzip.open(target, "rt", encoding="utf-8")] == ["a"]
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM audit_log WHERE at < '2026-01-01'")) == 0
    finally:
        db.forget_engine(settings)
        db.cluster_for(settings).destroy()
        shutil.rmtree(home, ignore_errors=True)


def test_a_first_bulk_load_of_cases_still_works_as_the_app_role(app_session):
    """`gridkit import incidents` of many cases into empty tables truncates them and rebuilds their indexes
    through the owner's functions, which asked for UPDATE and DELETE on incident_history too."""
    from gridkit.spatial.bulk import BULK_INDEX_ROWS, rebuilt_indexes

    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('public.incident'::regclass)")) is True
    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('public.incident_history'::regclass)")) is True
    with rebuilt_indexes(app_session, "incident", BULK_INDEX_ROWS) as cases:
        with rebuilt_indexes(app_session, "incident_history", BULK_INDEX_ROWS) as history:
            assert cases and history
    indexes = app_session.scalar(text("SELECT count(*) FROM pg_indexes WHERE tablename = 'incident_history'"))
    assert indexes > 1  # built again
    # Still no rewriting of a history that has rows: the truncation empties empty tables only.
    make_incident_world(app_session)
    wf.report_incident(app_session, lon=IN_C1[0], lat=IN_C1[1], category="0101", actor=SUPERVISOR, description="x")
    app_session.flush()
    assert app_session.scalar(text("SELECT gridkit_truncate_for_load('public.incident_history'::regclass)")) is False


def test_the_migration_goes_down_and_up_again(pg_server):
    definition = "SELECT pg_get_functiondef('gridkit_truncate_for_load(regclass)'::regprocedure)"
    with app_role_engine(pg_server, "gridkit_pii9g_round", port=PORT) as engine:
        owner = make_url(engine.url).set(username=OWNER_ROLE).render_as_string(hide_password=False)
        with engine.connect() as conn:
            restricted = (_privileges(conn), conn.scalar(text(definition)))
        db.downgrade(owner, "20261207_perf9c")
        with engine.connect() as conn:
            held = _privileges(conn)
            assert held["gridkit_config"] == held["audit_log"] == {"SELECT", "INSERT", "UPDATE", "DELETE"}
            assert "incident_history'::regclass" not in conn.scalar(text(definition))
        db.upgrade(owner)
        with engine.connect() as conn:
            assert (_privileges(conn), conn.scalar(text(definition))) == restricted
