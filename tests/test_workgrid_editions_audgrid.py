"""Work grids across base grid editions and planners (audit): counts after a new edition, concurrent publishes,
drafts drawn on a retired edition.

The counts per work cell are checked against an independent PostGIS count: each subject's base cell by ST_Covers
(smallest code on ties) in the edition in force, and that cell's code in the work cell's members.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, box
from sqlalchemy import select, text

from gridkit import db
from gridkit.assign import assign_subjects
from gridkit.checks import base_grid_problems_geojson
from gridkit.errors import Conflict, GridkitError, InvalidTransition, ValidationError
from gridkit.grids.editions import publish_edition
from gridkit.grids.work import add_coordinator, add_department, draft, publish, rollback, set_members, start_draft
from gridkit.grids.work.membership import cells_in_no_work_cell
from gridkit.models import AdminUnit, BaseCell, BaseGridEdition, WorkCell
from gridkit.rules import SRID
from gridkit.subjects import subject_stats
from gridkit.workcells import work_cell_counts
from tests.factories import DISTRICT, STREET, X0, Y0, D, make_base_grid, store_entities, store_residents
from tests.factories_web import commit

DEPT = "100001"
COMMUNITY = STREET + "001"
T1 = datetime(2026, 1, 1, tzinfo=UTC)
# Two work cells of the 3×3 community (cells numbered north→south, west→east): the west column and cell 5,
# and the rest; the boundary between cells 5 and 6 is what the next edition moves.
WEST, EAST = f"{DEPT}{COMMUNITY}01", f"{DEPT}{COMMUNITY}02"
WEST_CELLS, EAST_CELLS = (1, 4, 5, 7), (2, 3, 6, 8, 9)


def cell(seq: int) -> str:
    return f"{COMMUNITY}{seq:03d}"


def publish_v1(session):
    add_department(session, DEPT, "综治", jurisdiction=DISTRICT)
    draft = start_draft(session, DEPT, by="planner")
    set_members(session, draft, WEST, [cell(s) for s in WEST_CELLS])
    set_members(session, draft, EAST, [cell(s) for s in EAST_CELLS])
    return publish(session, draft, at=T1, by="planner")


def next_edition(session, name: str = "2027") -> BaseGridEdition:
    """A draft edition of the same codes with the boundary between cells 5 and 6 moved half a cell east."""
    edition = BaseGridEdition(name=name)
    session.add(edition)
    session.flush()
    for seq in range(1, 10):
        r, c = divmod(seq - 1, 3)
        x0, y0 = X0 + c * D, Y0 + (2 - r) * D
        x1 = x0 + D
        if seq == 5:
            x1 += D / 2
        elif seq == 6:
            x0 += D / 2
        geom = from_shape(box(x0, y0, x1, y0 + D), srid=SRID)
        session.add(BaseCell(edition_id=edition.id, code=cell(seq), community_code=COMMUNITY, geom=geom))
    session.flush()
    return edition


# Per work cell of the version in force: subjects whose covering cell (ST_Covers, smallest code) in the edition
# in force has a code among the work cell's base cells. Nothing of gridkit's assignment is used.
_INDEPENDENT = """
SELECT w.code, count(*) FROM {table} s
JOIN LATERAL (SELECT b.code FROM base_cell b JOIN base_grid_edition e ON e.id = b.edition_id
              WHERE e.status = 'published' AND ST_Covers(b.geom, s.geom) ORDER BY b.code LIMIT 1) c ON true
