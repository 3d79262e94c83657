"""Assignment of subjects to base cells: the rules, incremental assignment, and the bulk engine's
agreement with PostGIS ST_Covers (ties on shared edges and corners included)."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import numpy as np
import pytest
import shapely
from geoalchemy2.shape import from_shape
from shapely.geometry import MultiPolygon, Point, box
from sqlalchemy import select, text

from gridkit import assign
from gridkit.assign import assign_one, assign_subjects, base_cell_index, unassigned_subjects
from gridkit.models import SRID, BaseCell, BaseGridEdition, Building, Incident, LegalEntity, Resident
from gridkit.spatial.pointindex import PointIndex
from tests.factories import X0, Y0, D, make_admin_units, make_base_grid

COMMUNITY = "440304001001"
_serial = iter(range(1, 10**9))


def code(seq: int) -> str:
    return f"{COMMUNITY}{seq:03d}"


def cell_id(session, code_: str) -> int:
    return session.scalar(text("SELECT id FROM base_cell WHERE code = :c"), {"c": code_})


def entity(session, lon, lat) -> LegalEntity:
    n = next(_serial)
    e = LegalEntity(
        credit_code=f"91440300{n:010d}",
        name=f"企业{n}",
        geom=None if lon is None else from_shape(Point(lon, lat), srid=SRID),
    )
    session.add(e)
    session.flush()
    return e


def building(session, lon=None, lat=None, footprint=None) -> Building:
    n = next(_serial)
    b = Building(
        code=f"B{n}",
        geom=None if lon is None else from_shape(Point(lon, lat), srid=SRID),
        footprint=None if footprint is None else from_shape(MultiPolygon([footprint]), srid=SRID),
    )
    session.add(b)
    session.flush()
    return b


def resident(session, lon=None, lat=None, building_=None) -> Resident:
    n = next(_serial)
    r = Resident(
        id_number_hash=f"h{n}",
        id_number_masked="4403**********123X",
        name="张三",
        population_type="registered",
        building_id=building_.id if building_ else None,
        geom=None if lon is None else from_shape(Point(lon, lat), srid=SRID),
    )
    session.add(r)
    session.flush()
    return r


@pytest.fixture(params=["sql", "engine"])
def path(request, monkeypatch):
    """Run a rule test twice: small batches go to PostGIS, big ones to the engine; force each."""
    if request.param == "engine":
        monkeypatch.setattr(assign, "ENGINE_MIN_POINTS", 0)
        monkeypatch.setattr(assign, "ENGINE_MIN_POINTS_PER_CELL", 0)
    else:
        monkeypatch.setattr(assign, "ENGINE_MIN_POINTS", 10**9)
    return request.param


@pytest.fixture(autouse=True)
def bulk_session(session):
    """These tests load subjects unassigned and assign them in bulk, like an import does."""
    session.info[assign.AUTO_ASSIGN] = False
    return session


@pytest.fixture
def grid(session):
    """3×3 cells of D degrees; codes 001-003 on the north row, west→east."""
    return make_base_grid(session, rows=3, cols=3)


# -- rules ------------------------------------------------------------------------------------------


def test_point_inside_goes_to_its_cell(session, grid, path):
    e = entity(session, X0 + 0.5 * D, Y0 + 2.5 * D)  # north-west cell
    result = assign_subjects(session, ["entities"])
    assert result["entities"] == {"total": 1, "assigned": 1, "unassigned": 0, "changed": 1}
    assert e.base_cell_id == cell_id(session, code(1))


def test_point_on_shared_edge_goes_to_smallest_code(session, grid, path):
    # On the edge between 001 (west) and 002 (east), and between 005 (north) and 008 (south).
    # (Only the lines x = X0 + D and y = Y0 + D are exactly shared by the factory's cells.)
    west_east = entity(session, X0 + D, Y0 + 2.5 * D)
    north_south = entity(session, X0 + 1.5 * D, Y0 + D)
    assign_subjects(session, ["entities"])
    assert west_east.base_cell_id == cell_id(session, code(1))
    assert north_south.base_cell_id == cell_id(session, code(5))


def test_point_on_corner_of_four_cells_goes_to_smallest_code(session, grid, path):
    corner = entity(session, X0 + D, Y0 + D)  # shared by 004, 005, 007, 008
    outer = entity(session, X0 + 3 * D, Y0)  # the grid's south-east corner: 009 only
    assign_subjects(session, ["entities"])
    assert corner.base_cell_id == cell_id(session, code(4))
    assert outer.base_cell_id == cell_id(session, code(9))


def test_outside_every_cell_is_kept_counted_and_listed(session, grid, path):
    inside = entity(session, X0 + 0.5 * D, Y0 + 0.5 * D)
    outside = entity(session, X0 - D, Y0)
    no_point = entity(session, None, None)
    ticks = []
    result = assign_subjects(session, ["entities"], progress=lambda done, total: ticks.append((done, total)))
    assert result["entities"] == {"total": 3, "assigned": 1, "unassigned": 2, "changed": 1}
    assert ticks == [(1, 1)]
    assert inside.base_cell_id is not None and outside.base_cell_id is None and no_point.base_cell_id is None
    listed = unassigned_subjects(session, "entities")
    assert [r["id"] for r in listed] == [outside.id, no_point.id]
    assert listed[0]["lon"] == round(X0 - D, 7) and listed[1]["lon"] is None


def test_changed_counts_only_real_changes(session, grid, path):
    a = entity(session, X0 + 0.5 * D, Y0 + 0.5 * D)
    entity(session, X0 + 1.5 * D, Y0 + 0.5 * D)
    assert assign_subjects(session, ["entities"])["entities"]["changed"] == 2
    assert assign_subjects(session, ["entities"])["entities"]["changed"] == 0
    session.execute(
        text("UPDATE legal_entity SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE id = :id"),
        {"x": X0 + 2.5 * D, "y": Y0 + 2.5 * D, "id": a.id},
    )
    assert assign_subjects(session, ["entities"])["entities"]["changed"] == 1
    assert a.base_cell_id == cell_id(session, code(3))


def test_where_ids_limits_the_work(session, grid, path):
    a = entity(session, X0 + 0.5 * D, Y0 + 0.5 * D)
    b = entity(session, X0 + 1.5 * D, Y0 + 0.5 * D)
    result = assign_subjects(session, ["entities"], where_ids={"entities": [b.id]})
    assert result["entities"] == {"total": 1, "assigned": 1, "unassigned": 0, "changed": 1}
    assert a.base_cell_id is None and b.base_cell_id == cell_id(session, code(8))
    empty = assign_subjects(session, ["entities"], where_ids={"entities": []})
    assert empty["entities"] == {"total": 0, "assigned": 0, "unassigned": 0, "changed": 0}


def test_all_kinds_by_point(session, grid, path):
    b = building(session, X0 + 0.5 * D, Y0 + 1.5 * D)
    r = resident(session, X0 + 2.5 * D, Y0 + 0.5 * D)
    i = Incident(
        code=f"I{next(_serial)}",
        reported_at=datetime(2026, 1, 1, tzinfo=UTC),
        geom=from_shape(Point(X0 + 1.5 * D, Y0 + 1.5 * D), srid=SRID),
    )
    session.add(i)
    session.flush()
    result = assign_subjects(session)
    assert {k: v["changed"] for k, v in result.items()} == {
        "buildings": 1,
        "residents": 1,
        "entities": 0,
        "incidents": 1,
    }
    assert (b.base_cell_id, r.base_cell_id, i.base_cell_id) == (
        cell_id(session, code(4)),
        cell_id(session, code(9)),
        cell_id(session, code(5)),
    )


def test_footprint_goes_to_the_cell_holding_its_largest_part(session, grid, path):
    # 5/7 in 001, 2/7 in 002; its point (ignored) lies in 002.
    mostly_west = building(
        session, X0 + 1.1 * D, Y0 + 2.5 * D, footprint=box(X0 + 0.5 * D, Y0 + 2.2 * D, X0 + 1.2 * D, Y0 + 2.4 * D)
    )
    # Exactly half in 004 and half in 005: the smallest code. h is a power of two, so both
    # halves have exactly the same width in binary floating point.
    h = 2.0**-14
    edge = X0 + D
    halves = building(session, footprint=box(edge - h, Y0 + 1.2 * D, edge + h, Y0 + 1.6 * D))
    outside = building(session, footprint=box(X0 - 2 * D, Y0, X0 - D, Y0 + D))
    touching = building(session, footprint=box(X0 - D, Y0, X0, Y0 + D))  # shares only an edge
    result = assign_subjects(session, ["buildings"])
    assert mostly_west.base_cell_id == cell_id(session, code(1))
    assert halves.base_cell_id == cell_id(session, code(4))
    assert outside.base_cell_id is None and touching.base_cell_id is None
    assert result["buildings"] == {"total": 4, "assigned": 2, "unassigned": 2, "changed": 2}


def test_resident_inherits_building_and_follows_it(session, grid, path):
    home = building(session, X0 + 0.5 * D, Y0 + 0.5 * D)  # 007
    # Its own point (in 003) does not count: the building's cell does.
    tenant = resident(session, X0 + 2.5 * D, Y0 + 2.5 * D, building_=home)
    homeless = resident(session, X0 + 2.5 * D, Y0 + 2.5 * D)
    result = assign_subjects(session)
    assert tenant.base_cell_id == home.base_cell_id == cell_id(session, code(7))
    assert homeless.base_cell_id == cell_id(session, code(3))
    assert result["residents"]["changed"] == 2
    session.execute(
        text("UPDATE building SET geom = ST_SetSRID(ST_MakePoint(:x, :y), 4490) WHERE id = :id"),
        {"x": X0 + 1.5 * D, "y": Y0 + 0.5 * D, "id": home.id},
    )
    result = assign_subjects(session, ["buildings"])  # residents follow even when not asked
    assert tenant.base_cell_id == home.base_cell_id == cell_id(session, code(8))
    assert result == {"buildings": {"total": 1, "assigned": 1, "unassigned": 0, "changed": 1}}


def test_no_published_edition_is_refused(session):
    from gridkit.errors import NotFound

    make_base_grid(session, rows=1, cols=1, status="draft")
    with pytest.raises(NotFound, match="publish one"):
        assign_subjects(session)


# -- incremental assignment --------------------------------------------------------------------------


def test_assign_one_on_insert_and_move(session, grid):
    e = entity(session, X0 + 0.5 * D, Y0 + 0.5 * D)
    assert assign_one(session, e) == e.base_cell_id == cell_id(session, code(7))
    e.geom = from_shape(Point(X0 + D, Y0 + 2.5 * D), srid=SRID)  # moved onto the 001|002 edge
    assert assign_one(session, e) == cell_id(session, code(1))
    e.geom = from_shape(Point(X0 + 9 * D, Y0), srid=SRID)  # moved away
    assert assign_one(session, e) is None and e.base_cell_id is None
    assert session.scalar(text("SELECT base_cell_id FROM legal_entity WHERE id = :id"), {"id": e.id}) is None


def test_assign_one_building_moves_its_residents(session, grid):
    home = building(session, footprint=box(X0 + 0.1 * D, Y0 + 0.1 * D, X0 + 0.4 * D, Y0 + 0.4 * D))
    assign_one(session, home)
    tenant = resident(session, building_=home)
    assert assign_one(session, tenant) == home.base_cell_id == cell_id(session, code(7))
    home.footprint = from_shape(MultiPolygon([box(X0 + 2.1 * D, Y0 + 2.1 * D, X0 + 2.4 * D, Y0 + 2.4 * D)]), srid=SRID)
    assert assign_one(session, home) == cell_id(session, code(3))
    assert tenant.base_cell_id == cell_id(session, code(3))


def test_assign_one_without_edition_leaves_unassigned(session):
    e = entity(session, X0, Y0)
    assert assign_one(session, e) is None


# -- the engine against PostGIS -----------------------------------------------------------------------


def _irregular_edition(session, rng: random.Random) -> tuple[BaseGridEdition, tuple]:
    """~300 Voronoi cells in one community (plus cells in holes, and one overlap); published."""
    rows, cols = 16, 16
    make_admin_units(session, communities=1, rows=rows, cols=cols)
    outline = box(X0, Y0, X0 + cols * D, Y0 + rows * D)
    # Four quarters cut separately: their shared axis-aligned edges get T-junctions.
    cells = []
    for qx in range(2):
        for qy in range(2):
            quarter = box(X0 + qx * 8 * D, Y0 + qy * 8 * D, X0 + (qx + 1) * 8 * D, Y0 + (qy + 1) * 8 * D)
            seeds = [
                (
                    quarter.bounds[0] + (c + 0.5 + rng.uniform(-0.4, 0.4)) * 8 * D / 8.5,
                    quarter.bounds[1] + (r + 0.5 + rng.uniform(-0.4, 0.4)) * 8 * D / 8.5,
                )
                for r in range(8)
                for c in range(8)
            ]
            seeds = [s for s in seeds if quarter.contains(Point(s))]
            parts = shapely.intersection(
                shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=quarter)), quarter
            )
            cells += [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
    for k in range(0, len(cells), 25):  # holes filled by cells of their own
        c = cells[k].centroid
        square = box(c.x - 0.1 * D, c.y - 0.1 * D, c.x + 0.1 * D, c.y + 0.1 * D)
        if cells[k].contains(square.buffer(0.05 * D)):
            cells[k] = cells[k].difference(square)
            cells.append(square)
    cells.append(cells[40].buffer(0.05 * D, join_style="mitre"))  # an overlap: ties off the edges too
    order = list(range(len(cells)))
    rng.shuffle(order)  # codes unrelated to positions
    edition = BaseGridEdition(name="irregular", status="published", published_at=datetime(2020, 1, 1, tzinfo=UTC))
    session.add(edition)
    session.flush()
    session.add_all(
        [
            BaseCell(
                edition_id=edition.id, code=code(seq), community_code=COMMUNITY, geom=from_shape(cells[i], srid=SRID)
            )
            for seq, i in enumerate(order, start=1)
        ]
    )
    session.flush()
    return edition, outline.bounds


def _special_points(session, edition, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Vertices, edge midpoints, points along edges (and a few ulps off), as stored."""
    wkb = session.scalars(
        text("SELECT ST_AsBinary(geom) FROM base_cell WHERE edition_id = :e"), {"e": edition.id}
    ).all()
    rings = shapely.get_rings(shapely.from_wkb([bytes(w) for w in wkb]))
    xs, ys = [], []
    for ring in rings:
        c = shapely.get_coordinates(ring)
        a, b = c[:-1], c[1:]
        t = rng.random(len(a))[:, None]
        on = a + (b - a) * t
        xs += [c[:, 0], (a[:, 0] + b[:, 0]) / 2, on[:, 0]]
        xs += [on[:, 0] + k * np.spacing(on[:, 0]) for k in (-2, -1, 1, 2)]
        ys += [c[:, 1], (a[:, 1] + b[:, 1]) / 2, on[:, 1]] + [on[:, 1]] * 4
        xs += [c[:, 0], c[:, 0], np.nextafter(c[:, 0], np.inf), np.nextafter(c[:, 0], -np.inf)]
        ys += [np.nextafter(c[:, 1], np.inf), np.nextafter(c[:, 1], -np.inf), c[:, 1], c[:, 1]]
    return np.concatenate(xs), np.concatenate(ys)


