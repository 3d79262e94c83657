#!/usr/bin/env python
"""Time base cell generation on the Shanghai Bund OSM sample against the old generator; measure the cells.

    .venv/bin/python scripts/bench_generate.py [--repeat 3] [--scenario three|whole|quarters ...]

The sample (../shared/data/shanghai-bund-osm, © OpenStreetMap contributors, ODbL) has no admin
polygons. Communities: three irregular ones drawn for the test (tests/factories_generate.py), the
whole sample box 80 m inside its tiles, and that box in 2 × 2 quarters. Work happens in EPSG:4550
(CGCS2000 Gauss-Kruger, central meridian 123E), as generate_base_grid does; buildings are the OSM
footprints. Baselines timed in the same run on the same communities: the old generator (before
issue 13: no road hierarchy, no carriageways, buildings as points; the file
gridkit/grids/generate.py of commit OLD_COMMIT, read from the repository's history), a square
grid clipped to the community, and the first step of generation alone (noding + polygonize).
Speed target: generation within 2× the old generator's time (× old ≤ 2).

Measures per scenario (gridkit.grids.generate.measures), on roads of class primary, secondary,
tertiary, trunk (and motorway, links), tunnels excluded:
- in target: share of cells the target applies to that meet it, counted by the building rule
  (largest part of the footprint: the count after publishing);
- major ≥30 m in: share of major-road length lying farther than 30 m from every cell edge;
- cells ≥50 m: cells holding at least 50 m of major road more than 5 m inside them;
- strips: cells lying between two carriageways of one road;
- min PP: the lowest Polsby-Popper score of a land cell; PP<0.15: land cells below 0.15, and how
  many of them carry no explanation (must be 0).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import box

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gridkit.grids.generate import (  # noqa: E402
    MIN_COMPACTNESS,
    Road,
    Target,
    building_cells,
    generate_cells,
    polsby_popper,
    road_features,
    water_features,
)
from gridkit.grids.generate.measures import carriageway_strips, cells_holding_major, major_road_inside  # noqa: E402
from tests.factories_generate import THREE_COMMUNITIES  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "shanghai-bund-osm"
# The last commit with the old generator (one module, gridkit/grids/generate.py).
OLD_COMMIT = "62005a7"
EPSG = 4550
INSET_DEG = 0.0008


def load():
    """Return communities (metric), roads (Road), major road lines for measures, water, footprints (EPSG:4550)."""
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
    quarters = [
        box(minx, midy, midx, maxy),
        box(midx, midy, maxx, maxy),
        box(minx, miny, midx, midy),
        box(midx, miny, maxx, midy),
    ]
    features = road_features(roads)
    road_list = [Road(g, r.major, r.name, r.ref, r.rail) for r, g in zip(features, metric(r.geom for r in features))]
    return {
        "three": metric(p for _, p in THREE_COMMUNITIES.values()),
        "whole": metric([box(minx, miny, maxx, maxy)]),
        "quarters": metric(quarters),
        "roads": road_list,
        "major": [r.geom for r in road_list if r.major and not r.rail],
        "water": metric([g for frame in water for g in water_features(frame)]),
        "buildings": metric(buildings.geometry),
    }


def generate_new(community, data, target):
    """Generate with today's algorithm (road hierarchy, carriageways, footprints by the building rule)."""
    return generate_cells(community, data["roads"], data["water"], data["buildings"], target)


def load_old_generator():
    """Return the old generator's module, read from the repository's history (git show OLD_COMMIT:...)."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD_COMMIT}:gridkit/grids/generate.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="bench_generate_")) / "old_generate.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_generate", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["old_generate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def old_inputs(data) -> dict:
    """Return the old generator's inputs: roads as lines (majors also apart), buildings as interior points."""
    return {
        "roads": [r.geom for r in data["roads"]],
        "major": [r.geom for r in data["roads"] if r.major],
        "points": list(shapely.point_on_surface(np.asarray(data["buildings"], dtype=object))),
    }


