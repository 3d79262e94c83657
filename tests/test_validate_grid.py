"""Base grid and admin unit validation, and renumbering of base cells, on hand-drawn geometries."""

from __future__ import annotations

import json
import random
import time

import pyproj
import pytest
from geoalchemy2.shape import from_shape
from shapely import wkt
from shapely.geometry import MultiPolygon, Point, Polygon, box
from sqlalchemy import func, select, text

from gridkit.errors import InvalidTransition, NotFound, ValidationError
from gridkit.grids.problems import SLIVER_M2, Problem
from gridkit.grids.renumber import order_in_rows, renumber_base_cells
from gridkit.grids.validate import validate_base_grid
from gridkit.grids.validate_admin import validate_admin_units
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition
from tests.factories import DISTRICT, STREET, X0, Y0, D, make_admin_units, make_base_grid

C1, C2 = f"{STREET}001", f"{STREET}002"
GEOD = pyproj.Geod(ellps="GRS80")  # the CGCS2000 ellipsoid, as ST_Area(geography) uses for SRID 4490


def m2(geom) -> float:
    """Ellipsoidal area of a lon/lat shapely geometry, in m²."""
    return abs(GEOD.geometry_area_perimeter(geom)[0])


def cell_box(row: int, col: int, community: int = 0, cols: int = 3):
    """The square of make_base_grid's cell at row (0 = south) and col (0 = west)."""
    x = X0 + community * cols * D + col * D
    y = Y0 + row * D
    return box(x, y, x + D, y + D)


def code(community: str, seq: int) -> str:
    return f"{community}{seq:03d}"


def set_geom(session, edition, code_, geom) -> None:
    n = session.execute(
        text("UPDATE base_cell SET geom = ST_GeomFromText(:g, 4490) WHERE edition_id = :e AND code = :c"),
        {"g": geom.wkt, "e": edition.id, "c": code_},
    ).rowcount
    assert n == 1, code_


def add_cell(session, edition, code_, geom) -> None:
    session.add(
        BaseCell(edition_id=edition.id, code=code_, community_code=code_[:12], geom=from_shape(geom, srid=SRID))
    )
    session.flush()


def same_place(location: str, expected, tolerance: float = 1e-12) -> bool:
    """True if the WKT location and the expected shapely geometry cover the same area (or point)."""
    got = wkt.loads(location)
    if expected.geom_type == "Point":
        return got.distance(expected) < 1e-9
    return got.symmetric_difference(expected).area < tolerance


def types(problems: list[Problem]) -> list[str]:
    return [p.type for p in problems]


# -- clean data --------------------------------------------------------------------------------


def test_clean_grid_has_no_problems(session):
    edition = make_base_grid(session, rows=3, cols=3, communities=2)
    assert validate_base_grid(session, edition) == []
    assert validate_admin_units(session) == []


# -- base grid topology ------------------------------------------------------------------------


def test_shrunk_cell_leaves_a_gap(session):
    edition = make_base_grid(session)
    x, y = X0 + D, Y0 + D  # cell 005, the middle one
    set_geom(session, edition, code(C1, 5), box(x, y, x + D / 2, y + D))
    problems = validate_base_grid(session, edition)
    gap = box(x + D / 2, y, x + D, y + D)
    assert types(problems) == ["gap"]
    p = problems[0]
    # The community first, then the cells sharing an edge with the gap (not the corner ones).
    assert p.codes == [C1, code(C1, 2), code(C1, 5), code(C1, 6), code(C1, 8)]
    assert p.area_m2 == pytest.approx(m2(gap), rel=1e-3)
    assert 5_000 < p.area_m2 < 6_000
    assert same_place(p.location, gap)
    assert C1 in p.message and "not covered" in p.message


def test_gap_on_the_community_boundary(session):
    edition = make_base_grid(session)
    x, y = X0, Y0 + 2 * D  # cell 001, north-west corner
    set_geom(session, edition, code(C1, 1), box(x, y, x + D, y + D * 0.75))
    [p] = validate_base_grid(session, edition)
    assert (p.type, p.codes) == ("gap", [C1, code(C1, 1), code(C1, 2)])
    assert same_place(p.location, box(x, y + D * 0.75, x + D, y + D))


