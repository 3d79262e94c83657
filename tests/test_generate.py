"""Base cell generation along roads and rivers: pure geometry, the Shanghai OSM sample, the database."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import shapely
from geoalchemy2.shape import from_shape, to_shape
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from gridkit.errors import Conflict, NotFound, ValidationError
from gridkit.grids.generate import (
    MIN_COMPACTNESS,
    Road,
    Target,
    building_cells,
    generate_base_grid,
    generate_cells,
    number_cells,
    polsby_popper,
    road_features,
    road_lines,
    to_storage,
    water_features,
)
from gridkit.grids.generate.measures import carriageway_strips, major_road_inside, min_compactness
from gridkit.grids.numbering import cell_order, order_west_east_north_south
from gridkit.models import SRID, AdminUnit, BaseCell, BaseGridEdition, Building
from gridkit.standard.codes import PROFILES, check_base_cell_code
from tests.conftest import SHARED_DATA
from tests.factories import X0, Y0, D, make_admin_units, make_base_grid
from tests.factories_generate import THREE_COMMUNITIES

SQUARE = box(0, 0, 1000, 1000)
CROSS = [LineString([(500, -10), (500, 1010)]), LineString([(-10, 500), (1010, 500)])]


def assert_tiles(cells, community, rel=1e-9, abs_=0.01):
    """Cells are valid single polygons, cover the community exactly and share edges vertex for vertex.

    The tolerance is the larger of abs_ (m² for metric cells) and rel × the community's area.
    """
    polygons = [getattr(c, "polygon", c) for c in cells]
    assert all(p.geom_type == "Polygon" and p.is_valid for p in polygons)
    tolerance = max(abs_, rel * community.area)
    union = shapely.union_all(polygons)
    assert union.symmetric_difference(community).area <= tolerance
    assert abs(sum(p.area for p in polygons) - community.area) <= tolerance  # no overlaps
    # A valid coverage: no overlaps, and every shared edge has the same vertices on both sides.
    assert shapely.coverage_is_valid(polygons)


def grid_points(x0, y0, x1, y1, nx, ny):
    """Return nx × ny points evenly inside the box (never on its edges)."""
    xs = x0 + (np.arange(nx) + 0.5) * (x1 - x0) / nx
    ys = y0 + (np.arange(ny) + 0.5) * (y1 - y0) / ny
    return [Point(x, y) for x in xs for y in ys]


# ---------------------------------------------------------------------------------- pure geometry


def test_cross_of_roads_makes_four_cells_numbered_nw_ne_sw_se():
    result = generate_cells(SQUARE, CROSS, None, None, Target.area_m2(100_000, 400_000))
    assert [c.polygon.bounds for c in result.cells] == [
        (0, 500, 500, 1000),
        (500, 500, 1000, 1000),
        (0, 0, 500, 500),
        (500, 0, 1000, 500),
    ]
    assert all(c.status == "ok" and c.area_m2 == pytest.approx(250_000) for c in result.cells)
    assert result.faces == 4 and result.merges == 0 and result.splits == 0
    assert result.tiling_error_m2 <= 0.01 and result.overlap_m2 <= 0.01
    assert_tiles(result.cells, SQUARE)


def test_roads_outside_the_community_and_dangles_do_not_cut():
    roads = [*CROSS, LineString([(2000, 0), (3000, 0)]), LineString([(100, 100), (200, 200)])]
    result = generate_cells(SQUARE, roads, None, None, Target.area_m2(100_000, 400_000))
    assert len(result.cells) == 4
    assert_tiles(result.cells, SQUARE)


def test_tiny_face_merges_into_the_neighbour_with_the_longest_shared_boundary():
    # A side street 20 m from the north edge of the east half cuts off a 500 × 20 m strip: it
    # shares 500 m with the block south of it and only 20 m with the west half.
    roads = [LineString([(500, -10), (500, 1010)]), LineString([(500, 980), (1010, 980)])]
    result = generate_cells(SQUARE, roads, None, None, Target.area_m2(50_000, 600_000))
    assert result.faces == 3 and result.merges == 1
    assert [c.polygon.bounds for c in result.cells] == [(0, 0, 500, 1000), (500, 0, 1000, 1000)]
    assert_tiles(result.cells, SQUARE)


def test_small_faces_merge_smallest_first_into_single_polygons():
    # Many small blocks (a 10 × 10 street grid of 100 m blocks), target 30,000–60,000 m².
    roads = [LineString([(x, -1), (x, 1001)]) for x in range(100, 1000, 100)]
    roads += [LineString([(-1, y), (1001, y)]) for y in range(100, 1000, 100)]
    result = generate_cells(SQUARE, roads, None, None, Target.area_m2(30_000, 60_000))
    assert result.faces == 100
    assert all(c.status == "ok" for c in result.cells), [c.reason for c in result.outside]
    assert all(30_000 <= c.area_m2 <= 60_000 for c in result.cells)
    assert_tiles(result.cells, SQUARE)


def test_a_major_road_is_crossed_only_when_no_minor_street_is_left():
    # North of a main road (y=900) a minor street (x=500) leaves two 50,000 m² blocks, below the
    # minimum. Each shares 500 m with the south block across the main road and 100 m with the
    # other across the minor street.
    main = LineString([(-10, 900), (1010, 900)])
    minor = LineString([(500, 890), (500, 1010)])
    target = Target.area_m2(60_000, 2_000_000)
    unweighted = generate_cells(SQUARE, [main, minor], None, None, target)
    weighted = generate_cells(SQUARE, [main, minor], None, None, target, major_roads=[main])
    # Unweighted, the longest boundary wins: both blocks join the south one across the main road.
    # Weighted (500 m along a main road counts as 50 m), they join each other across the minor street.
    assert len(unweighted.cells) == 1 and unweighted.cells[0].status == "ok"
    assert [c.polygon.bounds for c in weighted.cells] == [(0, 900, 1000, 1000), (0, 0, 1000, 900)]
    assert weighted.cells[0].status == "ok" and weighted.cells[1].status == "ok"
    assert_tiles(weighted.cells, SQUARE)


def test_a_major_road_is_straddled_only_when_both_sides_are_below_the_minimum():
    main = Road(LineString([(-10, 500), (1010, 500)]), major=True, name="中山路")
    # Both halves reach the minimum: the road stays between cells.
    both_ok = generate_cells(SQUARE, [main], None, None, Target.area_m2(300_000, 2_000_000))
    assert [c.polygon.bounds for c in both_ok.cells] == [(0, 500, 1000, 1000), (0, 0, 1000, 500)]
    assert not any(c.notes for c in both_ok.cells)
    # One side below, the other not: the small block stays below the minimum, and says why.
    edge = Road(LineString([(-10, 900), (1010, 900)]), major=True, name="中山路")
    one_small = generate_cells(SQUARE, [edge], None, None, Target.area_m2(300_000, 2_000_000))
    assert [c.status for c in one_small.cells] == ["below", "ok"]
    reason = one_small.cells[0].reason
    assert reason.key == "generate.reason.below_major" and "中山路" in reason.render("zh-CN")
    # Both sides below the minimum: one cell across the road, with a note naming it.
    small = box(0, 0, 400, 400)
    middle = Road(LineString([(-10, 200), (410, 200)]), major=True, name="中山路")
    both_small = generate_cells(small, [middle], None, None, Target.area_m2(100_000, 2_000_000))
    (cell,) = both_small.cells
    assert cell.status == "ok" and [n.key for n in cell.notes] == ["generate.note.straddles"]
    assert "中山路" in cell.notes[0].render("zh-CN") and "80,000 m²" in cell.notes[0].render("en")
    # ... unless the cell would grow beyond straddle_max_m2: large blocks stay cells of their own.
    large = generate_cells(SQUARE, [main], None, None, Target.area_m2(600_000, 2_000_000))
    assert [c.status for c in large.cells] == ["below", "below"]
    assert large.cells[0].reason.key == "generate.reason.below_major_large"


def test_tunnels_do_not_cut_and_traffic_islands_join_a_block():
    frame = gpd.GeoDataFrame(
        {
            "kind": ["major_road", "major_road"],
            "kind_detail": ["primary", "primary"],
            "is_tunnel": [None, 1],
            "name": ["A路", "B隧道"],
        },
        geometry=[LineString([(-10, 500), (1010, 500)]), LineString([(500, -10), (500, 1010)])],
    )
    roads = road_features(frame)
    assert [r.name for r in roads] == ["A路"] and roads[0].major
    # A 40 × 40 m island between two major links next to the road is part of the road.
    island = [Road(LineString([(300, 490), (340, 450), (380, 490)]), major=True, name="A路")]
    result = generate_cells(SQUARE, roads + island, None, None, Target.area_m2(300_000, 2_000_000))
    assert len(result.cells) == 2 and all(c.status == "ok" for c in result.cells)


def test_dual_carriageways_and_the_land_between_are_one_road():
    north = Road(LineString([(-10, 510), (1010, 510)]), major=True, name="世纪大道")
    south = Road(LineString([(1010, 490), (-10, 490)]), major=True, name="世纪大道")  # one-way, drawn the other way
    streets = [Road(LineString([(x, -10), (x, 490)])) for x in (250, 500)]
    streets.append(Road(LineString([(750, 510), (750, 1010)])))
    target = Target.area_m2(50_000, 300_000)
    result = generate_cells(SQUARE, [north, south, *streets], None, None, target)
    assert result.carriageways == 1
    assert_tiles(result.cells, SQUARE)
    assert all(c.status == "ok" for c in result.cells), [str(c.reason) for c in result.outside]
    # No cell is a strip between the carriageways: every cell reaches beyond them.
    assert all(c.polygon.bounds[3] - c.polygon.bounds[1] > 100 for c in result.cells)
    assert carriageway_strips(result.cells, [north, south]) == []
    # Without the pairing (different names) the narrow land between is still road land, but it joins
    # one block whole, as a long tail, instead of piece by piece the blocks beside it.
    other = Road(south.geom, major=True, name="另一条路")
    unpaired = generate_cells(SQUARE, [north, other, *streets], None, None, target)
    assert unpaired.carriageways == 0
    assert min_compactness(result.cells) > min_compactness(unpaired.cells)


def test_elongated_cells_are_cut_until_compact():
    strip = box(0, 0, 2000, 40)  # 80,000 m², within the target, but Polsby-Popper 0.06
    result = generate_cells(strip, [], None, None, Target.area_m2(15_000, 100_000))
    assert len(result.cells) >= 4
    assert all(polsby_popper(c.polygon) >= MIN_COMPACTNESS for c in result.cells)
    assert all(c.status == "ok" for c in result.cells)
    # Too small to cut in two within the target: kept, with a note saying why.
    kept = generate_cells(strip, [], None, None, Target.area_m2(50_000, 100_000))
    (cell,) = kept.cells
    assert cell.status == "ok" and [n.key for n in cell.notes] == ["generate.note.elongated"]


def test_a_footprint_counts_in_the_cell_holding_most_of_it():
    # 20 × 20 m in the north-west quarter, 30 × 20 m in the north-east one; its centroid is east.
    footprint = box(480, 600, 530, 620)
    west_heavy = box(470, 300, 520, 320)  # 30 m west, 20 m east of the road
    result = generate_cells(SQUARE, CROSS, None, [footprint, west_heavy, Point(100, 100)], Target.buildings(0, 10))
    assert [c.buildings for c in result.cells] == [0, 1, 2, 0]  # NW, NE, SW (west_heavy + point), SE
    owner = building_cells([c.polygon for c in result.cells], [footprint, west_heavy, Point(100, 100)])
    assert owner.tolist() == [1, 2, 2]
    # A point on an edge goes to the smallest code (the first cell in numbering order).
    assert building_cells([c.polygon for c in result.cells], [Point(500, 700)]).tolist() == [0]


def test_large_face_is_split_into_target_sized_cells():
    result = generate_cells(SQUARE, [], None, None, Target.area_m2(100_000, 300_000))
    assert len(result.cells) == 4  # k = ceil(1,000,000 / 300,000)
    assert all(c.status == "ok" and c.area_m2 == pytest.approx(250_000, rel=1e-3) for c in result.cells)
    assert result.splits == 3
    assert_tiles(result.cells, SQUARE)


def test_long_face_is_cut_across_its_long_axis():
    strip = box(0, 0, 3000, 300)
    result = generate_cells(strip, [], None, None, Target.area_m2(200_000, 400_000))
    assert len(result.cells) == 3
    for cell in result.cells:  # cuts are vertical: every cell spans the full height
        assert cell.polygon.bounds[1] == 0 and cell.polygon.bounds[3] == 300
    assert [round(c.polygon.bounds[0]) for c in result.cells] == [0, 1000, 2000]  # numbered west→east
    assert_tiles(result.cells, strip)


def test_split_of_a_rotated_non_convex_face_keeps_single_polygons():
    ell = shapely.affinity.rotate(
        Polygon([(0, 0), (2000, 0), (2000, 400), (400, 400), (400, 2000), (0, 2000)]), 33, origin=(0, 0)
    )
    result = generate_cells(ell, [], None, None, Target.area_m2(50_000, 150_000))
    assert all(c.polygon.geom_type == "Polygon" for c in result.cells)
    assert result.in_target_share >= 0.9
    assert all(c.reason for c in result.outside)
    assert_tiles(result.cells, ell)


def test_building_target_splits_by_count_between_buildings():
    west = grid_points(0, 0, 500, 1000, 10, 10)  # 100 buildings
    east = grid_points(500, 0, 1000, 1000, 5, 6)  # 30 buildings
    roads = [LineString([(500, -10), (500, 1010)])]
    result = generate_cells(SQUARE, roads, None, west + east, Target.buildings(20, 60))
    assert sorted(c.buildings for c in result.cells) == [30, 50, 50]
    assert all(c.status == "ok" for c in result.cells)
    assert sum(c.buildings for c in result.cells) == 130
    for cell in result.cells:  # each count is what the polygon really holds
        assert cell.buildings == sum(cell.polygon.covers(p) for p in west + east)
    assert_tiles(result.cells, SQUARE)


def test_building_target_merges_blocks_with_few_buildings():
    roads = [LineString([(x, -1), (x, 1001)]) for x in (250, 500, 750)]
    buildings = grid_points(0, 0, 1000, 1000, 8, 4)  # 8 per block of 250 × 1000 m
    result = generate_cells(SQUARE, roads, None, buildings, Target.buildings(12, 20))
    assert [c.buildings for c in result.cells] == [16, 16]
    assert_tiles(result.cells, SQUARE)


def test_building_target_needs_buildings():
    with pytest.raises(ValidationError, match="needs buildings"):
        generate_cells(SQUARE, CROSS, None, None, Target.buildings(20, 150))


def test_cells_outside_the_target_carry_reasons():
    # Too few buildings in the whole community.
    few = generate_cells(SQUARE, CROSS, None, grid_points(0, 0, 1000, 1000, 2, 2), Target.buildings(20, 150))
    assert len(few.cells) == 1
    assert few.cells[0].status == "below"
    assert str(few.cells[0].reason) == "below minimum: the whole community has only 4 buildings"
    # 31 buildings cannot become parts of 20–30.
    narrow = generate_cells(SQUARE, [], None, grid_points(0, 0, 1000, 1000, 31, 1), Target.buildings(20, 30))
    assert [c.status for c in narrow.cells] == ["above"]
    assert "range is too narrow" in str(narrow.cells[0].reason)
    # 70 buildings at one address cannot be separated by any cut.
    stacked = generate_cells(SQUARE, [], None, [Point(300, 300)] * 70, Target.buildings(20, 60))
    assert [c.status for c in stacked.cells] == ["above"]
    assert "cannot be separated by a straight cut" in str(stacked.cells[0].reason)
    # An island (second part of a multipolygon community) with no neighbour.
    islands = MultiPolygon([box(0, 0, 1000, 1000), box(2000, 0, 2050, 50)])
    result = generate_cells(islands, [], None, None, Target.area_m2(10_000, 2_000_000))
    small = [c for c in result.cells if c.status == "below"]
    assert len(small) == 1 and "no neighbouring cell to merge with" in str(small[0].reason)
    assert_tiles(result.cells, islands)


def test_water_area_becomes_one_cell_under_a_building_target():
    river = box(-100, 450, 1100, 550)
    bridge = LineString([(300, -10), (300, 1010)])  # also crosses the river
    pond = box(700, 700, 740, 740)  # 1,600 m²: too small to be cut out
    buildings = grid_points(0, 0, 1000, 440, 6, 5) + grid_points(0, 560, 1000, 1000, 6, 5)
    result = generate_cells(SQUARE, [bridge], [river, pond], buildings, Target.buildings(10, 40))
    water = [c for c in result.cells if c.water]
    assert len(water) == 1 and water[0].status == "water"
    assert water[0].area_m2 == pytest.approx(100_000)
    assert str(water[0].reason) == "water body: the building target does not apply"
    assert all(c.status == "ok" for c in result.cells if not c.water)
    assert all(not c.polygon.contains(pond) or not c.water for c in result.cells)
    assert_tiles(result.cells, SQUARE)


def test_water_follows_the_area_target_and_river_lines_cut():
    river = box(-100, 450, 1100, 550)
    creek = LineString([(800, -10), (800, 450)])  # a canal drawn as a line
    result = generate_cells(SQUARE, [], [river, creek], None, Target.area_m2(40_000, 500_000))
    water = [c for c in result.cells if c.water]
    assert sum(c.area_m2 for c in water) == pytest.approx(100_000)
    assert all(c.status == "ok" for c in result.cells)
    assert any(c.polygon.bounds == (800, 0, 1000, 450) for c in result.cells)
    assert_tiles(result.cells, SQUARE)


def test_slivers_along_the_boundary_are_merged():
    # A road 3 m inside the west boundary: the 3 m × 1000 m strip is above the minimum area but a sliver.
    roads = [LineString([(3, -10), (3, 1010)]), LineString([(500, -10), (500, 1010)])]
    result = generate_cells(SQUARE, roads, None, None, Target.area_m2(2_000, 600_000))
    assert [round(c.area_m2) for c in result.cells] == [500_000, 500_000]
    assert_tiles(result.cells, SQUARE)


def test_community_with_a_hole_and_random_roads_tiles_exactly():
    rng = np.random.default_rng(7)
    community = Polygon([(0, 0), (1500, 100), (1400, 1300), (100, 1200)], [[(600, 600), (800, 600), (700, 800)]])
    roads = [LineString(rng.uniform(-100, 1600, size=(3, 2))) for _ in range(25)]
    result = generate_cells(community, roads, None, None, Target.area_m2(40_000, 150_000))
    assert result.in_target_share >= 0.9
    assert all(c.reason for c in result.outside)
    assert all(not c.polygon.intersects(Point(700, 650)) for c in result.cells)  # inside the hole
    assert_tiles(result.cells, community)


def test_target_parse_and_checks():
    assert Target.parse("20-150", "buildings") == Target.buildings(20, 150)
    assert Target.parse("20,000–400,000", "area") == Target.area_m2(20_000, 400_000)
    assert Target.buildings(20, 150).describe() == "20–150 buildings"
    with pytest.raises(ValidationError, match="MIN-MAX"):
        Target.parse("twenty", "buildings")
    with pytest.raises(ValidationError, match="larger than the maximum"):
        Target.area_m2(5, 1)


# ---------------------------------------------------------------------------------- numbering


def test_order_west_east_north_south():
    # Bands 100 high centred on the northernmost point (y 960): y 910–1010 is band 0, taken
    # west→east, then y 810–910 ...
    points = [(300, 920), (100, 950), (200, 960), (50, 800), (250, 790), (400, 880)]
    assert order_west_east_north_south(points, 100) == [1, 2, 0, 5, 3, 4]
    # A regular grid's rows sit mid-band, so noise in y does not move a cell to another row.
    noisy = [(0, 100 + 1e-9), (100, 100 - 1e-9), (0, 0 - 1e-9), (100, 0 + 1e-9)]
    assert order_west_east_north_south(noisy, 100) == [0, 1, 2, 3]
    # Ties in x go north first, then by input position.
    assert order_west_east_north_south([(0, 0), (0, 1), (0, 1)], 10) == [1, 2, 0]
    assert order_west_east_north_south([], 10) == []
    assert order_west_east_north_south([(5, 0), (1, -1000)], 0) == [1, 0]  # no bands: west→east


def test_number_cells_follows_the_rule_and_the_profile():
    cells = [box(x, y, x + 100, y + 100) for y in (0, 100, 200) for x in (0, 100, 200)]  # south row first
    order = list(reversed(range(9)))
    shuffled = [cells[i] for i in order]
    codes = number_cells(shuffled, "440304001001")
    by_code = {code: poly for code, poly in zip(codes, shuffled)}
    assert by_code["440304001001001"].bounds == (0, 200, 100, 300)  # north-west
    assert by_code["440304001001003"].bounds == (200, 200, 300, 300)  # north-east
    assert by_code["440304001001009"].bounds == (200, 0, 300, 100)  # south-east
    assert cell_order(cells) == [6, 7, 8, 3, 4, 5, 0, 1, 2]
    assert number_cells(cells[:1], "440304001001", "cjt213") == ["44030400100101"]
    with pytest.raises(ValidationError, match="at most 99"):
        number_cells([box(i, 0, i + 1, 1) for i in range(100)], "440304001001", PROFILES["cjt213"])


# ---------------------------------------------------------------------------------- storage transform


def test_to_storage_keeps_shared_vertices_and_restores_the_boundary():
    forward = Transformer.from_crs(4490, 4547, always_xy=True)
    inverse = Transformer.from_crs(4547, 4490, always_xy=True)
    community = box(114.05, 22.53, 114.06, 22.54)
    original = shapely.get_coordinates(community)
    metric_xy = np.column_stack(forward.transform(original[:, 0], original[:, 1]))
    community_m = shapely.transform(community, lambda _: metric_xy)
    left, bottom, right, top = community_m.bounds
    roads = [
        LineString([(left + 333.3333, bottom - 5), (left + 377.7777, top + 5)]),
        LineString([(left - 5, bottom + 222.222), (right + 5, bottom + 701.01)]),
    ]
    result = generate_cells(community_m, roads, None, None, Target.area_m2(50_000, 400_000))
    stored = to_storage([c.polygon for c in result.cells], inverse.transform, community_m, community)
    # Areas in degrees²: 1e-16 deg² is about 1e-6 m².
    assert_tiles(stored, community, rel=0, abs_=1e-16)
    on_boundary = shapely.intersects(community.boundary.buffer(1e-12), shapely.points(shapely.get_coordinates(stored)))
    coords = shapely.get_coordinates(stored)
    for (lon, lat), boundary in zip(coords, on_boundary):
        if not boundary:  # generated vertices inside the community are rounded to 1e-9°
            assert lon == np.rint(lon / 1e-9) * 1e-9 and lat == np.rint(lat / 1e-9) * 1e-9
    assert {tuple(xy) for xy in original} <= {tuple(xy) for xy in coords}  # corners kept exactly
    assert on_boundary.sum() > 4 + 4  # the road crossings are on the boundary too


# ---------------------------------------------------------------------------------- input layers


def test_road_lines_keep_streets_and_drop_tunnels_paths_and_service_roads():
    import geopandas as gpd

    rows = [
        ("major_road", "primary", None),
        ("minor_road", "residential", None),
        ("minor_road", "service", None),
        ("path", "footway", None),
        ("path", "pedestrian", None),
        ("path", "pier", None),
        ("rail", "subway", 1.0),
        ("major_road", "secondary", 1.0),
        ("ferry", None, None),
        ("rail", "rail", None),
    ]
    frame = gpd.GeoDataFrame(
        {"kind": [r[0] for r in rows], "kind_detail": [r[1] for r in rows], "is_tunnel": [r[2] for r in rows]},
        geometry=[LineString([(i, 0), (i, 1)]) for i in range(len(rows))],
        crs=4490,
    )
    kept = [int(g.coords[0][0]) for g in road_lines(frame)]
    assert kept == [0, 1, 4, 9]
    assert [int(g.coords[0][0]) for g in road_lines(frame, paths=True)] == [0, 1, 3, 4, 9]
    assert [int(g.coords[0][0]) for g in road_lines(frame, major=True)] == [0, 9]
    osm = gpd.GeoDataFrame(
        {"highway": ["primary", "service", "footway"], "tunnel": [None, None, None]},
        geometry=[LineString([(i, 0), (i, 1)]) for i in range(3)],
        crs=4490,
    )
    assert len(road_lines(osm)) == 1
    plain = gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[LineString([(0, 0), (1, 1)])] * 2, crs=4490)
    assert len(road_lines(plain)) == 2 and road_lines(plain, major=True) == []


def test_water_features_drop_pools_and_outlines():
    import geopandas as gpd

    frame = gpd.GeoDataFrame(
        {"kind": ["water", "swimming_pool", "river", "water", "canal"], "boundary": [None, None, None, 1.0, None]},
        geometry=[
            box(0, 0, 1, 1),
            box(2, 2, 3, 3),
            LineString([(0, 0), (5, 5)]),
            LineString([(0, 0), (1, 0)]),
            LineString([(1, 0), (1, 5)]),
        ],
        crs=4490,
    )
    assert [g.geom_type for g in water_features(frame)] == ["Polygon", "LineString", "LineString"]


# ---------------------------------------------------------------------------------- real data: Shanghai

BUND = SHARED_DATA / "shanghai-bund-osm"
BUND_EPSG = 4550  # CGCS2000 Gauss-Kruger zone of the sample's centre (121.50E → CM 123E)


@pytest.fixture(scope="module")
def bund():
    """The Shanghai Bund OSM sample in EPSG:4550, with a community box inset 80 m from the data's edges.

    The box is drawn in lon/lat inside the sample's tiles: roads are cut at tile edges, so a box at
    the very edge would not be crossed by them and would leave an open band along its boundary.
    """
    import geopandas as gpd

    if not BUND.exists():
        pytest.fail(f"The Shanghai sample is missing: expected it at {BUND}")
    roads = gpd.read_file(BUND / "roads_lines.geojson").to_crs(4490)
    water = [gpd.read_file(BUND / f"water_{kind}.geojson").to_crs(4490) for kind in ("polygons", "lines")]
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    minx, miny, maxx, maxy = roads.total_bounds
    inset = 0.0008
    community = box(minx + inset, miny + inset, maxx - inset, maxy - inset)

    def metric(geoms):
        return list(gpd.GeoSeries(list(geoms), crs=4490).to_crs(BUND_EPSG))

    features = road_features(roads)
    return {
        "community_lonlat": community,
        "community": metric([community])[0],
        "roads": [Road(g, r.major, r.name, r.ref, r.rail) for r, g in zip(features, metric(r.geom for r in features))],
        "major": metric(road_lines(roads, major=True)),
        "water": metric([g for frame in water for g in water_features(frame)]),
        "buildings": metric(footprints.geometry),
        "metric": metric,
    }


def check_real_result(result, community, min_share=0.9):
    assert_tiles(result.cells, community)  # exact within 1e-9 of the area, coverage valid
    assert result.tiling_error_m2 <= 1e-9 * community.area
    assert result.in_target_share >= min_share
    assert all(c.reason for c in result.outside)


def test_shanghai_area_target(bund):
    target = Target.area_m2(20_000, 400_000)
    result = generate_cells(bund["community"], bund["roads"], bund["water"], bund["buildings"], target)
    check_real_result(result, bund["community"])
    assert 50 <= len(result.cells) <= 300
    assert any(c.water for c in result.cells)  # the Huangpu


def test_shanghai_building_target(bund):
    target = Target.buildings(20, 150)
    result = generate_cells(bund["community"], bund["roads"], bund["water"], bund["buildings"], target)
    # Below the minimum mostly where major roads bound a block and no block across is below it too.
    check_real_result(result, bund["community"], min_share=0.6)
    # Each building is counted once, in the cell holding most of its footprint.
    mostly_inside = [b for b in bund["buildings"] if bund["community"].intersection(b).area > 0.5 * b.area]
    assert sum(c.buildings for c in result.cells) == len(mostly_inside)
    owner = building_cells([c.polygon for c in result.cells], mostly_inside)
    assert [c.buildings for c in result.cells] == np.bincount(owner, minlength=len(result.cells)).tolist()
    water = [c for c in result.cells if c.status == "water"]
    assert water and max(c.area_m2 for c in water) > 1_000_000  # the Huangpu: one water cell


def test_shanghai_four_communities_each_tile(bund):
    minx, miny, maxx, maxy = bund["community_lonlat"].bounds
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    forward = Transformer.from_crs(4490, BUND_EPSG, always_xy=True)
    target = Target.area_m2(20_000, 200_000)
    for quarter in (
        box(minx, midy, midx, maxy),
        box(midx, midy, maxx, maxy),
        box(minx, miny, midx, midy),
        box(midx, miny, maxx, midy),
    ):
        community = shapely.transform(quarter, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1])))
        result = generate_cells(community, bund["roads"], bund["water"], None, target)
        check_real_result(result, community)


@pytest.fixture(scope="module")
def three(bund):
    """The three irregular communities of tests/factories_generate.py in EPSG:4550."""
    return bund["metric"]([polygon for _, polygon in THREE_COMMUNITIES.values()])


@pytest.mark.parametrize(
    "target, far_share", [(Target.buildings(10, 40), 0.2), (Target.area_m2(20_000, 200_000), 0.06)]
)
def test_shanghai_three_communities_follow_the_road_hierarchy(bund, three, target, far_share):
    """Issue 13's scenario: major roads run along cell edges, no strips between carriageways, compact cells."""
    total = far = 0.0
    applicable = ok = 0
    for community in three:
        result = generate_cells(community, bund["roads"], bund["water"], bund["buildings"], target)
        check_real_result(result, community, min_share=0.4)  # Lujiazui: towers, few footprints per block
        applicable += sum(c.status != "water" for c in result.cells)
        ok += result.in_target
        inside, beyond = major_road_inside(result.cells, [r.geom for r in bund["roads"] if r.major and not r.rail])
        total, far = total + inside, far + beyond
        assert carriageway_strips(result.cells, bund["roads"]) == []
        for cell in result.cells:
            if not cell.water and polsby_popper(cell.polygon) < MIN_COMPACTNESS:
                assert any(n.key == "generate.note.elongated" for n in cell.notes)
            if cell.status == "below":
                assert cell.reason.key.startswith("generate.reason.below")
            if any(n.key == "generate.note.straddles" for n in cell.notes):
                assert all(n.render("zh-CN") for n in cell.notes)
    assert far / total <= far_share  # before issue 13: 39.9 % and 8.6 %
    assert ok >= 0.75 * applicable