def generate_old(old, community, data, inputs, target):
    """Generate with the old generator (as it was before issue 13)."""
    old_target = old.Target(target.measure, target.min, target.max)
    return old.generate_cells(
        community, inputs["roads"], data["water"], inputs["points"], old_target, major_roads=inputs["major"]
    )


def square_grid(community, side: float) -> list:
    """Baseline: squares of `side` metres clipped to the community."""
    minx, miny, maxx, maxy = community.bounds
    x, y = np.meshgrid(np.arange(minx, maxx, side), np.arange(miny, maxy, side))
    squares = shapely.box(x.ravel(), y.ravel(), x.ravel() + side, y.ravel() + side)
    clipped = shapely.intersection(squares, community)
    return [c for c in clipped if not c.is_empty]


def polygonize_only(community, roads, water) -> list:
    """Baseline: the first step of generation alone (node community boundary, roads, water; polygonize)."""
    lines = [
        community.boundary,
        *(r.geom for r in roads),
        *(w.boundary if w.geom_type.endswith("Polygon") else w for w in water),
    ]
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


def best_of_pair(repeat: int, first, second):
    """Return (first's result, its best wall and CPU seconds, second's result, its best wall and CPU seconds).

    The two run in turns, so each run of one meets about the same load of the machine as the run of
    the other; CPU seconds (this process only) are what a busy machine disturbs least. The garbage
    collector is run before each run, so neither pays for the other's garbage.
    """
    times: tuple[list, list] = ([], [])
    results = [None, None]
    for _ in range(repeat):
        for k, func in enumerate((first, second)):
            gc.collect()  # each run starts with no garbage of the one before (a full collection inside is rarer)
            wall, cpu = time.perf_counter(), time.process_time()
            results[k] = func()
            times[k].append((time.perf_counter() - wall, time.process_time() - cpu))
    best = [(min(w for w, _ in t), min(c for _, c in t)) for t in times]
    return results[0], best[0], results[1], best[1]


def measure(results, communities, data, target) -> dict:
    """Return the measures of one scenario's results (see the module docstring)."""
    cells = [c for r in results for c in r.cells]
    applicable = 0
    ok = 0
    for result, community in zip(results, communities):
        # Counted again by the building rule, whatever the generator counted (footprints mostly inside).
        inside = [b for b in data["buildings"] if community.intersection(b).area >= 0.5 * b.area]
        owner = building_cells([c.polygon for c in result.cells], inside)
        counts = np.bincount(owner[owner >= 0], minlength=len(result.cells))
        for cell, n in zip(result.cells, counts):
            if cell.status == "water":
                continue
            applicable += 1
            size = n if target.measure == "buildings" else cell.area_m2
            ok += target.min <= size <= target.max
    total, far = 0.0, 0.0
    for result in results:
        t, f = major_road_inside(result.cells, data["major"])
        total, far = total + t, far + f
    land = [c for c in cells if not c.water]
    low = [c for c in land if polsby_popper(c.polygon) < MIN_COMPACTNESS]
    return {
        "cells": len(cells),
        "in_target": ok / max(applicable, 1),
        "major_far": far / total if total else 0.0,
        "holding": sum(cells_holding_major(r.cells, data["major"]) for r in results),
        "strips": sum(len(carriageway_strips(r.cells, data["roads"])) for r in results),
        "min_pp": min((polsby_popper(c.polygon) for c in land), default=1.0),
        "low_pp": len(low),
        "unexplained": sum(not getattr(c, "notes", None) for c in low),
    }


SCENARIOS = [
    ("3 communities, 10–40 bldg", "three", Target.buildings(10, 40)),
    ("3 communities, 20k–200k m²", "three", Target.area_m2(20_000, 200_000)),
    ("whole box, 20–150 bldg", "whole", Target.buildings(20, 150)),
    ("whole box, area 20k–400k m²", "whole", Target.area_m2(20_000, 400_000)),
    ("4 quarters, 20k–200k m²", "quarters", Target.area_m2(20_000, 200_000)),
]


