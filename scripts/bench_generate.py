#!/usr/bin/env python
"""Time base cell generation on the Shanghai Bund OSM sample and compare it with two baselines.

    .venv/bin/python scripts/bench_generate.py [--repeat 3]

The sample (../shared/data/shanghai-bund-osm, © OpenStreetMap contributors, ODbL) has no admin
polygons, so the communities are boxes drawn in lon/lat 80 m inside the sample's tiles: the whole
box as one community, and the box in 2 × 2 quarters. Work happens in EPSG:4550 (CGCS2000
Gauss-Kruger, central meridian 123E), as generate_base_grid does. Baselines, timed in the same run
on the same communities: a plain square grid clipped to the community (cell side √ of the middle
of the area target; 316 m for building targets), and the first step of generation alone (noding +
polygonize of the roads and water). Reading the files is timed separately; the database is not
used (tests/test_generate.py runs the same sample through generate_base_grid).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import box

from gridkit.grids.generate import Target, generate_cells, road_lines, water_features

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "shanghai-bund-osm"
EPSG = 4550
INSET_DEG = 0.0008


def load():
    """Return the communities (metric), roads, major roads, water and building centroids (EPSG:4550)."""
    roads = gpd.read_file(DATA / "roads_lines.geojson").to_crs(4490)
    water = [gpd.read_file(DATA / f"water_{kind}.geojson").to_crs(4490) for kind in ("polygons", "lines")]
    buildings = gpd.read_file(DATA / "buildings_polygons.geojson").to_crs(4490)
    forward = Transformer.from_crs(4490, EPSG, always_xy=True)

    def metric(geoms):
        geoms = np.asarray(list(geoms), dtype=object)
        return list(shapely.transform(geoms, lambda c: np.column_stack(forward.transform(c[:, 0], c[:, 1]))))

    minx, miny, maxx, maxy = roads.total_bounds
    minx, miny, maxx, maxy = minx + INSET_DEG, miny + INSET_DEG, maxx - INSET_DEG, maxy - INSET_DEG
    midx, midy = (minx + maxx) / 2, (miny + maxy) / 2
    quarters = [box(minx, midy, midx, maxy), box(midx, midy, maxx, maxy),
                box(minx, miny, midx, midy), box(midx, miny, maxx, midy)]
    return {
        "whole": metric([box(minx, miny, maxx, maxy)]),
        "quarters": metric(quarters),
        "roads": metric(road_lines(roads)),
        "major": metric(road_lines(roads, major=True)),
        "water": metric([g for frame in water for g in water_features(frame)]),
        "buildings": [g.centroid for g in metric(buildings.geometry)],
    }


def square_grid(community, side: float) -> list:
    """Baseline: squares of `side` metres clipped to the community."""
    minx, miny, maxx, maxy = community.bounds
    xs = np.arange(minx, maxx, side)
    ys = np.arange(miny, maxy, side)
    x, y = np.meshgrid(xs, ys)
    squares = shapely.box(x.ravel(), y.ravel(), x.ravel() + side, y.ravel() + side)
    clipped = shapely.intersection(squares, community)
    return [c for c in clipped if not c.is_empty]


def polygonize_only(community, roads, water) -> list:
    """Baseline: the first step of generation alone (node community boundary, roads, water; polygonize)."""
    lines = [community.boundary, *roads, *(w.boundary if w.geom_type.endswith("Polygon") else w for w in water)]
    clip = community.buffer(1.0)
    lines = [shapely.intersection(g, clip) for g in lines]
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(shapely.union_all(lines))))
    return list(faces[shapely.contains(community, shapely.point_on_surface(faces))])


def best_of(repeat: int, func):
    """Return (result, best wall time in seconds) over `repeat` runs."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
    return result, min(times)


def main(argv=None) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"The Shanghai sample is missing: expected it at {DATA}", file=sys.stderr)
        return 1

    started = time.perf_counter()
    data = load()
    print(f"Read and reprojected the sample in {time.perf_counter() - started:.2f} s: {len(data['roads'])} cutting "
          f"roads ({len(data['major'])} major), {len(data['water'])} water features, "
          f"{len(data['buildings'])} buildings; whole box {data['whole'][0].area / 1e6:.2f} km².")

    scenarios = [
        ("whole box, area 20k–400k m²", data["whole"], Target.area_m2(20_000, 400_000)),
        ("whole box, area 5k–50k m²", data["whole"], Target.area_m2(5_000, 50_000)),
        ("whole box, 20–150 buildings", data["whole"], Target.buildings(20, 150)),
        ("whole box, 10–40 buildings", data["whole"], Target.buildings(10, 40)),
        ("4 quarters, area 20k–200k m²", data["quarters"], Target.area_m2(20_000, 200_000)),
    ]
    header = (f"{'scenario':<30} {'cells':>6} {'in target':>9} {'time s':>8} {'cells/s':>9} "
              f"{'grid s':>8} {'× grid':>7} {'polygonize s':>12} {'× polyg.':>8}")
    print()
    print(header)
    print("-" * len(header))
    for name, communities, target in scenarios:
        def generate():
            return [generate_cells(c, data["roads"], data["water"], data["buildings"], target,
                                   major_roads=data["major"]) for c in communities]

        results, seconds = best_of(args.repeat, generate)
        side = (((target.min + target.max) / 2) if target.measure == "area" else 100_000) ** 0.5
        _, grid_seconds = best_of(args.repeat, lambda: [square_grid(c, side) for c in communities])
        _, poly_seconds = best_of(args.repeat, lambda: [polygonize_only(c, data["roads"], data["water"])
                                                        for c in communities])
        cells = sum(len(r.cells) for r in results)
        applicable = [c for r in results for c in r.cells if c.status != "water"]
        share = sum(c.status == "ok" for c in applicable) / max(len(applicable), 1)
        tiling = max(r.tiling_error_m2 for r in results)
        assert tiling <= 1e-9 * sum(c.area for c in communities), f"tiling error {tiling} m²"
        print(f"{name:<30} {cells:>6} {share:>8.0%} {seconds:>8.3f} {cells / seconds:>9.0f} "
              f"{grid_seconds:>8.4f} {seconds / grid_seconds:>7.0f} {poly_seconds:>12.4f} "
              f"{seconds / poly_seconds:>8.1f}")
        outside = [c for r in results for c in r.outside if c.status != "water"]
        for reason in sorted({c.reason for c in outside}):
            print(f"    {sum(c.reason == reason for c in outside)} × {reason}")
    print()
    print("× grid / × polyg.: generation time divided by the baseline's time on the same communities.")
    print("in target: share of cells the target applies to (water cells under a building target excluded).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