# ---------------------------------------------------------------------------------- database


def write_roads(tmp_path, lines_lonlat, name="roads.geojson", props=None):
    """Write lon/lat lines as a GeoJSON file (EPSG:4326, which GDAL assumes for GeoJSON)."""
    features = [
        {
            "type": "Feature",
            "properties": (props or {}),
            "geometry": {"type": "LineString", "coordinates": [list(p) for p in line]},
        }
        for line in lines_lonlat
    ]
    path = tmp_path / name
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path


def stored_cells(session, edition_id, community):
    rows = session.execute(
        select(BaseCell.code, BaseCell.geom)
        .where(BaseCell.edition_id == edition_id, BaseCell.community_code == community)
        .order_by(BaseCell.code)
    ).all()
    return [(code, to_shape(geom)) for code, geom in rows]


def geography_area(session, geom_sql) -> float:
    """Return the area in m² (on the ellipsoid) of a geometry SQL expression."""
    return session.scalar(select(func.ST_Area(func.Geography(geom_sql))))


def community_geom(code):
    return select(AdminUnit.geom).where(AdminUnit.code == code).scalar_subquery()


def test_generate_base_grid_writes_a_draft_edition_that_tiles_each_community(session, tmp_path):
    units = make_admin_units(session, communities=2, rows=10, cols=10)  # two ~1030 × 1110 m boxes
    mid_lat = Y0 + 5 * D
    roads = write_roads(
        tmp_path,
        [
            [(X0 - 0.001, mid_lat), (X0 + 20 * D + 0.001, mid_lat)],  # across both communities
            [(X0 + 5 * D, Y0 - 0.001), (X0 + 5 * D, Y0 + 10 * D + 0.001)],  # through the first one
        ],
    )
    report = generate_base_grid(
        session, roads_path=roads, target=Target.area_m2(100_000, 400_000), edition_name="gen-test"
    )
    edition = session.scalar(select(BaseGridEdition).where(BaseGridEdition.name == "gen-test"))
    assert edition.status == "draft" and report.edition_id == edition.id
    assert [c.code for c in report.communities] == [u.code for u in units]
    assert [c.cells for c in report.communities] == [4, 4]  # quadrants; halves of the second split in two
    assert report.in_target == 8 and report.cells == 8
    assert report.communities[0].epsg == 4547
    assert set(report.timings) >= {"read", "generate", "write", "total"}
    assert "gen-test" in report.text() and report.as_dict()["cells"] == 8

    for unit in units:
        cells = stored_cells(session, edition.id, unit.code)
        codes = [code for code, _ in cells]
        assert codes == [f"{unit.code}{i:03d}" for i in range(1, len(cells) + 1)]
        assert all(check_base_cell_code(code, community_code=unit.code) for code in codes)
        community = to_shape(unit.geom)
        polygons = [poly for _, poly in cells]
        assert_tiles(polygons, community, rel=0, abs_=1e-16)
        # In metres on the ellipsoid: the union covers the community and nothing overlaps.
        union = (
            select(func.ST_Union(BaseCell.geom))
            .where(BaseCell.edition_id == edition.id, BaseCell.community_code == unit.code)
            .scalar_subquery()
        )
        assert geography_area(session, func.ST_SymDifference(union, community_geom(unit.code))) < 0.01
        total = session.scalar(
            select(func.sum(func.ST_Area(func.Geography(BaseCell.geom)))).where(
                BaseCell.edition_id == edition.id, BaseCell.community_code == unit.code
            )
        )
        assert total == pytest.approx(geography_area(session, community_geom(unit.code)), abs=0.01)
        assert (
            session.scalar(
                select(func.bool_and(func.ST_IsValid(BaseCell.geom))).where(BaseCell.edition_id == edition.id)
            )
            is True
        )
        # 001 is the north-west cell, the last one the south-east cell.
        first, last = polygons[0].representative_point(), polygons[-1].representative_point()
        assert first.x < community.centroid.x < last.x and first.y > community.centroid.y > last.y
    # The first community's cells meet at the road crossing. (Within 1e-6°, 0.1 m: a two-vertex road
    # 2.3 km long is straight in the Gauss-Kruger plane, so it bows a few centimetres off the parallel.)
    cells = stored_cells(session, edition.id, units[0].code)
    crossing = Point(X0 + 5 * D, mid_lat)
    assert all(min(crossing.distance(Point(xy)) for xy in poly.exterior.coords) < 1e-6 for _, poly in cells)


