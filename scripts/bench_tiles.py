#!/usr/bin/env python
"""Benchmark of vector tiles through the real server (waitress, a subprocess) on loopback, with
concurrent clients.

    .venv/bin/python scripts/bench_tiles.py                       # 10,000 cells, 100,000 residents
    .venv/bin/python scripts/bench_tiles.py --residents 5000000   # the full-size database

(scripts/bench_web.py runs the same measurements with the home page, whois and pages.)

The city of scripts/bench_workgrid.py (10,000 base cells of ~100 m in 100 communities, three
departments with published work grids, coordinators, residents) plus 20,000 building points is
committed into a throwaway private cluster under /tmp (never into GRIDKIT_DATABASE_URL's
database: this benchmark commits), served as `gridkit serve` serves (waitress, 8 threads).

Measured in the same run, for every tile of admin-units, base-cells (z 13-15) and work-cells
(z 13-14) over the city:
- baseline: the raw ST_AsMVT query (gridkit.tiles' SQL and parameters), in process on its own
  connection, after one warm-up pass so that neither side pays for the first read;
- cache miss: the first server request of each tile (1 client: the same conditions as the
  baseline) — target p95 ≤ 1.5× the baseline's p95;
- cache hit: the same tiles again, 1 client and 8 clients — target p95 ≤ 2 ms (no database:
  see web/tiles.py for the staleness bound); If-None-Match → 304 under 8 clients;
- tile sizes. Latency is client-side on loopback: server time plus a local round trip.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import requests  # noqa: E402
from bench_web import Row, Server, pct, print_table  # noqa: E402
from bench_workgrid import CELL, DEPTS, SIDE, X0, Y0, build  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gridkit import db, tiles  # noqa: E402
from gridkit.colouring import work_cell_colours  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def tile_xy(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    return int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def city_tiles(z: int) -> list[tuple[int, int, int]]:
    span = SIDE * CELL
    x0, y1 = tile_xy(X0, Y0, z)
    x1, y0 = tile_xy(X0 + span, Y0 + span, z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def add_buildings(session: Session, n: int = 20_000) -> None:
    session.execute(
        text(f"""
        INSERT INTO building (code, floors, geom)
        SELECT 'B' || i, 1 + i % 30,
               ST_SetSRID(ST_MakePoint({X0} + random() * {SIDE * CELL}, {Y0} + random() * {SIDE * CELL}), 4490)
        FROM generate_series(1, :n) i"""),
        {"n": n},
    )


_local = threading.local()


def http() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def timed_get(url: str, headers: dict | None = None) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    response = http().get(url, headers=headers or {})
    body = response.content
    return (time.perf_counter() - t0) * 1000, response.status_code, len(body)


def concurrent(urls: list[str], clients: int, headers=None) -> list[tuple[float, int, int]]:
    with ThreadPoolExecutor(clients) as pool:
        return list(pool.map(lambda u: timed_get(u, headers), urls))


def raw_tile_ms(session: Session, layer: str, xyz, extra: dict) -> float:
    """The raw ST_AsMVT query of gridkit.tiles for one tile, in process (the baseline)."""
    params = {**tiles.tile_params(*xyz), **extra}
    t0 = time.perf_counter()
    session.execute(text(tiles.raw_tile_sql(layer)), params).scalar()
    return (time.perf_counter() - t0) * 1000


def bench_tiles(server: Server, engine) -> list:
    """Return the result rows (bench_web.Row) of the tiles of the city on `server`."""
    with Session(engine) as session:
        version = session.execute(
            text("SELECT id FROM work_grid_version WHERE dept_code = :d AND status = 'published'"), {"d": DEPTS[0]}
        ).scalar()
        edition = session.execute(text("SELECT id FROM base_grid_edition WHERE status = 'published'")).scalar()
        extra = {
            "admin-units": {},
            "base-cells": {"edition": edition},
            "work-cells": tiles.palette_params(version, work_cell_colours(session, version)),
        }
        cases = (
            [("admin-units", t, None) for z in (13, 14) for t in city_tiles(z)]
            + [("base-cells", t, None) for z in (13, 14, 15) for t in city_tiles(z)]
            + [("work-cells", t, f"dept={DEPTS[0]}") for z in (13, 14) for t in city_tiles(z)]
        )
        for layer, xyz, _ in cases:  # warm the database's buffers
            raw_tile_ms(session, layer, xyz, extra[layer])
        raw = [raw_tile_ms(session, layer, xyz, extra[layer]) for layer, xyz, _ in cases]
    urls = [f"{server.url}/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{q}" if q else "") for layer, (z, x, y), q in cases]
    misses = [timed_get(u) for u in urls]  # one client: same conditions as raw
    hits_one = [timed_get(u) for u in urls * 3]  # one client: the per-request floor
    hits = concurrent(urls * 20, 8)
    etags = {u: http().get(u).headers["ETag"] for u in urls}
    with ThreadPoolExecutor(8) as pool:
        not_modified = list(pool.map(lambda u: timed_get(u, {"If-None-Match": etags[u]}), urls * 20))
    assert all(s == 200 for _, s, _ in misses + hits + hits_one) and all(s == 304 for _, s, _ in not_modified)
    miss_ms, hit_ms, nm_ms, one_ms = (
        [m[0] for m in misses],
        [h[0] for h in hits],
        [n[0] for n in not_modified],
        [h[0] for h in hits_one],
    )
    sizes = [m[2] for m in misses]
    base = pct(raw, 95)
    per_tile = [m / r for m, r in zip(miss_ms, raw, strict=True)]
    return [
        Row(f"tiles: raw ST_AsMVT in process ({len(raw)} tiles, baseline)", raw, ratio=1.0),
        Row(
            "tiles: server, cache miss (1 client)",
            miss_ms,
            size=int(statistics.median(sizes)),
            ratio=pct(miss_ms, 95) / base,
            target="p95 ≤ 1.5× raw p95",
            ok=pct(miss_ms, 95) <= 1.5 * base,
        ),
        Row("tiles: cache miss ÷ raw, per tile (median)", None, ratio=statistics.median(per_tile)),
        Row(
            f"tiles: server, cache hit (1 client, {len(one_ms)} req)",
            one_ms,
            ratio=pct(one_ms, 95) / base,
            target="p95 ≤ 2 ms",
            ok=pct(one_ms, 95) <= 2,
        ),
        Row(
            f"tiles: server, cache hit (8 clients, {len(hit_ms)} req)",
            hit_ms,
            ratio=pct(hit_ms, 95) / base,
            target="p95 ≤ 2 ms",
            ok=pct(hit_ms, 95) <= 2,
        ),
        Row("tiles: server, If-None-Match → 304 (8 clients)", nm_ms, ratio=pct(nm_ms, 95) / base),
        Row(f"tiles: largest tile (bytes), of {len(urls)}", None, size=max(sizes)),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Tiles hold no residents: they only make the database as big as the real one.
    parser.add_argument("--residents", type=int, default=100_000)
    args = parser.parse_args(argv)
    os.environ.pop("GRIDKIT_DATABASE_URL", None)  # this benchmark commits: a throwaway cluster only
    with db.bench_database(5496) as (url, where):
        log(f"database: {where}")
        engine = db.make_engine(url)
        t0 = time.perf_counter()
        with Session(engine) as session, session.begin():
            build(session, args.residents)
            add_buildings(session)
        log(
            f"built 10,000 base cells, 3 work grids, {args.residents:,} residents, 20,000 buildings "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        with Server(url) as server:
            rows = bench_tiles(server, engine)
        engine.dispose()
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
