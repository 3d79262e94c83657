"""The bulk index rebuild works for the application role, which does not own the tables (as on the embedded DB)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridkit.db.embedded import APP_ROLE, OWNER_ROLE
from gridkit.io.subjects import import_residents
from gridkit.spatial import bulk
from tests.data.make_subject_files import many_residents_csv
from tests.factories import make_base_grid
from tests.factories_app_role import app_role_engine, rolled_back_session, statements_run

KEY = b"test-personal-data-key"
DBNAME = "gridkit_city9_app"


@pytest.fixture(scope="module")
def app_engine(pg_server):
    """An engine connected as the application role `gridkit` to a database migrated by `gridkit_owner`."""
    with app_role_engine(pg_server, DBNAME, port=5493) as engine:
        yield engine


@pytest.fixture
def app_session(app_engine):
    with rolled_back_session(app_engine) as session:
        yield session


def _indexes(session, table: str) -> list[str]:
    return sorted(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}))


def test_the_app_role_owns_nothing_and_may_not_drop_an_index(app_session):
    me, is_super = app_session.execute(
        text("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
    ).one()
    assert (me, is_super) == (APP_ROLE, False)
    assert app_session.scalar(text("SELECT tableowner FROM pg_tables WHERE tablename = 'resident'")) == OWNER_ROLE
    name = app_session.scalar(
        text("SELECT indexname FROM pg_indexes WHERE tablename = 'resident' AND indexdef ILIKE '%gist%' LIMIT 1")
    )
    with pytest.raises(Exception, match="must be owner"):
        with app_session.begin_nested():
            app_session.execute(text(f'DROP INDEX "{name}"'))


def test_the_app_role_takes_the_fast_path(app_session, monkeypatch):
    before = _indexes(app_session, "resident")
    constraints_before = app_session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'resident'::regclass "
            "ORDER BY conname"
        )
    ).all()
    assert {c[0] for c in constraints_before} >= {"fk_resident_building_id_building", "uq_resident_id_number_hash"}
    secondary = [d for d in before if "pk_resident" not in d]
    assert len(secondary) == len(before) - 1  # all but the primary key: geometry, cell …, the ID hash's UNIQUE
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10)
    with bulk.rebuilt_indexes(app_session, "resident", 50) as rebuilt:
        assert rebuilt is True
        during = _indexes(app_session, "resident")
        assert sorted(set(before) - set(during)) == sorted(secondary)
    assert _indexes(app_session, "resident") == before
    constraints = text(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'resident'::regclass "
        "ORDER BY conname"
    )
    assert app_session.execute(constraints).all() == constraints_before
    # A rollback after the drop brings the indexes back too (nothing is left dropped).
    savepoint = app_session.begin_nested()
    with bulk.rebuilt_indexes(app_session, "resident", 50):
        savepoint.rollback()
    assert _indexes(app_session, "resident") == before


def test_the_functions_refuse_other_tables(app_session):
    with pytest.raises(Exception, match="only for gridkit's subject tables"):
        with app_session.begin_nested():
            app_session.execute(text("SELECT gridkit_drop_bulk_indexes('audit_log'::regclass)"))
    # The definitions wait where the application cannot write (it could otherwise have them run as owner).
    with pytest.raises(Exception, match="permission denied"):
        with app_session.begin_nested():
            app_session.execute(text("SELECT count(*) FROM gridkit_private.bulk_dropped_index"))


def test_an_import_as_the_app_role_rebuilds_the_indexes_once(app_session, app_engine, tmp_path, monkeypatch):
    make_base_grid(app_session)
    before, narrow_before = _indexes(app_session, "resident"), _indexes(app_session, "resident_cell")
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100)
    with statements_run(app_engine) as statements:
        result = import_residents(app_session, many_residents_csv(tmp_path / "r.csv", 300), pii_key=KEY)
    assert result.created == 300 and result.assigned == 300
    # Once for the residents and once for their cells (resident_cell, migration 20261204_cell9f).
    assert sum("gridkit_drop_bulk_indexes" in s for s in statements) == 2
    assert sum("gridkit_restore_bulk_indexes" in s for s in statements) == 2
    assert _indexes(app_session, "resident") == before
    assert _indexes(app_session, "resident_cell") == narrow_before
    found = app_session.scalar(
        text("SELECT count(*) FROM resident WHERE ST_DWithin(geom, (SELECT geom FROM resident LIMIT 1), 1)")
    )
    assert found == 300
