#!/usr/bin/env python
"""Benchmark: what a city's staff run besides imports and pages, over a whole city, through the CLI.

    .venv/bin/python scripts/bench_city.py                                                   # full scale
    .venv/bin/python scripts/bench_city.py --residents 100000 --cases 30000 --buildings 20000    # reduced

A throwaway private cluster under /tmp holding the city of bench_pages.py (10,000 base cells, three
departments' work grids, `--residents` residents, `--cases` cases over a year) and `--buildings`
buildings imported from a CSV (bench_import.py's writer); three of four residents live in a building,
the others get a point in their cell. Then, each step a `gridkit` command in a process of its own
(wall time, and the peak resident memory of it and its children, sampled from /proc):

- `gridkit export` of residents, buildings and incidents to shp (zip), GPKG, GeoJSON, CSV and XLSX,
  each file read back (GDAL; the XLSX too) and its rows compared with the table's count, and
  against the same-run baseline `ogr2ogr` from PostGIS to the same format of the same rows
  (GDAL alone: no masking, no zip);
- standard reports over the city (population, incidents, evaluation by community, a year);
- a new base grid edition (the current cells, two merged) imported and published: 1,000,000
  residents follow their cells;
- `gridkit db backup` and `db restore` of the whole database (time, file size).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import bench_import  # noqa: E402
import bench_pages  # noqa: E402
from bench_web import load_script, log  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.assign import follow_buildings  # noqa: E402
from gridkit.io.subjects.buildings import import_buildings  # noqa: E402

FORMATS = {"shp": ("zip", "ESRI Shapefile"), "gpkg": ("gpkg", "GPKG"), "geojson": ("geojson", "GeoJSON"),
           "csv": ("csv", "CSV"), "xlsx": ("xlsx", "XLSX")}  # fmt: skip
TABLES = {"residents": "resident", "buildings": "building", "incidents": "incident"}


def build(session: Session, args, tmp: Path) -> None:
    """bench_pages.py's city, then buildings imported and residents placed in them or in their cell."""
    bench_pages.build(session, argparse.Namespace(residents=args.residents, cases=args.cases, audit=1000), tmp)
    wg = load_script("bench_workgrid")
    rng, n = np.random.default_rng(7), args.buildings
    lon = rng.uniform(wg.X0, wg.X0 + wg.SIDE * wg.CELL, n)
    lat = rng.uniform(wg.Y0, wg.Y0 + wg.SIDE * wg.CELL, n)
    codes = np.char.add("B", np.char.zfill(np.arange(n).astype(str), 8))
    csv = tmp / "buildings.csv"
    bench_import.write_csv(csv, ["code", "address", "floors", "lon", "lat"],
                           [codes, np.char.add("测试路", np.arange(n).astype(str)), rng.integers(1, 40, n),
                            np.round(lon, 7), np.round(lat, 7)])  # fmt: skip
    import_buildings(session, csv)
    session.execute(
        text("""
        UPDATE resident r SET phone = '139' || lpad((r.id::int8 * 7919 % 100000000)::text, 8, '0'),
               household = 'H' || (r.id / 3), name = (ARRAY['王小明', '李大力', '赵敏', '钱多多'])[r.id % 4 + 1],
               building_id = CASE WHEN r.id % 4 <> 0
                                  THEN (SELECT min(id) FROM building) + (r.id::int8 * 7919) % :n END"""),
        {"n": n},
    )
    session.execute(
        text("""
        UPDATE resident r SET geom = ST_SetSRID(ST_MakePoint(ST_X(ST_Centroid(b.geom)) + (r.id % 97 - 48) * 1e-5,
                                                             ST_Y(ST_Centroid(b.geom)) + (r.id % 89 - 44) * 1e-5), 4490)
        FROM resident_cell rc JOIN base_cell b ON b.id = rc.base_cell_id
        WHERE rc.resident_id = r.id AND r.building_id IS NULL""")
    )
    # Residents given a building above inherit its cell, as every write through gridkit does: else the
    # edition published later spends its time repairing 750,000 residents' cells (20-30 s), not moving them.
    follow_buildings(session)


