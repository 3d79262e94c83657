"""What the application role may do with each table of public, as one declared matrix (a new table fails the test
until it is given its line), and the derived tables (sec10b): the rollups of the cases and the resident summary are
written by the database only (triggers and functions running as the owner), never directly by the application role,
while every service that changes what they count keeps them right as that role: a case's workflow, an edition's
publish, an import of residents (a first load and an ordinary one), a change of the city's time zone."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from factories import X0, Y0, D, make_base_grid
from factories_incidents import IN_C1, SUPERVISOR, coordinator_actor, make_incident_world
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from test_incidents_rollups_inc10 import EVAL_RECOUNT, _eval_rollup, _recount, _rollup
from test_publish_cases_perf9c import _next_edition

from gridkit import db
from gridkit.db.embedded import APP_APPEND_ONLY_TABLES, APP_DERIVED_TABLES, APP_READ_ONLY_TABLES, OWNER_ROLE
from gridkit.db.timezone import sync_time_zone
from gridkit.grids.editions import publish_edition
from gridkit.incidents import workflow as wf
from gridkit.io.subjects import import_residents, resident_load
from gridkit.io.subjects import residents as residents_module
from gridkit.reports import resident_summary
from tests.factories_app_role import app_role_engine, rolled_back_session
from tests.factories_import_subjects import buildings, record_first_loads, write_csv
from tests.test_import_residents_first_load_imp9h import HEADER, KEY, _id, _mixed_csv
from tests.test_reports_exq12b import _add, _direct, _summary

_spec = importlib.util.spec_from_file_location(
    "sec10b", Path(__file__).resolve().parents[1] / "migrations" / "versions" / "20261209_sec10b.py"
)
_MIGRATION = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_MIGRATION)

DBNAME = "gridkit_sec10b_app"
PORT = 5621
T0 = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

READ = frozenset({"SELECT"})
APPEND = frozenset({"SELECT", "INSERT"})
WRITE = frozenset({"SELECT", "INSERT", "UPDATE", "DELETE"})
# Every table and view of public and what the application role may do with it. A new table needs a decision here.
MATRIX = {
    # The deployment's settings, the migrations' revision, PostGIS's coordinate systems and catalogue views.
    "gridkit_config": READ,
    "alembic_version": READ,
    "spatial_ref_sys": READ,
    "geometry_columns": READ,
    "geography_columns": READ,
    # Who read which personal data; each case's steps.
    "audit_log": APPEND,
    "incident_history": APPEND,
    # Derived: kept by the triggers on incident, resident and resident_cell and by the owner's summary functions.
    "incident_eval": READ,
    "incident_heat": READ,
    "resident_change": READ,
    "resident_cell_summary": READ,
    "resident_split_household": READ,
    # The application's own data.
    "admin_unit": WRITE,
    "app_user": WRITE,
    "base_cell": WRITE,
    "base_grid_edition": WRITE,
    "building": WRITE,
    "component": WRITE,
    "coordinator": WRITE,
    "coordinator_assignment": WRITE,
    "department": WRITE,
    "edition_check": WRITE,
    "incident": WRITE,
    "incident_attachment": WRITE,
    "incident_category": WRITE,
    "legal_entity": WRITE,
    "login_failure": WRITE,
    "resident": WRITE,
    "resident_cell": WRITE,
    "work_calendar_day": WRITE,
    "work_calendar_hours": WRITE,
    "work_cell": WRITE,
    "work_cell_member": WRITE,
    "work_grid_exclusion": WRITE,
    "work_grid_version": WRITE,
}

_PRIVILEGES = """
SELECT c.relname, array_remove(ARRAY[
    CASE WHEN has_table_privilege(c.oid, 'SELECT') THEN 'SELECT' END,
    CASE WHEN has_table_privilege(c.oid, 'INSERT') THEN 'INSERT' END,
    CASE WHEN has_table_privilege(c.oid, 'UPDATE') THEN 'UPDATE' END,
    CASE WHEN has_table_privilege(c.oid, 'DELETE') THEN 'DELETE' END,
    CASE WHEN has_table_privilege(c.oid, 'TRUNCATE') THEN 'TRUNCATE' END,
    CASE WHEN has_table_privilege(c.oid, 'REFERENCES') THEN 'REFERENCES' END,
    CASE WHEN has_table_privilege(c.oid, 'TRIGGER') THEN 'TRIGGER' END], NULL)
FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
"""

# A write of each kind into each derived table (any row: all are refused before they are looked at).
_WRITES = {
    "incident_eval": ("INSERT INTO incident_eval (day, cases) VALUES ('2026-03-14', 1)", "cases = cases + 1"),
    "incident_heat": (
        "INSERT INTO incident_heat (level, ix, iy, month, n) VALUES (13, 1, 1, '2026-03-01', 9)",
        "n = 0",
    ),
    "resident_change": ("INSERT INTO resident_change DEFAULT VALUES", "txid = 1"),
    "resident_cell_summary": (
        "INSERT INTO resident_cell_summary VALUES (1, 1000, 1000, 0, 10)",
        "residents = residents + 1",
    ),
    "resident_split_household": ("INSERT INTO resident_split_household VALUES ('H1', 1)", "household = 'H2'"),
}


def _privileges(conn) -> dict[str, frozenset[str]]:
    return {name: frozenset(held) for name, held in conn.execute(text(_PRIVILEGES))}


def _owner_url(engine) -> str:
    return make_url(engine.url).set(username=OWNER_ROLE).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def app_engine(pg_server):
    with app_role_engine(pg_server, DBNAME, port=PORT) as engine:
        yield engine


@pytest.fixture
def app_session(app_engine):
    with rolled_back_session(app_engine) as session:
        yield session


def _refused(session, statement: str) -> None:
    with pytest.raises(ProgrammingError, match="permission denied"):
        with session.begin_nested():
            session.execute(text(statement))


def test_every_table_has_a_declared_privilege_for_the_app_role(app_session):
    assert _privileges(app_session.connection()) == MATRIX
    # The matrix and the lists EmbeddedCluster.grant restricts after every grant of the schema say the same.
    assert {name for name, held in MATRIX.items() if held == READ} >= set(APP_READ_ONLY_TABLES + APP_DERIVED_TABLES)
    assert {name for name, held in MATRIX.items() if held == APPEND} == set(APP_APPEND_ONLY_TABLES)


def test_the_app_role_cannot_write_a_derived_table(app_session):
    assert set(_WRITES) == set(APP_DERIVED_TABLES)
    for table, (insert, assignment) in _WRITES.items():
        _refused(app_session, insert)
        _refused(app_session, f"UPDATE {table} SET {assignment}")
        _refused(app_session, f"DELETE FROM {table}")
        _refused(app_session, f"TRUNCATE {table}")
    # Nor through the owner's recount, nor by making objects that a trigger could find first.
    _refused(app_session, "SELECT gridkit_rebuild_incident_eval()")
    _refused(app_session, "CREATE TABLE public.incident_heat_copy (n int)")


def test_every_trigger_function_runs_as_the_owner_on_a_pinned_path(app_session):
    """A trigger that writes a derived table must run as its owner: the application role may not write it. A
    CREATE OR REPLACE that forgets the clause would turn the function back into the caller's."""
    functions = app_session.execute(
        text(
            "SELECT DISTINCT p.proname, p.prosecdef, p.proconfig, pg_get_userbyid(p.proowner) FROM pg_trigger t "
            "JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace ORDER BY 1"
        )
    ).all()
    assert {f.proname for f in functions} >= {"incident_eval_update", "incident_heat_insert", "resident_changed"}
    for name, definer, config, owner in functions:
        assert definer and config == ["search_path=pg_catalog, public, pg_temp"], name
        assert owner == OWNER_ROLE, name


