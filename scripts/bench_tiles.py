#!/usr/bin/env python
"""Benchmark of vector tiles through the real server (waitress) on loopback, with concurrent clients.

    .venv/bin/python scripts/bench_tiles.py                    # 10,000 cells, 100,000 residents
    .venv/bin/python scripts/bench_tiles.py --residents 5000000

(/api/whois at 300 requests/s and the home page are measured by scripts/bench_web.py.)

The city of scripts/bench_workgrid.py (10,000 base cells of ~100 m in 100 communities, three
departments with published work grids, coordinators, residents) plus 20,000 building points is
committed into a throwaway private cluster under /tmp (never into GRIDKIT_DATABASE_URL's
database: this benchmark commits), served by waitress (8 threads) in this process.

Measured in the same run:
- tiles: for every tile of base-cells (z 13-15) and work-cells (z 13-14) over the city, the raw
  ST_AsMVT query (gridkit.tiles' SQL, run in process on its own connection) against the first
  server request (cache miss: generation read + query + HTTP), then cache hits and 304s under
  8 concurrent clients;
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
from bench_workgrid import CELL, DEPTS, SIDE, X0, Y0, build  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from waitress import create_server  # noqa: E402

from gridkit import db, tiles  # noqa: E402
from gridkit.colouring import work_cell_colours  # noqa: E402
from gridkit.config import Settings  # noqa: E402
from web import create_app  # noqa: E402


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(p / 100 * len(ordered))) - 1)]


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


class Server:
    """The gridkit app served by waitress on a free loopback port, in a thread."""

    def __init__(self, settings: Settings, threads: int = 8):
        self.app = create_app(settings)
        self.server = create_server(self.app, host="127.0.0.1", port=0, threads=threads)
        self.url = f"http://127.0.0.1:{self.server.effective_port}"
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.close()


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


def raw_tile_ms(session: Session, layer: str, xyz, dept_version: int | None, colours) -> float:
    """The raw ST_AsMVT query of gridkit.tiles for one tile, in process (the baseline)."""
    z, x, y = xyz
    params = {"z": z, "x": x, "y": y, "margin": tiles.BUFFER / tiles.EXTENT, "srid": 4490, "tol": tiles._tolerance(z)}
    if layer == "base-cells":
        params["edition"] = 1
    else:
        params.update(version=dept_version, ids=list(colours), colours=list(colours.values()))
    t0 = time.perf_counter()
    session.execute(text(tiles.raw_tile_sql(layer)), params).scalar()
    return (time.perf_counter() - t0) * 1000


def bench_tiles(server: Server, engine, rows: list) -> dict:
    with Session(engine) as session:
        version = session.execute(
            text("SELECT id FROM work_grid_version WHERE dept_code = :d AND status = 'published'"), {"d": DEPTS[0]}
        ).scalar()
        colours = work_cell_colours(session, version)
        cases = [("base-cells", t, None) for z in (13, 14, 15) for t in city_tiles(z)] + [
            ("work-cells", t, f"dept={DEPTS[0]}") for z in (13, 14) for t in city_tiles(z)
        ]
        # Warm the database's buffers once, so that neither side pays for the first read.
        for layer, xyz, _ in cases:
            raw_tile_ms(session, layer, xyz, version, colours)
        raw = [raw_tile_ms(session, layer, xyz, version, colours) for layer, xyz, _ in cases]
    urls = [f"{server.url}/tiles/{layer}/{z}/{x}/{y}.mvt" + (f"?{q}" if q else "") for layer, (z, x, y), q in cases]
    misses = [timed_get(u) for u in urls]  # one client: same conditions as raw
    hits_one = [timed_get(u) for u in urls * 3]  # one client: the per-request floor
    hits = concurrent(urls * 20, 8)
    etags = {u: http().get(u).headers["ETag"] for u in urls}
    with ThreadPoolExecutor(8) as pool:
        not_modified = list(pool.map(lambda u: timed_get(u, {"If-None-Match": etags[u]}), urls * 20))
    assert all(s == 200 for _, s, _ in misses + hits + hits_one) and all(s == 304 for _, s, _ in not_modified)
    miss_ms, hit_ms, nm_ms = [m[0] for m in misses], [h[0] for h in hits], [n[0] for n in not_modified]
    sizes = [m[2] for m in misses]
    base = pct(raw, 95)
    rows.append(
        (
            f"tiles: raw ST_AsMVT query in process ({len(raw)} tiles, baseline)",
            statistics.median(raw),
            base,
            pct(raw, 99),
            1.0,
            "",
        )
    )
    rows.append(
        (
            "tiles: server, cache miss (1 client)",
            statistics.median(miss_ms),
            pct(miss_ms, 95),
            pct(miss_ms, 99),
            pct(miss_ms, 95) / base,
            "target ≤ 1.5×",
        )
    )
    one_ms = [h[0] for h in hits_one]
    rows.append(
        (
            f"tiles: server, cache hit (1 client, {len(one_ms)} req)",
            statistics.median(one_ms),
            pct(one_ms, 95),
            pct(one_ms, 99),
            pct(one_ms, 95) / base,
            "target ≤ 2 ms",
        )
    )
    rows.append(
        (
            f"tiles: server, cache hit (8 clients, {len(hit_ms)} req)",
            statistics.median(hit_ms),
            pct(hit_ms, 95),
            pct(hit_ms, 99),
            pct(hit_ms, 95) / base,
            "target ≤ 2 ms",
        )
    )
    rows.append(
        (
            "tiles: server, If-None-Match → 304 (8 clients)",
            statistics.median(nm_ms),
            pct(nm_ms, 95),
            pct(nm_ms, 99),
            pct(nm_ms, 95) / base,
            "",
        )
    )
    return {
        "tile bytes (median / max)": f"{int(statistics.median(sizes)):,} / {max(sizes):,}",
        "tiles per run": len(urls),
    }


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
        rows: list = []
        sizes: dict = {}
        settings = Settings(
            home=Path(where.split()[-1]) / "home" if "throwaway" in where else Path("var"), database_url=url
        )
        with Server(settings) as server:
            sizes.update(bench_tiles(server, engine, rows))
        engine.dispose()
    print()
    print(f"{'benchmark':58} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 vs raw':>11}  note")
    print(f"(load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for label, p50, p95, p99, ratio, note in rows:
        ratio_text = f"{ratio:10.2f}×" if ratio is not None else f"{'':>11}"
        print(f"{label:58} {p50:8.2f} {p95:8.2f} {p99:8.2f} {ratio_text}  {note}")
    print()
    for key, value in sizes.items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