JOIN base_cell vb ON vb.code = c.code
JOIN work_cell_member m ON m.base_cell_id = vb.id
JOIN work_cell w ON w.id = m.work_cell_id
JOIN work_grid_version v ON v.id = m.version_id AND v.status = 'published' AND v.valid_to IS NULL
GROUP BY w.code ORDER BY w.code"""


def independent(session, table: str) -> dict[str, int]:
    return dict(session.execute(text(_INDEPENDENT.format(table=table))).all())


def test_counts_per_work_cell_follow_a_new_base_grid_edition(session):
    make_base_grid(session)
    store_residents(session, 300)
    store_entities(session, 120)
    assign_subjects(session, edition=session.scalar(select(BaseGridEdition)))
    v1 = publish_v1(session)
    before = independent(session, "resident")
    assert set(before) == {WEST, EAST}

    publish_edition(session, next_edition(session))
    assert session.scalar(select(BaseGridEdition.name).where(BaseGridEdition.status == "published")) == "2027"
    residents, entities = independent(session, "resident"), independent(session, "legal_entity")
    assert residents != before  # the moved boundary carried residents from the east work cell to the west one

    # The version in force was drawn on the retired edition: its base cells are matched by code.
    stats = {row["code"]: row for row in subject_stats(session, "work-cell", dept=DEPT)}
    assert {code: row["residents"] for code, row in stats.items()} == residents
    assert {code: row["entities"] for code, row in stats.items()} == entities
    assert {code: row["base_cells"] for code, row in stats.items()} == {WEST: 4, EAST: 5}
    for work_cell in session.scalars(select(WorkCell).where(WorkCell.version_id == v1.id)):
        counts = work_cell_counts(session, work_cell)
        assert (counts["residents"], counts["legal_entities"]) == (residents[work_cell.code], entities[work_cell.code])


# -- two planners publishing at once ------------------------------------------------------------------


def two_drafts(settings) -> tuple[int, int]:
    """Commit a base grid, version 1 of the department, and two drafts started from it; return the drafts' ids."""

    def fill(session):
        make_base_grid(session)
        publish_v1(session)
        first, second = start_draft(session, DEPT, by="planner-a"), start_draft(session, DEPT, by="planner-b")
        set_members(session, first, WEST, [cell(s) for s in (1, 4, 5, 7, 8)], name="a")
        set_members(session, second, EAST, [cell(s) for s in (2, 3, 5, 6, 8, 9)], name="b")
        return first.id, second.id

    return commit(settings, fill)


def publish_at_once(settings, draft_ids: list[int]) -> dict[int, object]:
    """Publish the drafts from threads, one session each, all at the same moment; return id → version or error."""
    barrier = threading.Barrier(len(draft_ids))
    outcome: dict[int, object] = {}

    def run(draft_id: int) -> None:
        try:
            with db.transaction(settings) as session:
                version = draft(session, draft_id)
                barrier.wait(timeout=30)
                outcome[draft_id] = publish(session, version, by=f"planner-{draft_id}").number
        except GridkitError as exc:
            outcome[draft_id] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in draft_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def versions(settings) -> list[tuple]:
    return commit(
        settings,
        lambda s: s.execute(
            text("SELECT number, status, valid_to IS NULL FROM work_grid_version WHERE dept_code = :d ORDER BY number"),
            {"d": DEPT},
        ).all(),
    )


def test_two_planners_publishing_two_drafts_at_once_one_is_refused(fresh_settings):
    first, second = two_drafts(fresh_settings)
    outcome = publish_at_once(fresh_settings, [first, second])
    published = [i for i, result in outcome.items() if isinstance(result, int)]
    refused = [result for result in outcome.values() if isinstance(result, GridkitError)]
    assert len(published) == 1 and len(refused) == 1, outcome
    [error] = refused
    assert isinstance(error, Conflict) and error.key == "error.work.published_since_draft"
    winner = outcome[published[0]]
    assert f"version {winner} of department {DEPT} was published by planner-{published[0]}" in error.render("en")
    assert "新建草稿" in error.render("zh-CN")
    # One version in force, the loser still a draft: nothing half-written.
    rows = versions(fresh_settings)
    assert [(n, s) for n, s, _ in rows if s == "published"] == [(winner, "published")]
    assert sorted(s for _, s, _ in rows) == ["draft", "published", "retired"]


def test_a_draft_started_before_another_publish_is_refused_one_started_after_is_not(fresh_settings):
    first, second = two_drafts(fresh_settings)
    commit(fresh_settings, lambda s: publish(s, draft(s, first), by="planner-a"))
    with pytest.raises(Conflict, match="was published by planner-a") as exc:
        commit(fresh_settings, lambda s: publish(s, draft(s, second), by="planner-b"))
    assert f"draft {second} cannot be published" in exc.value.render("en")
    later = commit(fresh_settings, lambda s: start_draft(s, DEPT, by="planner-b").id)
    assert commit(fresh_settings, lambda s: publish(s, draft(s, later)).number) == 4
    # A rollback publishes at once, under the same lock.
    assert commit(fresh_settings, lambda s: rollback(s, DEPT, 1).number) == 5