def test_a_case_through_its_workflow_keeps_the_rollups_right_as_the_app_role(app_session):
    world = make_incident_world(app_session)
    # The application's own temporary table of a derived table's name is not what the triggers write.
    app_session.execute(text("CREATE TEMP TABLE incident_heat (LIKE public.incident_heat INCLUDING ALL)"))
    app_session.execute(text("CREATE TEMP TABLE incident_eval (LIKE public.incident_eval INCLUDING ALL)"))
    coordinator = coordinator_actor(world, 1)
    ids = []
    for n in range(6):
        at = T0 + timedelta(days=n, hours=n)
        case = wf.report_incident(
            app_session,
            lon=IN_C1[0] + n * D / 10,
            lat=IN_C1[1],
            description=f"井盖{n}",
            actor=SUPERVISOR,
            reported_at=at,
        ).incident
        ids.append(case.id)
        wf.accept(app_session, case.id, SUPERVISOR, at=at + timedelta(hours=1))
        wf.classify(app_session, case.id, SUPERVISOR, category="0101", at=at + timedelta(hours=2))
        wf.dispatch(app_session, case.id, SUPERVISOR, at=at + timedelta(hours=3))
        if n % 2:
            continue
        wf.feedback(app_session, case.id, coordinator, note="已处理", at=at + timedelta(hours=5))
        if n == 2:
            wf.rework(app_session, case.id, SUPERVISOR, note="井盖仍未盖好", at=at + timedelta(hours=6))
            wf.feedback(app_session, case.id, coordinator, note="已盖好", at=at + timedelta(hours=8))
        wf.close(app_session, case.id, SUPERVISOR, at=at + timedelta(hours=9))
    app_session.flush()
    assert app_session.scalar(text("SELECT count(*) FROM pg_temp.incident_heat")) == 0
    assert app_session.scalar(text("SELECT count(*) FROM pg_temp.incident_eval")) == 0
    app_session.execute(text("DROP TABLE pg_temp.incident_heat, pg_temp.incident_eval"))
    assert _rollup(app_session) == _recount(app_session) and _rollup(app_session)
    assert _eval_rollup(app_session) == {tuple(r) for r in app_session.execute(text(EVAL_RECOUNT))}
    totals = app_session.execute(text("SELECT sum(cases), sum(closed), sum(reworked) FROM incident_eval")).one()
    assert tuple(totals) == (6, 3, 1)


def test_an_edition_publish_moves_cases_and_keeps_the_rollups_right_as_the_app_role(app_session):
    make_incident_world(app_session, users=False)
    for n, (i, j) in enumerate((i, j) for i in range(-1, 14, 2) for j in range(-1, 13, 2)):
        case = wf.report_incident(
            app_session,
            lon=X0 + i * D / 4,
            lat=Y0 + j * D / 4,
            description=f"事件{n}",
            category="0101",
            reported_at=T0 + timedelta(days=n % 30, hours=n % 24),
            actor=SUPERVISOR,
        ).incident
        if n % 3 == 0:
            wf.accept(app_session, case.id, SUPERVISOR, at=case.reported_at + timedelta(hours=1))
    app_session.flush()
    result = publish_edition(app_session, _next_edition(app_session))
    assert result["subjects"]["incidents"]["changed"] > 0 and result["subjects"]["incidents"]["unassigned"] > 0
    assert _rollup(app_session) == _recount(app_session)
    assert _eval_rollup(app_session) == {tuple(r) for r in app_session.execute(text(EVAL_RECOUNT))}


