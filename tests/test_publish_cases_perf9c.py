"""Publishing a base grid edition moves the cases in one set-based UPDATE (gridkit.grids.editions._move_cases):
the same cells and counts as the former path (follow the unchanged cells by code, then locate the others
again with assign_subjects), on an edition that splits a cell, moves an edge and reshapes a cell on the
communities' border, with cases on every edge and corner (ST_Covers, smallest code on ties) and outside
every cell; and the rollups' UPDATE triggers (migration 20261207_perf9c) leave incident_heat and
incident_eval as a recount gives them while not rewriting them for cases whose community stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from factories import X0, Y0, D
from factories_incidents import C1, SUPERVISOR, make_incident_world
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import box
from sqlalchemy import select, text
from test_incidents_rollups_inc10 import _recount, _rollup

from gridkit.assign import assign_subjects
from gridkit.grids.editions import publish_edition
from gridkit.incidents import workflow as wf
from gridkit.models import BaseCell, BaseGridEdition
from gridkit.rules import SRID

T0 = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)

EVAL_RECOUNT = """
    SELECT (i.reported_at AT TIME ZONE 'Asia/Shanghai')::date, i.dept_code, i.work_cell_id, i.coordinator_id,
           b.community_code, count(*)
    FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id WHERE i.reported_at IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5"""
EVAL_ROLLUP = """
    SELECT day, dept_code, work_cell_id, coordinator_id, community_code, sum(cases) FROM incident_eval
    GROUP BY 1, 2, 3, 4, 5 HAVING sum(cases) <> 0"""


@pytest.fixture
def cases(session):
    """The incident world (two 3×3 communities), and a case every quarter cell over community 1, the border
    and a margin outside: on every edge, corner, the new edges of the next edition, and outside every cell."""
    make_incident_world(session, users=False)
    ids = []
    for n, (i, j) in enumerate((i, j) for i in range(-1, 15) for j in range(-1, 14)):
        case = wf.report_incident(
            session,
            lon=X0 + i * D / 4,
            lat=Y0 + j * D / 4,
            description=f"事件{n}",
            category="0101",
            reported_at=T0 + timedelta(days=n % 90, hours=n % 24),
            actor=SUPERVISOR,
        ).incident
        ids.append(case.id)
        if n % 3 == 0:
            wf.accept(session, case.id, SUPERVISOR, at=case.reported_at + timedelta(hours=1))
    session.flush()
    return ids


def _next_edition(session) -> BaseGridEdition:
    """A draft: community 1's cell 005 split (east half: 010), the edge between 001 and 002 moved a quarter cell
    east, cell 006 (on the border with community 2) cut into a south part keeping its code and a north part 011."""
    current = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    edition = BaseGridEdition(name="next", status="draft")
    session.add(edition)
    session.flush()
    for old in session.scalars(select(BaseCell).where(BaseCell.edition_id == current.id)):
        x0, y0, x1, y1 = to_shape(old.geom).bounds
        parts = {old.code: (x0, y0, x1, y1)}
        if old.code == f"{C1}005":
            parts = {old.code: (x0, y0, x0 + D / 2, y1), f"{C1}010": (x0 + D / 2, y0, x1, y1)}
        elif old.code == f"{C1}001":
            parts = {old.code: (x0, y0, x1 + D / 4, y1)}
        elif old.code == f"{C1}002":
            parts = {old.code: (x0 + D / 4, y0, x1, y1)}
        elif old.code == f"{C1}006":
            parts = {old.code: (x0, y0, x1, y0 + D / 4), f"{C1}011": (x0, y0 + D / 4, x1, y1)}
        for code, bounds in parts.items():
            geom = from_shape(box(*bounds), srid=SRID)
            session.add(BaseCell(edition_id=edition.id, code=code, community_code=old.community_code, geom=geom))
    session.flush()
    return edition


def _cells(session) -> dict:
    query = "SELECT i.id, b.code FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id"
    return {r.id: r.code for r in session.execute(text(query))}


def _former_path(session, old: BaseGridEdition, new: BaseGridEdition) -> dict:
    """The cases moved as publish_edition did before: follow by code, then locate the rest with assign_subjects."""
    session.execute(text("CREATE TEMP TABLE former_map (old_id int PRIMARY KEY, new_id int NOT NULL)"))
    session.execute(
        text("""
        INSERT INTO former_map SELECT o.id, n.id FROM base_cell o
        JOIN base_cell n ON n.code = o.code AND n.edition_id = :new
        WHERE o.edition_id = :old AND ST_Equals(o.geom, n.geom)"""),
        {"old": old.id, "new": new.id},
    )
    followed = session.execute(
        text("UPDATE incident t SET base_cell_id = m.new_id FROM former_map m WHERE t.base_cell_id = m.old_id")
    ).rowcount
    relocate = list(
        session.scalars(
            text(
                "SELECT id FROM incident WHERE base_cell_id IS NULL OR base_cell_id IN "
                "(SELECT id FROM base_cell WHERE edition_id = :old)"
            ),
            {"old": old.id},
        )
    )
    counts = assign_subjects(session, ["incidents"], edition=new, where_ids={"incidents": relocate})["incidents"]
    return counts | {"followed": followed, "relocated": len(relocate)}


def test_publish_moves_cases_as_the_former_path(session, cases):
    old = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    new = _next_edition(session)
    before = _cells(session)
    savepoint = session.begin_nested()
    expected_counts = _former_path(session, old, new)
    expected = _cells(session)
    savepoint.rollback()
    session.expire_all()
    assert _cells(session) == before

    result = publish_edition(session, new)

    assert _cells(session) == expected
    assert result["subjects"]["incidents"] == expected_counts
    # The edition really moved cases: some followed, some were located again into the new cells, some stayed out.
    assert expected_counts["followed"] > 0 and expected_counts["changed"] > 0 and expected_counts["unassigned"] > 0
    moved = {k for k in expected if expected[k] != before[k]}
    assert {expected[k] for k in moved} >= {f"{C1}001", f"{C1}010", f"{C1}011"}
    # A case on the communities' border, on the new cut of 006: 006, 011 and a cell of community 2 cover it, the
    # smallest code wins.
    border = session.scalar(
        text(
            "SELECT b.code FROM incident i JOIN base_cell b ON b.id = i.base_cell_id "
            "WHERE i.geom ~= ST_SetSRID(ST_MakePoint(:x, :y), 4490)"
        ),
        {"x": X0 + 3 * D, "y": Y0 + 1.25 * D},
    )
    assert border == f"{C1}006"
    assert _rollup(session) == _recount(session)
    assert set(session.execute(text(EVAL_ROLLUP)).all()) == set(session.execute(text(EVAL_RECOUNT)).all())


def test_rollup_triggers_skip_cases_whose_community_stays(session, cases):
    """An UPDATE giving cases another cell of the same community rewrites no rollup row; one moving a case to the
    other community, or changing a measure, is counted as before."""
    rows = "SELECT ctid::text, * FROM {t} ORDER BY ctid"
    heat, evaluation = (session.execute(text(rows.format(t=t))).all() for t in ("incident_heat", "incident_eval"))
    session.execute(
        text("""
        UPDATE incident i SET base_cell_id = (SELECT o.id FROM base_cell o JOIN base_cell c ON c.id = i.base_cell_id
                                              WHERE o.community_code = c.community_code AND o.id <> c.id
                                              ORDER BY o.code LIMIT 1)
        WHERE i.base_cell_id IS NOT NULL""")
    )
    assert session.execute(text(rows.format(t="incident_heat"))).all() == heat
    assert session.execute(text(rows.format(t="incident_eval"))).all() == evaluation

    other = session.scalar(text("SELECT min(id) FROM base_cell WHERE community_code <> :c"), {"c": C1})
    session.execute(
        text("UPDATE incident SET base_cell_id = :other WHERE id = ANY(:ids)"), {"other": other, "ids": cases[:40]}
    )
    session.execute(text("UPDATE incident SET status = 'rejected' WHERE id = ANY(:ids)"), {"ids": cases[40:60]})
    assert _rollup(session) == _recount(session)
    assert set(session.execute(text(EVAL_ROLLUP)).all()) == set(session.execute(text(EVAL_RECOUNT)).all())
    closed = "SELECT count(*) FROM incident WHERE status = 'rejected'"
    assert session.scalar(text("SELECT sum(backlog) FROM incident_eval")) == session.scalar(
        text("SELECT count(*) FROM incident WHERE status NOT IN ('closed', 'rejected', 'duplicate')")
    )
    assert session.scalar(text(closed)) >= 20
