"""The work grid rules called directly: set_members, publish, validate_version, rollback, responsibility_at.

Every scenario runs under both code profiles (`default`: 15-digit base cells; `cjt213`: 14-digit
base cells); work cell codes are built and checked through gridkit.standard.codes in the profile
of the draft's base grid edition.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from gridkit.errors import Conflict, InvalidTransition, NotFound, ValidationError
from gridkit.grids.balance import balance_draft
from gridkit.grids.work import (
    add_coordinator,
    add_department,
    publish,
    responsibility_at,
    rollback,
    set_members,
    start_draft,
    validate_version,
    version_by_number,
)
from gridkit.messages import Message
from gridkit.models import WorkCell
from gridkit.rules import VersionState
from gridkit.standard.codes import PROFILES, work_cell_code
from tests.factories import make_base_grid
from tests.factories_grids import COMMUNITIES, STREETS, cells_of, centre_of, make_two_street_grid

DEPT = "100001"
WEST, EAST = COMMUNITIES
DISTRICT_AREA = "440304000000"
T1 = datetime(2026, 1, 1, tzinfo=UTC)
T2 = datetime(2026, 3, 1, tzinfo=UTC)
T3 = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture(params=sorted(PROFILES))
def profile(request):
    return PROFILES[request.param]


@pytest.fixture
def grid(session, profile):
    make_two_street_grid(session, profile)
    add_department(session, DEPT, "综治")
    return profile


def two_cell_draft(session, profile):
    """A draft with one work cell per community, each holding its community's 4 base cells."""
    draft = start_draft(session, DEPT, by="planner")
    set_members(session, draft, work_cell_code(DEPT, WEST, 1, profile), cells_of(WEST, profile), name="西")
    set_members(session, draft, work_cell_code(DEPT, EAST, 1, profile), cells_of(EAST, profile), name="东")
    return draft


def errors(problems):
    return sorted(p.type for p in problems if p.severity == "error")


# -- set_members ---------------------------------------------------------------------------------


def test_set_members_moves_base_cells_and_drops_empty_work_cells(session, grid):
    draft = two_cell_draft(session, grid)
    assert draft.revision == 2
    whole = work_cell_code(DEPT, DISTRICT_AREA, 1, grid)
    cell = set_members(
        session, draft, whole, cells_of(WEST, grid) + cells_of(EAST, grid), expected_revision=2, by="planner2"
    )
    assert draft.revision == 3 and draft.updated_by == "planner2"
    # Both community work cells lost every base cell and are gone.
    assert session.scalars(select(WorkCell.code).where(WorkCell.version_id == draft.id)).all() == [whole]
    assert cell.code == whole and len(cells_of(WEST, grid)) == 4


def test_set_members_refuses_bad_input_and_changes_nothing(session, grid):
    draft = two_cell_draft(session, grid)
    west_code = work_cell_code(DEPT, WEST, 1, grid)
    with pytest.raises(Conflict, match="you had 1"):
        set_members(session, draft, west_code, cells_of(WEST, grid)[:1], expected_revision=1)
    with pytest.raises(NotFound, match="not in the draft's base grid edition"):
        set_members(session, draft, west_code, [WEST + "9" * grid.base_cell_seq_digits])
    with pytest.raises(ValidationError, match="must start with its department code 100001") as exc:
        set_members(session, draft, work_cell_code("200001", WEST, 1, grid), cells_of(WEST, grid))
    assert exc.value.code == "work.cell_code_department"
    assert "100001" in exc.value.render("zh-CN") and "部门编码" in exc.value.render("zh-CN")
    with pytest.raises(ValidationError, match="must be 20 digits"):
        set_members(session, draft, west_code[:-1], cells_of(WEST, grid))
    with pytest.raises(ValidationError, match="not a known admin unit"):
        set_members(session, draft, work_cell_code(DEPT, "440304009000", 1, grid), cells_of(WEST, grid))
    assert draft.revision == 2
    published = publish(session, draft, at=T1)
    with pytest.raises(InvalidTransition, match="only drafts can change"):
        set_members(session, published, west_code, cells_of(WEST, grid))


# -- validate_version ------------------------------------------------------------------------------


def test_validate_version_finds_gaps_pieces_and_coordinators(session, grid):
    draft = start_draft(session, DEPT)
    west = cells_of(WEST, grid)
    # Cells 1 and 4 of a 2×2 community meet only at a corner: two pieces.
    set_members(session, draft, work_cell_code(DEPT, WEST, 1, grid), [west[0], west[3]])
    problems = validate_version(session, draft)
    assert errors(problems) == ["multipart_work_cell", "unassigned_base_cells"]
    gaps = next(p for p in problems if p.type == "unassigned_base_cells")
    assert sorted(gaps.codes) == sorted(west[1:3] + cells_of(EAST, grid))
    assert [p.type for p in problems if p.severity == "warning"] == ["no_coordinator"]
    assert "no_coordinator" in errors(validate_version(session, draft, coordinator_required=True))
    for p in problems:
        assert isinstance(p.message, Message), p
        assert p.render("zh-CN") != p.render("en")


