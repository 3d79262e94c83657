"""Validating a freshly imported edition is planned with its cells known (statistics refreshed as the
table's owner), as the application role: unplanned, 10,000 cells were paired all with all (19–49 s)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from gridkit.grids.validate import planned_with_cells, validate_base_grid
from gridkit.models import BaseGridEdition
from tests.factories import make_base_grid
from tests.factories_app_role import app_role_engine, rolled_back_session

DBNAME = "gridkit_scale8b_app"


@pytest.fixture(scope="module")
def app_engine(pg_server):
    with app_role_engine(pg_server, DBNAME, port=5623) as engine:
        yield engine


def _estimate(session, edition_id: int) -> int:
    plan = session.scalar(
        text("EXPLAIN (FORMAT JSON) SELECT 1 FROM base_cell WHERE edition_id = :e"), {"e": edition_id}
    )
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return plan[0]["Plan"]["Plan Rows"]


def test_a_new_editions_cells_are_known_to_the_planner_before_validation(app_engine):
    with rolled_back_session(app_engine) as session:
        make_base_grid(session, rows=10, cols=10, communities=4)
        session.execute(text("SELECT gridkit_analyze_base_cell()"))  # the published edition's, as autovacuum would
        draft = BaseGridEdition(name="next", status="draft")
        session.add(draft)
        session.flush()
        # An import of the same cells into a new draft edition, in this transaction.
        session.execute(
            text(
                "INSERT INTO base_cell (edition_id, code, community_code, geom) "
                "SELECT :e, code, community_code, geom FROM base_cell WHERE edition_id <> :e"
            ),
            {"e": draft.id},
        )
        cells = session.scalar(text("SELECT count(*) FROM base_cell WHERE edition_id = :e"), {"e": draft.id})
        assert cells == 400 and _estimate(session, draft.id) < cells / 10  # what the planner believed
        assert validate_base_grid(session, draft) == []
        assert _estimate(session, draft.id) >= cells / 2
        assert planned_with_cells(session, draft.id) is False  # known now: no second ANALYZE