def test_generated_vertices_are_rounded_and_shared_after_transformation(session, tmp_path):
    (unit,) = make_admin_units(session, communities=1, rows=10, cols=10)
    # Oblique roads: their crossings and every cut are new vertices with long decimals.
    roads = write_roads(
        tmp_path,
        [
            [(X0 - 0.0003, Y0 + 0.00123), (X0 + 10 * D + 0.0004, Y0 + 0.00877)],
            [(X0 + 0.00211, Y0 + 10 * D + 0.0002), (X0 + 0.00734, Y0 - 0.0003)],
        ],
    )
    generate_base_grid(session, roads_path=roads, target=Target.area_m2(40_000, 120_000), edition_name="round")
    edition_id = session.scalar(select(BaseGridEdition.id).where(BaseGridEdition.name == "round"))
    polygons = [poly for _, poly in stored_cells(session, edition_id, unit.code)]
    assert len(polygons) >= 9
    community = to_shape(unit.geom)
    coords = shapely.get_coordinates(polygons)
    on_boundary = shapely.intersects(community.boundary.buffer(1e-12), shapely.points(coords))
    for (lon, lat), boundary in zip(coords, on_boundary):
        if not boundary:
            assert lon == np.rint(lon / 1e-9) * 1e-9 and lat == np.rint(lat / 1e-9) * 1e-9
    assert_tiles(polygons, community, rel=0, abs_=1e-16)
    # PostGIS agrees: cells meet only along edges, and together they are the community.
    other = aliased(BaseCell)
    shared = func.ST_Intersection(BaseCell.geom, other.geom)
    overlap = session.scalar(
        select(func.coalesce(func.sum(func.ST_Area(func.Geography(shared))), 0)).where(
            BaseCell.edition_id == edition_id,
            other.edition_id == edition_id,
            BaseCell.id < other.id,
            func.ST_Intersects(BaseCell.geom, other.geom),
        )
    )
    assert overlap < 1e-4
    union = select(func.ST_Union(BaseCell.geom)).where(BaseCell.edition_id == edition_id).scalar_subquery()
    assert geography_area(session, func.ST_SymDifference(union, community_geom(unit.code))) < 0.01


