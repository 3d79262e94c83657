"""Residents' base cells live in the narrow table resident_cell (migration 20261204_cell9f): a first assignment
COPYs them there (exact, all or nothing, no row for an unassigned resident), a resident moved through the ORM
gets its new cell, deleting a base cell or a resident deletes the row, and the summary is marked stale."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from gridkit import assign, db, resident_cells
from gridkit.assign import assign_subjects, base_cell_index
from gridkit.models import SRID, BaseCell, Resident, ResidentCell
from gridkit.spatial import bulk
from tests.factories import X0, Y0, D, make_base_grid, residents_not_in_their_cell, store_residents

N = 300  # residents on a 3×3 grid, some on edges and corners, some outside


@pytest.fixture
def bulk_path(monkeypatch):
    """Take the bulk path (freeze, COPY, index and foreign keys dropped and rebuilt) for a few hundred residents."""
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS", 0)
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS_PER_CELL", 0)
    monkeypatch.setattr(resident_cells, "COPY_MIN_ROWS", 10)
    monkeypatch.setattr(resident_cells, "COPY_CHUNK_ROWS", 64)  # many COPY messages
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10)
    copies = []
    real = resident_cells.copy_resident_cells
    monkeypatch.setattr(assign, "copy_resident_cells", lambda *a: copies.append(len(a[1])) or real(*a))
    return copies


def _schema_of_resident_cell(session) -> tuple:
    indexes = session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'resident_cell' ORDER BY 1"))
    keys = session.scalars(
        text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'resident_cell'::regclass ORDER BY 1"
        )
    )
    return list(indexes), list(keys)


def test_a_first_assignment_copies_postgis_cells_and_no_row_for_the_unassigned(session, bulk_path):
    make_base_grid(session)
    store_residents(session, N)
    schema = _schema_of_resident_cell(session)
    counts = assign_subjects(session, ["residents"])["residents"]
    assert bulk_path == [counts["assigned"]]  # one COPY of every resident a cell covers (outsiders unchanged)
    assert residents_not_in_their_cell(session) == 0
    assert 0 < counts["unassigned"] < N and counts["assigned"] + counts["unassigned"] == N
    assert counts["changed"] == counts["assigned"]
    rows = session.scalar(text("SELECT count(*) FROM resident_cell"))
    assert rows == counts["assigned"]  # the unassigned residents have no row at all
    assert _schema_of_resident_cell(session) == schema  # index and foreign keys built again
    assert assign_subjects(session, ["residents"])["residents"]["changed"] == 0


def test_a_bulk_reassignment_replaces_only_the_moved_residents_rows(session, bulk_path):
    grid = make_base_grid(session)
    store_residents(session, N)
    assign_subjects(session, ["residents"])
    # Half of them move by a cell width (some out of the grid): written again in bulk, set-based.
    session.execute(text("UPDATE resident SET geom = ST_Translate(geom, :d, 0) WHERE id % 2 = 0"), {"d": D})
    moved = assign_subjects(session, ["residents"], edition=grid)["residents"]
    assert moved["changed"] > 0 and len(bulk_path) == 2
    assert residents_not_in_their_cell(session) == 0


def test_a_failed_bulk_assignment_leaves_the_stored_cells_as_they_were(session, bulk_path, monkeypatch):
    make_base_grid(session)
    store_residents(session, N)
    assign_subjects(session, ["residents"])
    before = session.execute(text("SELECT resident_id, base_cell_id FROM resident_cell ORDER BY 1")).all()
    schema = _schema_of_resident_cell(session)
    session.execute(text("UPDATE resident SET geom = ST_Translate(geom, :d, 0)"), {"d": D})
    # One cell that is no base cell: the foreign key, added again after the COPY, refuses the whole write.
    real = assign.BaseCellIndex.cells_at

    def one_wrong(self, lon, lat, **kw):
        cells = real(self, lon, lat, **kw)
        cells[np.argmax(cells)] = 2**31 - 1
        return cells

    monkeypatch.setattr(assign.BaseCellIndex, "cells_at", one_wrong)
    with pytest.raises(Exception, match="fk_resident_cell_base_cell_id_base_cell"):
        with session.begin_nested():
            assign_subjects(session, ["residents"])
    assert session.execute(text("SELECT resident_id, base_cell_id FROM resident_cell ORDER BY 1")).all() == before
    assert _schema_of_resident_cell(session) == schema


def test_a_bulk_assignment_keeps_every_resident_where_it_was_read(session, bulk_path, engine):
    """The COPY cannot skip a resident moved since its point was read, so none may move meanwhile: the residents
    are frozen (a writer of `resident` in another transaction waits) from before the read to the end."""
    make_base_grid(session)
    store_residents(session, N)
    assign_subjects(session, ["residents"])
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as other:
        other.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("UPDATE resident SET name = name WHERE id = -1")


def test_a_small_write_skips_a_resident_moved_since_read(session):
    grid = make_base_grid(session)
    store_residents(session, N)
    points = assign.read_points(session, "residents")
    cells = base_cell_index(session, grid).cells_at(points.lon, points.lat)
    mover = session.get(Resident, int(points.ids[np.argmax(cells)]))
    mover.geom = from_shape(Point(X0 + 2.5 * D, Y0 + 2.5 * D), srid=SRID)  # the hook assigns it at flush
    session.flush()
    moved_to = mover.base_cell_id
    assert moved_to is not None and moved_to != int(cells.max())
    changed = assign.write_cells(session, "residents", points.ids, cells, points.lon, points.lat)
    assert changed == int((cells > 0).sum()) - 1  # every one but the mover
    session.expire(mover)
    assert mover.base_cell_id == moved_to
    assert residents_not_in_their_cell(session) == 0


def test_a_resident_moved_through_the_orm_gets_its_new_cell_and_none_outside(session):
    make_base_grid(session)
    resident = Resident(
        id_number_hash="cell9f-1",
        id_number_masked="4403**********0000",
        name="测试",
        population_type="registered",
        geom=from_shape(Point(X0 + 0.5 * D, Y0 + 0.5 * D), srid=SRID),
    )
    session.add(resident)
    session.flush()
    first = session.scalar(select(BaseCell.id).where(BaseCell.id == resident.base_cell_id))
    assert first is not None
    resident.geom = from_shape(Point(X0 + 2.5 * D, Y0 + 1.5 * D), srid=SRID)
    session.flush()
    assert resident.base_cell_id not in (None, first)
    assert session.get(ResidentCell, resident.id).base_cell_id == resident.base_cell_id
    resident.geom = from_shape(Point(X0 - 5 * D, Y0), srid=SRID)  # outside every cell
    session.flush()
    assert resident.base_cell_id is None
    assert session.scalar(text("SELECT count(*) FROM resident_cell WHERE resident_id = :r"), {"r": resident.id}) == 0


def test_the_cell_is_set_by_the_service_not_by_the_attribute(session):
    make_base_grid(session)
    store_residents(session, 3)
    resident = session.scalars(select(Resident).order_by(Resident.id)).first()
    cell = session.scalar(select(BaseCell.id).order_by(BaseCell.code))
    with pytest.raises(AttributeError, match="read-only"):
        resident.base_cell_id = cell
    assert resident_cells.set_resident_cells(session, {resident.id: cell}) == 1
    assert resident.base_cell_id == cell  # loaded objects read it again
    assert resident_cells.set_resident_cells(session, {resident.id: cell}) == 0  # unchanged: not written
    assert resident_cells.set_resident_cells(session, {resident.id: None}) == 1
    assert resident.base_cell_id is None
    given = Resident(
        id_number_hash="cell9f-given", id_number_masked="4403**********0000", name="x", population_type="registered"
    )
    given.base_cell_id = cell  # a new resident: stored with its row (by a bulk loader, not assigned at flush)
    session.info[assign.AUTO_ASSIGN] = False
    session.add(given)
    session.flush()
    assert session.get(ResidentCell, given.id).base_cell_id == cell


def test_deleting_a_base_cell_or_a_resident_deletes_its_rows(session):
    make_base_grid(session)
    store_residents(session, N)
    assign_subjects(session, ["residents"])
    cell, placed = session.execute(
        text("SELECT base_cell_id, count(*) FROM resident_cell GROUP BY 1 ORDER BY 2 DESC LIMIT 1")
    ).one()
    total = session.scalar(text("SELECT count(*) FROM resident_cell"))
    session.execute(text("DELETE FROM base_cell WHERE id = :c"), {"c": cell})
    assert session.scalar(text("SELECT count(*) FROM resident_cell")) == total - placed
    resident = session.get(Resident, session.scalar(text("SELECT min(resident_id) FROM resident_cell")))
    session.delete(resident)
    session.flush()
    assert session.scalar(text("SELECT count(*) FROM resident_cell")) == total - placed - 1


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT",
        "UPDATE",
        "DELETE",
        # The application empties a table only through the owner's gridkit_truncate_for_load (migration 20261204_imp9f).
        pytest.param("TRUNCATE", marks=pytest.mark.as_owner("TRUNCATE is the owner's")),
    ],
)
def test_every_write_of_resident_cell_marks_the_summary_stale(session, statement):
    make_base_grid(session)
    store_residents(session, 3)
    cells = list(session.scalars(select(BaseCell.id).order_by(BaseCell.code).limit(2)))
    one = session.scalar(text("SELECT min(id) FROM resident"))
    if statement != "INSERT":
        session.execute(text("INSERT INTO resident_cell VALUES (:r, :c)"), {"r": one, "c": cells[0]})
    before = session.scalar(text("SELECT count(*) FROM resident_change"))  # the triggers' log (owner's to empty)
    sql = {
        "INSERT": "INSERT INTO resident_cell VALUES (:r, :c)",
        "UPDATE": "UPDATE resident_cell SET base_cell_id = :c WHERE resident_id = :r",
        "DELETE": "DELETE FROM resident_cell WHERE resident_id = :r",
        "TRUNCATE": "TRUNCATE resident_cell",
    }[statement]
    session.execute(text(sql), {"r": one, "c": cells[1]})
    assert session.scalar(text("SELECT count(*) FROM resident_change")) > before


_RESTORE_DEFINITION = "SELECT pg_get_functiondef('gridkit_restore_bulk_indexes(regclass, text[])'::regprocedure)"


def test_the_migration_moves_the_cells_into_the_table_and_back(pg_server):
    pg_server.create_database("gridkit_cell9f")
    url = pg_server.owner_url("gridkit_cell9f")  # migrations run as the owner
    try:
        db.upgrade(url, "20261204_imp9d")
        engine = db.make_engine(url)
        with Session(engine) as session, session.begin():
            make_base_grid(session)  # base grid tables are the same at both revisions
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO resident (id_number_hash, id_number_masked, name, population_type, base_cell_id) "
                    "SELECT 'm' || i, '4403**********0000', 'x', 'registered', "
                    "CASE WHEN i % 3 = 0 THEN NULL ELSE (SELECT min(id) + i % 2 FROM base_cell) END "
                    "FROM generate_series(1, 30) i"
                )
            )
            before = conn.execute(text("SELECT id, base_cell_id FROM resident ORDER BY id")).all()
        db.upgrade(url)
        with engine.begin() as conn:
            after = conn.execute(
                text(
                    "SELECT r.id, c.base_cell_id FROM resident r LEFT JOIN resident_cell c ON c.resident_id = r.id "
                    "ORDER BY r.id"
                )
            ).all()
            assert after == before
            assert conn.scalar(text("SELECT count(*) FROM resident_cell")) == 20
            assert conn.scalar(text("SELECT reloptions FROM pg_class WHERE oid = 'resident'::regclass")) is None
            columns = conn.scalars(
                text("SELECT column_name FROM information_schema.columns WHERE table_name = 'resident'")
            )
            assert "base_cell_id" not in set(columns)
            assert "'resident_cell'" in conn.scalar(text(_RESTORE_DEFINITION))
            assert "enable_hashjoin" in conn.scalar(text(_RESTORE_DEFINITION))
        db.downgrade(url, "20261204_imp9d")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT id, base_cell_id FROM resident ORDER BY id")).all() == before
            assert conn.scalar(text("SELECT to_regclass('resident_cell')")) is None
            assert "resident_cell" not in conn.scalar(text(_RESTORE_DEFINITION))
            assert "enable_hashjoin" not in conn.scalar(text(_RESTORE_DEFINITION))
        engine.dispose()
    finally:
        pg_server.drop_database("gridkit_cell9f")
