#!/usr/bin/env python
"""Benchmarks of the base grid services on a synthetic city of irregular cells.

    .venv/bin/python scripts/bench_basegrid.py                 # 10,000 cells
    .venv/bin/python scripts/bench_basegrid.py --cells 2000 --seed 7

The city is built in a throwaway database: a private PostgreSQL cluster in a temporary directory
(as the tests do), or, when GRIDKIT_DATABASE_URL is set, that database inside one transaction
that is rolled back at the end (its admin units then count too: validation is city-wide). Nothing
is ever committed.

The city: 100 convex communities (Voronoi cells of jittered seeds) on a fictitious county 990101,
each tiled by Voronoi cells of its own seeds, so cells are irregular and share edges only up to
floating-point noise, like real data. A few problems are injected (overlap, gap, sliver, a cell
crossing its community, a community without cells, a bad code).

Each benchmark is a function in BENCHMARKS; it gets the Context and returns rows of the table.
Each runs in a savepoint that is rolled back, so benchmarks do not see each other's changes.
"""

from __future__ import annotations

import argparse
import sys as _sys
from pathlib import Path as _Path

_sys.path.insert(0, str(_Path(__file__).resolve().parent))
import math
import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely
import shapely.affinity
from pyproj import Transformer
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchkit import insert_admin_units, rolled_back_session  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.coords import gauss_kruger_epsg  # noqa: E402
from gridkit.grids.problems import AREA_TOLERANCE_M2, SLIVER_M2  # noqa: E402
from gridkit.grids.renumber import renumber_base_cells  # noqa: E402
from gridkit.grids.validate import validate_base_grid  # noqa: E402
from gridkit.models import BaseGridEdition  # noqa: E402

LON0, LAT0 = 114.05, 22.53  # south-west corner of the city (Shenzhen's latitude)
CELL_DEG = 0.001  # about 100 m: the typical cell
NOISE_DEG2 = AREA_TOLERANCE_M2 / 1.25e10  # a square degree is at most ~1.23e10 m²


@dataclass
class City:
    """What build_city made: the edition, the cells and the problems put in on purpose."""

    edition: BaseGridEdition
    cells: int
    communities: list[str]
    injected: list[str] = field(default_factory=list)


@dataclass
class Context:
    """Everything a benchmark needs."""

    session: Session
    city: City
    args: argparse.Namespace


@dataclass
class Row:
    """One line of the table; `baseline` names the row this one is compared with."""

    name: str
    cells: int
    seconds: float
    problems: int | None = None
    baseline: str | None = None
    note: str = ""


def timed(func, *args, **kwargs):
    """Return (result, seconds) of one call."""
    started = time.perf_counter()
    result = func(*args, **kwargs)
    return result, time.perf_counter() - started


# -- the synthetic city ----------------------------------------------------------------------------


def _jittered_seeds(rng: random.Random, n: int, bounds) -> np.ndarray:
    """About n points on a jittered square lattice inside bounds (minx, miny, maxx, maxy)."""
    minx, miny, maxx, maxy = bounds
    side = math.sqrt((maxx - minx) * (maxy - miny) / n)
    cols, rows = max(1, round((maxx - minx) / side)), max(1, round((maxy - miny) / side))
    dx, dy = (maxx - minx) / cols, (maxy - miny) / rows
    return np.array(
        [
            (minx + (c + 0.5 + rng.uniform(-0.35, 0.35)) * dx, miny + (r + 0.5 + rng.uniform(-0.35, 0.35)) * dy)
            for r in range(rows)
            for c in range(cols)
        ]
    )


def _voronoi_in(polygon, seeds: np.ndarray) -> list:
    """Voronoi cells of the seeds clipped to the (convex) polygon, one polygon each."""
    cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=polygon)
    clipped = shapely.intersection(shapely.get_parts(cells), polygon)
    return [c for c in clipped if c.geom_type == "Polygon" and not c.is_empty]