def test_one_draft_published_twice_at_once_is_published_once(fresh_settings):
    first, _ = two_drafts(fresh_settings)
    outcome = publish_at_once(fresh_settings, [first, first])
    assert outcome[first] == 2 or isinstance(outcome[first], GridkitError)
    rows = versions(fresh_settings)
    assert [(n, s, open_) for n, s, open_ in rows] == [
        (1, "retired", False),
        (2, "published", True),
        (3, "draft", True),
    ]


# -- drafts and rollbacks across base grid editions ------------------------------------------------------


def test_a_draft_drawn_on_a_retired_edition_is_refused_and_a_rollback_lands_on_the_edition_in_force(session):
    make_base_grid(session)
    store_residents(session, 300)
    assign_subjects(session, edition=session.scalar(select(BaseGridEdition)))
    publish_v1(session)
    old = start_draft(session, DEPT, by="planner")
    new_edition = next_edition(session)
    publish_edition(session, new_edition)

    with pytest.raises(ValidationError) as exc:
        publish(session, old)
    [problem] = exc.value.problems
    assert problem["type"] == "retired_base_edition"
    assert "edition '2026', retired at" in exc.value.render("en") and "'2027' is in force" in exc.value.render("en")
    assert "已于" in exc.value.render("zh-CN")
    assert old.status == "draft"

    # A rollback copies the old version onto the edition in force, cell by code, and counts follow it.
    v2 = rollback(session, DEPT, 1, by="planner")
    assert v2.base_edition_id == new_edition.id
    stats = {row["code"]: row["residents"] for row in subject_stats(session, "work-cell", dept=DEPT)}
    assert stats == independent(session, "resident")


def split_edition(session, name: str = "2028") -> BaseGridEdition:
    """A draft edition where cell 5 is split into a west half (5) and a new east half (10)."""
    edition = BaseGridEdition(name=name)
    session.add(edition)
    session.flush()
    for seq in range(1, 10):
        r, c = divmod(seq - 1, 3)
        x, y = X0 + c * D, Y0 + (2 - r) * D
        halves = [(seq, x, x + D)] if seq != 5 else [(5, x, x + D / 2), (10, x + D / 2, x + D)]
        for code_seq, x0, x1 in halves:
            geom = from_shape(box(x0, y, x1, y + D), srid=SRID)
            session.add(BaseCell(edition_id=edition.id, code=cell(code_seq), community_code=COMMUNITY, geom=geom))
    session.flush()
    return edition


def test_a_rollback_to_a_version_missing_cells_of_the_edition_in_force_names_them_and_what_to_do(session):
    make_base_grid(session)
    publish_v1(session)
    publish_edition(session, split_edition(session))
    with pytest.raises(ValidationError) as exc:
        rollback(session, DEPT, 1, by="planner")
    said = exc.value.render("en")
    assert cell(10) in said and "--from 1" in said, said
    assert "nothing was published" in said and "draft 2" not in said
    assert cell(10) in exc.value.render("zh-CN")


def test_publishing_an_edition_says_which_new_cells_the_work_grids_in_force_leave_out(session):
    make_base_grid(session)
    publish_v1(session)
    result = publish_edition(session, split_edition(session))
    assert result["work_grids_uncovered"] == [{"dept": DEPT, "version": 1, "codes": [cell(10)]}]
    # A draft on the new edition that places the cell leaves nothing out.
    placed = start_draft(session, DEPT)
    set_members(session, placed, EAST, [cell(10)])
    publish(session, placed)
    assert cells_in_no_work_cell(session, result_edition_id(session)) == []


def result_edition_id(session) -> int:
    return session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.status == "published"))


def test_two_planners_starting_drafts_at_once_get_two_numbers(fresh_settings):
    commit(fresh_settings, lambda s: (make_base_grid(s), publish_v1(s)))
    first_started = threading.Event()
    numbers: dict[str, object] = {}

    def run(who: str, wait_for: threading.Event | None) -> None:
        try:
            with db.transaction(fresh_settings) as session:
                if wait_for is not None:
                    wait_for.wait(timeout=30)
                numbers[who] = start_draft(session, DEPT, by=who).number
                if wait_for is None:  # hold the first draft uncommitted while the second one starts
                    first_started.set()
                    time.sleep(1)
        except Exception as exc:  # the test asserts there is none
            numbers[who] = exc

    threads = [threading.Thread(target=run, args=("a", None)), threading.Thread(target=run, args=("b", first_started))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert numbers == {"a": 2, "b": 3}, numbers


# -- two planners publishing base grid editions at once --------------------------------------------------


def copy_of_published(session, name: str) -> int:
    """A draft edition holding a copy of the published edition's cells; return its id."""
    edition = BaseGridEdition(name=name)
    session.add(edition)
    session.flush()
    session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) SELECT :e, code, community_code, geom "
            "FROM base_cell WHERE edition_id = (SELECT id FROM base_grid_edition WHERE status = 'published')"
        ),
        {"e": edition.id},
    )
    return edition.id