def run(args: list[str], env: dict) -> dict:
    """Run a command; return its wall seconds, exit code, last output line and peak memory (MB, all its processes)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
    peak = [0.0]

    def tree(pid: int) -> list[int]:
        found = [pid]
        try:
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    found += [p for child in fh.read().split() for p in tree(int(child))]
        except OSError:
            pass
        return found

    def rss(pid: int) -> float:
        try:
            with open(f"/proc/{pid}/status") as fh:
                return next((int(line.split()[1]) / 1024 for line in fh if line.startswith("VmRSS:")), 0.0)
        except OSError:
            return 0.0

    def poll() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], sum(rss(p) for p in tree(proc.pid)))
            time.sleep(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out = proc.communicate()[0].decode(errors="replace").strip().splitlines()
    watcher.join()
    return {"s": time.perf_counter() - started, "rc": proc.returncode, "out": out[-1] if out else "", "mb": peak[0]}


def read_back(path: Path, fmt: str) -> int:
    """Return the rows GDAL reads from an exported file (every layer of it)."""
    import pyogrio

    name = f"/vsizip/{path}" if fmt == "shp" else str(path)
    return sum(pyogrio.read_info(name, layer=layer[0], force_feature_count=True)["features"]
               for layer in pyogrio.list_layers(name))  # fmt: skip


def exports(url: str, env: dict, out: Path, counts: dict) -> list[dict]:
    """Export each layer to each format, read it back; the same rows through ogr2ogr as the baseline."""
    u = make_url(url)
    # libpq's keywords as GDAL's PG driver takes them (socket folder, port, passfile from the URL's query).
    keys = {"dbname": u.database, "user": u.username, "password": u.password, "port": u.port, **u.query}
    pg = "PG:" + " ".join(f"{k}={v}" for k, v in keys.items() if v)
    rows = []
    for layer, table in TABLES.items():
        for fmt, (suffix, driver) in FORMATS.items():
            path = out / f"{layer}.{suffix}"
            got = run([sys.executable, "-m", "gridkit.cli", "export", layer, "-o", str(path), "--force"], env)
            back = read_back(path, fmt) if got["rc"] == 0 else -1
            raw_path = out / f"raw_{layer}.{'shp' if fmt == 'shp' else suffix}"
            sql = f"SELECT * FROM {table}"  # a fixed name of this script
            # All three layers are points (a resident in a building has none of its own: NULL here).
            extra = ["-nlt", "POINT"] + (["-lco", "ENCODING=UTF-8"] if fmt == "shp" else [])
            raw = run(
                ["ogr2ogr", "-overwrite", "-f", driver, str(raw_path), pg, "-sql", sql, "-nln", layer, *extra], env
            )
            if raw["rc"] != 0:
                raise SystemExit(f"ogr2ogr failed: {raw['out']}")
            size = path.stat().st_size if path.exists() else 0
            rows.append(dict(layer=layer, fmt=fmt, back=back, rows=counts[layer], raw=raw["s"], size=size, **got))
            log(f"{layer} {fmt}: {got['s']:.1f} s (ogr2ogr {raw['s']:.1f} s), {got['mb']:.0f} MB, read back {back:,}")
    return rows


def steps(env: dict, tmp: Path) -> list[tuple[str, dict]]:
    """Reports, a new base grid edition published, a backup and its restore."""
    gk = [sys.executable, "-m", "gridkit.cli"]
    done = []
    for name, extra in (("population", []), ("incidents", []), ("evaluation", ["--from", "2025-12-01"])):
        done.append((f"report {name} by community", run([*gk, "report", name, "--by", "community", *extra], env)))
    cells = tmp / "cells.gpkg"
    run([*gk, "export", "base-cells", "-o", str(cells)], env)
    import pyogrio
    import shapely

    frame = pyogrio.read_dataframe(cells).sort_values("code").reset_index(drop=True)
    frame.loc[0, "geometry"] = shapely.union(frame.loc[0, "geometry"], frame.loc[1, "geometry"])
    pyogrio.write_dataframe(frame.drop(index=1)[["code", "community_code", "geometry"]], tmp / "next.gpkg")
    fields = ["--code-field", "code", "--community-field", "community_code", "--edition", "next"]
    done.append(
        ("basegrid import (9,999 cells)", run([*gk, "basegrid", "import", str(tmp / "next.gpkg"), *fields], env))
    )
    done.append(("basegrid publish", run([*gk, "basegrid", "publish", "--edition", "next"], env)))
    backup = tmp / "city.backup"
    done.append(("db backup", run([*gk, "db", "backup", str(backup)], env)))
    done[-1][1]["out"] += f" ({backup.stat().st_size / 2**20:.0f} MB)" if backup.exists() else ""
    done.append(("db restore", run([*gk, "db", "restore", str(backup), "--yes"], env)))
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--buildings", type=int, default=200_000)
    parser.add_argument("--port", type=int, default=5645)
    parser.add_argument("--skip-exports", action="store_true", help="Only the reports, the edition and the backup.")
    args = parser.parse_args()
    started = time.perf_counter()
    with db.bench_database(args.port, "gridkit_bench_city") as (url, where), tempfile.TemporaryDirectory() as tmp:
        log(f"database: {where}")
        engine = db.make_engine(url)
        with Session(engine) as session, session.begin():
            build(session, args, Path(tmp))
            counts = {k: session.scalar(text(f"SELECT count(*) FROM {t}")) for k, t in TABLES.items()}
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        engine.dispose()
        log(f"built in {time.perf_counter() - started:.0f} s: {counts}")
        env = {**os.environ, "GRIDKIT_DATABASE_URL": url, "GRIDKIT_LANG": "en", "GRIDKIT_HOME": tmp}
        rows = [] if args.skip_exports else exports(url, env, Path(tmp), counts)
        others = steps(env, Path(tmp))
    print(
        f"\n{'export':<22}{'rows':>10}{'read back':>11}{'s':>8}{'ogr2ogr s':>11}{'ratio':>7}"
        f"{'peak MB':>9}{'MB file':>9}"
    )
    for r in rows:
        flag = "" if r["back"] == r["rows"] else "  ROWS DIFFER " + r["out"]
        print(f"{r['layer'] + ' ' + r['fmt']:<22}{r['rows']:>10,}{r['back']:>11,}{r['s']:>8.1f}{r['raw']:>11.1f}"
              f"{r['s'] / r['raw']:>7.2f}{r['mb']:>9.0f}{r['size'] / 2**20:>9.1f}{flag}")  # fmt: skip
    print(f"\n{'step':<32}{'s':>8}{'peak MB':>9}  result")
    for label, r in others:
        print(f"{label:<32}{r['s']:>8.1f}{r['mb']:>9.0f}  {'ok' if r['rc'] == 0 else 'FAILED'}: {r['out'][:90]}")
    log(f"done in {time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
