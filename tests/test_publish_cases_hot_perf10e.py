"""Publishing a base grid edition moves the cases by heap-only updates (migration 20261209_perf10e): with the
index and foreign key over base_cell_id dropped (gridkit_drop_bulk_indexes_on, which now takes only the indexes
whose keys, expression or predicate read the columns) and incident's pages half free, the UPDATE gives no other
index an entry, and only that index and key are built again; the cases' cells, the counts and the rollups are
those of the former path (tests/test_publish_cases_perf9c.py)."""

from __future__ import annotations

from sqlalchemy import event, select, text
from test_incidents_rollups_inc10 import _recount, _rollup
from test_publish_cases_perf9c import EVAL_RECOUNT, EVAL_ROLLUP, _cells, _former_path, _next_edition, cases  # noqa: F401

from gridkit.grids.editions import publish_edition
from gridkit.models import BaseGridEdition
from gridkit.spatial import bulk


def _indexes(session) -> set[str]:
    return set(session.scalars(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'incident'")))


def _constraints(session) -> set[tuple]:
    query = (
        "SELECT conname, pg_get_constraintdef(oid), convalidated FROM pg_constraint "
        "WHERE conrelid = 'incident'::regclass"
    )
    return set(session.execute(text(query)).all())


def _updates(session) -> tuple[int, int]:
    query = "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'incident'"
    return tuple(session.execute(text(query)).one())


def test_publish_moves_the_cases_heap_only_and_rebuilds_only_the_cell_index(session, cases, monkeypatch):
    old = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    new = _next_edition(session)
    savepoint = session.begin_nested()
    expected_counts = _former_path(session, old, new)
    expected = _cells(session)
    savepoint.rollback()
    session.expire_all()
    indexes, constraints = _indexes(session), _constraints(session)
    updated, hot = _updates(session)
    statements = []
    connection = session.connection()

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(connection, "before_cursor_execute", seen)
    monkeypatch.setattr(bulk, "BULK_INDEX_ROWS", 10)  # the fixture's ~240 cases count as a bulk move
    try:
        result = publish_edition(session, new)
    finally:
        event.remove(connection, "before_cursor_execute", seen)

    assert _cells(session) == expected
    assert result["subjects"]["incidents"] == expected_counts
    assert sum("gridkit_drop_bulk_indexes_on" in s for s in statements) == 1
    assert not any("gridkit_drop_bulk_indexes(" in s for s in statements)
    moved = sum(1 for cell in expected.values() if cell is not None)
    written, heap_only = (after - before for after, before in zip(_updates(session), (updated, hot), strict=True))
    assert written >= moved > 150
    # Heap-only but where a page ran out of room: the fixture's own updates (accepted cases) left row versions
    # there that nothing may prune inside this one transaction (a city's cases were written long before).
    assert heap_only >= 0.9 * written
    assert (_indexes(session), _constraints(session)) == (indexes, constraints)
    assert _rollup(session) == _recount(session)
    assert set(session.execute(text(EVAL_ROLLUP)).all()) == set(session.execute(text(EVAL_RECOUNT)).all())


def _dropped(session, columns: str) -> tuple[set[str], set[str]]:
    """The index and constraint names gridkit_drop_bulk_indexes_on takes for `columns` (then built again)."""
    names = "SELECT indexname FROM pg_indexes WHERE tablename = 'incident'"
    keys = "SELECT conname FROM pg_constraint WHERE conrelid = 'incident'::regclass"
    before = set(session.scalars(text(names))), set(session.scalars(text(keys)))
    session.execute(
        text("SELECT gridkit_drop_bulk_indexes_on('incident'::regclass, CAST(:c AS text[]))"), {"c": columns}
    )
    after = set(session.scalars(text(names))), set(session.scalars(text(keys)))
    session.execute(text("SELECT gridkit_restore_bulk_indexes('incident'::regclass)"))
    assert (set(session.scalars(text(names))), set(session.scalars(text(keys)))) == before
    return before[0] - after[0], before[1] - after[1]


def test_the_column_scoped_drop_takes_the_indexes_reading_the_columns_only(session):
    assert _dropped(session, "{base_cell_id}") == ({"ix_incident_base_cell_id"}, {"fk_incident_base_cell_id_base_cell"})
    # An expression reading the column (the characters of code and description) goes with it; a plain key too.
    assert _dropped(session, "{description}") == ({"ix_incident_description_trgm", "ix_incident_text_chars"}, set())
    # Partial indexes whose predicate reads the column.
    assert _dropped(session, "{status}") == (
        {"ix_incident_status", "ix_incident_open_reported_at", "ix_incident_open_deadline"},
        set(),
    )
