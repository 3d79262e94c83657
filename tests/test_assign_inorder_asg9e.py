"""A bulk assignment keeps its one connection busy: chunks are read while the client locates the points of
earlier ones, and written while it builds the next one's arrays (gridkit.db.inorder). The cells are still
PostGIS's, the statements still run one at a time in order on the transaction's connection, and a failing
chunk leaves nothing written after it and the transaction's connection free."""

from __future__ import annotations

import threading
import time

import numpy as np
import psycopg
import pytest
from sqlalchemy import text

from gridkit import assign
from gridkit.assign import BaseCellIndex, assign_subjects, base_cell_index
from gridkit.db.inorder import results_in_order
from tests.factories import entities_not_in_their_cell, make_base_grid, store_entities

N = 300  # entities on a 3×3 grid, some on edges and corners, some outside


def test_results_come_in_order_from_calls_run_one_at_a_time_while_the_caller_works():
    running, log = [], []

    def call(i: int):
        def run() -> int:
            running.append(i)
            assert len(running) == 1, "two calls at once"
            log.append(("start", i, threading.current_thread().name))
            time.sleep(0.01)
            running.remove(i)
            return i * i

        log.append(("built", i))
        return run

    assert list(results_in_order(call(i) for i in range(6))) == [i * i for i in range(6)]
    # One background thread, not the caller's; call 1 was built before it started (while call 0 ran).
    assert {entry[2] for entry in log if entry[0] == "start"} == {next(e[2] for e in log if e[0] == "start")}
    assert next(e[2] for e in log if e[0] == "start").startswith("gridkit-sql")
    assert log.index(("built", 1)) < log.index(("start", 1, log[-1][2]))


def test_after_a_failing_call_only_those_already_queued_may_run():
    ran = []

    def call(i: int):
        def run() -> int:
            ran.append(i)
            if i == 2:
                raise ValueError("chunk 2")
            return i

        return run

    with pytest.raises(ValueError, match="chunk 2"):
        list(results_in_order((call(i) for i in range(10)), ahead=4))
    assert 2 in ran and max(ran) <= 2 + 3  # at most the calls already submitted behind it
    assert ran == sorted(ran)


@pytest.mark.parametrize("engine_from", [0, 100])
def test_points_are_located_chunk_by_chunk_while_read_and_get_postgis_cells(session, monkeypatch, engine_from):
    """With the first chunk enough for the index (engine_from 0) points are located as chunks arrive; with
    only the whole read enough (100 > 64 per chunk), once after it. Both give PostGIS's cells."""
    monkeypatch.setattr(assign, "READ_CHUNK_IDS", 64)
    monkeypatch.setattr(assign, "WRITE_CHUNK_IDS", 64)
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS", engine_from)
    monkeypatch.setattr(assign, "ENGINE_MIN_POINTS_PER_CELL", 0)
    located = []
    real = BaseCellIndex.cells_at
    monkeypatch.setattr(
        BaseCellIndex, "cells_at", lambda self, lon, lat, **k: located.append(len(lon)) or real(self, lon, lat, **k)
    )
    make_base_grid(session)
    store_entities(session, N)
    first = assign_subjects(session, ["entities"])["entities"]
    assert located == ([64] * (N // 64) + [N % 64] if engine_from == 0 else [N])
    assert entities_not_in_their_cell(session) == 0
    assert first["changed"] == first["assigned"] and 0 < first["unassigned"] < N
    assert assign_subjects(session, ["entities"])["entities"]["changed"] == 0


def test_read_points_hands_each_chunk_over_in_id_order(session, monkeypatch):
    monkeypatch.setattr(assign, "READ_CHUNK_IDS", 50)
    make_base_grid(session)
    store_entities(session, N)
    chunks = []
    points = assign.read_points(session, "entities", each=lambda p: chunks.append(p.ids.copy()))
    assert [len(c) for c in chunks] == [50] * (N // 50)
    assert np.array_equal(np.concatenate(chunks), points.ids) and (np.diff(points.ids) > 0).all()


def test_a_failing_chunk_stops_the_write_and_leaves_the_connection_to_the_transaction(session, monkeypatch):
    monkeypatch.setattr(assign, "WRITE_CHUNK_IDS", 64)
    grid = make_base_grid(session)
    store_entities(session, N)
    points = assign.read_points(session, "entities")
    cells = base_cell_index(session, grid).cells_at(points.lon, points.lat)
    cells[100] = 2_000_000_000  # no such base cell: the foreign key refuses the second chunk
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        with session.begin_nested():
            assign.write_cells(session, "entities", points.ids, cells, points.lon, points.lat)
    # The savepoint rolled back: nothing written, and the session goes on on the same connection.
    assert session.scalar(text("SELECT count(base_cell_id) FROM legal_entity")) == 0
    cells[100] = 0
    assert assign.write_cells(session, "entities", points.ids, cells, points.lon, points.lat) == int((cells > 0).sum())