def build_city(session: Session, n_cells: int, seed: int) -> City:
    """Insert admin units and a draft edition of about n_cells irregular cells; inject problems."""
    rng = random.Random(seed)
    side = math.sqrt(n_cells) * CELL_DEG
    outline = box(LON0, LAT0, LON0 + side, LAT0 + side)
    communities = _voronoi_in(outline, _jittered_seeds(rng, 100, outline.bounds))
    communities.sort(key=lambda g: (-round(g.centroid.y, 6), g.centroid.x))
    codes = insert_admin_units(session, outline, communities)
    edition = BaseGridEdition(name=f"bench-{os.getpid()}-{seed}", status="draft")
    session.add(edition)
    session.flush()

    per_community: dict[str, list] = {}
    for code, community in zip(codes, communities):
        share = community.area / outline.area * n_cells
        # Seeds are laid over the bounding box and kept inside: as many as the box's share.
        seeds = _jittered_seeds(
            rng, max(1, round(share * box(*community.bounds).area / community.area)), community.bounds
        )
        seeds = seeds[shapely.contains_xy(community, seeds[:, 0], seeds[:, 1])]
        per_community[code] = _voronoi_in(community, seeds)

    injected = _inject_problems(rng, per_community, dict(zip(codes, communities)))
    rows = []
    for code, cells in per_community.items():
        order = list(range(len(cells)))
        rng.shuffle(order)  # codes in no particular order: renumbering has work to do
        for seq, i in enumerate(order, start=1):
            rows.append({"e": edition.id, "code": f"{code}{seq:03d}", "c": code, "wkt": cells[i].wkt})
    bad_code = rows[len(rows) // 2]
    bad_code["code"] = bad_code["c"] + "00"  # 14 digits in the 15-digit profile
    injected.append(f"code_format: {bad_code['code']}")
    session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) "
            "VALUES (:e, :code, :c, ST_GeomFromText(:wkt, 4490))"
        ),
        rows,
    )
    session.execute(text("ANALYZE base_cell"))
    session.execute(text("ANALYZE admin_unit"))
    return City(edition, len(rows), codes, injected)


def _inject_problems(rng: random.Random, per_community: dict, communities: dict) -> list[str]:
    """Spoil a few communities' cells in place; return what was done."""
    codes = sorted(per_community)
    picks = rng.sample(codes, 5)
    done = []

    def interior(code):  # a cell not touching its community boundary
        boundary = communities[code].boundary
        return next(i for i, c in enumerate(per_community[code]) if c.distance(boundary) > CELL_DEG / 2)

    code = picks[0]  # overlap: grow a cell ~5 m
    i = interior(code)
    per_community[code][i] = per_community[code][i].buffer(5e-5, join_style="mitre")
    done.append(f"overlap: a grown cell in {code}")
    code = picks[1]  # gap: shrink a cell by 20 %
    i = interior(code)
    per_community[code][i] = shapely.affinity.scale(per_community[code][i], 0.8, 0.8)
    done.append(f"gap: a shrunk cell in {code}")
    code = picks[2]  # sliver: cut a 0.2 m strip
    i = interior(code)
    cell = per_community[code][i]
    minx, miny, _, maxy = cell.bounds
    strip = cell.intersection(box(minx, miny, minx + 2e-6, maxy))  # the westmost 0.2 m
    per_community[code][i] = cell.difference(strip)
    per_community[code].append(strip)
    done.append(f"sliver: a thin strip in {code}")
    code = picks[3]  # crossing: push an edge cell out
    community = communities[code]
    i = min(range(len(per_community[code])), key=lambda k: per_community[code][k].centroid.distance(community.boundary))
    cell = per_community[code][i]
    dx, dy = cell.centroid.x - community.centroid.x, cell.centroid.y - community.centroid.y
    step = 3e-4 / math.hypot(dx, dy)  # about 30 m outwards
    per_community[code][i] = shapely.affinity.translate(cell, dx * step, dy * step)
    done.append(f"crosses_community (and overlaps, gaps): a shifted cell in {code}")
    code = picks[4]  # uncovered community
    per_community[code] = []
    done.append(f"uncovered_community: {code}")
    for code in per_community:
        per_community[code] = [g for g in per_community[code] if g.geom_type == "Polygon" and not g.is_empty]
    return done


# -- benchmarks ---------------------------------------------------------------------------------------


