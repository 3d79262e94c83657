#!/usr/bin/env python
"""Benchmark of bulk point assignment: gridkit's engine against geopandas.sjoin and PostGIS.

    .venv/bin/python scripts/bench_assign.py                          # 10,000 cells; 1M and 5M points
    .venv/bin/python scripts/bench_assign.py --sizes 200000 --cells 2000

The city is built in a throwaway database: a private PostgreSQL cluster in a temporary directory
(as the tests do), or, when GRIDKIT_DATABASE_URL is set, that database inside one transaction
that is rolled back at the end (legal_entity is emptied and reindexed inside it, so run it on a
database nobody else uses). Nothing is ever committed.

The city: 10 × 10 square communities (their shared sides are axis-parallel lines), each tiled
by Voronoi cells of jittered seeds, codes handed out in random order. Points: uniform over the
city and a margin around it (about 1 % fall outside every cell), plus points placed on purpose
on cell vertices, on edge midpoints and exactly on the axis-parallel community sides, where
several cells cover a point and the smallest code must win. They are loaded as legal entities,
so `assign_subjects(session, ["entities"])`, what `gridkit assign` runs, does the real work.

For each size it measures:
- geopandas.sjoin(points, cells, predicate="within"): the join only; the points GeoDataFrame is
  built beforehand (its cost is printed apart). "within" misses points on cell boundaries.
- PostGIS: the ST_Covers join with its best plan (cells as the outer loop, GiST on the points),
  ties broken by DISTINCT ON … ORDER BY code; its result is the reference for agreement.
- gridkit compute: reading the cells (WKB) + building the index + locating every point: the
  computation `gridkit assign` runs, from the same in-memory coordinates as geopandas.
- gridkit assign end to end, first run (every entity changes cell) and a re-run (none does):
  reading the points from PostgreSQL, the computation, writing the changed cells back; with
  each part's seconds.
- PostGIS ST_Covers UPDATE, the same end-to-end job in SQL (1M always; 5M if time allows).
Peak memory is the client process's peak resident set size during the step minus its size
before (Linux VmHWM, reset through /proc/self/clear_refs); for PostGIS steps, the server
backend's, measured the same way when this user may.
The last line is `ratio_vs_geopandas=<float> agreement=<float>` for the largest size: the
geopandas.sjoin seconds over the gridkit compute seconds, and the fraction of points whose cell
after `assign_subjects` equals PostGIS ST_Covers' (points outside every cell included).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridkit import assign, db  # noqa: E402
from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER, decode_array  # noqa: E402
from gridkit.models import BaseGridEdition  # noqa: E402
from gridkit.spatial.pointindex import default_threads  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchkit import PeakRSS, insert_admin_units, rolled_back_session  # noqa: E402

LON0, LAT0 = 114.05, 22.53
CELL_DEG = 0.001  # ~100 m
BLOCKS = 10  # communities per side
STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", flush=True)


# -- the city and the points ------------------------------------------------------------------------


def _jittered(rng: random.Random, n: int, bounds) -> np.ndarray:
    minx, miny, maxx, maxy = bounds
    side = math.sqrt((maxx - minx) * (maxy - miny) / n)
    cols, rows = max(1, round((maxx - minx) / side)), max(1, round((maxy - miny) / side))
    dx, dy = (maxx - minx) / cols, (maxy - miny) / rows
    return np.array(
        [
            (minx + (c + 0.5 + rng.uniform(-0.4, 0.4)) * dx, miny + (r + 0.5 + rng.uniform(-0.4, 0.4)) * dy)
            for r in range(rows)
            for c in range(cols)
        ]
    )


def build_city(session: Session, n_cells: int, seed: int):
    """Insert admin units and a published edition of about n_cells cells; return (edition, cells, bounds)."""
    rng = random.Random(seed)
    side = math.sqrt(n_cells) * CELL_DEG
    step = side / BLOCKS
    # Community sides as exact multiples: neighbours share the very same doubles.
    xs = [LON0 + i * step for i in range(BLOCKS + 1)]
    ys = [LAT0 + j * step for j in range(BLOCKS + 1)]
    outline = box(xs[0], ys[0], xs[-1], ys[-1])
    communities = []
    for j in reversed(range(BLOCKS)):
        for i in range(BLOCKS):
            communities.append(box(xs[i], ys[j], xs[i + 1], ys[j + 1]))
    codes = insert_admin_units(session, outline, communities)
    edition = BaseGridEdition(name=f"bench-assign-{os.getpid()}", status="published", published_at=db_now(session))
    session.add(edition)
    session.flush()
    rows, cells = [], []
    per = n_cells // len(communities)
    for code, community in zip(codes, communities):
        seeds = _jittered(rng, per, community.bounds)
        parts = shapely.intersection(
            shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=community)), community
        )
        parts = [p for p in parts if p.geom_type == "Polygon" and not p.is_empty]
        order = list(range(len(parts)))
        rng.shuffle(order)  # codes unrelated to position: ties mean something
        for seq, k in enumerate(order, start=1):
            rows.append({"e": edition.id, "code": f"{code}{seq:03d}", "c": code, "wkb": parts[k].wkb})
            cells.append(parts[k])
    session.execute(
        text(
            "INSERT INTO base_cell (edition_id, code, community_code, geom) "
            "VALUES (:e, :code, :c, ST_GeomFromWKB(:wkb, 4490))"
        ),
        rows,
    )
    session.execute(text("ANALYZE base_cell"))
    return edition, cells, outline.bounds, (xs, ys)


def db_now(session: Session):
    return session.scalar(text("SELECT now()"))


def make_points(cells, bounds, lines, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """n points: ~2 % on purpose on vertices / edges / community sides, ~1 % outside, the rest uniform."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds
    xs, ys = lines
    coords = shapely.get_coordinates(shapely.get_exterior_ring(cells))
    ring_id = shapely.get_coordinates(shapely.get_exterior_ring(cells), return_index=True)[1]
    same = ring_id[:-1] == ring_id[1:]
    a, b = coords[:-1][same], coords[1:][same]
    special_x = [coords[:, 0], (a[:, 0] + b[:, 0]) / 2]
    special_y = [coords[:, 1], (a[:, 1] + b[:, 1]) / 2]
    k = max(1, n // 200)
    # Exactly on the axis-parallel community sides (and the outline).
    special_x += [rng.choice(xs, k), rng.uniform(minx, maxx, k)]
    special_y += [rng.uniform(miny, maxy, k), rng.choice(ys, k)]
    sx, sy = np.concatenate(special_x), np.concatenate(special_y)
    pick = rng.choice(len(sx), min(len(sx), n // 50), replace=False)
    sx, sy = sx[pick], sy[pick]
    margin = (maxx - minx) * 0.0025  # the band around the city is ~1 % of the area
    rest = n - len(sx)
    x = np.concatenate([sx, rng.uniform(minx - margin, maxx + margin, rest)])
    y = np.concatenate([sy, rng.uniform(miny - margin, maxy + margin, rest)])
    order = rng.permutation(n)
    return x[order], y[order], len(sx)


def load_points(session: Session, x: np.ndarray, y: np.ndarray) -> None:
    """Replace all legal entities by these points (ids 1..n); GiST and other indexes rebuilt after."""
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        cur.execute("TRUNCATE legal_entity CASCADE")
        # Bulk load without indexes, then build them: far faster than maintaining them row by row.
        cur.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'legal_entity'::regclass AND contype IN ('p', 'u')"
        )
        constraints = cur.fetchall()
        for name, _ in constraints:
            cur.execute(f'ALTER TABLE legal_entity DROP CONSTRAINT "{name}"')
        cur.execute("SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = 'legal_entity'")
        indexes = cur.fetchall()
        for name, _ in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("CREATE TEMP TABLE IF NOT EXISTS bench_points (id int, x float8, y float8)")
        cur.execute("TRUNCATE bench_points")
        rows = np.empty(
            len(x),
            dtype=[
                ("n", ">i2"),
                ("l0", ">i4"),
                ("id", ">i4"),
                ("l1", ">i4"),
                ("x", ">f8"),
                ("l2", ">i4"),
                ("y", ">f8"),
            ],
        )
        rows["n"], rows["l0"], rows["l1"], rows["l2"] = 3, 4, 8, 8
        rows["id"], rows["x"], rows["y"] = np.arange(1, len(x) + 1), x, y
        with cur.copy("COPY bench_points FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(COPY_HEADER)
            for s in range(0, len(rows), 1 << 20):
                copy.write(rows[s : s + (1 << 20)].tobytes())
            copy.write(COPY_TRAILER)
        cur.execute(
            "INSERT INTO legal_entity (id, credit_code, name, geom) "
            "SELECT id, '91990101' || lpad(id::text, 10, '0'), 'bench', ST_SetSRID(ST_MakePoint(x, y), 4490) "
            "FROM bench_points"
        )
        cur.execute("TRUNCATE bench_points")
        cur.execute("SET LOCAL maintenance_work_mem = '1GB'")
        for name, definition in constraints:
            cur.execute(f'ALTER TABLE legal_entity ADD CONSTRAINT "{name}" {definition}')
        for _, definition in indexes:
            cur.execute(definition)
        cur.execute("ANALYZE legal_entity")


def fetch_ids_cells(session: Session, sql: str, params=None) -> tuple[np.ndarray, np.ndarray]:
    """Run a query returning (id, cell) rows; return them as two int arrays (fast binary path)."""
    conn = session.connection().connection.driver_connection
    with conn.cursor(binary=True) as cur:
        cur.execute(
            f"SELECT array_send(array_agg(id)), array_send(array_agg(COALESCE(cell, 0))) FROM ({sql}) q", params
        )
        a, b = cur.fetchone()
    return decode_array(a, "i"), decode_array(b, "i")


# -- the measurements --------------------------------------------------------------------------------


@dataclass
class Row:
    size: int
    method: str
    seconds: float
    memory: float | None
    kind: str  # "compute" or "e2e"; ratios compare like with like
    note: str = ""


def timed(func, *args, pid="self", **kwargs):
    with PeakRSS(pid) as mem:
        started = time.perf_counter()
        result = func(*args, **kwargs)
        seconds = time.perf_counter() - started
    return result, seconds, mem.mb


POSTGIS_JOIN = (
    "SELECT DISTINCT ON (p.id) p.id, c.id AS cell "
    "FROM (SELECT id, code, geom FROM base_cell WHERE edition_id = {e} OFFSET 0) c "
    "CROSS JOIN LATERAL (SELECT p.id FROM legal_entity p WHERE ST_Covers(c.geom, p.geom)) p "
    "ORDER BY p.id, c.code"
)


def run_size(
    session: Session, edition, cells, bounds, lines, n: int, seed: int, args, budget_left, info_from_smaller: dict
) -> tuple[list[Row], dict]:
    """Measure every method for n points; return the table rows and the agreement figures."""
    rows: list[Row] = []
    info: dict = {}
    x, y, n_special = make_points(cells, bounds, lines, n, seed)
    progress(f"{n:,} points: {n_special:,} placed on vertices/edges/community sides; loading into legal_entity")
    _, seconds, _ = timed(load_points, session, x, y)
    progress(f"loaded and indexed in {seconds:.1f} s")
    backend = session.scalar(text("SELECT pg_backend_pid()"))
    within = _geopandas_join(session, edition, cells, x, y, rows)
    mine = _gridkit_compute(session, edition, x, y, rows)
    ref = _postgis_join(session, edition, n, backend, rows)
    info["agree_compute"] = float((mine == ref).mean())
    info["within_differs"] = int((within != ref).sum())
    info["outside"] = int((ref == 0).sum())
    info["on_boundary"] = int(((within == 0) & (ref != 0)).sum())
    info["agree_e2e"] = _assign_end_to_end(session, n, ref, rows)
    _postgis_update(session, edition, n, backend, rows, args, budget_left, info_from_smaller)
    session.execute(text("DROP TABLE IF EXISTS bench_ref"))
    return rows, info


def _geopandas_join(session: Session, edition, cells, x, y, rows: list[Row]) -> np.ndarray:
    """geopandas baseline (its points GeoDataFrame is made first, timed apart); return each point's cell id."""
    import geopandas as gpd

    n = len(x)
    # geopandas baseline (its points GeoDataFrame is made first, timed apart).
    cells_gdf = gpd.GeoDataFrame(
        {"code_rank": np.arange(len(cells))},
        geometry=shapely.from_wkb(
            session.scalars(
                text("SELECT ST_AsBinary(geom) FROM base_cell WHERE edition_id = :e ORDER BY code"), {"e": edition.id}
            ).all()
        ),
        crs=4490,
    )
    cell_ids = np.array(
        session.scalars(text("SELECT id FROM base_cell WHERE edition_id = :e ORDER BY code"), {"e": edition.id}).all()
    )
    points_gdf, make_s, _ = timed(lambda: gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4490))
    progress(f"geopandas: points GeoDataFrame built in {make_s:.1f} s (not counted); sjoin …")
    joined, gpd_s, gpd_mb = timed(gpd.sjoin, points_gdf, cells_gdf, predicate="within", how="inner")
    rows.append(Row(n, "geopandas.sjoin(predicate='within'), join only", gpd_s, gpd_mb, "compute", "baseline"))
    within = np.zeros(n, dtype=np.int64)
    jl = joined.index.to_numpy()
    jr = joined["code_rank"].to_numpy()
    order = np.lexsort((jr, jl))
    jl, jr = jl[order], jr[order]
    first = np.r_[True, jl[1:] != jl[:-1]] if len(jl) else np.zeros(0, bool)
    within[jl[first]] = cell_ids[jr[first]]
    del joined, points_gdf, cells_gdf, jl, jr, order
    progress(f"geopandas.sjoin: {gpd_s:.2f} s")
    return within


def _gridkit_compute(session: Session, edition, x, y, rows: list[Row]) -> np.ndarray:
    """gridkit compute, from the same coordinates; return each point's cell id."""
    n = len(x)

    def compute():
        index = assign.base_cell_index(session, edition)
        return index.cells_at(x, y)

    mine, gk_s, gk_mb = timed(compute)
    rows.append(
        Row(
            n,
            f"gridkit engine: read cells + build index + locate ({default_threads()} threads)",
            gk_s,
            gk_mb,
            "compute",
        )
    )
    progress(f"gridkit compute: {gk_s:.2f} s")
    return mine


def _postgis_join(session: Session, edition, n: int, backend, rows: list[Row]) -> np.ndarray:
    """The reference, into the temporary table bench_ref; return each point's cell id."""
    # PostGIS, best plan, ties by smallest code: the reference.
    conn = session.connection().connection.driver_connection
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + POSTGIS_JOIN.format(e=edition.id))
        plan = "\n".join(r[0] for r in cur.fetchall())
    inner = next((line.strip() for line in plan.splitlines() if "legal_entity" in line), "?")
    progress(f"PostGIS ST_Covers join (best plan; points by: {inner}) …")
    sql = f"CREATE TEMP TABLE bench_ref AS {POSTGIS_JOIN.format(e=edition.id)}"
    session.execute(text("DROP TABLE IF EXISTS bench_ref"))
    _, pg_s, pg_mb = timed(session.execute, text(sql), pid=backend)
    rows.append(
        Row(
            n,
            "PostGIS ST_Covers join, best plan (cells outer, GiST on points) + tie-break",
            pg_s,
            pg_mb,
            "compute",
            "reference",
        )
    )
    progress(f"PostGIS join: {pg_s:.2f} s")
    ref_ids, ref_cells = fetch_ids_cells(session, "SELECT id, cell FROM bench_ref")
    ref = np.zeros(n, dtype=np.int64)
    ref[ref_ids - 1] = ref_cells
    return ref


def _assign_end_to_end(session: Session, n: int, ref: np.ndarray, rows: list[Row]) -> float:
    """Run `assign_subjects` twice (first run, re-run), timing its parts; return the agreement of the first."""
    # gridkit assign end to end (what `gridkit assign` runs), first run then a re-run.
    parts: dict[str, float] = {}

    def clocked(name, func):
        def wrapper(*a, **k):
            t = time.perf_counter()
            try:
                return func(*a, **k)
            finally:
                parts[name] = parts.get(name, 0.0) + time.perf_counter() - t

        return wrapper

    originals = (
        assign.read_points,
        assign._Run.index,
        assign._update_by_id_range,
        assign._update_by_join,
        assign.BaseCellIndex.cells_at,
    )
    assign.read_points = clocked("read points", assign.read_points)
    # The index is built while the points are read (inside "read points"), from cells read before them.
    assign._Run.index = clocked("build index", assign._Run.index)
    assign.BaseCellIndex.cells_at = clocked("locate", assign.BaseCellIndex.cells_at)
    assign._update_by_id_range = clocked("UPDATE by id range", assign._update_by_id_range)
    assign._update_by_join = clocked("UPDATE by join", assign._update_by_join)
    savepoint = session.begin_nested()
    try:
        progress("gridkit assign end to end, first run …")
        first, e2e_s, e2e_mb = timed(assign.assign_subjects, session, ["entities"])
        breakdown = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
        rows.append(
            Row(
                n,
                "gridkit assign end to end, first run (all change)",
                e2e_s,
                e2e_mb,
                "e2e",
                f"{first['entities']['changed']:,} changed; {breakdown}",
            )
        )
        progress(f"first run: {e2e_s:.2f} s ({breakdown})")
        got_ids, got_cells = fetch_ids_cells(session, "SELECT id, base_cell_id AS cell FROM legal_entity")
        got = np.zeros(n, dtype=np.int64)
        got[got_ids - 1] = got_cells
        agreement = float((got == ref).mean())
        parts.clear()
        again, re_s, re_mb = timed(assign.assign_subjects, session, ["entities"])
        breakdown = ", ".join(f"{k} {v:.2f} s" for k, v in parts.items())
        rows.append(
            Row(
                n,
                "gridkit assign end to end, re-run (none change)",
                re_s,
                re_mb,
                "e2e",
                f"{again['entities']['changed']:,} changed; {breakdown}",
            )
        )
        progress(f"re-run: {re_s:.2f} s ({breakdown})")
    finally:
        (
            assign.read_points,
            assign._Run.index,
            assign._update_by_id_range,
            assign._update_by_join,
            assign.BaseCellIndex.cells_at,
        ) = originals
        savepoint.rollback()
    return agreement


def _postgis_update(
    session: Session, edition, n: int, backend, rows: list[Row], args, budget_left, info_from_smaller: dict
) -> None:
    """PostGIS doing the same job as an UPDATE (first run), if time allows."""
    # PostGIS doing the same job as an UPDATE (first run), if time allows.
    # Its time per row grows with n (the table outgrows shared_buffers; 5M took ~1.8× the 1M
    # rate here): run it only when the rest of the budget surely allows.
    expected = info_from_smaller.get("pg_update_per_point", 0) * n * 2.5
    if n <= 1_000_000 or expected < budget_left() or args.postgis_update == "always":
        savepoint = session.begin_nested()
        try:
            progress("PostGIS ST_Covers UPDATE (first run) …")
            update = text(
                f"UPDATE legal_entity e SET base_cell_id = r.cell "
                f"FROM ({POSTGIS_JOIN.format(e=edition.id)}) r "
                f"WHERE e.id = r.id AND e.base_cell_id IS DISTINCT FROM r.cell"
            )
            _, up_s, up_mb = timed(session.execute, update, pid=backend)
            rows.append(Row(n, "PostGIS ST_Covers UPDATE, best plan (first run)", up_s, up_mb, "e2e", "reference"))
            info_from_smaller["pg_update_per_point"] = up_s / n
            progress(f"PostGIS UPDATE: {up_s:.2f} s")
        finally:
            savepoint.rollback()
    else:
        progress(
            f"PostGIS UPDATE skipped for this size: ~{expected:.0f} s expected, {budget_left():.0f} s of "
            "the budget left (--postgis-update always runs it)"
        )


def print_table(rows: list[Row]) -> None:
    """Print rows with points/s and speed-ups (baseline seconds / these seconds)."""
    print()
    print(
        "speed-up = the baseline's seconds / this row's seconds; compute rows compare with the geopandas "
        "join and the PostGIS join, end-to-end rows with the PostGIS UPDATE."
    )
    head = (
        f"{'size':>9}  {'method':<78}  {'seconds':>8}  {'points/s':>11}  {'peak MB':>8}  "
        f"{'vs geopandas':>12}  {'vs PostGIS':>10}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        same = [x for x in rows if x.size == r.size]
        gpd_s = next((x.seconds for x in same if x.method.startswith("geopandas")), None)
        pg_join = next((x.seconds for x in same if x.method.startswith("PostGIS ST_Covers join")), None)
        pg_update = next((x.seconds for x in same if x.method.startswith("PostGIS ST_Covers UPDATE")), None)
        vs_gpd = f"{gpd_s / r.seconds:.2f}×" if gpd_s and r.kind == "compute" else "—"
        pg = pg_join if r.kind == "compute" else pg_update
        vs_pg = f"{pg / r.seconds:.2f}×" if pg else "—"
        mem = "n/a" if r.memory is None else f"{r.memory:,.0f}"
        print(
            f"{r.size:>9,}  {r.method:<78}  {r.seconds:>8.2f}  {r.size / r.seconds:>11,.0f}  {mem:>8}  "
            f"{vs_gpd:>12}  {vs_pg:>10}"
        )
        if r.note and r.note not in ("baseline", "reference"):
            print(f"{'':>11}  └ {r.note}")


def run(url: str, args) -> str:
    sizes = [int(s) for s in args.sizes.split(",")]
    deadline = time.perf_counter() + args.budget

    def budget_left() -> float:
        return deadline - time.perf_counter()

    with rolled_back_session(url) as session:
        progress(f"building a city of ~{args.cells:,} cells …")
        edition, cells, bounds, lines = build_city(session, args.cells, args.seed)
        progress(f"{len(cells):,} cells in {BLOCKS * BLOCKS} communities")
        all_rows, infos, carry = [], {}, {}
        for n in sizes:
            rows, info = run_size(session, edition, cells, bounds, lines, n, args.seed, args, budget_left, carry)
            all_rows += rows
            infos[n] = info
        print_table(all_rows)
        print()
        for n, info in infos.items():
            print(
                f"{n:>9,} points: agreement with PostGIS ST_Covers (smallest code on ties, outside = none): "
                f"engine compute {info['agree_compute']:.6f}, after gridkit assign {info['agree_e2e']:.6f}; "
                f"{info['outside']:,} points outside every cell; {info['on_boundary']:,} on a cell boundary "
                f"(no cell for 'within'); geopandas 'within' differs from covers for "
                f"{info['within_differs']:,}"
            )
        n = sizes[-1]
        gpd_s = next(r.seconds for r in all_rows if r.size == n and r.method.startswith("geopandas"))
        mine = next(r.seconds for r in all_rows if r.size == n and r.method.startswith("gridkit engine"))
        print(
            f"ratio_vs_geopandas is for {n:,} points: geopandas.sjoin join seconds / gridkit compute seconds "
            "(cells read + index build + locate; reading points and writing cells are in the "
            "end-to-end rows); "
            "agreement is that of the cells stored by gridkit assign"
        )
        return f"ratio_vs_geopandas={gpd_s / mine:.3f} agreement={infos[n]['agree_e2e']:.6f}"


def main(argv: list[str] | None = None) -> int:
    """Run on the database named by GRIDKIT_DATABASE_URL, else on a throwaway cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=10_000, help="about how many base cells (default 10000)")
    parser.add_argument("--sizes", default="1000000,5000000", help="point counts, comma-separated")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=5496, help="socket number of the throwaway cluster")
    parser.add_argument("--budget", type=float, default=480, help="seconds after which optional steps are skipped")
    parser.add_argument(
        "--postgis-update",
        choices=["auto", "always"],
        default="auto",
        help="run the PostGIS UPDATE for sizes above 1M always, or only if time allows",
    )
    args = parser.parse_args(argv)
    progress(f"{os.cpu_count()} CPUs, {default_threads()} usable; load average {os.getloadavg()[0]:.2f}")
    with db.bench_database(args.port) as (url, where):
        progress(f"database: {where}")
        last = run(url, args)
    progress("done")
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