def main(argv=None, generate=generate_new) -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    parser.add_argument(
        "--scenario",
        action="append",
        choices=sorted({key for _, key, _ in SCENARIOS}),
        help="only the scenarios on these communities (repeatable; default all)",
    )
    args = parser.parse_args(argv)
    if not DATA.exists():
        print(f"The Shanghai sample is missing: expected it at {DATA}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    data = load()
    print(
        f"Read and reprojected the sample in {time.perf_counter() - started:.2f} s: {len(data['roads'])} cutting "
        f"roads ({sum(r.major for r in data['roads'])} major), {len(data['water'])} water features, "
        f"{len(data['buildings'])} building footprints."
    )
    try:
        old = load_old_generator()
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"The old generator could not be read from git ({OLD_COMMIT}): {exc}", file=sys.stderr)
        return 1
    inputs = old_inputs(data)
    header = (
        f"{'scenario':<28} {'cells':>5} {'in target':>9} {'major ≥30m in':>13} {'min PP':>6} {'time s':>7} "
        f"{'old s':>6} {'× old':>5} {'× CPU':>5} {'old in tgt':>10} {'old ≥30m':>8} {'old PP':>6} "
        f"{'× polyg.':>8} {'× grid':>7} {'cells ≥50m':>10} {'strips':>6} {'PP<0.15':>7} {'unexpl.':>7}"
    )
    print()
    print(header)
    print("-" * len(header))
    worst = 0.0
    for name, key, target in SCENARIOS:
        if args.scenario and key not in args.scenario:
            continue
        communities = data[key]
        results, (seconds, cpu), old_results, (old_seconds, old_cpu) = best_of_pair(
            args.repeat,
            lambda cs=communities, t=target: [generate(c, data, t) for c in cs],
            lambda cs=communities, t=target: [generate_old(old, c, data, inputs, t) for c in cs],
        )
        worst = max(worst, cpu / old_cpu)
        side = (((target.min + target.max) / 2) if target.measure == "area" else 100_000) ** 0.5
        _, grid_seconds = best_of(args.repeat, lambda cs=communities, s=side: [square_grid(c, s) for c in cs])
        _, poly_seconds = best_of(
            args.repeat, lambda cs=communities: [polygonize_only(c, data["roads"], data["water"]) for c in cs]
        )
        tiling = max(r.tiling_error_m2 for r in results)
        assert tiling <= 1e-9 * sum(c.area for c in communities), f"tiling error {tiling} m²"
        m = measure(results, communities, data, target)
        o = measure(old_results, communities, data, target)
        print(
            f"{name:<28} {m['cells']:>5} {m['in_target']:>8.0%} {m['major_far']:>12.1%} {m['min_pp']:>6.3f} "
            f"{seconds:>7.3f} {old_seconds:>6.3f} {seconds / old_seconds:>5.2f} {cpu / old_cpu:>5.2f} "
            f"{o['in_target']:>9.0%} {o['major_far']:>7.1%} {o['min_pp']:>6.3f} "
            f"{seconds / poly_seconds:>8.1f} {seconds / grid_seconds:>7.0f} "
            f"{m['holding']:>10} {m['strips']:>6} {m['low_pp']:>7} {m['unexplained']:>7}"
        )
    print()
    print("× old: generation time divided by the old generator's time on the same communities (target ≤ 2);")
    print("× CPU: the same with the CPU time of this process (less disturbed by other work on the machine).")
    print("× polyg. / × grid: generation time divided by the baseline's time on the same communities.")
    print("in target: by the building rule (the count after publishing); water cells excluded; old …: the")
    print("old generator's cells measured the same way.")
    verdict = "within" if worst <= 2 else "ABOVE"
    print(f"Slowest ratio to the old generator (CPU): {worst:.2f}× ({verdict} the 2× target).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
