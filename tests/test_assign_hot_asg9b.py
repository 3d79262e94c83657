"""A bulk assignment as the application role: residents' cells COPYed into resident_cell (migration 20261204_cell9f,
which replaced the heap-only UPDATEs of migration 20261203_asg9b) with that table's index and foreign keys dropped
and built again, the resident rows and their indexes left alone, and the result PostGIS's."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from gridkit.assign import assign_subjects
from gridkit.spatial import bulk
from tests.factories import X0, Y0, D, make_base_grid, residents_not_in_their_cell
from tests.factories_app_role import app_role_engine, rolled_back_session, statements_run

DBNAME = "gridkit_asg9b_app"
RESIDENTS = 1500  # above the engine's 1,000 points: the binary COPY + UPDATE path


@pytest.fixture(scope="module")
def app_engine(pg_server):
    """An engine connected as the application role `gridkit` to a database migrated by `gridkit_owner`."""
    with app_role_engine(pg_server, DBNAME, port=5494) as engine:
        yield engine


@pytest.fixture
def app_session(app_engine):
    with rolled_back_session(app_engine) as session:
        yield session


def _indexes(session, table: str) -> list[str]:
    return sorted(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}))


def _constraints(session, table: str) -> list[tuple]:
    return session.execute(
        text(
            "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
            "WHERE conrelid = CAST(:t AS regclass) ORDER BY conname"
        ),
        {"t": table},
    ).all()


def _store_residents(session, n: int, *, placed: bool = False) -> None:
    """n residents with points (a few outside every cell, some on cell edges), with no cell or (`placed`)
    inserted with PostGIS's cell already."""
    session.execute(
        text(
            "INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type, geom) "
            "SELECT md5(i::text), '4403**********0000', '测试', 'H' || (i / 3), 'registered', "
            "ST_SetSRID(ST_MakePoint(:x + (i % 41) * :d * 3.2 / 40, :y + (i / 41 % 37) * :d * 3.2 / 36), 4490) "
            "FROM generate_series(1, :n) i"
        ).bindparams(n=n)
        if not placed
        else text(
            "WITH r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type, "
            "geom) SELECT md5(i::text), '4403**********0000', '测试', 'H' || (i / 3), 'registered', "
            "ST_SetSRID(ST_MakePoint(:x + (i % 41) * :d * 3.2 / 40, :y + (i / 41 % 37) * :d * 3.2 / 36), 4490) "
            "FROM generate_series(1, :n) i RETURNING id, geom) "
            "INSERT INTO resident_cell (resident_id, base_cell_id) SELECT r.id, c.id FROM r, LATERAL ("
            "SELECT b.id FROM base_cell b WHERE ST_Covers(b.geom, r.geom) ORDER BY b.code LIMIT 1) c"
        ).bindparams(n=n),
        {"x": X0 - 0.1 * D, "y": Y0 - 0.1 * D, "d": D},
    )


def test_a_bulk_write_of_residents_cells_drops_and_restores_the_narrow_tables_index_and_keys(app_session, monkeypatch):
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10)
    before, constraints_before = _indexes(app_session, "resident_cell"), _constraints(app_session, "resident_cell")
    with bulk.rebuilt_indexes(app_session, "resident_cell", 50) as rebuilt:
        assert rebuilt is True
        assert _indexes(app_session, "resident_cell") == [
            "CREATE UNIQUE INDEX pk_resident_cell ON public.resident_cell USING btree (resident_id)"
        ]
        assert [c[0] for c in _constraints(app_session, "resident_cell")] == ["pk_resident_cell"]
    assert _indexes(app_session, "resident_cell") == before
    assert _constraints(app_session, "resident_cell") == constraints_before
    assert {c[0] for c in constraints_before} == {
        "pk_resident_cell",
        "fk_resident_cell_resident_id_resident",
        "fk_resident_cell_base_cell_id_base_cell",
    }


def test_a_table_without_room_for_hot_updates_drops_every_index(app_session, monkeypatch):
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10)
    before = _indexes(app_session, "legal_entity")
    with bulk.rebuilt_indexes(app_session, "legal_entity", 50):
        assert [d for d in _indexes(app_session, "legal_entity") if "pk_legal_entity" not in d] == []
    assert _indexes(app_session, "legal_entity") == before


