#!/usr/bin/env python
"""Benchmark of exports and reports: gridkit export against a raw pyogrio (use_arrow) write.

    .venv/bin/python scripts/bench_export.py                       # 1M entities, 5M residents
    .venv/bin/python scripts/bench_export.py --points 100000 --residents 500000

Runs in a throwaway database (a private cluster under /tmp), or inside one rolled-back
transaction of GRIDKIT_DATABASE_URL's database. Nothing is committed.

Measured, each with its peak memory (the client process's peak resident set size during the step
minus its size before, Linux VmHWM):
- baseline: the whole layer read into one GeoDataFrame (read time printed apart), then
  `pyogrio.write_dataframe(frame, use_arrow=True)` to .shp and to .gpkg: the raw write of the
  same frame, in the same run;
- gridkit export end to end (`export_layer`: PostGIS read through a server-side cursor in
  chunks, masking, appends per chunk, zip with fields.csv for shp, temporary name renamed);
- gridkit's writers alone, fed the same rows in chunks from memory: the streaming overhead
  without the database read;
- the population report by community over all residents (`run_report`).
The last line is `ratio_shp=… ratio_gpkg=… report_seconds=…` (export end to end / raw write).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import PeakRSS, rolled_back_session
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.io.export import ExportOptions, export_layer
from gridkit.io.export_layers import LAYERS, build_query
from gridkit.io.export_writers import Chunk, OgrWriter, ShapefileZipWriter
from gridkit.reports import run_report

X0, Y0, STEP, SIDE = 114.0, 22.5, 0.002, 20  # 20×20 cells of ~200 m per community
COMMUNITIES = 10


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def build_city(session: Session) -> list[int]:
    """Admin units, 10 communities of 20×20 base cells in one published edition; return cell ids."""
    session.execute(
        text(
            "INSERT INTO admin_unit (code, name, level, parent_code, geom) VALUES "
            "('440300', '深圳市', 'city', NULL, ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))), "
            "('440304', '福田区', 'district', '440300', ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490))), "
            "('440304001', '园岭街道', 'street', '440304', ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)))"
        ),
        {"x0": X0, "y0": Y0, "x1": X0 + COMMUNITIES * SIDE * STEP, "y1": Y0 + SIDE * STEP},
    )
    edition = session.execute(
        text(
            "INSERT INTO base_grid_edition (name, status, published_at) "
            "VALUES ('bench', 'published', now()) RETURNING id"
        )
    ).scalar_one()
    for c in range(COMMUNITIES):
        code = f"440304001{c + 1:03d}"
        x = X0 + c * SIDE * STEP
        session.execute(
            text(
                "INSERT INTO admin_unit (code, name, level, parent_code, geom) VALUES (:code, :name, 'community', "
                "'440304001', ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4490)))"
            ),
            {"code": code, "name": f"第{c + 1}社区", "x0": x, "y0": Y0, "x1": x + SIDE * STEP, "y1": Y0 + SIDE * STEP},
        )
        session.execute(
            text(
                "INSERT INTO base_cell (edition_id, code, community_code, geom) "
                "SELECT :e, :code || lpad((r * :side + k + 1)::text, 3, '0'), :code, "
                "ST_MakeEnvelope(:x + k * :s, :y1 - (r + 1) * :s, :x + (k + 1) * :s, :y1 - r * :s, 4490) "
                "FROM generate_series(0, :side - 1) r, generate_series(0, :side - 1) k"
            ),
            {"e": edition, "code": code, "side": SIDE, "x": x, "s": STEP, "y1": Y0 + SIDE * STEP},
        )
    session.execute(text("ANALYZE admin_unit; ANALYZE base_cell; ANALYZE base_grid_edition"))
    return list(session.execute(text("SELECT id FROM base_cell ORDER BY code")).scalars())


def _copy(session: Session, sql: str, lines) -> None:
    cur = session.connection().connection.driver_connection.cursor()
    with cur.copy(sql) as copy:
        buf = io.StringIO()
        for i, line in enumerate(lines):
            buf.write(line)
            if i % 100_000 == 99_999:
                copy.write(buf.getvalue())
                buf = io.StringIO()
        copy.write(buf.getvalue())


def load_entities(session: Session, cells: list[int], n: int, rng) -> None:
    """n legal entities with Chinese names, as points inside the city, each in a random cell."""
    xs = rng.uniform(X0, X0 + COMMUNITIES * SIDE * STEP, n)
    ys = rng.uniform(Y0, Y0 + SIDE * STEP, n)
    cell = rng.choice(cells, n)
    _copy(
        session,
        "COPY legal_entity (credit_code, name, address, geom, base_cell_id) FROM STDIN",
        (
            f"91440300{i:010d}\t深圳市园岭{i}号科技有限公司\t园岭街道{i % 500}号\t"
            f"SRID=4490;POINT({x:.7f} {y:.7f})\t{c}\n"
            for i, (x, y, c) in enumerate(zip(xs, ys, cell))
        ),
    )


def load_residents(session: Session, cells: list[int], n: int, rng) -> None:
    """n residents spread over the cells, in households of three living in one cell."""
    cell = np.repeat(rng.choice(cells, n // 3 + 1), 3)[:n]
    floating = rng.random(n) < 0.35
    _copy(
        session,
        "COPY resident (id_number_hash, id_number_masked, name, household, population_type, base_cell_id) FROM STDIN",
        (
            f"{i:064x}\t4403**********123X\t居民{i}\tH{c}-{i // 3}\t{'floating' if f else 'registered'}\t{c}\n"
            for i, (c, f) in enumerate(zip(cell, floating))
        ),
    )


def timed(func):
    with PeakRSS() as mem:
        start = time.perf_counter()
        result = func()
        seconds = time.perf_counter() - start
    return seconds, mem.mb, result


def run(url: str, args) -> str:
    rng = np.random.default_rng(args.seed)
    rows = []
    out = Path(tempfile.mkdtemp(prefix="gk-bench-export-"))
    try:
        with rolled_back_session(url) as session:
            cells = build_city(session)
            progress(f"{len(cells):,} base cells; loading {args.points:,} entities …")
            load_entities(session, cells, args.points, rng)
            session.execute(text("ANALYZE legal_entity"))
            n = args.points
            # Baseline: the same rows (masked query of the entities layer) as one GeoDataFrame.
            import geopandas as gpd
            import pyogrio
            import shapely

            query = build_query(session, LAYERS["entities"])
            read_s, read_mb, frame = timed(lambda: _frame(session, query, gpd, shapely))
            rows.append(("baseline read of the frame into memory (not in the ratios)", read_s, read_mb))
            for fmt, name, driver in (("shp", "raw.shp", "ESRI Shapefile"), ("gpkg", "raw.gpkg", "GPKG")):
                s, mb, _ = timed(
                    lambda f=frame, p=out / name, d=driver, e=("UTF-8" if fmt == "shp" else None): (
                        pyogrio.write_dataframe(f, p, driver=d, use_arrow=True, encoding=e)
                    )
                )
                rows.append((f"raw pyogrio.write_dataframe use_arrow → {fmt}", s, mb))
            chunks = _chunks(frame, query, 50_000)
            del frame
            for fmt in ("shp", "gpkg"):
                s, mb, _ = timed(lambda f=fmt, c=chunks: _writers_only(f, c, query, out))
                rows.append((f"gridkit writers only, 50k-row chunks from memory → {fmt}", s, mb))
            del chunks
            for fmt, name in (("shp", "entities.zip"), ("gpkg", "entities.gpkg")):
                s, mb, summary = timed(
                    lambda f=fmt, p=out / name: export_layer(
                        session, ExportOptions("entities", f, p, max_features=10**9)
                    )
                )
                assert summary["features"] == n
                rows.append((f"gridkit export entities end to end → {fmt}", s, mb))
            session.execute(text("TRUNCATE legal_entity"))
            progress(f"loading {args.residents:,} residents …")
            load_residents(session, cells, args.residents, rng)
            session.execute(text("ANALYZE resident"))
            run_report(session, "population", by="community")  # warm the cache once
            s, mb, result = timed(lambda: run_report(session, "population", by="community"))
            assert sum(r["residents"] for r in result.main.rows) == args.residents
            rows.append((f"report population by community over {args.residents:,} residents", s, mb))
    finally:
        for path in out.glob("*"):
            path.unlink()
        out.rmdir()
    table(rows, n)
    raw = {
        fmt: next(s for name, s, _ in rows if name.startswith("raw") and name.endswith(fmt)) for fmt in ("shp", "gpkg")
    }
    mine = {
        fmt: next(s for name, s, _ in rows if name.startswith("gridkit export") and name.endswith(fmt))
        for fmt in ("shp", "gpkg")
    }
    report_s = rows[-1][1]
    return (
        f"ratio_shp={mine['shp'] / raw['shp']:.2f} ratio_gpkg={mine['gpkg'] / raw['gpkg']:.2f} "
        f"report_seconds={report_s:.2f}"
    )


def _frame(session, query, gpd, shapely):
    sql = query.sql.replace(", q._geom FROM", ", ST_AsBinary(q._geom) FROM", 1)
    result = session.execute(text(sql), query.params)
    names = [n for n, _ in query.fields]
    columns = list(zip(*result.all()))
    data = {name: list(columns[i]) for i, name in enumerate(names)}
    for name, kind in query.fields:
        if kind == "datetime":
            import pandas as pd

            data[name] = pd.to_datetime(data[name], utc=True).tz_convert("Asia/Shanghai").tz_localize(None)
    geoms = shapely.from_wkb(np.array([bytes(g) for g in columns[-1]], dtype=object))
    return gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4490")


def _chunks(frame, query, size):
    import pandas as pd
    import shapely

    names = [n for n, _ in query.fields]
    wkb = shapely.to_wkb(frame.geometry.values)
    result = []
    for start in range(0, len(frame), size):
        part = frame.iloc[start : start + size]
        result.append(
            Chunk(
                {
                    n: [
                        None if pd.isna(v) else v.to_pydatetime() if hasattr(v, "to_pydatetime") else v
                        for v in part[n].tolist()
                    ]
                    for n in names
                },
                list(wkb[start : start + size]),
            )
        )
    return result


def _writers_only(fmt, chunks, query, out):
    path = out / f"writers.{'zip' if fmt == 'shp' else 'gpkg'}"
    path.unlink(missing_ok=True)
    if fmt == "shp":
        writer = ShapefileZipWriter(path, "entities", query.fields, "Point", "EPSG:4490", "utf-8")
    else:
        writer = OgrWriter(path, "GPKG", "entities", query.fields, "Point", "EPSG:4490")
    writer.write_all(iter(chunks))


def table(rows, n) -> None:
    print(f"\n{n:,} points, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<78}  {'seconds':>8}  {'peak MB':>8}  {'vs raw':>7}")
    raw = {
        fmt: next(s for name, s, _ in rows if name.startswith("raw") and name.endswith(fmt)) for fmt in ("shp", "gpkg")
    }
    for name, seconds, mb in rows:
        fmt = next((f for f in ("shp", "gpkg") if name.endswith(f)), None)
        ratio = f"{seconds / raw[fmt]:.2f}×" if fmt else ""
        print(f"{name:<78}  {seconds:>8.2f}  {('n/a' if mb is None else f'{mb:,.0f}'):>8}  {ratio:>7}")


def main(argv=None) -> int:
    """Run on GRIDKIT_DATABASE_URL's database (rolled back), else on a throwaway cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="entities exported (default 1M)")
    parser.add_argument("--residents", type=int, default=5_000_000, help="residents in the report (default 5M)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=5493, help="socket number of the throwaway cluster")
    args = parser.parse_args(argv)
    with db.bench_database(args.port) as (url, where):
        progress(f"database: {where}")
        last = run(url, args)
    print(last)
    return 0


if __name__ == "__main__":
    sys.exit(main())