def test_enlarged_cell_overlaps_its_neighbour(session):
    edition = make_base_grid(session)
    x, y = X0 + D, Y0 + D
    set_geom(session, edition, code(C1, 5), box(x, y, x + 1.25 * D, y + D))
    [p] = validate_base_grid(session, edition)
    overlap = box(x + D, y, x + 1.25 * D, y + D)
    assert (p.type, p.codes) == ("overlap", [code(C1, 5), code(C1, 6)])
    assert p.area_m2 == pytest.approx(m2(overlap), rel=1e-3)
    assert same_place(p.location, overlap)


def test_overlap_narrower_than_the_tolerance_is_a_note(session):
    """A cell 2 cm too wide (1 m at the other end is not): noise below 5 cm is a note, not a problem."""
    edition = make_base_grid(session)
    x, y = X0 + D, Y0 + D
    two_cm = 0.02 / (111_320 * 0.9239)  # degrees of longitude at 22.5°N
    set_geom(session, edition, code(C1, 5), box(x, y, x + D + two_cm, y + D))
    notes: list = []
    assert validate_base_grid(session, edition, notes=notes) == []
    (note,) = notes
    assert (note.type, note.codes) == ("overlap", [code(C1, 5), code(C1, 6)])
    assert note.width_m == pytest.approx(0.02, rel=0.05) and "reprojection noise" in note.message
    assert "投影转换误差" in note.render("zh-CN") and note.to_dict("zh-CN")["message"] == note.render("zh-CN")
    [strict] = validate_base_grid(session, edition, tolerance_m=0.01)
    assert strict.type == "overlap" and strict.key == "geometry.validate.cell_overlap"
    set_geom(session, edition, code(C1, 5), box(x, y, x + D + 50 * two_cm, y + D))
    [wide] = validate_base_grid(session, edition)
    assert wide.type == "overlap" and wide.width_m == pytest.approx(1.0, rel=0.05)


def test_cell_inside_another_is_an_overlap(session):
    edition = make_base_grid(session)
    x, y = X0 + D, Y0 + D
    inner = box(x + D / 4, y + D / 4, x + D * 3 / 4, y + D * 3 / 4)  # wholly inside 005
    add_cell(session, edition, code(C1, 10), inner)
    [p] = validate_base_grid(session, edition)
    assert (p.type, p.codes) == ("overlap", [code(C1, 5), code(C1, 10)])
    assert same_place(p.location, inner)


def test_thin_strip_is_a_sliver(session):
    edition = make_base_grid(session)
    x, y, w = X0, Y0 + 2 * D, 2e-6  # a ~0.2 m wide strip of cell 001
    set_geom(session, edition, code(C1, 1), box(x, y, x + D - w, y + D))
    add_cell(session, edition, code(C1, 10), box(x + D - w, y, x + D, y + D))
    problems = validate_base_grid(session, edition)
    assert types(problems) == ["sliver"]
    strip = box(x + D - w, y, x + D, y + D)
    assert problems[0].codes == [code(C1, 10)]
    assert problems[0].area_m2 == pytest.approx(m2(strip), rel=1e-3)
    assert problems[0].area_m2 < SLIVER_M2
    assert same_place(problems[0].location, strip)
    assert validate_base_grid(session, edition, sliver_m2=10) == []
    assert types(validate_base_grid(session, edition, sliver_m2=20_000)) == ["sliver"] * 10


def test_cell_crossing_into_the_next_community(session):
    edition = make_base_grid(session, communities=2)
    x, y = X0 + 2 * D, Y0 + D  # community 1's cell 006, east edge
    set_geom(session, edition, code(C1, 6), box(x, y, x + 1.5 * D, y + D))
    problems = validate_base_grid(session, edition)
    outside = box(x + D, y, x + 1.5 * D, y + D)
    assert types(problems) == ["crosses_community", "overlap"]
    crosses, overlap = problems
    assert crosses.codes == [code(C1, 6), C1]
    assert crosses.area_m2 == pytest.approx(m2(outside), rel=1e-3)
    assert same_place(crosses.location, outside)
    assert overlap.codes == [code(C1, 6), code(C2, 4)]
    assert same_place(overlap.location, outside)