def baseline_validate(session: Session, edition_id: int, sliver_m2: float = SLIVER_M2) -> int:
    """The naive approach in Python: load everything, shapely + STRtree; return the problem count.

    Overlaps, gaps per community, cells outside their community and slivers. As in PostGIS, the
    overlay runs on the stored lon/lat and only its results are projected to the Gauss-Kruger
    zone to be measured: projecting first bends long edges differently from the short ones
    along them and invents overlaps. No code checks (they cost nothing next to these).
    """
    cells = session.execute(
        text("SELECT code, community_code, ST_AsBinary(geom) FROM base_cell WHERE edition_id = :e ORDER BY code"),
        {"e": edition_id},
    ).all()
    units = session.execute(
        text("SELECT code, ST_AsBinary(geom) FROM admin_unit WHERE level = 'community' ORDER BY code")
    ).all()
    geoms = shapely.from_wkb([bytes(c[2]) for c in cells])
    unit_geoms = shapely.from_wkb([bytes(u[1]) for u in units])
    lon = float(shapely.centroid(shapely.union_all(shapely.envelope(unit_geoms))).x)
    to_gk = Transformer.from_crs(4490, gauss_kruger_epsg(lon), always_xy=True)

    def m2(g):
        # Pieces thinner than noise are 0: projecting their nearly collinear vertices would bend
        # them into areas that are not there.
        projected = shapely.transform(g, lambda xy: np.column_stack(to_gk.transform(xy[:, 0], xy[:, 1])))
        return np.where(shapely.area(g) > NOISE_DEG2, shapely.area(projected), 0.0)

    problems = 0
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    problems += int((m2(shapely.intersection(geoms[left], geoms[right])) > AREA_TOLERANCE_M2).sum())
    by_unit: dict[str, list[int]] = {}
    for i, c in enumerate(cells):
        by_unit.setdefault(c[1], []).append(i)
    unit_index = {u[0]: k for k, u in enumerate(units)}
    for code, k in unit_index.items():
        if code not in by_unit:
            problems += 1  # uncovered community
            continue
        near = tree.query(unit_geoms[k], predicate="intersects")
        gaps = shapely.get_parts(shapely.difference(unit_geoms[k], shapely.union_all(geoms[near])))
        problems += int((m2(gaps) > AREA_TOLERANCE_M2).sum())
    own = unit_geoms[[unit_index[c[1]] for c in cells]]
    problems += int((m2(shapely.difference(geoms, own)) > AREA_TOLERANCE_M2).sum())
    problems += int((m2(geoms) < sliver_m2).sum())
    return problems


def bench_validate(ctx: Context) -> list[Row]:
    """validate_base_grid against the naive Python baseline, on the same cells."""
    edition = ctx.city.edition
    problems, seconds = timed(validate_base_grid, ctx.session, edition)
    base_problems, base_seconds = timed(baseline_validate, ctx.session, edition.id)
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p.type] = kinds.get(p.type, 0) + 1
    return [
        Row(
            "validate: shapely + STRtree in Python (baseline)",
            ctx.city.cells,
            base_seconds,
            base_problems,
            note="no code checks",
        ),
        Row(
            "validate_base_grid (PostGIS)",
            ctx.city.cells,
            seconds,
            len(problems),
            baseline="validate: shapely + STRtree in Python (baseline)",
            note=", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
        ),
    ]


def bench_renumber(ctx: Context) -> list[Row]:
    """renumber_base_cells on the city, whose codes were handed out in random order."""
    changes, seconds = timed(renumber_base_cells, ctx.session, ctx.city.edition)
    return [Row("renumber_base_cells", ctx.city.cells, seconds, note=f"{len(changes)} codes changed")]


def bench_snap(ctx: Context) -> list[Row]:
    """snap_together (the import's reprojection-noise step) on the city's cells and communities.

    Baseline: the naive step, one shapely.snap per cell against its neighbours' and community's
    boundaries, every cell (snap_together first finds, in bulk, the cells that could change).
    """
    from gridkit.grids.tolerance import DEFAULT_TOLERANCE_M, LocalPlane, snap_together

    rows = ctx.session.execute(
        text("""
        SELECT ST_AsBinary(b.geom) AS cell, c.code, ST_AsBinary(c.geom) AS community
        FROM base_cell b JOIN admin_unit c ON c.code = b.community_code
        WHERE b.edition_id = :e AND ST_IsValid(b.geom) ORDER BY b.code"""),
        {"e": ctx.city.edition.id},
    ).all()
    communities: dict[str, object] = {}
    cells = [shapely.from_wkb(bytes(r.cell)) for r in rows]
    parents = [communities.setdefault(r.code, shapely.from_wkb(bytes(r.community))) for r in rows]
    (_, changed), seconds = timed(snap_together, cells, parents)

    def naive():
        plane = LocalPlane.around(cells)
        local = plane.to_metres(np.array(cells, dtype=object))
        tree = shapely.STRtree(local)
        boundaries = {id(p): shapely.boundary(plane.to_metres(p)) for p in communities.values()}
        for i, geom in enumerate(local):
            near = tree.query(geom, predicate="dwithin", distance=DEFAULT_TOLERANCE_M)
            refs = [shapely.boundary(local[j]) for j in near if j != i] + [boundaries[id(parents[i])]]
            shapely.snap(geom, shapely.union_all(refs), DEFAULT_TOLERANCE_M)

    _, naive_seconds = timed(naive)
    base = "snap: shapely.snap of every cell (baseline)"
    return [
        Row(base, len(cells), naive_seconds),
        Row(
            "snap_together (bulk check, then snap)",
            len(cells),
            seconds,
            baseline=base,
            note=f"{len(changed)} cells changed (tolerance {DEFAULT_TOLERANCE_M * 100:g} cm)",
        ),
    ]


