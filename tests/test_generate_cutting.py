"""Base cell generation as pure geometry (no database): cutting, targets, numbering, storage, input layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from gridkit.errors import ValidationError
from gridkit.grids.generate import (
    MIN_COMPACTNESS,
    Road,
    Target,
    building_cells,
    generate_cells,
    number_cells,
    polsby_popper,
    road_features,
    road_lines,
    to_storage,
    water_features,
)
from gridkit.grids.generate.measures import carriageway_strips, min_compactness
from gridkit.grids.numbering import cell_order, order_west_east_north_south
from gridkit.standard.codes import PROFILES
from tests.factories_generate import CROSS, SQUARE, assert_tiles, grid_points

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