def test_the_column_scoped_drop_refuses_other_tables_and_unknown_columns(app_session):
    with pytest.raises(Exception, match="only for gridkit's subject tables"):
        with app_session.begin_nested():
            app_session.execute(text("SELECT gridkit_drop_bulk_indexes_on('audit_log'::regclass, '{id}')"))
    with pytest.raises(Exception, match="has no column"):
        with app_session.begin_nested():
            app_session.execute(text("SELECT gridkit_drop_bulk_indexes_on('resident'::regclass, '{no_such}')"))


def test_a_bulk_assignment_as_the_app_role_copies_cells_and_agrees_with_postgis(app_session, app_engine, monkeypatch):
    make_base_grid(app_session)
    _store_residents(app_session, RESIDENTS)
    before, constraints_before = _indexes(app_session, "resident"), _constraints(app_session, "resident")
    narrow_before = _indexes(app_session, "resident_cell"), _constraints(app_session, "resident_cell")
    changes_before = app_session.scalar(text("SELECT count(*) FROM resident_change"))
    filenode = app_session.scalar(text("SELECT pg_relation_filenode('resident_cell')"))
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100)
    with statements_run(app_engine) as statements:
        counts = assign_subjects(app_session, ["residents"])["residents"]
    assert sum("gridkit_drop_bulk_indexes(" in s for s in statements) == 1
    assert sum("gridkit_restore_bulk_indexes" in s for s in statements) == 1
    # Emptied by TRUNCATE first (the app role may; a new file: no WAL for the COPY), then filled once.
    assert app_session.scalar(text("SELECT pg_relation_filenode('resident_cell')")) != filenode
    inserted = app_session.scalar(
        text("SELECT n_tup_ins FROM pg_stat_xact_user_tables WHERE relname = 'resident_cell'")
    )
    assert inserted == counts["assigned"]
    # No resident row was written, and the residents' table kept its indexes and constraints throughout.
    updates = app_session.scalar(text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'resident'"))
    assert updates == 0 and counts["changed"] > 1000
    assert not any("gridkit_drop_bulk_indexes" in s and "'resident'" in s for s in statements)
    assert (_indexes(app_session, "resident"), _constraints(app_session, "resident")) == (before, constraints_before)
    assert (_indexes(app_session, "resident_cell"), _constraints(app_session, "resident_cell")) == narrow_before
    # The stored cells are PostGIS's (ST_Covers, smallest code on ties), the outsiders have none.
    assert residents_not_in_their_cell(app_session) == 0
    assert 0 < counts["unassigned"] < RESIDENTS and counts["assigned"] + counts["unassigned"] == RESIDENTS
    # The resident summary is marked stale by resident_cell's statement-level triggers.
    assert app_session.scalar(text("SELECT count(*) FROM resident_change")) > changes_before


def test_publishing_a_new_edition_moves_residents_cells_in_the_narrow_table(app_session, app_engine, monkeypatch):
    from gridkit.grids.editions import publish_edition
    from gridkit.models import BaseGridEdition

    old = make_base_grid(app_session)
    _store_residents(app_session, RESIDENTS, placed=True)
    # The next edition: the same cells (new ids), drafted by copying.
    new = BaseGridEdition(name="2027", status="draft")
    app_session.add(new)
    app_session.flush()
    app_session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) "
            "SELECT :new, code, community_code, geom FROM base_cell WHERE edition_id = :old"
        ),
        {"new": new.id, "old": old.id},
    )
    placed = app_session.scalar(text("SELECT count(*) FROM resident_cell"))
    before = _indexes(app_session, "resident_cell"), _constraints(app_session, "resident_cell")
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 100)
    with statements_run(app_engine) as statements:
        result = publish_edition(app_session, new)
    followed = result["subjects"]["residents"]["followed"]
    assert followed == placed > 1000
    assert sum("gridkit_drop_bulk_indexes(" in s for s in statements) == 1  # resident_cell: the only table this full
    assert app_session.scalar(text("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'resident'")) == 0
    assert (_indexes(app_session, "resident_cell"), _constraints(app_session, "resident_cell")) == before
    # Every resident placed before is in the cell of the same code of the new edition.
    stray = app_session.scalar(
        text(
            "SELECT count(*) FROM resident_cell r JOIN base_cell b ON b.id = r.base_cell_id WHERE b.edition_id <> :new"
        ),
        {"new": new.id},
    )
    assert stray == 0