def test_generate_base_grid_by_buildings_uses_points_and_footprints(session, tmp_path):
    (unit,) = make_admin_units(session, communities=1, rows=10, cols=10)
    roads = write_roads(tmp_path, [[(X0 + 5 * D, Y0 - 0.001), (X0 + 5 * D, Y0 + 10 * D + 0.001)]])
    n = 0
    for i in range(6):
        for j in range(5):  # 30 points in the west half
            n += 1
            session.add(
                Building(
                    code=f"B{n}", geom=from_shape(Point(X0 + (i + 0.5) * 0.0008, Y0 + (j + 0.5) * D * 2), srid=SRID)
                )
            )
    for i in range(3):
        for j in range(4):  # 12 footprints in the east half
            n += 1
            x, y = X0 + 5 * D + (i + 0.5) * 0.0015, Y0 + (j + 0.5) * 0.0024
            session.add(
                Building(
                    code=f"B{n}",
                    footprint=from_shape(
                        MultiPolygon([box(x - 0.0001, y - 0.0001, x + 0.0001, y + 0.0001)]), srid=SRID
                    ),
                )
            )
    session.add(Building(code="outside", geom=from_shape(Point(X0 - 0.01, Y0), srid=SRID)))
    session.flush()
    report = generate_base_grid(session, roads_path=roads, target=Target.buildings(10, 20), edition_name="bld")
    (community,) = report.communities
    assert community.buildings == 42
    assert community.cells == 3 and community.in_target == 3  # west 30 split in two, east 12
    location = func.coalesce(Building.geom, func.ST_Centroid(Building.footprint))
    counts = session.execute(
        select(BaseCell.code, func.count(Building.id))
        .join(Building, func.ST_Covers(BaseCell.geom, location))
        .where(BaseCell.edition_id == report.edition_id)
        .group_by(BaseCell.code)
        .order_by(BaseCell.code)
    ).all()
    assert sum(c for _, c in counts) == 42 and all(10 <= c <= 20 for _, c in counts)
    assert 12 in [c for _, c in counts]  # the east half, bounded by the road