def test_cell_entirely_outside_its_community(session):
    edition = make_base_grid(session, communities=2)
    away = box(X0, Y0 + 5 * D, X0 + D, Y0 + 6 * D)  # north of everything
    set_geom(session, edition, code(C1, 1), away)
    problems = validate_base_grid(session, edition)
    assert types(problems) == ["gap", "outside_community"]
    gap, outside = problems
    assert gap.codes == [C1, code(C1, 2), code(C1, 4)]
    assert same_place(gap.location, cell_box(2, 0))
    assert outside.codes == [code(C1, 1), C1]
    assert outside.area_m2 == pytest.approx(m2(away), rel=1e-3)
    assert same_place(outside.location, away)
    assert "entirely outside" in outside.message


def test_community_without_cells(session):
    edition = make_base_grid(session, communities=2)
    session.execute(text("DELETE FROM base_cell WHERE community_code = :c"), {"c": C2})
    [p] = validate_base_grid(session, edition)
    community = box(X0 + 3 * D, Y0, X0 + 6 * D, Y0 + 3 * D)
    assert (p.type, p.codes) == ("uncovered_community", [C2])
    assert p.area_m2 == pytest.approx(m2(community), rel=1e-3)
    assert same_place(p.location, community)


def test_floating_noise_is_not_reported(session):
    edition = make_base_grid(session)
    x, y, e = X0 + D, Y0 + D, 1e-11  # ~1 µm: far below 0.01 m²
    set_geom(session, edition, code(C1, 5), box(x, y, x + D + e, y + D))
    set_geom(session, edition, code(C1, 2), box(x, y + D + e, x + D, y + 2 * D))
    assert validate_base_grid(session, edition) == []


def test_other_editions_do_not_interfere(session):
    edition = make_base_grid(session)
    other = BaseGridEdition(name="other", status="draft")
    session.add(other)
    session.flush()
    add_cell(session, other, code(C1, 1), cell_box(1, 1))  # overlaps the first edition's 005
    assert validate_base_grid(session, edition) == []
    [p] = validate_base_grid(session, other)
    assert (p.type, p.codes) == ("gap", [C1, code(C1, 1)])
    assert same_place(p.location, box(X0, Y0, X0 + 3 * D, Y0 + 3 * D).difference(cell_box(1, 1)))


# -- codes ------------------------------------------------------------------------------------


def test_code_format_depends_on_the_profile(session):
    edition = make_base_grid(session)
    session.execute(
        text("UPDATE base_cell SET code = :new WHERE code = :old"),
        [{"old": code(C1, 1), "new": C1 + "000"}, {"old": code(C1, 2), "new": C1 + "02"}],
    )
    problems = validate_base_grid(session, edition)
    assert [(p.type, p.codes) for p in problems] == [("code_format", [C1 + "000"]), ("code_format", [C1 + "02"])]
    assert "numbering starts" in problems[0].message
    assert "15 digits" in problems[1].message
    assert same_place(problems[0].location, cell_box(2, 0))
    # Under CJ/T 213 (14 digits) every other code is the wrong length instead.
    cjt = validate_base_grid(session, edition, profile="cjt213")
    assert types(cjt) == ["code_format"] * 8
    assert [C1 + "02"] not in [p.codes for p in cjt]


@pytest.mark.as_owner("the constraint dropped to store the bad cells is DDL")
def test_code_prefix_and_duplicate(session):
    edition = make_base_grid(session, communities=2)
    # The table refuses both; data loaded around the constraints (or before them) may still have them.
    session.execute(text("ALTER TABLE base_cell DROP CONSTRAINT ck_base_cell_code_prefix"))
    session.execute(text("ALTER TABLE base_cell DROP CONSTRAINT uq_base_cell_edition_id_code"))
    session.execute(text("UPDATE base_cell SET community_code = :c2 WHERE code = :c"), {"c2": C2, "c": code(C1, 9)})
    session.execute(text("UPDATE base_cell SET code = :dup WHERE code = :c"), {"dup": code(C2, 1), "c": code(C2, 2)})
    problems = validate_base_grid(session, edition)
    assert [(p.type, p.codes) for p in problems] == [
        ("code_duplicate", [code(C2, 1)]),
        ("code_prefix", [code(C1, 9), C2]),
        ("outside_community", [code(C1, 9), C2]),
    ]
    assert same_place(problems[0].location, MultiPolygon([cell_box(2, 0, 1), cell_box(2, 1, 1)]))
    assert same_place(problems[1].location, cell_box(0, 2))


