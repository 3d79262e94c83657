"""The case lists at city scale (scripts/bench_pages.py): a page's rows, order and total are those of the
plain query whatever the order, filter, search or depth, and the lists' indexes (migration 20261205_city7d)
serve them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from factories_incidents import IN_C1, IN_C2, OUTSIDE, W1, coordinator_actor, make_incident_world
from sqlalchemy import text

from gridkit.incidents.queries import ORDERS, list_incidents
from gridkit.rules import FINISHED_INCIDENT_STATES, OPEN_CASE_SQL

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATES = ("reported", "dispatched", "closed", "fed_back", "rejected", "accepted")


@pytest.fixture
def world(session):
    """60 cases in both communities and outside, many sharing a report time (the order's tie-break counts),
    some without a step deadline, descriptions holding 井盖 or 路灯."""
    made = make_incident_world(session)
    rows = []
    for n in range(60):
        lon, lat = (IN_C1, IN_C2, OUTSIDE)[n % 3]
        rows.append(
            {
                "code": f"T-{n:04d}",
                "status": STATES[n % len(STATES)],
                "lon": lon,
                "lat": lat,
                "at": T0 + timedelta(hours=n // 4),  # four cases a time
                "deadline": None if n % 5 == 0 else T0 + timedelta(hours=(n * 7) % 23),
                "description": ("人行道井盖破损", "路灯不亮", None)[n % 3],
            }
        )
    session.execute(
        text("""
        INSERT INTO incident (code, status, geom, reported_at, step_deadline, description, dept_code)
        VALUES (:code, :status, ST_SetSRID(ST_MakePoint(:lon, :lat), 4490), :at, :deadline, :description, '200001')
        """),
        rows,
    )
    # Base cell, work cell and coordinator as dispatch sets them.
    session.execute(
        text("""
        UPDATE incident i SET base_cell_id = b.id, work_cell_id = m.work_cell_id, coordinator_id = a.coordinator_id
        FROM base_cell b JOIN work_cell_member m ON m.base_cell_id = b.id
        JOIN coordinator_assignment a ON a.work_cell_id = m.work_cell_id
        WHERE i.code LIKE 'T-%' AND ST_Covers(b.geom, i.geom) AND (right(i.code, 1)::int % 2 = 0)""")
    )
    session.execute(
        text("UPDATE incident i SET work_cell_id = w.id FROM work_cell w WHERE i.code = 'T-0003' AND w.code = :w"),
        {"w": W1},
    )
    return made


def _expected(session, where: str, order: str, params: dict | None = None) -> list[str]:
    return list(
        session.scalars(
            text(
                "SELECT i.code FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id "
                f"WHERE i.code LIKE 'T-%' AND {where} ORDER BY {ORDERS[order]}"
            ),
            params or {},
        )
    )


@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.parametrize("open_only", [False, True])
def test_every_page_holds_the_rows_of_the_plain_query(session, world, order, open_only):
    expected = _expected(session, f"i.{OPEN_CASE_SQL}" if open_only else "TRUE", order)
    assert len(expected) >= 30
    pages = []
    for offset in range(0, len(expected) + 7, 7):
        found = list_incidents(session, open_only=open_only, order=order, limit=7, offset=offset)
        assert found["total"] == len(expected)
        pages += [c["code"] for c in found["items"]]
    assert pages == expected


def test_a_coordinators_list_holds_their_own_cases_and_their_work_cells(session, world):
    actor = coordinator_actor(world)
    mine = world["coord1"].id
    expected = _expected(
        session,
        f"i.{OPEN_CASE_SQL} AND (i.coordinator_id = :c OR i.work_cell_id IN "
        "(SELECT work_cell_id FROM coordinator_assignment WHERE coordinator_id = :c))",
        "todo",
        {"c": mine},
    )
    assert expected
    found = list_incidents(session, coordinator_id=mine, open_only=True, actor=actor, order="todo", limit=500)
    assert [c["code"] for c in found["items"]] == expected
    assert found["total"] == len(expected)
    # Each row carries its base cell, community, work cell and category as before.
    first = found["items"][0]
    assert first["work_cell"] is not None and first["lon"] is not None


@pytest.mark.parametrize("q", ["井盖", "井盖破损", "T-001", "t-00", "路灯不亮", "%", "_"])
def test_a_search_finds_the_text_in_code_or_description_literally(session, world, q):
    like = "%" + q.replace("%", "\\%").replace("_", "\\_") + "%"
    expected = _expected(session, "(i.code ILIKE :q OR i.description ILIKE :q)", "newest", {"q": like})
    found = list_incidents(session, q=q, limit=500)
    assert [c["code"] for c in found["items"]] == expected
    assert found["total"] == len(expected)
    assert (q in ("%", "_")) == (expected == [])


def test_an_area_filter_still_reads_the_community(session, world):
    community = session.scalar(text("SELECT community_code FROM base_cell ORDER BY code LIMIT 1"))
    expected = _expected(session, "b.community_code LIKE :a", "oldest", {"a": f"{community}%"})
    found = list_incidents(session, area=community, order="oldest", limit=500)
    assert [c["code"] for c in found["items"]] == expected and expected
    assert {c["community"] for c in found["items"]} == {community}


def test_the_open_predicate_is_the_rule_of_finished_states():
    listed = set(re.search(r"'\{([a-z_,]+)\}'", OPEN_CASE_SQL).group(1).split(","))
    assert listed == {s.value for s in FINISHED_INCIDENT_STATES}


@pytest.mark.as_owner("DROP INDEX and ANALYZE, even in a rolled-back transaction, are the owner's")
@pytest.mark.parametrize(
    ("sql", "index"),
    [
        (f"SELECT id FROM incident i WHERE i.{OPEN_CASE_SQL} ORDER BY {ORDERS['newest']} LIMIT 5", "open_reported_at"),
        (f"SELECT id FROM incident i WHERE i.{OPEN_CASE_SQL} ORDER BY {ORDERS['deadline']} LIMIT 5", "open_deadline"),
        (f"SELECT id FROM incident i ORDER BY {ORDERS['oldest']} LIMIT 5 OFFSET 20", "ix_incident_reported_at"),
        ("SELECT id FROM incident i WHERE i.description ILIKE '%井盖破%'", "description_trgm"),
        ("SELECT id FROM incident i WHERE i.code ILIKE '%T-001%'", "code_trgm"),
    ],
)
def test_the_lists_queries_can_use_their_indexes(session, world, sql, index):
    if index.startswith("open_"):
        # Over this test's few dozen cases the planner may as well read the index of every case and filter, which
        # costs about as much: that index is set aside (in this rolled-back transaction) to see that the open
        # cases' own index serves the query.
        session.execute(text("DROP INDEX ix_incident_reported_at"))
    session.execute(text("ANALYZE incident"))
    session.execute(text("SET LOCAL enable_seqscan = off"))
    session.execute(text("SET LOCAL enable_sort = off"))
    plan = "\n".join(session.scalars(text(f"EXPLAIN {sql}")))
    assert index in plan, plan