def test_validation_refuses_an_area_part_naming_another_street(session, grid):
    """40000144030400200001 names street 440304002; its base cells lie in street 440304001."""
    add_department(session, "400001", "城管")
    draft = start_draft(session, "400001")
    wrong = "400001" + STREETS[1] + "000" + "01"
    assert wrong == "40000144030400200001"
    set_members(session, draft, wrong, cells_of(WEST, grid))
    set_members(session, draft, work_cell_code("400001", EAST, 1, grid), cells_of(EAST, grid))
    problems = validate_version(session, draft)
    assert errors(problems) == ["work_cell_area"]
    area = next(p for p in problems if p.type == "work_cell_area")
    assert area.codes == [wrong] and WEST in area.render("en") and "440304002" in area.render("zh-CN")
    with pytest.raises(ValidationError) as exc:
        publish(session, draft, at=T1)
    assert [p["type"] for p in exc.value.problems] == ["work_cell_area"]
    assert draft.status == VersionState.DRAFT
    # The district holds both streets: coded for the district, the same base cells are fine.
    set_members(session, draft, "400001" + DISTRICT_AREA + "01", cells_of(WEST, grid))
    assert errors(validate_version(session, draft)) == []


# -- publish, responsibility_at, rollback ------------------------------------------------------------


def test_work_grid_scenario(session, grid):
    """Draft → publish → coordinator → redraw → publish → as-of answers → rollback, in the profile's codes."""
    west_code, east_code = (work_cell_code(DEPT, c, 1, grid) for c in COMMUNITIES)
    v1 = publish(session, two_cell_draft(session, grid), at=T1, by="planner")
    assert (v1.number, v1.status, v1.valid_from) == (1, VersionState.PUBLISHED, T1)
    add_coordinator(session, "张三", "13800000001", DEPT, [west_code])

    second = start_draft(session, DEPT)
    whole = work_cell_code(DEPT, DISTRICT_AREA, 1, grid)
    set_members(session, second, whole, cells_of(WEST, grid) + cells_of(EAST, grid))
    with pytest.raises(Conflict):
        publish(session, second, at=T2, expected_revision=0)
    v2 = publish(session, second, at=T2)
    assert (v1.status, v1.valid_to, v2.number) == (VersionState.RETIRED, T2, 2)
    with pytest.raises(InvalidTransition, match="only a draft can be published"):
        publish(session, v2)

    lon, lat = centre_of(0, 1)
    before = responsibility_at(session, lon, lat, at=T1 + timedelta(days=1))
    assert before["base_cell"] == cells_of(WEST, grid)[0] and before["community"] == WEST
    [dept] = before["departments"]
    assert (dept["version"], dept["work_cell"], dept["work_cell_name"]) == (1, west_code, "西")
    assert [c["name"] for c in dept["coordinators"]] == ["张三"]
    after = responsibility_at(session, lon, lat, at=T2 + timedelta(days=1))
    assert (after["departments"][0]["version"], after["departments"][0]["work_cell"]) == (2, whole)
    assert after["departments"][0]["coordinators"] == []
    east = responsibility_at(session, *centre_of(1, 4), at=T1 + timedelta(days=1))
    assert east["base_cell"] == cells_of(EAST, grid)[3] and east["departments"][0]["work_cell"] == east_code
    earlier = responsibility_at(session, *centre_of(1, 4), at=T1 - timedelta(days=1))
    assert earlier["departments"][0]["work_cell"] is None

    v3 = rollback(session, DEPT, 1, at=T3, by="planner")
    assert (v3.number, v3.status, v3.based_on_id) == (3, VersionState.PUBLISHED, v1.id)
    assert version_by_number(session, DEPT, 2).status == VersionState.RETIRED
    now = responsibility_at(session, lon, lat)
    assert (now["departments"][0]["version"], now["departments"][0]["work_cell"]) == (3, west_code)
    # The copy keeps the coordinators of the version it restores.
    assert [c["name"] for c in now["departments"][0]["coordinators"]] == ["张三"]


def test_rollback_refuses_drafts_and_unknown_versions(session, grid):
    publish(session, two_cell_draft(session, grid), at=T1)
    start_draft(session, DEPT)
    with pytest.raises(InvalidTransition, match="is a draft"):
        rollback(session, DEPT, 2)
    with pytest.raises(NotFound, match="has no version 7") as exc:
        rollback(session, DEPT, 7)
    assert "版本" in exc.value.render("zh-CN")


def test_responsibility_at_checks_the_point(session, grid):
    with pytest.raises(ValidationError, match="longitude first"):
        responsibility_at(session, 22.5, 114.05)
    outside = responsibility_at(session, 116.4, 39.9)
    assert outside["base_cell"] is None
    assert [d["work_cell"] for d in outside["departments"]] == [None]


# -- balance numbering ----------------------------------------------------------------------------


def test_balance_numbers_in_the_profile_and_says_when_the_sequence_is_exhausted(session):
    make_base_grid(session, rows=10, cols=11)
    add_department(session, DEPT, "综治")
    draft = start_draft(session, DEPT)
    with pytest.raises(ValidationError, match="more than 99 work cells: the 2-digit sequence") as exc:
        balance_draft(session, draft, 100, "area")
    assert exc.value.code == "balance.sequence_exhausted"
    assert "顺序码已用尽" in exc.value.render("zh-CN")
    assert draft.revision == 0
    result = balance_draft(session, draft, 99, "area")
    assert sorted(c.code for c in result.work_cells)[-1] == work_cell_code(DEPT, "440304001001", 99)