@pytest.mark.as_owner("the constraint dropped to store the bad cells is DDL")
def test_invalid_geometry_is_reported_and_skipped(session):
    edition = make_base_grid(session)
    session.execute(text("ALTER TABLE base_cell DROP CONSTRAINT ck_base_cell_geom_valid"))
    x, y = X0 + D, Y0 + D
    bowtie = Polygon([(x, y), (x + D, y + D), (x + D, y), (x, y + D), (x, y)])
    set_geom(session, edition, code(C1, 5), bowtie)
    problems = validate_base_grid(session, edition)
    assert types(problems) == ["gap", "invalid_geometry"]
    gap, invalid = problems
    assert invalid.codes == [code(C1, 5)]
    assert invalid.area_m2 is None
    assert same_place(invalid.location, Point(x + D / 2, y + D / 2))
    assert "Self-intersection" in invalid.message
    assert same_place(gap.location, cell_box(1, 1))  # the invalid cell does not count as cover


def test_problems_are_ordered_and_serialisable(session):
    edition = make_base_grid(session, communities=2)
    set_geom(session, edition, code(C2, 5), box(X0 + 4 * D, Y0 + D, X0 + 5.5 * D, Y0 + 2 * D))
    set_geom(session, edition, code(C1, 5), box(X0 + D, Y0 + D, X0 + 1.5 * D, Y0 + 2 * D))
    session.execute(text("UPDATE base_cell SET code = :n WHERE code = :o"), {"o": code(C1, 9), "n": C1 + "99"})
    problems = validate_base_grid(session, edition)
    assert problems == sorted(problems, key=lambda p: (p.type, p.codes))
    assert types(problems) == ["code_format", "gap", "overlap"]
    data = json.loads(json.dumps([p.to_dict() for p in problems], ensure_ascii=False))
    assert set(data[0]) >= {"type", "codes", "area_m2", "location", "message"}
    assert data[0]["area_m2"] is None
    assert data[1]["detail"] == {"community": C1, "cells": [code(C1, 2), code(C1, 5), code(C1, 6), code(C1, 8)]}
    assert data[2]["area_m2"] == round(problems[2].area_m2, 2)
    assert validate_base_grid(session, edition) == problems


# -- admin units ------------------------------------------------------------------------------


def _set_unit_geom(session, code_, geom) -> None:
    session.execute(
        text("UPDATE admin_unit SET geom = ST_Multi(ST_GeomFromText(:g, 4490)) WHERE code = :c"),
        {"g": geom.wkt, "c": code_},
    )


def test_admin_unit_outside_parent_and_sibling_overlap(session):
    make_admin_units(session, communities=2)
    # Community 2 grows one column east, beyond its street; community 1 grows half a column into 2.
    _set_unit_geom(session, C2, box(X0 + 3 * D, Y0, X0 + 7 * D, Y0 + 3 * D))
    _set_unit_geom(session, C1, box(X0, Y0, X0 + 3.5 * D, Y0 + 3 * D))
    problems = validate_admin_units(session)
    assert [(p.type, p.codes) for p in problems] == [("outside_parent", [C2, STREET]), ("overlap", [C1, C2])]
    outside, overlap = problems
    beyond = box(X0 + 6 * D, Y0, X0 + 7 * D, Y0 + 3 * D)
    assert outside.area_m2 == pytest.approx(m2(beyond), rel=1e-3)
    assert same_place(outside.location, beyond)
    shared = box(X0 + 3 * D, Y0, X0 + 3.5 * D, Y0 + 3 * D)
    assert overlap.area_m2 == pytest.approx(m2(shared), rel=1e-3)
    assert same_place(overlap.location, shared)