def test_generate_base_grid_for_one_community_copies_the_others(session, tmp_path):
    published = make_base_grid(session, rows=10, cols=10, communities=2)
    first, second = f"{'440304001'}001", f"{'440304001'}002"
    roads = write_roads(tmp_path, [[(X0 - 0.001, Y0 + 5 * D), (X0 + 20 * D, Y0 + 5 * D)]])
    report = generate_base_grid(
        session, communities=[first], roads_path=roads, target=Target.area_m2(100_000, 800_000), edition_name="one"
    )
    assert [c.code for c in report.communities] == [first]
    assert report.copied_cells == 100
    assert len(stored_cells(session, report.edition_id, second)) == 100
    assert len(stored_cells(session, report.edition_id, first)) == 2
    assert session.get(BaseGridEdition, published.id).status == "published"


def test_generate_base_grid_refuses_bad_requests(session, tmp_path):
    make_admin_units(session, communities=1, rows=3, cols=3)
    roads = write_roads(tmp_path, [[(X0, Y0), (X0 + D, Y0 + D)]])
    with pytest.raises(NotFound, match="440304001999"):
        generate_base_grid(session, communities=["440304001999"], roads_path=roads, target=Target.area_m2(1, 100_000))
    with pytest.raises(ValidationError, match="nope.geojson does not exist"):
        generate_base_grid(session, roads_path=tmp_path / "nope.geojson", target=Target.area_m2(1, 100_000))
    with pytest.raises(ValidationError, match="needs buildings"):
        generate_base_grid(session, roads_path=roads, target=Target.buildings(5, 10))
    generate_base_grid(session, roads_path=roads, target=Target.area_m2(1, 100_000), edition_name="taken")
    with pytest.raises(Conflict, match="taken"):
        generate_base_grid(session, roads_path=roads, target=Target.area_m2(1, 100_000), edition_name="taken")
    (tmp_path / "bad.geojson").write_text("not json")
    with pytest.raises(ValidationError, match="bad.geojson"):
        generate_base_grid(session, roads_path=tmp_path / "bad.geojson", target=Target.area_m2(1, 100_000))


