"""Incremental cutting: a cut round splits only the faces its lines touch, and everything kept stays exact.

After every cut round the generator's faces, adjacency and building parts must equal what a full
computation over all faces gives, untouched faces keep their very geometry, and the cells tile the
community as one valid coverage.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, Polygon, box

from gridkit.grids.generate import Road, Target, generate_cells, road_features, water_features
from gridkit.grids.generate.buildings import building_parts
from gridkit.grids.generate.cutting import _Generator
from gridkit.grids.generate.geometry import LineIndex, face_adjacency, split_faces
from tests.conftest import SHARED_DATA
from tests.factories_generate import THREE_COMMUNITIES

BUND = SHARED_DATA / "shanghai-bund-osm"
EPSG = 4550


def rows(*arrays) -> set:
    return set(zip(*(np.round(np.asarray(a, dtype=float), 6).tolist() for a in arrays)))


def check_state(gen) -> None:
    """Assert that the kept state equals a computation from scratch over the current faces."""
    i, j, length, major, (pair, line) = face_adjacency(gen.faces, gen.major)
    assert rows(gen.adj_i, gen.adj_j, gen.adj_len, gen.adj_major) == rows(i, j, length, major)
    kept_lines = {(int(gen.adj_i[p]), int(gen.adj_j[p]), int(k)) for p, k in zip(*gen.adj_lines)}
    assert kept_lines == {(int(i[p]), int(j[p]), int(k)) for p, k in zip(pair, line)}
    assert np.allclose(gen.face_area, shapely.area(gen.faces))
    assert np.allclose(gen.face_perimeter, shapely.length(gen.faces))
    if gen.target.measure == "buildings":
        b, f, part = building_parts(gen.faces, gen.buildings, valid=True)
        assert rows(gen.part_b, gen.part_f, gen.part_area) == rows(b, f, part)
    union = shapely.coverage_union_all(gen.faces)
    assert abs(union.symmetric_difference(gen.community).area) < 1e-6
    assert bool(shapely.coverage_is_valid(gen.faces))


class Checked(_Generator):
    """The generator, checked after every cut round; it also records which faces each round kept."""

    def _cut_faces(self, segments):
        before = list(self.faces)
        parent = super()._cut_faces(segments)
        kept = sum(1 for k, p in enumerate(parent) if k < len(before) and self.faces[k] is before[p])
        self.rounds_seen = getattr(self, "rounds_seen", []) + [(len(before), kept, len(self.faces))]
        check_state(self)
        return parent


def test_a_cut_splits_only_the_faces_it_touches():
    square = box(0, 0, 1000, 1000)
    cross = [LineString([(500, -10), (500, 1010)]), LineString([(-10, 500), (1010, 500)])]
    gen = _Generator(square, [Road(g) for g in cross], [], None, Target.area_m2(1, 10**7), 10_000, 8.0)
    assert len(gen.faces) == 4
    before = list(gen.faces)
    # A cut across the north-east quarter only, overshooting it by a centimetre at both ends.
    parent = gen._cut_faces([LineString([(499.99, 750), (1000.01, 750)])])
    assert len(gen.faces) == 5
    # The two southern quarters are the very same geometries; the north-west one, which the
    # overshoot touches, is made again with the new vertex on the edge it shares with the cut quarter.
    untouched = [k for k in range(len(gen.faces)) if gen.faces[k] is before[parent[k]]]
    assert sorted(gen.faces[k].bounds[1] for k in untouched) == [0.0, 0.0]
    assert sorted(np.round(gen.face_area).tolist()) == [125_000, 125_000, 250_000, 250_000, 250_000]
    check_state(gen)
    # The quarter west of the cut gained a vertex at (500, 750) on its shared edge, as its neighbours did.
    west = next(f for f in gen.faces if f.bounds == (0.0, 500.0, 500.0, 1000.0))
    assert (500.0, 750.0) in list(west.exterior.coords)


def test_split_faces_drops_enclosed_holes_and_dangles():
    ring = [box(0, 0, 30, 10), box(0, 20, 30, 30), box(0, 10, 10, 20), box(20, 10, 30, 20)]  # a hole in the middle
    pieces, face = split_faces(np.asarray(ring, dtype=object), [LineString([(5, -1), (5, 31)])])
    assert round(sum(p.area for p in pieces)) == sum(round(r.area) for r in ring)
    assert sorted(face.tolist()) == [0, 0, 1, 1, 2, 2, 3]
    assert not any(p.equals(box(10, 10, 20, 20)) for p in pieces)


def test_line_index_finds_each_line_once():
    index = LineIndex([LineString([(0, 0), (10, 0), (20, 0)]), LineString([(0, 5), (20, 5)])])
    point, line = index.near(shapely.points([(10, 0), (5, 5), (5, 2)]), 1e-3)
    assert sorted(zip(point.tolist(), line.tolist())) == [(0, 0), (1, 1)]


@pytest.fixture(scope="module")
def bund():
    import geopandas as gpd

    if not BUND.exists():
        pytest.fail(f"The Shanghai sample is missing: expected it at {BUND}")
    roads = gpd.read_file(BUND / "roads_lines.geojson").to_crs(4490)
    water = [gpd.read_file(BUND / f"water_{kind}.geojson").to_crs(4490) for kind in ("polygons", "lines")]
    footprints = gpd.read_file(BUND / "buildings_polygons.geojson").to_crs(4490)

    def metric(geoms):
        return list(gpd.GeoSeries(list(geoms), crs=4490).to_crs(EPSG))

    features = road_features(roads)
    return {
        "communities": metric(p for _, p in THREE_COMMUNITIES.values()),
        "roads": [Road(g, r.major, r.name, r.ref, r.rail) for r, g in zip(features, metric(r.geom for r in features))],
        "water": metric([g for frame in water for g in water_features(frame)]),
        "buildings": metric(footprints.geometry),
    }


@pytest.mark.parametrize("target", [Target.buildings(10, 40), Target.area_m2(20_000, 200_000)], ids=["bldg", "area"])
def test_every_cut_round_on_the_shanghai_sample_keeps_the_state_exact(bund, target):
    rounds = 0
    for community in bund["communities"]:
        gen = Checked(community, bund["roads"], bund["water"], bund["buildings"], target, 10_000, 8.0)
        gen.run(30)
        for faces_before, kept, faces_after in getattr(gen, "rounds_seen", []):
            rounds += 1
            # Most faces are left alone by a round: only those the cut lines touch are split.
            assert kept >= faces_before - 12 and faces_after > kept
        result = gen.result()
        assert result.tiling_error_m2 < 1e-6 and result.overlap_m2 < 1e-6
        assert all(isinstance(c.polygon, Polygon) for c in result.cells)
    assert rounds >= 2


def test_many_rounds_of_cuts_tile_exactly():
    """A square with a road grid cut down to small cells: many rounds, each splitting a few faces."""
    lines = [LineString([(x, -10), (x, 2010)]) for x in (400, 1100, 1500)]
    lines += [LineString([(-10, y), (2010, y)]) for y in (700, 1300)]
    result = generate_cells(box(0, 0, 2000, 2000), lines, None, None, Target.area_m2(20_000, 60_000))
    assert result.rounds >= 4 and result.splits >= 40
    assert result.tiling_error_m2 < 1e-6 and result.overlap_m2 < 1e-6
    assert bool(shapely.coverage_is_valid([c.polygon for c in result.cells]))
    assert all(c.status == "ok" for c in result.cells)