def publish_editions_overlapping(settings, first_id: int, second_id: int) -> dict[int, object]:
    """Publish `first_id`, and `second_id` while the first is published but not committed; id → result or error."""
    first_published = threading.Event()
    outcome: dict[int, object] = {}

    def run(edition_id: int, wait_for: threading.Event | None) -> None:
        try:
            with db.transaction(settings) as session:
                edition = session.get(BaseGridEdition, edition_id)
                if wait_for is not None:
                    wait_for.wait(timeout=30)
                outcome[edition_id] = publish_edition(session, edition)
                if wait_for is None:
                    first_published.set()
                    time.sleep(1)
        except GridkitError as exc:
            outcome[edition_id] = exc
        finally:
            first_published.set()

    threads = [threading.Thread(target=run, args=(first_id, None))]
    threads.append(threading.Thread(target=run, args=(second_id, first_published)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcome


def test_two_editions_published_at_once_are_published_one_after_the_other(fresh_settings):
    first, second = commit(
        fresh_settings, lambda s: (make_base_grid(s), copy_of_published(s, "2027a"), copy_of_published(s, "2027b"))[1:]
    )
    outcome = publish_editions_overlapping(fresh_settings, first, second)
    assert outcome[first]["retired"] == "2026" and outcome[second]["retired"] == "2027a", outcome
    statuses = commit(
        fresh_settings, lambda s: dict(s.execute(select(BaseGridEdition.name, BaseGridEdition.status)).all())
    )
    assert statuses == {"2026": "retired", "2027a": "retired", "2027b": "published"}


def test_one_edition_published_twice_at_once_is_published_once(fresh_settings):
    first = commit(fresh_settings, lambda s: (make_base_grid(s), copy_of_published(s, "2027"))[1])
    outcome = publish_editions_overlapping(fresh_settings, first, first)
    assert isinstance(outcome[first], InvalidTransition) and "2027" in outcome[first].render("en"), outcome


def test_names_longer_than_their_column_are_refused_with_the_limit(session):
    """They reached the database and came back as a bare StringDataRightTruncation (a traceback on the CLI)."""
    make_base_grid(session)
    add_department(session, DEPT, "综治", jurisdiction=DISTRICT)
    draft_ = start_draft(session, DEPT)
    with pytest.raises(ValidationError) as exc:
        set_members(session, draft_, WEST, [cell(1)], name="网" * 101)
    assert exc.value.key == "error.work.name_too_long" and "101 characters; at most 100" in exc.value.render("en")
    assert draft_.revision == 0 and session.scalar(select(WorkCell.id).where(WorkCell.version_id == draft_.id)) is None
    with pytest.raises(ValidationError, match="the department name"):
        add_department(session, "200001", "局" * 101)
    set_members(session, draft_, WEST, [cell(s) for s in range(1, 10)], name="网" * 100)
    publish(session, draft_)
    with pytest.raises(ValidationError, match="at most 50"):
        add_coordinator(session, "张" * 51, "13800000001", DEPT, [WEST])


def test_stored_base_grid_problems_follow_a_redrawn_community(session):
    """The stored validation result was keyed on the cells only: a community redrawn by `admin import --replace`
    (its cells now partly outside it) kept showing the edition clean."""
    make_base_grid(session)
    edition = session.scalar(select(BaseGridEdition))
    assert base_grid_problems_geojson(session, edition.id)["features"] == []
    community = session.get(AdminUnit, COMMUNITY)
    community.geom = from_shape(MultiPolygon([box(X0, Y0, X0 + 2 * D, Y0 + 3 * D)]), srid=SRID)  # the east column cut
    session.flush()
    kinds = {f["properties"]["type"] for f in base_grid_problems_geojson(session, edition.id)["features"]}
    assert kinds, "the redrawn community's cells were not validated again"