def test_generate_base_grid_on_the_shanghai_sample(session):
    """Two Shanghai communities in the database, roads and water from the OSM files."""
    import geopandas as gpd

    roads = gpd.read_file(BUND / "roads_lines.geojson")
    minx, miny, maxx, maxy = roads.total_bounds
    inset, midx = 0.0008, (minx + maxx) / 2

    def outline(*bounds):
        return from_shape(MultiPolygon([box(*bounds)]), srid=SRID)

    # Communities are boxes 80 m inside the sample's tiles: the roads are cut at the tile edges.
    session.add_all(
        [
            AdminUnit(code="310000", name="上海市", level="city", geom=outline(minx, miny, maxx, maxy)),
            AdminUnit(
                code="310101",
                name="黄浦区",
                level="district",
                parent_code="310000",
                geom=outline(minx, miny, maxx, maxy),
            ),
            AdminUnit(
                code="310101001",
                name="外滩街道",
                level="street",
                parent_code="310101",
                geom=outline(minx, miny, maxx, maxy),
            ),
            AdminUnit(
                code="310101001001",
                name="西社区",
                level="community",
                parent_code="310101001",
                geom=outline(minx + inset, miny + inset, midx, maxy - inset),
            ),
            AdminUnit(
                code="310101001002",
                name="东社区",
                level="community",
                parent_code="310101001",
                geom=outline(midx, miny + inset, maxx - inset, maxy - inset),
            ),
        ]
    )
    session.flush()
    report = generate_base_grid(
        session,
        roads_path=BUND / "roads_lines.geojson",
        water_path=[BUND / "water_polygons.geojson", BUND / "water_lines.geojson"],
        target=Target.area_m2(20_000, 400_000),
        edition_name="bund",
    )
    assert report.cells >= 50 and report.in_target >= 0.9 * report.cells
    for community in report.communities:
        assert community.epsg in (4549, 4550) and community.tiling_error_m2 < 0.01  # the sample straddles 121.5E
        assert all(p.reason for p in community.outside)
        unit = session.get(AdminUnit, community.code)
        polygons = [poly for _, poly in stored_cells(session, report.edition_id, community.code)]
        assert_tiles(polygons, to_shape(unit.geom), rel=0, abs_=1e-16)
        union = (
            select(func.ST_Union(BaseCell.geom))
            .where(BaseCell.edition_id == report.edition_id, BaseCell.community_code == community.code)
            .scalar_subquery()
        )
        assert geography_area(session, func.ST_SymDifference(union, community_geom(unit.code))) < 0.01
    assert sum(c.water_cells for c in report.communities) >= 2  # the Huangpu, in both communities
    json.dumps(report.as_dict(), ensure_ascii=False)
    # The two communities meet along the middle meridian without gaps or overlaps.
    whole = select(func.ST_Union(BaseCell.geom)).where(BaseCell.edition_id == report.edition_id).scalar_subquery()
    both = select(func.ST_Union(AdminUnit.geom)).where(AdminUnit.level == "community").scalar_subquery()
    assert geography_area(session, func.ST_SymDifference(whole, both)) < 0.01

    # With the footprints loaded as buildings, a building target (centroids of footprints).
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    session.add_all(
        [
            Building(code=f"osm-{i}", footprint=from_shape(MultiPolygon([g]), srid=SRID))
            for i, g in enumerate(footprints.geometry)
        ]
    )
    session.flush()
    by_buildings = generate_base_grid(
        session,
        roads_path=BUND / "roads_lines.geojson",
        water_path=[BUND / "water_polygons.geojson", BUND / "water_lines.geojson"],
        target=Target.buildings(20, 150),
        edition_name="bund-buildings",
    )
    loaded = sum(c.buildings for c in by_buildings.communities)
    assert 1000 < loaded <= len(footprints)  # those whose centroid lies in the two communities
    water_cells = sum(p.status == "water" for c in by_buildings.communities for p in c.outside)
    assert by_buildings.in_target >= 0.5 * (by_buildings.cells - water_cells)  # Lujiazui: few footprints per block
    for community in by_buildings.communities:
        assert all(p.reason for p in community.outside)
        unit = session.get(AdminUnit, community.code)
        polygons = [poly for _, poly in stored_cells(session, by_buildings.edition_id, community.code)]
        assert_tiles(polygons, to_shape(unit.geom), rel=0, abs_=1e-16)