# ---------------------------------------------------------------------------------------------------
# THE LIST OF BENCHMARKS. Add one by writing a function `bench_x(ctx: Context) -> list[Row]` above
# and appending it here; e.g. generation of cells for ../shared/data/shanghai-bund-osm (issue 3,
# part 4) goes here, with its own data loading inside the function.
# ---------------------------------------------------------------------------------------------------
def bench_generate_shanghai(ctx: Context) -> list[Row]:
    """Generation of cells along the real roads of ../shared/data/shanghai-bund-osm.

    scripts/bench_generate.py has more scenarios.
    """
    import bench_generate

    from gridkit.grids.generate import Target, generate_cells

    data = bench_generate.load()
    target = Target.area_m2(20_000, 400_000)

    def generate():
        return [
            generate_cells(c, data["roads"], data["water"], data["buildings"], target, major_roads=data["major"])
            for c in data["whole"]
        ]

    results, seconds = timed(generate)
    _, poly_seconds = timed(
        lambda: [bench_generate.polygonize_only(c, data["roads"], data["water"]) for c in data["whole"]]
    )
    cells = sum(len(r.cells) for r in results)
    outside = sum(len(r.outside) for r in results)
    base = "generate: polygonize along roads only (baseline)"
    return [
        Row(base, cells, poly_seconds, note="faces, no target"),
        Row(
            "generate_cells, Shanghai Bund, 20k–400k m²",
            cells,
            seconds,
            outside,
            baseline=base,
            note=f"{cells - outside} of {cells} cells within target",
        ),
    ]


BENCHMARKS = [bench_validate, bench_renumber, bench_snap, bench_generate_shanghai]


def print_table(rows: list[Row]) -> None:
    """Print the rows as a fixed-width table; ratio = seconds / the baseline row's seconds."""
    seconds = {r.name: r.seconds for r in rows}
    width = max(len(r.name) for r in rows)
    print(f"\n{'benchmark':<{width}}  {'cells':>7}  {'seconds':>8}  {'ratio':>7}  {'problems':>8}  note")
    print("-" * (width + 50))
    for r in rows:
        ratio = (
            f"{r.seconds / seconds[r.baseline]:.2f}×"
            if r.baseline in seconds
            else "1.00×"
            if any(x.baseline == r.name for x in rows)
            else "—"
        )
        problems = "" if r.problems is None else str(r.problems)
        print(f"{r.name:<{width}}  {r.cells:>7,}  {r.seconds:>8.3f}  {ratio:>7}  {problems:>8}  {r.note}")


def run(url: str, args: argparse.Namespace) -> None:
    """Build the city and run every benchmark inside one transaction that is rolled back."""
    with rolled_back_session(url) as session:
        city, seconds = timed(build_city, session, args.cells, args.seed)
        print(
            f"built {city.cells:,} cells in {len(city.communities)} communities in {seconds:.1f} s; "
            "injected: " + "; ".join(city.injected)
        )
        rows = []
        for bench in BENCHMARKS:
            with session.begin_nested() as savepoint:
                rows += bench(Context(session, city, args))
                savepoint.rollback()
        print_table(rows)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks on the database named by GRIDKIT_DATABASE_URL, else on a throwaway cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000, help="about how many base cells (default 10000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the city")
    parser.add_argument("--port", type=int, default=5497, help="socket number of the throwaway cluster")
    args = parser.parse_args(argv)
    if args.cells < 2000:
        # Problems are injected into cells away from community edges: communities need a few rows.
        parser.error("--cells must be at least 2000")
    with db.bench_database(args.port) as (url, where):
        print(f"database: {where}")
        run(url, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