def _postgis_cells(session, edition, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Reference: the smallest-code cell that PostGIS ST_Covers finds for each point, 0 if none."""
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        cur.execute("CREATE TEMP TABLE gk_test_points (n int, geom geometry(Point, 4490)) ON COMMIT DROP")
        with cur.copy("COPY gk_test_points (n, geom) FROM STDIN") as copy:
            for n, (x, y) in enumerate(zip(lon.tolist(), lat.tolist())):
                copy.write_row((n, f"SRID=4490;POINT({x!r} {y!r})"))
        cur.execute("CREATE INDEX ON gk_test_points USING gist (geom)")
        cur.execute("ANALYZE gk_test_points")
        cur.execute(
            "SELECT DISTINCT ON (p.n) p.n, c.id FROM base_cell c JOIN gk_test_points p "
            "ON ST_Covers(c.geom, p.geom) WHERE c.edition_id = %s ORDER BY p.n, c.code",
            (edition.id,),
        )
        found = cur.fetchall()
        # The text form above must give back the very same doubles.
        cur.execute("SELECT n, ST_X(geom), ST_Y(geom) FROM gk_test_points ORDER BY n")
        stored = np.array(cur.fetchall())
    assert (stored[:, 1] == lon).all() and (stored[:, 2] == lat).all()
    ref = np.zeros(len(lon), dtype=np.int64)
    if found:
        f = np.array(found)
        ref[f[:, 0]] = f[:, 1]
    return ref


def test_engine_agrees_with_postgis_st_covers(session):
    edition, (minx, miny, maxx, maxy) = _irregular_edition(session, random.Random(5))
    rng = np.random.default_rng(11)
    n = 200_000
    sx, sy = _special_points(session, edition, rng)
    lon = np.concatenate([rng.uniform(minx - 2 * D, maxx + 2 * D, n), sx])
    lat = np.concatenate([rng.uniform(miny - 2 * D, maxy + 2 * D, n), sy])
    ref = _postgis_cells(session, edition, lon, lat)
    got = base_cell_index(session, edition).cells_at(lon, lat)
    ties = session.scalar(
        text(
            "SELECT count(*) FROM (SELECT p.n FROM base_cell c JOIN gk_test_points p "
            "ON ST_Covers(c.geom, p.geom) WHERE c.edition_id = :e GROUP BY p.n "
            "HAVING count(*) > 1) t"
        ),
        {"e": edition.id},
    )
    assert ties > 1000  # points on shared edges and corners are in the test
    assert (ref == 0).sum() > 1000  # and points outside every cell
    mismatch = np.flatnonzero(got != ref)
    assert len(mismatch) == 0, [(lon[i], lat[i], ref[i], got[i]) for i in mismatch[:5]]


def test_bulk_assignment_through_the_engine_matches_postgis(session, monkeypatch):
    """assign_subjects on legal entities, as `gridkit assign` runs it (default thresholds), against PostGIS."""
    edition, (minx, miny, maxx, maxy) = _irregular_edition(session, random.Random(8))
    rng = np.random.default_rng(2)
    sx, sy = _special_points(session, edition, rng)
    pick = rng.choice(len(sx), 15_000, replace=False)
    lon = np.concatenate([sx[pick], rng.uniform(minx - D, maxx + D, 5_000)])
    lat = np.concatenate([sy[pick], rng.uniform(miny - D, maxy + D, 5_000)])
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        with cur.copy("COPY legal_entity (credit_code, name, geom) FROM STDIN") as copy:
            for k, (x, y) in enumerate(zip(lon.tolist(), lat.tolist())):
                copy.write_row((f"91440300{k:010d}", "e", f"SRID=4490;POINT({x!r} {y!r})"))
    calls = []
    real = assign.write_cells
    monkeypatch.setattr(assign, "write_cells", lambda *a, **k: calls.append(len(a[2])) or real(*a, **k))
    result = assign_subjects(session, ["entities"])
    assert calls, "the engine path was not taken"
    expected = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE e.base_cell_id IS NOT DISTINCT FROM "
            "(SELECT c.id FROM base_cell c WHERE c.edition_id = :e AND ST_Covers(c.geom, e.geom) "
            "ORDER BY c.code LIMIT 1)), "
            "count(*) FROM legal_entity e"
        ),
        {"e": edition.id},
    ).one()
    assert expected[0] == expected[1] == len(lon)
    assert result["entities"]["total"] == len(lon)
    assert result["entities"]["changed"] == result["entities"]["assigned"]


def test_point_index_edge_cases():
    square = box(0, 0, 1, 1)
    ring = box(2, 0, 5, 3).difference(box(3, 1, 4, 2))  # a hole…
    plug = box(3, 1, 4, 2)  # …filled by another polygon
    index = PointIndex.build([None, square, shapely.Polygon(), ring, plug])
    x = np.array([0.5, 0, 1, 1.5, 3.5, 3, 2, np.nan, 4, 100.0])
    y = np.array([0.5, 0, 1, 0.5, 1.5, 1.5, 3, 0.0, 2, 100.0])
    assert index.locate(x, y).tolist() == [1, 1, 1, -1, 4, 3, 3, -1, 3, -1]
    assert PointIndex.build([]).locate(x, y).tolist() == [-1] * len(x)
    with pytest.raises(TypeError):
        PointIndex.build([Point(0, 0)])


def test_point_index_follows_liblwgeom_on_micro_segments():
    """Segments shorter than 1e-12 are skipped by PostGIS's cached point-in-polygon test.

    That is the test bulk joins use (the same cell against many points); a lone ST_Covers call
    uses the uncached one, which counts them. The engine follows the bulk join.
    """
    # A square whose east side has a 1e-13 jog: PostGIS ignores the jog's tiny segment, so a
    # point at the jog's height sees the east side only through the two long segments.
    y_jog = 0.5
    jog = shapely.Polygon([(0, 0), (1, 0), (1, y_jog), (1 + 1e-13, y_jog + 1e-13), (1 + 1e-13, 1), (0, 1)])
    index = PointIndex.build([jog])
    assert index.e_live.sum() == 5
    ys = np.array([0.25, y_jog, np.nextafter(y_jog, 1), 0.75])
    got = index.locate(np.full(4, 0.5), ys)
    # Reference: liblwgeom's point_in_ring_rtree, written out plainly.
    ring = np.asarray(jog.exterior.coords)
    expected = []
    for py in ys:
        wn, on = 0, False
        for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:]):
            if (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) < 1e-12 * 1e-12:
                continue
            side = (x2 - x1) * (py - y1) - (0.5 - x1) * (y2 - y1)
            on |= side == 0 and min(x1, x2) <= 0.5 <= max(x1, x2) and min(y1, y2) <= py <= max(y1, y2)
            wn += int(y1 <= py < y2 and side > 0) - int(y2 <= py < y1 and side < 0)
        expected.append(0 if on or wn != 0 else -1)
    assert expected == [0, -1, -1, 0]  # the jog's height really is outside for PostGIS
    assert got.tolist() == expected


def _liblwgeom_first_cover(polygons, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Reference: PostGIS covers() per polygon (float boxes, then point_in_ring_rtree per ring),
    written plainly over every edge; the first covering polygon per point, or -1."""
    from gridkit.spatial.pointindex import float_down, float_up

    result = np.full(len(x), -1)
    pxd, pyd, pxu, pyu = float_down(x), float_down(y), float_up(x), float_up(y)
    for k, poly in enumerate(polygons):
        rings = [np.asarray(poly.exterior.coords)] + [np.asarray(i.coords) for i in poly.interiors]
        allc = np.concatenate(rings)
        inbox = (
            (pxd >= float_down(allc[:, 0].min()))
            & (pyd >= float_down(allc[:, 1].min()))
            & (pxu <= float_up(allc[:, 0].max()))
            & (pyu <= float_up(allc[:, 1].max()))
        )
        status = []
        for ring in rings:
            on = np.zeros(len(x), bool)
            wn = np.zeros(len(x), int)
            for (x1, y1), (x2, y2) in zip(ring[:-1], ring[1:]):
                if (x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1) < 1e-12 * 1e-12:
                    continue
                side = (x2 - x1) * (y - y1) - (x - x1) * (y2 - y1)
                on |= (side == 0) & (min(x1, x2) <= x) & (x <= max(x1, x2)) & (min(y1, y2) <= y) & (y <= max(y1, y2))
                wn += ((y1 <= y) & (y < y2) & (side > 0)).astype(int) - ((y2 <= y) & (y < y1) & (side < 0))
            status.append(np.where(on, 0, np.where(wn != 0, 1, -1)))
        final = status[0].copy()
        decided = final != 1
        for hole in status[1:]:
            hit = ~decided & (hole != -1)
            final[hit] = np.where(hole[hit] == 1, -1, 0)
            decided |= hit
        covered = inbox & (final != -1) & (result == -1)
        result[covered] = k
    return result


def test_point_index_matches_liblwgeom_on_nasty_polygons():
    rng = np.random.default_rng(4)
    x0, y0 = 114.05, 22.53
    polys = [
        shapely.Polygon([(x0, y0), (x0 + 1e-9, y0 + 0.004), (x0 + 2e-9, y0)]),  # sliver
        shapely.Polygon(
            [
                (x0 + 0.001, y0),
                (x0 + 0.001 + 3e-12, y0 + 0.004),  # nearly vertical
                (x0 + 0.0015, y0 + 0.004),
                (x0 + 0.0015, y0),
            ]
        ),
        shapely.Polygon(
            [
                (x0, y0 + 0.005),
                (x0 + 0.004, y0 + 0.005 + 7e-13),  # nearly level
                (x0 + 0.004, y0 + 0.0052),
                (x0, y0 + 0.0052),
            ]
        ),
        Point(x0 + 0.003, y0 + 0.002).buffer(0.0008, quad_segs=3),  # overlaps the next
        Point(x0 + 0.003, y0 + 0.002).buffer(0.0012, quad_segs=64),  # 256 vertices
        box(x0 + 0.002, y0 + 0.006, x0 + 0.004, y0 + 0.008).difference(
            box(x0 + 0.0025, y0 + 0.0065, x0 + 0.0035, y0 + 0.0075)
        ),  # a hole
        box(x0 + 0.0025, y0 + 0.0065, x0 + 0.0035, y0 + 0.0075),  # its plug
    ]
    for p in polys:
        assert p.is_valid
    n = 100_000
    xs = [rng.uniform(x0 - 0.0005, x0 + 0.0045, n)]
    ys = [rng.uniform(y0 - 0.0005, y0 + 0.0085, n)]
    for p in polys:
        for ring in [p.exterior, *p.interiors]:
            c = np.asarray(ring.coords)
            a, b = c[:-1], c[1:]
            t = rng.random((len(a), 8))
            on_x = (a[:, :1] + (b[:, :1] - a[:, :1]) * t).ravel()
            on_y = (a[:, 1:] + (b[:, 1:] - a[:, 1:]) * t).ravel()
            xs += [c[:, 0], on_x, np.nextafter(on_x, np.inf), np.nextafter(on_x, -np.inf)]
            ys += [c[:, 1], on_y, on_y, on_y]
    x, y = np.concatenate(xs), np.concatenate(ys)
    expected = _liblwgeom_first_cover(polys, x, y)
    for side in (4, 24, 64):  # coarse and fine rasters
        got = PointIndex.build(polys, pixels_per_cell_side=side).locate(x, y, threads=2)
        bad = np.flatnonzero(got != expected)
        assert len(bad) == 0, (side, [(x[i], y[i], expected[i], got[i]) for i in bad[:5]])
    assert (expected == -1).any() and len(np.unique(expected)) == len(polys) + 1


def test_bulk_write_leaves_subjects_moved_since_they_were_read(session, grid):
    """A cell computed from a point read earlier is not written over a newer point."""
    moved = entity(session, X0 + 0.5 * D, Y0 + 0.5 * D)
    kept = entity(session, X0 + 1.5 * D, Y0 + 0.5 * D)
    points = assign.read_points(session, "entities")
    cells = base_cell_index(session, grid).cells_at(points.lon, points.lat)
    # Moved after the read (as a concurrent transaction could), and assigned by its mover.
    moved.geom = from_shape(Point(X0 + 2.5 * D, Y0 + 2.5 * D), srid=SRID)
    assign_one(session, moved)
    assert assign.write_cells(session, "entities", points.ids, cells, points.lon, points.lat) == 1
    session.expire_all()
    assert moved.base_cell_id == cell_id(session, code(3))
    assert kept.base_cell_id == cell_id(session, code(8))


def test_orm_insert_and_move_assign_in_the_same_flush(session, grid):
    """Without being asked: a subject inserted or moved through the ORM gets its cell at flush."""
    session.info[assign.AUTO_ASSIGN] = True
    codes = dict(session.execute(select(BaseCell.id, BaseCell.code)).all())
    e = LegalEntity(
        credit_code="91440300MA5DC7QX31", name="测试公司", geom=from_shape(Point(X0 + 0.5 * D, Y0 + 2.5 * D), srid=SRID)
    )
    b = Building(code="B-AUTO", geom=from_shape(Point(X0 + 1.5 * D, Y0 + 1.5 * D), srid=SRID))
    session.add_all([e, b])
    session.flush()
    r = Resident(
        id_number_hash="auto",
        id_number_masked="4403**********000X",
        name="x",
        population_type="registered",
        building_id=b.id,
    )
    session.add(r)
    session.flush()
    assert codes[e.base_cell_id].endswith("001") and codes[b.base_cell_id].endswith("005")
    assert r.base_cell_id == b.base_cell_id
    b.geom = from_shape(Point(X0 + 2.5 * D, Y0 + 0.5 * D), srid=SRID)  # to the south-east cell
    session.flush()
    assert codes[b.base_cell_id].endswith("009")
    session.refresh(r)
    assert r.base_cell_id == b.base_cell_id
    e.geom = from_shape(Point(X0 + 9 * D, Y0 + 9 * D), srid=SRID)  # off the grid: kept, unassigned
    session.flush()
    assert e.base_cell_id is None
    assert session.scalar(select(LegalEntity.base_cell_id).where(LegalEntity.id == e.id)) is None