def test_generator_counts_are_the_counts_after_publishing(session):
    """Three irregular Shanghai communities, OSM footprints loaded: generate, publish (assigns), compare."""
    import geopandas as gpd

    from gridkit.grids.editions import publish_edition
    from gridkit.grids.validate import validate_base_grid

    whole = shapely.union_all([p for _, p in THREE_COMMUNITIES.values()])
    session.add_all(
        [
            AdminUnit(code="310000", name="上海市", level="city", geom=from_shape(MultiPolygon([whole]), srid=SRID)),
            AdminUnit(
                code="310101",
                name="黄浦区",
                level="district",
                parent_code="310000",
                geom=from_shape(MultiPolygon([whole]), srid=SRID),
            ),
            AdminUnit(
                code="310101001",
                name="外滩街道",
                level="street",
                parent_code="310101",
                geom=from_shape(MultiPolygon([whole]), srid=SRID),
            ),
            *[
                AdminUnit(
                    code=code,
                    name=name,
                    level="community",
                    parent_code="310101001",
                    geom=from_shape(MultiPolygon([polygon]), srid=SRID),
                )
                for code, (name, polygon) in THREE_COMMUNITIES.items()
            ],
        ]
    )
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)
    session.add_all(
        [
            Building(code=f"osm-{i}", footprint=from_shape(MultiPolygon(list(shapely.get_parts(g))), srid=SRID))
            for i, g in enumerate(footprints.geometry)
            if whole.intersects(g)
        ]
    )
    session.flush()
    report = generate_base_grid(
        session,
        roads_path=BUND / "roads_lines.geojson",
        water_path=[BUND / "water_polygons.geojson", BUND / "water_lines.geojson"],
        target=Target.buildings(10, 40),
        edition_name="three",
    )
    edition = session.get(BaseGridEdition, report.edition_id)
    assert validate_base_grid(session, edition) == []
    publish_edition(session, edition)
    after = dict(
        session.execute(
            select(BaseCell.code, func.count(Building.id))
            .outerjoin(Building, Building.base_cell_id == BaseCell.id)
            .where(BaseCell.edition_id == edition.id)
            .group_by(BaseCell.code)
        ).all()
    )
    reported = {code: n for c in report.communities for code, n in c.counts.items()}
    assert reported == after
    # In target means in target after publishing.
    for community in report.communities:
        outside = {p.code for p in community.outside}
        for code in community.counts:
            if code not in outside:
                assert 10 <= after[code] <= 40
        assert all(p.reason.render("zh-CN") for p in community.outside)
    text = report.text("zh-CN")
    assert "草稿版本" in text and "栋建筑" in text
    # The rule in SQL (gridkit.rules.building_cell) agrees with assignment, building by building.
    from gridkit.rules import building_cell

    rule = building_cell(BaseCell, edition.id, Building.footprint, Building.geom)
    disagree = session.scalar(select(func.count(Building.id)).where(Building.base_cell_id.is_distinct_from(rule)))
    assert disagree == 0


