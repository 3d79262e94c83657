#!/usr/bin/env python
"""Benchmark of exports and reports: gridkit export against a raw pyogrio (use_arrow) write.

    .venv/bin/python scripts/bench_export.py                       # 1M entities, 5M residents
    .venv/bin/python scripts/bench_export.py --points 100000 --residents 500000

Runs in a throwaway database (a private cluster under /tmp), or inside one rolled-back
transaction of GRIDKIT_DATABASE_URL's database. Nothing is committed.

Measured in one run, each with its peak memory (the client process's peak resident set size
during the step minus its size before, Linux VmHWM):
- baseline: the whole layer read into one GeoDataFrame (read time printed apart, not in any
  ratio), then `pyogrio.write_dataframe(frame, use_arrow=True)` to .shp and to .gpkg: the raw
  write of an in-memory frame; it and the export end to end take turns `--repeat` times (default
  3) and their medians are compared, so that a load drifting during the run weighs on both;
- gridkit's writers alone, fed the same rows as Arrow batches already in memory ("write only":
  the shp figure includes zipping the parts with fields.csv, which the raw write does not do);
- gridkit export end to end (`export_layer`: PostGIS COPY parsed into Arrow batches in this
  process while a child process writes them with GDAL (Arrow IPC over a pipe), masking in SQL,
  temporary name renamed; shp zipped). Its ratio to the raw write is "end to end from the
  database" against "a write of a frame already in memory": the read is included on our side
  only. The child's own peak (whole process, Arrow and GDAL libraries included) is printed apart;
- the population report by community over all residents (`run_report`): the first report after
  the load (whose summary upkeep, `resident_summary.residents_changed` at the end of the load as an
  import does it, is timed apart), the upkeep of a small import of 1,000 residents into 20 cells
  and the first report after it; against a plain `count(*) GROUP BY` community over the same
  residents, and the previous query (every resident grouped by household) and the first report
  after an edit nobody announced (a full rebuild inside) for reference. report_seconds is the
  slower of the two "first report" figures.
The last line is `write_shp=… e2e_shp=… write_gpkg=… e2e_gpkg=… report_seconds=… report_vs_count=…`
(ratios to the raw write, and of the report to the plain count).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import ChildrenPeak, PeakRSS, rolled_back_session
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit import db
from gridkit.io.export import ExportOptions, _geometry_sql, export_layer, target_crs
from gridkit.io.export_arrow import arrow_batches, copy_sql
from gridkit.io.export_layers import LAYERS, build_query
from gridkit.io.export_writers import OgrWriter, ShapefileZipWriter
from gridkit.reports import resident_summary, run_report
from gridkit.reports.standard import _unit_frame
from gridkit.reports.units import units

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
    """n residents spread over the cells, in households of three; 1% live in another cell than their
    household's (households split over cells, which a report must count once per unit)."""
    home = np.repeat(rng.choice(cells, n // 3 + 1), 3)[:n]
    cell = np.where(rng.random(n) < 0.01, rng.choice(cells, n), home)
    floating = rng.random(n) < 0.35
    _copy(
        session,
        "COPY resident (id_number_hash, id_number_masked, name, household, population_type) FROM STDIN",
        (
            f"{i:064x}\t4403**********123X\t居民{i}\tH{h}-{i // 3}\t{'floating' if f else 'registered'}\n"
            for i, (h, f) in enumerate(zip(home, floating))
        ),
    )
    # Their cells: rows of resident_cell (gridkit.resident_cells), matched by the same hashes.
    session.execute(text("CREATE TEMP TABLE gk_bench_cell (hash text, cell int) ON COMMIT DROP"))
    _copy(session, "COPY gk_bench_cell (hash, cell) FROM STDIN", (f"{i:064x}\t{c}\n" for i, c in enumerate(cell)))
    session.execute(
        text(
            "INSERT INTO resident_cell (resident_id, base_cell_id) SELECT r.id, c.cell FROM gk_bench_cell c "
            "JOIN resident r ON r.id_number_hash = c.hash"
        )
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
            rows += _export_rows(session, args.points, out, args.repeat)
            session.execute(text("TRUNCATE legal_entity"))
            progress(f"loading {args.residents:,} residents …")
            load_residents(session, cells, args.residents, rng)
            session.execute(text("ANALYZE resident; ANALYZE resident_cell"))  # as an import leaves them
            rows += _report_rows(session, args.residents, cells, rng)
    finally:
        for path in out.glob("*"):
            path.unlink()
        out.rmdir()
    table(rows, args.points)
    ratio = {k: _seconds(rows, k) for k in ("raw", "writers", "export", "report", "count")}
    return (
        f"write_shp={ratio['writers']['shp'] / ratio['raw']['shp']:.2f} "
        f"e2e_shp={ratio['export']['shp'] / ratio['raw']['shp']:.2f} "
        f"write_gpkg={ratio['writers']['gpkg'] / ratio['raw']['gpkg']:.2f} "
        f"e2e_gpkg={ratio['export']['gpkg'] / ratio['raw']['gpkg']:.2f} "
        f"report_seconds={ratio['report'][None]:.2f} report_vs_count={ratio['report'][None] / ratio['count'][None]:.2f}"
    )


def _export_rows(session: Session, n: int, out: Path, repeat: int) -> list:
    """Time the raw write of the frame, gridkit's writers from memory and the export end to end."""
    import geopandas as gpd
    import pyogrio
    import shapely

    rows = []
    # Baseline: the same rows (masked query of the entities layer) as one GeoDataFrame.
    query = build_query(session, LAYERS["entities"])
    read_s, read_mb, frame = timed(lambda: _frame(session, query, gpd, shapely))
    rows.append(("baseline read of the frame into memory (not in the ratios)", read_s, read_mb))
    s, mb, batches = timed(lambda: _batches(session, query))
    rows.append(("gridkit read into Arrow batches (kept in memory; not in the ratios)", s, mb))
    for fmt in ("shp", "gpkg"):
        s, mb, _ = timed(lambda f=fmt, b=batches: _writers_only(f, b, query, out))
        rows.append((f"gridkit writers only, Arrow batches from memory → {fmt}", s, mb))
    del batches
    # The raw write and the export end to end take turns, `repeat` times each, and the medians are
    # compared: a load that drifts during the run falls on both sides instead of on one.
    runs = {}
    children = ChildrenPeak()
    for _ in range(repeat):
        for fmt, raw_name, driver, name in (
            ("shp", "raw.shp", "ESRI Shapefile", "entities.zip"),
            ("gpkg", "raw.gpkg", "GPKG", "entities.gpkg"),
        ):
            for stale in out.glob(f"{Path(raw_name).stem}.*"):
                stale.unlink()
            (out / name).unlink(missing_ok=True)
            s, mb, _ = timed(
                lambda f=frame, p=out / raw_name, d=driver, e=("UTF-8" if fmt == "shp" else None): (
                    pyogrio.write_dataframe(f, p, driver=d, use_arrow=True, encoding=e)
                )
            )
            runs.setdefault(("raw", fmt), []).append((s, mb))
            with children:
                s, mb, summary = timed(
                    lambda f=fmt, p=out / name: export_layer(
                        session, ExportOptions("entities", f, p, max_features=10**9)
                    )
                )
            assert summary["features"] == n
            runs.setdefault(("export", fmt), []).append((s, mb))
    del frame
    labels = {
        "raw": "raw pyogrio.write_dataframe use_arrow",
        "export": "gridkit export entities end to end from the database",
    }
    for (kind, fmt), measured in sorted(runs.items(), key=lambda item: item[0][0] != "raw"):
        seconds = sorted(s for s, _ in measured)
        label = f"{labels[kind]} (median of {' / '.join(f'{s:.2f}' for s in seconds)} s) → {fmt}"
        rows.append((label, statistics.median(seconds), max(mb for _, mb in measured)))
    rows.append(("  its child processes, largest peak resident size (whole process, not a ratio)", None, children.mb))
    return rows


def _seconds(rows, prefix: str) -> dict:
    """Return {format or None: seconds} of the rows whose step starts with a word of `prefix`."""
    words = {
        "raw": "raw ",
        "writers": "gridkit writers",
        "export": "gridkit export",
        "report": "report population",
        "count": "baseline count",
    }
    found = {}
    for name, seconds, _ in rows:
        if name.startswith(words[prefix]):
            key = next((f for f in ("shp", "gpkg") if name.endswith(f)), None)
            found[key] = max(found.get(key, 0.0), seconds)  # several "first report" rows: the slowest
    return found


def _report_rows(session: Session, residents: int, cells: list[int], rng) -> list:
    """Time the summary's upkeep, the first report after each kind of change, a plain count by
    community and the previous query."""
    rows = []
    s, mb, _ = timed(lambda: resident_summary.residents_changed(session))
    rows.append((f"summary brought up to date at the end of the load of {residents:,} residents (full)", s, mb))
    s, mb, result = timed(lambda: run_report(session, "population", by="community"))
    assert sum(r["residents"] for r in result.main.rows) == residents
    rows.append((f"report population by community over {residents:,} residents, first after the load", s, mb))
    # A small import: 1,000 residents into 20 cells, then the import's own upkeep of those cells.
    touched = [int(c) for c in rng.choice(cells, 20, replace=False)]
    session.execute(
        text(
            "WITH r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, household, population_type) "
            "SELECT 'small' || g, '4403**********123X', '新居民', 'S' || (g / 3), 'floating' "
            "FROM generate_series(0, 999) g RETURNING id, id_number_hash) "
            "INSERT INTO resident_cell (resident_id, base_cell_id) "
            "SELECT r.id, (CAST(:c AS int[]))[1 + substr(r.id_number_hash, 6)::int % 20] FROM r"
        ),
        {"c": touched},
    )
    s, mb, _ = timed(lambda: resident_summary.residents_changed(session, touched))
    rows.append(("summary upkeep at the end of an import of 1,000 residents into 20 cells", s, mb))
    s, mb, result = timed(lambda: run_report(session, "population", by="community"))
    assert sum(r["residents"] for r in result.main.rows) == residents + 1000
    rows.append((f"report population by community over {residents + 1000:,} residents, first after it", s, mb))
    # A change that no import announced (an edit by hand): the first report rebuilds the summary.
    session.execute(text("UPDATE resident SET population_type = 'registered' WHERE id_number_hash = 'small0'"))
    s, mb, _ = timed(lambda: run_report(session, "population", by="community"))
    rows.append(("first report after an unannounced edit (full rebuild inside; reference)", s, mb))
    u = units(session, "community")
    count_sql = (
        _unit_frame(u)
        + " SELECT u.code, count(*) FROM resident_cell s JOIN u ON u.cell_id = s.base_cell_id GROUP BY u.code"
    )
    session.execute(text(count_sql), u.params).all()  # warm
    s, mb, _ = timed(lambda: session.execute(text(count_sql), u.params).all())
    rows.append(("baseline count(*) GROUP BY community over the same residents", s, mb))
    old_sql = _unit_frame(u) + (
        ", g AS (SELECT u.code, s.household, count(*) AS n FROM resident s "
        "JOIN resident_cell c ON c.resident_id = s.id JOIN u ON u.cell_id = c.base_cell_id "
        "GROUP BY u.code, s.household) SELECT code, sum(n), count(*) FILTER (WHERE household <> '') FROM g "
        "GROUP BY code"
    )
    s, mb, _ = timed(lambda: session.execute(text(old_sql), u.params).all())
    rows.append(("previous report query: every resident grouped by household (reference)", s, mb))
    return rows


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


def _batches(session, query):
    crs = target_crs(session, "EPSG:4490")
    options = ExportOptions("entities", "gpkg", Path("unused"))
    types = [f.type for f in OgrWriter(Path("x"), "GPKG", query.fields, "EPSG:4490").schema][:-1]
    sql = copy_sql(query.sql, query.fields, types, _geometry_sql(options, crs, "Point", alias="x"), None)
    names = [n for n, _ in query.fields]
    return list(arrow_batches(session, sql, query.params, names, types, rows=50_000))


def _writers_only(fmt, batches, query, out):
    path = out / f"writers.{'zip' if fmt == 'shp' else 'gpkg'}"
    path.unlink(missing_ok=True)
    if fmt == "shp":
        writer = ShapefileZipWriter(path, query.fields, "EPSG:4490", "utf-8")
        # The shapefile stores datetimes as dates: the same rows, typed as that writer takes them.
        batches = [pa.RecordBatch.from_arrays(_as_dates(b), names=b.schema.names) for b in batches]
    else:
        writer = OgrWriter(path, "GPKG", query.fields, "EPSG:4490")
    writer.write_layer("entities", "Point", iter(batches))
    writer.finish()


def _as_dates(batch):
    return [c.cast(pa.date32()) if pa.types.is_timestamp(c.type) else c for c in batch.columns]


def table(rows, n) -> None:
    print(f"\n{n:,} points, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'step':<80}  {'seconds':>8}  {'peak MB':>8}  {'vs raw':>7}")
    raw = {
        fmt: next(s for name, s, _ in rows if name.startswith("raw") and name.endswith(fmt)) for fmt in ("shp", "gpkg")
    }
    for name, seconds, mb in rows:
        fmt = next((f for f in ("shp", "gpkg") if name.endswith(f)), None)
        ratio = f"{seconds / raw[fmt]:.2f}×" if fmt and seconds is not None else ""
        seconds_text = "" if seconds is None else f"{seconds:.2f}"
        print(f"{name:<80}  {seconds_text:>8}  {('n/a' if mb is None else f'{mb:,.0f}'):>8}  {ratio:>7}")


def main(argv=None) -> int:
    """Run on GRIDKIT_DATABASE_URL's database (rolled back), else on a throwaway cluster."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000, help="entities exported (default 1M)")
    parser.add_argument("--residents", type=int, default=5_000_000, help="residents in the report (default 5M)")
    parser.add_argument("--repeat", type=int, default=3, help="turns of raw write and export end to end (medians)")
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