def test_admin_unit_parents_and_codes(session):
    make_admin_units(session)
    far = MultiPolygon([box(X0 + 10 * D, Y0, X0 + 11 * D, Y0 + D)])
    session.add_all(
        [
            # A street with no district.
            AdminUnit(code="440304002", name="无主街道", level="street", geom=from_shape(far, srid=SRID)),
            # A community hung directly under the district.
            AdminUnit(
                code="440304001009",
                name="错挂社区",
                level="community",
                parent_code=DISTRICT,
                geom=from_shape(far, srid=SRID),
            ),
            # A district of another city, and a city code stored as a district.
            AdminUnit(
                code="441302", name="惠城区", level="district", parent_code="440300", geom=from_shape(far, srid=SRID)
            ),
            AdminUnit(
                code="440400", name="珠海市", level="district", parent_code="440300", geom=from_shape(far, srid=SRID)
            ),
        ]
    )
    session.flush()
    problems = validate_admin_units(session)
    summary = [(p.type, p.codes) for p in problems if p.type != "outside_parent" and p.type != "overlap"]
    assert summary == [
        ("code_format", ["440400"]),
        ("code_prefix", ["440400", "440300"]),
        ("code_prefix", ["441302", "440300"]),
        ("missing_parent", ["440304001009", DISTRICT]),
        ("missing_parent", ["440304002"]),
    ]
    assert "a district" in problems[[p.codes for p in problems].index(["440304001009", DISTRICT])].message


# -- renumbering ------------------------------------------------------------------------------


def codes_by_id(session, edition) -> dict[int, str]:
    return dict(session.execute(text("SELECT id, code FROM base_cell WHERE edition_id = :e"), {"e": edition.id}).all())


def permute_codes(session, edition, permutation: dict[int, str]) -> None:
    """Set the codes to `permutation` (id → code) through free 14-digit codes, like a careless import."""
    for n, cell_id in enumerate(permutation, start=1):
        session.execute(
            text("UPDATE base_cell SET code = left(code, 12) || lpad(:n, 2, '0') WHERE id = :id"),
            {"n": str(n), "id": cell_id},
        )
    session.execute(
        text("UPDATE base_cell SET code = :c WHERE id = :id"), [{"id": i, "c": c} for i, c in permutation.items()]
    )
    session.expire_all()


def test_order_in_rows_regular_grid_with_noise():
    # Row centres exactly one band apart, in floating point: no row may split or merge.
    for rows, cols in [(3, 3), (3, 4), (20, 20)]:
        points = [(X0 + (c + 0.5) * D, Y0 + r * D + D / 2) for r in reversed(range(rows)) for c in range(cols)]
        shuffled = list(range(len(points)))
        random.Random(rows).shuffle(shuffled)
        order = order_in_rows([points[i] for i in shuffled], D * (1 + 1e-12))
        assert [shuffled[i] for i in order] == list(range(len(points)))


def test_order_in_rows_ties_and_degenerate_band():
    points = [(1.0, 5.0), (0.0, 5.0), (0.0, 5.0), (2.0, 4.6), (0.5, 4.0)]
    assert order_in_rows(points, 2.0) == [1, 2, 0, 3, 4]  # rows: y > 4.0, then 4.0
    assert order_in_rows(points, 0.0) == [1, 2, 4, 0, 3]  # one row: west→east
    assert order_in_rows([], 1.0) == []


def test_renumber_restores_shuffled_codes(session):
    edition = make_base_grid(session, rows=3, cols=4, status="draft")
    expected = codes_by_id(session, edition)
    shuffled = list(expected.values())
    random.Random(3).shuffle(shuffled)
    permute_codes(session, edition, dict(zip(expected, shuffled)))
    cell = session.scalar(select(BaseCell).where(BaseCell.code == shuffled[0]))
    changes = renumber_base_cells(session, edition)
    assert codes_by_id(session, edition) == expected
    assert changes == sorted(((s, e) for s, e in zip(shuffled, expected.values()) if s != e), key=lambda p: p[1])
    assert cell.code == expected[cell.id]  # loaded objects see the new code
    assert renumber_base_cells(session, edition) == []  # numbering is stable


def test_renumber_reversed_codes_all_swap(session):
    # 001↔009, 002↔008 …: every move is a 2-cycle against the unique (edition, code) constraint.
    edition = make_base_grid(session, rows=3, cols=3, status="draft")
    expected = codes_by_id(session, edition)
    permute_codes(session, edition, dict(zip(expected, reversed(list(expected.values())))))
    assert len(renumber_base_cells(session, edition)) == 8
    assert codes_by_id(session, edition) == expected


