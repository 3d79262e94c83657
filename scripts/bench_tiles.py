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
- cache hit: the same tiles again (sent by web/fastpath.py without Flask or the database: see
  web/tiles.py for the staleness bound), target p95 ≤ 2 ms: one client, and 8 clients offering
  300 requests/s on a fixed schedule (open loop, latency from the scheduled send time); then 8
  clients flat out (closed loop: a throughput, its latency is queueing) and If-None-Match → 304;
- tile sizes. Latency is client-side on loopback: server time plus a local round trip. The
  clients are scripts/httpload.py (keep-alive raw sockets in worker processes).
"""

from __future__ import annotations

import argparse
import http.client
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import httpload  # noqa: E402
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


def raw_tile_ms(session: Session, layer: str, xyz, extra: dict) -> float:
    """The raw ST_AsMVT query of gridkit.tiles for one tile, in process (the baseline)."""
    params = {**tiles.tile_params(*xyz), **extra}
    t0 = time.perf_counter()
    session.execute(text(tiles.raw_tile_sql(layer)), params).scalar()
    return (time.perf_counter() - t0) * 1000


def etags_of(port: int, urls: list[str]) -> dict:
    """Return {url: ETag} of the tiles (one request each)."""
    etags = {}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for u in urls:
        conn.request("GET", u)
        response = conn.getresponse()
        response.read()
        etags[u] = response.getheader("ETag")
    conn.close()
    return etags


def bench_tiles(server: Server, engine, seconds: float = 5, clients: int = 8, rate: float = 300) -> list:
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
    urls = [f"/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{q}" if q else "") for layer, (z, x, y), q in cases]
    cpu = server.cpu_seconds()
    misses = httpload.sequential(server.port, urls)  # one client: same conditions as raw
    miss_cpu = (server.cpu_seconds() - cpu) * 1000 / len(urls)
    hits_one = httpload.sequential(server.port, urls * 3)  # one client: the per-request floor
    assert all(s == 200 for _, s, _ in misses + hits_one)
    cpu = server.cpu_seconds()
    hits = httpload.drive(server.port, urls, seconds, clients, rate=rate)
    hit_cpu = (server.cpu_seconds() - cpu) * 1000 / max(1, len(hits.latencies))
    cpu = server.cpu_seconds()
    flat_out = httpload.drive(server.port, urls, seconds, clients)
    flat_cpu = (server.cpu_seconds() - cpu) * 1000 / max(1, len(flat_out.latencies))
    etags = etags_of(server.port, urls)
    not_modified = httpload.drive(server.port, [(u, {"If-None-Match": etags[u]}) for u in urls], seconds, clients)
    if hits.errors or flat_out.errors or not_modified.errors:
        raise SystemExit(f"tiles: {(hits.errors + flat_out.errors + not_modified.errors)[:5]}")
    miss_ms, one_ms = [m[0] for m in misses], [h[0] for h in hits_one]
    sizes = [m[2] for m in misses]
    base = pct(raw, 95)
    per_tile = [m / r for m, r in zip(miss_ms, raw, strict=True)]
    return [
        Row(f"tiles: raw ST_AsMVT in process ({len(raw)} tiles, baseline)", raw, ratio=1.0),
        Row(
            f"tiles: server, cache miss (1 client), {miss_cpu:.2f} ms CPU",
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
            f"tiles: hit, {rate:.0f}/s offered ({clients} cl.), {hit_cpu:.2f} ms CPU",
            hits.latencies,
            hits.rate,
            ratio=pct(hits.latencies, 95) / base,
            target="p95 ≤ 2 ms",
            ok=pct(hits.latencies, 95) <= 2 and hits.rate >= 0.95 * rate,
        ),
        # Closed loop: every client sends again as soon as answered, so latency is queueing
        # (clients ÷ throughput); the row shows how many hits/s the one server process serves.
        Row(f"tiles: hit, flat out ({clients} cl.), {flat_cpu:.2f} ms CPU", flat_out.latencies, flat_out.rate),
        Row(
            f"tiles: server, If-None-Match → 304, flat out ({clients} clients)",
            not_modified.latencies,
            not_modified.rate,
        ),
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