def test_imports_of_residents_keep_the_summary_right_as_the_app_role(app_session, tmp_path, monkeypatch):
    make_base_grid(app_session, rows=3, cols=3, communities=2)
    buildings(app_session)
    first_loads = record_first_loads(monkeypatch, resident_load, "gridkit.io.subjects.residents.first_load")
    written = []
    write_summary_rows = residents_module.write_summary_rows
    monkeypatch.setattr(
        residents_module, "write_summary_rows", lambda s, rows: written.append(rows) or write_summary_rows(s, rows)
    )
    loaded = import_residents(app_session, _mixed_csv(tmp_path / "first.csv", 3000, holes=False), pii_key=KEY)
    assert first_loads[0] is not None and written  # the summary written from the rows the load grouped
    assert resident_summary.is_current(app_session)
    assert _summary(app_session) == _direct(app_session) and _summary(app_session)[1]
    assert sum(row[1] for row in _summary(app_session)[0]) == loaded.assigned
    # An ordinary import into the filled table: its cells recounted.
    west, south = X0 + D / 2, Y0 + D / 2
    rows = [[_id(5000 + i), f"新居民{i}", "", "floating", "H1", "", west + i * D, south] for i in range(4)]
    import_residents(app_session, write_csv(tmp_path / "more.csv", HEADER, rows), pii_key=KEY)
    assert first_loads[1] is None
    assert resident_summary.is_current(app_session) and _summary(app_session) == _direct(app_session)
    # A change by hand: the next report rebuilds the summary.
    app_session.execute(text("DELETE FROM resident WHERE household = 'H1'"))
    assert resident_summary.ensure_current(app_session) is True
    assert resident_summary.is_current(app_session) and _summary(app_session) == _direct(app_session)


def test_a_new_time_zone_recounts_the_rollup_and_the_app_role_counts_in_it(pg_server):
    """`db up` recounts the rollup as the owner when the zone changes; the application's cases written before and
    after are all counted in the new zone's days."""
    with app_role_engine(pg_server, "gridkit_sec10b_zone", port=PORT) as engine:
        with db.session_factory(engine)() as session, session.begin():
            make_incident_world(session)
            late = datetime(2026, 3, 14, 20, 30, tzinfo=UTC)  # 04:30 on the 15th in Shanghai
            wf.report_incident(
                session, lon=IN_C1[0], lat=IN_C1[1], description="夜", actor=SUPERVISOR, reported_at=late
            )
            session.flush()
        owner = db.make_engine(_owner_url(engine))
        try:
            assert sync_time_zone(owner, "Europe/Berlin") is True
        finally:
            owner.dispose()
        with rolled_back_session(engine) as session:
            assert session.scalar(text("SELECT day::text FROM incident_eval WHERE cases <> 0")) == "2026-03-14"
            wf.report_incident(
                session, lon=IN_C1[0], lat=IN_C1[1], description="晨", actor=SUPERVISOR, reported_at=late
            )
            session.flush()
            days = session.execute(text("SELECT day::text, cases FROM incident_eval WHERE cases <> 0")).all()
            assert [tuple(d) for d in days] == [("2026-03-14", 2)]


def test_the_migration_upgrades_a_database_in_use_and_goes_down_again(pg_server):
    with app_role_engine(pg_server, "gridkit_sec10b_round", port=PORT) as engine:
        owner = _owner_url(engine)
        with engine.connect() as conn:
            restricted = _privileges(conn)
        # The revision before this one: the models in use here must still match its schema.
        db.downgrade(owner, _MIGRATION.down_revision)
        with engine.connect() as conn:
            held = _privileges(conn)
            assert all(held[table] == WRITE for table in APP_DERIVED_TABLES)
            assert conn.scalar(text("SELECT to_regproc('gridkit_refresh_resident_summary')")) is None
            assert not conn.scalar(text("SELECT prosecdef FROM pg_proc WHERE proname = 'incident_eval_insert'"))
        # The previous head in use: cases and residents written (its triggers as the application role).
        with db.session_factory(engine)() as session, session.begin():
            make_incident_world(session)
            case = wf.report_incident(session, lon=IN_C1[0], lat=IN_C1[1], description="旧", actor=SUPERVISOR)
            wf.accept(session, case.incident.id, SUPERVISOR)
            _add(session, 1, "H9", session.scalar(text("SELECT min(id) FROM base_cell")))
        db.upgrade(owner)
        with rolled_back_session(engine) as session:
            assert _privileges(session.connection()) == restricted == MATRIX
            assert not resident_summary.is_current(session)  # the resident written before
            assert resident_summary.ensure_current(session) and _summary(session) == _direct(session)
            wf.classify(session, case.incident.id, SUPERVISOR, category="0101")
            session.flush()
            assert _rollup(session) == _recount(session)
            assert _eval_rollup(session) == {tuple(r) for r in session.execute(text(EVAL_RECOUNT))}