def test_renumber_parks_on_a_free_code_when_sequence_zero_is_taken(session):
    edition = make_base_grid(session, status="draft")
    expected = codes_by_id(session, edition)
    ids = list(expected)
    # 001 and 002 swapped (a cycle), 003 on the all-zero sequence the cycle would park on.
    permute_codes(session, edition, {ids[0]: code(C1, 2), ids[1]: code(C1, 1), ids[2]: C1 + "000"})
    assert sorted(renumber_base_cells(session, edition)) == [
        (C1 + "000", code(C1, 3)),
        (code(C1, 1), code(C1, 2)),
        (code(C1, 2), code(C1, 1)),
    ]
    assert codes_by_id(session, edition) == expected


def test_renumber_irregular_rows(session):
    # Columns whose horizontal edges are jittered by up to 0.15 of a cell: still read row by row.
    units = make_admin_units(session, rows=3, cols=4)
    edition = BaseGridEdition(name="jitter", status="draft")
    session.add(edition)
    session.flush()
    jitter = [(0.1, -0.15), (-0.15, 0.12), (0.0, 0.15), (0.14, -0.1)]
    expected = {}
    codes = iter(range(900, 0, -7))
    for c, (j1, j2) in enumerate(jitter):
        edges = [Y0, Y0 + (1 + j1) * D, Y0 + (2 + j2) * D, Y0 + 3 * D]
        for r in range(3):
            geom = box(X0 + c * D, edges[r], X0 + (c + 1) * D, edges[r + 1])
            cell_code = code(units[0].code, next(codes))
            add_cell(session, edition, cell_code, geom)
            expected[cell_code] = code(units[0].code, (2 - r) * 4 + c + 1)
    assert validate_base_grid(session, edition) == []  # T-junctions tile fine
    changes = dict(renumber_base_cells(session, edition))
    assert changes == expected


def test_renumber_one_community(session):
    edition = make_base_grid(session, communities=2, status="draft")
    expected = codes_by_id(session, edition)
    reversed_codes = {}
    for community in (C1, C2):
        ids = [i for i, c in expected.items() if c.startswith(community)]
        reversed_codes.update(zip(ids, reversed([expected[i] for i in ids])))
    permute_codes(session, edition, reversed_codes)
    changes = renumber_base_cells(session, edition, community=C2)
    assert {new[:12] for _, new in changes} == {C2}
    now = codes_by_id(session, edition)
    assert {i: c for i, c in now.items() if c.startswith(C2)} == {i: c for i, c in expected.items() if c.startswith(C2)}
    assert {i: c for i, c in now.items() if c.startswith(C1)} == {
        i: c for i, c in reversed_codes.items() if c.startswith(C1)
    }
    with pytest.raises(NotFound):
        renumber_base_cells(session, edition, community="440304001077")


def test_renumber_refuses_published_and_retired_editions(session):
    edition = make_base_grid(session)
    before = codes_by_id(session, edition)
    with pytest.raises(InvalidTransition, match="published"):
        renumber_base_cells(session, edition)
    edition.status = "retired"
    with pytest.raises(InvalidTransition, match="retired"):
        renumber_base_cells(session, edition)
    assert codes_by_id(session, edition) == before


def test_renumber_cjt213_profile(session):
    edition = make_base_grid(session, status="draft")
    edition.code_profile = "cjt213"
    before = codes_by_id(session, edition)
    changes = renumber_base_cells(session, edition)
    assert changes == [(old, old[:12] + old[13:]) for old in sorted(before.values())]
    assert all(len(c) == 14 for c in codes_by_id(session, edition).values())
    assert validate_base_grid(session, edition) == []
    # And back to the default layout when asked.
    renumber_base_cells(session, edition, profile="default")
    assert codes_by_id(session, edition) == before