# ---------------------------------------------------------------------------------- preview


def read_png(path):
    """Return the RGB pixels of a PNG written by preview (8-bit RGB, filter 0 on every row)."""
    import struct
    import zlib

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += data[pos + 8 : pos + 8 + length]
        pos += 12 + length
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, width * 3 + 1)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(height, width, 3)


def test_cli_generate_writes_a_preview_png_and_html(fresh_settings, tmp_path):
    """`basegrid generate --preview` draws cells over roads, water and buildings; bad suffixes are refused first."""
    from click.testing import CliRunner
    from shapely.geometry import mapping

    from gridkit.cli import main
    from gridkit.grids.generate.preview import COLOURS

    def run(*args, lang="en"):
        return CliRunner(env={"GRIDKIT_LANG": lang}).invoke(
            main, list(args), obj=fresh_settings, catch_exceptions=False
        )

    features = [
        ({"code": "310100", "name": "上海市"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101", "name": "黄浦区"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101001", "name": "外滩街道"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
        ({"code": "310101001001", "name": "外滩社区"}, box(121.4830, 31.2290, 121.4990, 31.2480)),
    ]
    units = tmp_path / "units.geojson"
    units.write_text(
        json.dumps(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": p, "geometry": mapping(g)} for p, g in features],
            }
        ),
        encoding="utf-8",
    )
    assert run("admin", "import", str(units), "--code-field", "code", "--name-field", "name").exit_code == 0
    args = [
        "basegrid",
        "generate",
        "--all",
        "--roads",
        str(BUND / "roads_lines.geojson"),
        "--water",
        str(BUND / "water_polygons.geojson"),
        "--target-area-m2",
        "20000-200000",
    ]
    bad = run(*args, "--preview", str(tmp_path / "cells.pdf"))
    assert bad.exit_code == 1 and "cells.pdf" in bad.output and ".png or .html" in bad.output
    result = run(*args, "--edition", "png", "--preview", str(tmp_path / "cells.png"), lang="zh-CN")
    assert result.exit_code == 0, result.output
    assert "预览已写入" in result.output and "草稿版本" in result.output
    pixels = read_png(tmp_path / "cells.png")
    assert pixels.shape[1] == 1600 and pixels.shape[0] > 1000  # the box is taller than wide
    colours = {tuple(c) for c in np.unique(pixels.reshape(-1, 3), axis=0)}
    assert {COLOURS["ok"], COLOURS["water"], COLOURS["major"], COLOURS["edge"]} <= colours
    html = run(*args, "--edition", "html", "--preview", str(tmp_path / "cells.html"), "--json")
    assert html.exit_code == 0, html.output
    page = (tmp_path / "cells.html").read_text(encoding="utf-8")
    data = json.loads(page.split("const data = ", 1)[1].split(", colours = ", 1)[0])
    report = json.loads(html.output)
    codes = sorted(f["properties"]["code"] for f in data["cells"]["features"])
    assert len(codes) == report["cells"] and codes[0] == "310101001001001"
    assert report["preview"].endswith("cells.html")
    marked = [f for f in data["cells"]["features"] if f["properties"]["status"] in ("below", "above")]
    assert all(f["properties"]["reason"] for f in marked)
    assert any(f["properties"]["major"] for f in data["roads"]["features"]) and data["water"]["features"]


def test_target_cells_layer_judges_a_draft_on_the_map(fresh_settings):
    """GET /api/basegrid/target-cells: a draft's cells with buildings by the building rule and their status."""
    from gridkit import db
    from web import create_app

    with db.transaction(fresh_settings) as session:
        edition = make_base_grid(session, rows=3, cols=3, status="draft")
        cells = stored_cells(session, edition.id, "440304001001")
        # Two buildings in the first cell (one by most of its footprint), none elsewhere.
        first = cells[0][1]
        x, y = first.centroid.x, first.centroid.y
        session.add_all(
            [
                Building(code="p", geom=from_shape(Point(x, y), srid=SRID)),
                Building(
                    code="f",
                    footprint=from_shape(
                        MultiPolygon([box(first.bounds[0] - 0.0001, y, first.bounds[0] + 0.0003, y + 0.0001)]),
                        srid=SRID,
                    ),
                ),
            ]
        )
        edition_id = edition.id
    client = create_app(fresh_settings).test_client()
    answer = client.get(f"/api/basegrid/target-cells?edition={edition_id}&target-buildings=2-40")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    features = {f["id"]: f["properties"] for f in answer.get_json()["features"]}
    assert len(features) == 9 and answer.get_json()["edition"]["status"] == "draft"
    assert features[cells[0][0]]["buildings"] == 2 and features[cells[0][0]]["status"] == "ok"
    assert {p["status"] for code, p in features.items() if code != cells[0][0]} == {"below"}
    by_area = client.get(f"/api/basegrid/target-cells?edition={edition_id}&target-area-m2=1-2000000").get_json()
    assert {f["properties"]["status"] for f in by_area["features"]} == {"ok"}
    missing = client.get(f"/api/basegrid/target-cells?edition={edition_id}")
    assert missing.status_code == 400 and missing.get_json()["code"] == "generate.target_missing"
