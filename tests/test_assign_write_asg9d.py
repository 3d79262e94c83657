"""How a bulk assignment writes its cells: by id range (cells bound as arrays indexed by id, one pass, no
join) when the ids cover most of their range, by a join to the bound arrays when they are scattered; both
store PostGIS's cells, write only what changed and leave alone subjects moved since they were read. And
the residents' masked ID and population type rules, now domains, still refuse bad values."""

from __future__ import annotations

import numpy as np
import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from gridkit import assign
from gridkit.assign import assign_one, assign_subjects, base_cell_index
from gridkit.db.arrays import Float8Array, Int4Array, bind_arrays, decode_array
from gridkit.models import SRID, LegalEntity, Resident
from tests.factories import X0, Y0, D, entities_not_in_their_cell, make_base_grid, store_entities

N = 300  # entities on a 3×3 grid, some on edges and corners, some outside


@pytest.fixture(params=["range", "join"])
def write_path(request, monkeypatch):
    """Force one way of writing (and small statements, so that ranges and chunks are many)."""
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS", 0)
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS_PER_CELL", 0)
    monkeypatch.setattr(assign, "WRITE_CHUNK_IDS", 64)
    monkeypatch.setattr(assign, "DENSE_WRITE_SHARE", 0.0 if request.param == "range" else 10.0)
    calls = []
    for name in ("_update_by_id_range", "_update_by_join"):
        real = getattr(assign, name)
        monkeypatch.setattr(assign, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    return request.param, calls


def test_a_bulk_write_stores_postgis_cells_and_a_rerun_writes_nothing(session, write_path):
    way, calls = write_path
    make_base_grid(session)
    store_entities(session, N)
    first = assign_subjects(session, ["entities"])["entities"]
    assert calls and set(calls) == {f"_update_by_{'id_range' if way == 'range' else 'join'}"}
    assert entities_not_in_their_cell(session) == 0
    assert first["changed"] == first["assigned"] and 0 < first["unassigned"] < N
    assert assign_subjects(session, ["entities"])["entities"]["changed"] == 0


def test_a_bulk_write_sets_only_the_given_subjects(session, write_path):
    grid = make_base_grid(session)
    store_entities(session, N)
    points = assign.read_points(session, "entities")
    cells = base_cell_index(session, grid).cells_at(points.lon, points.lat)
    some = np.arange(len(points.ids)) % 3 == 0
    changed = assign.write_cells(session, "entities", points.ids[some], cells[some], points.lon[some], points.lat[some])
    assert changed == int((cells[some] > 0).sum())
    stored = dict(session.execute(text("SELECT id, COALESCE(base_cell_id, 0) FROM legal_entity")).all())
    assert [stored[i] for i in points.ids[some]] == cells[some].tolist()
    assert all(stored[i] == 0 for i in points.ids[~some])


def test_a_bulk_write_leaves_subjects_moved_since_they_were_read(session, write_path):
    grid = make_base_grid(session)
    store_entities(session, N)
    points = assign.read_points(session, "entities")
    cells = base_cell_index(session, grid).cells_at(points.lon, points.lat)
    # Moved after the read (as a concurrent transaction could), and assigned by its mover.
    moved = session.get(LegalEntity, int(points.ids[N // 2]))
    moved.geom = from_shape(Point(X0 + 2.5 * D, Y0 + 2.5 * D), srid=SRID)
    mover_cell = assign_one(session, moved)
    changed = assign.write_cells(session, "entities", points.ids, cells, points.lon, points.lat)
    assert changed == int((cells > 0).sum()) - int(cells[N // 2] > 0)  # every other one, from no cell
    assert session.scalar(text("SELECT base_cell_id FROM legal_entity WHERE id = :i"), {"i": moved.id}) == mover_cell
    assert entities_not_in_their_cell(session) == 0


def _resident(**overrides) -> Resident:
    values = dict(id_number_hash="h-asg9d", id_number_masked="4403**********123X", name="张三")
    values["population_type"] = "registered"
    return Resident(**(values | overrides))


@pytest.mark.parametrize(
    "bad",
    [{"id_number_masked": "4403*********1234"}, {"id_number_masked": "44031234567890123X"}, {"population_type": "x"}],
)
def test_resident_rules_refuse_a_bad_value_on_insert_and_on_update(session, bad):
    with pytest.raises(IntegrityError, match="violates check constraint"):
        with session.begin_nested():
            session.add(_resident(**bad))
            session.flush()
    good = _resident()
    session.add(good)
    session.flush()
    column, value = next(iter(bad.items()))
    with pytest.raises(IntegrityError, match="violates check constraint"):
        with session.begin_nested():
            session.execute(text(f"UPDATE resident SET {column} = :v WHERE id = :i"), {"v": value, "i": good.id})


def test_resident_rules_are_domains_not_table_checks(session):
    """PostgreSQL runs a table's CHECKs on every UPDATE of a row, a domain's only where its column is set."""
    checks = session.scalars(
        text("SELECT conname FROM pg_constraint WHERE conrelid = 'resident'::regclass AND contype = 'c'")
    ).all()
    assert checks == []
    domains = session.execute(
        text(
            "SELECT a.attname, t.typname, c.conname FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
            "JOIN pg_constraint c ON c.contypid = t.oid WHERE a.attrelid = 'resident'::regclass ORDER BY 1"
        )
    ).all()
    assert [tuple(d) for d in domains] == [
        ("id_number_masked", "resident_id_masked", "id_masked_format"),
        ("population_type", "resident_population_type", "population_type"),
    ]


def test_numpy_columns_go_to_postgresql_and_back_as_binary_arrays(session):
    ints = np.array([0, -1, 2**31 - 1, -(2**31), 7], dtype=np.int32)
    floats = np.array([0.1, -2.5e300, np.nan, 114.05 + 1e-13, -0.0])
    conn = session.connection().connection.driver_connection
    with conn.cursor(binary=True) as cur:
        bind_arrays(cur)
        cur.execute(
            "SELECT array_send(%s), array_send(%s), %s[3], cardinality(%s)",
            (Int4Array(ints), Float8Array(floats), Int4Array(ints), Float8Array(floats[:0])),
        )
        i, f, third, empty = cur.fetchone()
    assert decode_array(i, "i").tolist() == ints.tolist() and third == 2**31 - 1 and empty == 0
    back = decode_array(f, "f")
    assert np.array_equal(back, floats, equal_nan=True) and np.signbit(back[-1])