def test_renumber_refuses_more_cells_than_the_sequence_allows(session):
    edition = make_base_grid(session, rows=10, cols=10, status="draft")
    edition.code_profile = "cjt213"
    before = codes_by_id(session, edition)
    with pytest.raises(ValidationError, match="99") as info:
        renumber_base_cells(session, edition)
    assert info.value.problems[0]["codes"] == [C1]
    assert codes_by_id(session, edition) == before


# -- scale ------------------------------------------------------------------------------------


def make_city_grid(session, n: int = 100, per_community: int = 10) -> BaseGridEdition:
    """A n×n grid of D-degree cells in (n/per_community)² communities of per_community² cells each."""
    blocks = n // per_community
    size = per_community * D
    outline = MultiPolygon([box(X0, Y0, X0 + n * D, Y0 + n * D)])
    session.add_all(
        [
            AdminUnit(code="440300", name="深圳市", level="city", geom=from_shape(outline, srid=SRID)),
            AdminUnit(
                code=DISTRICT,
                name="福田区",
                level="district",
                parent_code="440300",
                geom=from_shape(outline, srid=SRID),
            ),
            AdminUnit(
                code=STREET, name="园岭街道", level="street", parent_code=DISTRICT, geom=from_shape(outline, srid=SRID)
            ),
        ]
    )
    session.flush()
    communities = []
    for bi in range(blocks):
        for bj in range(blocks):
            k = bi * blocks + bj + 1
            communities.append(
                {
                    "code": f"{STREET}{k:03d}",
                    "name": f"社区{k}",
                    "x": X0 + bj * size,
                    "y": Y0 + (blocks - 1 - bi) * size,
                    "s": size,
                }
            )
    session.execute(
        text("""
        INSERT INTO admin_unit (code, name, level, parent_code, geom)
        VALUES (:code, :name, 'community', '440304001',
                ST_Multi(ST_MakeEnvelope(:x, :y, :x + :s, :y + :s, 4490)))"""),
        communities,
    )
    edition = BaseGridEdition(name="city", status="draft")
    session.add(edition)
    session.flush()
    cells = []
    for comm in communities:
        for r in range(per_community):
            for c in range(per_community):
                seq = r * per_community + c + 1
                x = comm["x"] + c * D
                y = comm["y"] + (per_community - 1 - r) * D
                cells.append(
                    {"e": edition.id, "code": f"{comm['code']}{seq:03d}", "comm": comm["code"], "x": x, "y": y, "d": D}
                )
    session.execute(
        text("""
        INSERT INTO base_cell (edition_id, code, community_code, geom)
        VALUES (:e, :code, :comm, ST_MakeEnvelope(:x, :y, :x + :d, :y + :d, 4490))"""),
        cells,
    )
    session.execute(text("SELECT gridkit_analyze_base_cell()"))  # the owner's ANALYZE the application may ask for
    return edition


def test_validate_ten_thousand_cells(session):
    edition = make_city_grid(session)
    assert session.scalar(select(func.count()).where(BaseCell.edition_id == edition.id)) == 10_000
    first, fiftieth = f"{STREET}001", f"{STREET}050"
    # One overlap: community 001's north-west cell grows east into its neighbour 002.
    set_geom(session, edition, code(first, 1), box(X0, Y0 + 99 * D, X0 + 1.5 * D, Y0 + 100 * D))
    # One gap: a hole in cell 055 of community 050 (block row 4, column 9; cell row 5, column 4).
    x, y = X0 + 94 * D, Y0 + 54 * D
    hole = box(x + D / 4, y + D / 4, x + 3 * D / 4, y + 3 * D / 4)
    session.execute(
        text(
            "UPDATE base_cell SET geom = ST_Difference(geom, ST_GeomFromText(:h, 4490)) "
            "WHERE edition_id = :e AND code = :c"
        ),
        {"h": hole.wkt, "e": edition.id, "c": code(fiftieth, 55)},
    )
    started = time.perf_counter()
    problems = validate_base_grid(session, edition)
    elapsed = time.perf_counter() - started
    print(f"\nvalidate_base_grid: 10,000 cells in {elapsed:.2f} s, {len(problems)} problems")
    assert [(p.type, p.codes) for p in problems] == [
        ("gap", [fiftieth, code(fiftieth, 55)]),
        ("overlap", [code(first, 1), code(first, 2)]),
    ]
    assert same_place(problems[0].location, hole)
