#!/usr/bin/env python
"""Benchmark of the incident workflow at city scale: intake, report → coordinator, heatmap, evaluation.

    .venv/bin/python scripts/bench_incidents.py                    # 10,000 cells, 1,000,000 cases
    .venv/bin/python scripts/bench_incidents.py --cases 100000     # a quick run

In a throwaway database (a private cluster under /tmp, or GRIDKIT_DATABASE_URL's database inside
one transaction that is rolled back): 100 communities of 10 × 10 base cells of ~100 m (10,000
cells), department 200001 with one work cell and one coordinator per community, and `--cases`
historic cases spread over two years (about 1 % outside every cell, 90 % closed).

Measured, each against a baseline taken in the same run:
- bulk intake: `import_incidents` (checks, COPY, history, base cells, work cells as of the report
  time) in rows/s, against a raw COPY of the same CSV rows into a text table;
- single report → coordinator known (report, accept, classify, dispatch): p50/p95 ms, against
  a bare INSERT of one incident row;
- heatmap at city zoom (the whole city in view: all cases, the last 365 days, one category) and
  closer zooms: server time and payload, against counting the cases themselves (the rollup
  bypassed) and against shipping the raw points as JSON (what a client-side heatmap would need);
- evaluation over a year of cases by department, work cell, community and coordinator, against
  the same evaluation counting every case (the rollup bypassed, p90 over every case).
`--explain` prints the plan of the rollup query behind the city-zoom heatmap.
Targets: heatmap ≤ 300 ms and ≤ 500 kB at city zoom, evaluation over a year ≤ 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gridkit import db  # noqa: E402
from gridkit.incidents import evaluate as evaluate_module  # noqa: E402
from gridkit.incidents import heatmap as density  # noqa: E402
from gridkit.incidents import workflow as wf  # noqa: E402
from gridkit.incidents.actors import Actor  # noqa: E402
from gridkit.incidents.categories import seed_categories  # noqa: E402
from gridkit.incidents.evaluate import evaluate  # noqa: E402
from gridkit.incidents.heatmap import heatmap, parse_filters  # noqa: E402
from gridkit.incidents.importer import import_incidents  # noqa: E402

LON0, LAT0, CELL = 114.05, 22.53, 0.001
BLOCKS, SIDE = 10, 10  # 10 × 10 communities of 10 × 10 cells
CITY, DISTRICT, STREET = "990100", "990101", "990101001"
DEPT = "200001"
END = datetime(2026, 11, 30, tzinfo=UTC)
ADMIN = Actor("bench", "admin")
STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.1f} s] {message}", flush=True)


def copy(session: Session, sql: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"{sql} FROM STDIN WITH (FORMAT csv, NULL '\\N')") as c:
        c.write(buffer.getvalue())


def build_city(session: Session) -> None:
    """Admin units, 10,000 base cells, department 200001 with 100 work cells and coordinators."""
    n = BLOCKS * SIDE
    x1, y1 = LON0 + n * CELL, LAT0 + n * CELL

    def poly(a, b, c, d):
        return f"SRID=4490;MULTIPOLYGON((({a} {b},{c} {b},{c} {d},{a} {d},{a} {b})))"

    units = [(CITY, "城", "city", None), (DISTRICT, "区", "district", CITY), (STREET, "街道", "street", DISTRICT)]
    rows = [
        {"code": c, "name": nm, "level": lv, "parent_code": p, "geom": poly(LON0, LAT0, x1, y1)}
        for c, nm, lv, p in units
    ]
    cells = []
    for bi in range(BLOCKS):
        for bj in range(BLOCKS):
            code = f"{STREET}{bi * BLOCKS + bj + 1:03d}"
            ax, ay = round(LON0 + bj * SIDE * CELL, 6), round(LAT0 + bi * SIDE * CELL, 6)
            rows.append(
                {
                    "code": code,
                    "name": f"社区{code[-3:]}",
                    "level": "community",
                    "parent_code": STREET,
                    "geom": poly(ax, ay, round(ax + SIDE * CELL, 6), round(ay + SIDE * CELL, 6)),
                }
            )
            seq = 0
            for r in reversed(range(SIDE)):
                for c in range(SIDE):
                    seq += 1
                    x, y = round(ax + c * CELL, 6), round(ay + r * CELL, 6)
                    ring = poly(x, y, round(x + CELL, 6), round(y + CELL, 6))
                    cells.append(
                        (f"{code}{seq:03d}", code, ring.replace("MULTIPOLYGON((", "POLYGON(").replace(")))", "))"))
                    )
    copy(session, "COPY admin_unit (code, name, level, parent_code, geom)", pd.DataFrame(rows))
    edition = session.scalar(
        text(
            "INSERT INTO base_grid_edition (name, status, published_at) "
            "VALUES ('bench', 'published', '2020-01-01') RETURNING id"
        )
    )
    frame = pd.DataFrame(cells, columns=["code", "community_code", "geom"])
    frame.insert(0, "edition_id", edition)
    copy(session, "COPY base_cell (edition_id, code, community_code, geom)", frame)
    _build_work_grid(session, edition)
    seed_categories(session)
    session.execute(text("ANALYZE"))


def _build_work_grid(session: Session, edition: int) -> None:
    """Departments 200001 and 100001; 200001's version 1: one work cell per community, each with a coordinator."""
    session.execute(text("INSERT INTO department (code, name) VALUES (:d, '城管')"), {"d": DEPT})
    session.execute(text("INSERT INTO department (code, name) VALUES ('100001', '综治')"))
    version = session.scalar(
        text(
            "INSERT INTO work_grid_version (dept_code, number, status, base_edition_id, valid_from, published_at) "
            "VALUES (:d, 1, 'published', :e, '2020-01-01', '2020-01-01') RETURNING id"
        ),
        {"d": DEPT, "e": edition},
    )
    session.execute(
        text("""
        INSERT INTO work_cell (version_id, code, name)
        SELECT :v, :d || code || '01', name FROM admin_unit WHERE level = 'community'"""),
        {"v": version, "d": DEPT},
    )
    session.execute(
        text("""
        INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id)
        SELECT :v, b.id, w.id FROM base_cell b
        JOIN work_cell w ON w.version_id = :v AND w.code = :d || b.community_code || '01'
        """),
        {"v": version, "d": DEPT},
    )
    session.execute(
        text(
            "UPDATE work_cell w SET geom = (SELECT ST_Multi(ST_Union(b.geom)) FROM work_cell_member m "
            "JOIN base_cell b ON b.id = m.base_cell_id WHERE m.work_cell_id = w.id) "
            "WHERE version_id = :v"
        ),
        {"v": version},
    )
    session.execute(
        text("""
        WITH c AS (INSERT INTO coordinator (name, phone)
                   SELECT '网格员' || code, '139' || lpad(id::text, 8, '0') FROM work_cell WHERE version_id = :v
                   RETURNING id, name)
        INSERT INTO coordinator_assignment (coordinator_id, work_cell_id)
        SELECT c.id, w.id FROM c JOIN work_cell w ON '网格员' || w.code = c.name"""),
        {"v": version},
    )


def make_cases(
    n: int, path: Path, *, origin: tuple[float, float] = (LON0, LAT0), days: int = 730, end: datetime = END
) -> dict:
    """Write n historic cases over the `days` before `end` to a CSV and return the import mapping.

    The cases lie over the city's square from `origin` (its south-west corner) and a little around it."""
    rng = np.random.default_rng(7)
    span = BLOCKS * SIDE * CELL
    lon = origin[0] - 0.005 * span + rng.random(n) * span * 1.01
    lat = origin[1] - 0.005 * span + rng.random(n) * span * 1.01
    start = end - timedelta(days=days)
    reported = pd.Series(pd.Timestamp(start) + pd.to_timedelta(rng.random(n) * days * 86400, unit="s"))
    closed_mask = rng.random(n) < 0.9
    closed = (reported + pd.to_timedelta(rng.gamma(2.0, 20.0, n), unit="h")).where(closed_mask)
    closed = closed.where(closed < pd.Timestamp(end), pd.Timestamp(end) - pd.Timedelta(seconds=1))
    codes = ["E0101", "E0103", "E0201", "E0408", "E0502", "E0504", "0108", "0304"]
    fmt = "%Y-%m-%dT%H:%M:%S+00:00"
    frame = pd.DataFrame(
        {
            "id": [f"B{i:07d}" for i in range(n)],
            "type": rng.choice(codes, n),
            "reported": reported.dt.strftime(fmt),
            "closed": closed.dt.strftime(fmt).fillna(""),
            "due": (reported + pd.Timedelta(hours=72)).dt.strftime(fmt),
            "state": np.where(closed_mask, "done", "open"),
            "lon": np.round(lon, 7),
            "lat": np.round(lat, 7),
        }
    )
    frame.to_csv(path, index=False)
    return {
        "source": "bench",
        "code_prefix": "BN",
        "columns": {
            "external_id": "id",
            "category": "type",
            "reported_at": "reported",
            "closed_at": "closed",
            "due_at": "due",
            "state": "state",
            "lon": "lon",
            "lat": "lat",
            "description": "type",
        },
        "time_format": None,
        "categories": {c: c for c in codes},
        "states": {"done": "closed", "open": "dispatched"},
    }


def timed(fn, repeat: int = 1) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--port", type=int, default=5488)
    parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of the city-zoom heatmap.")
    args = parser.parse_args()
    results = []
    with db.bench_database(args.port, "gridkit_bench_incidents") as (url, where), tempfile.TemporaryDirectory() as tmp:
        progress(f"database: {where}")
        engine = db.make_engine(url)
        with Session(engine) as session, session.begin():
            session.execute(text("SET LOCAL work_mem = '64MB'"))
            build_city(session)
            progress("city built: 10,000 base cells, 100 work cells")
            results.append(_intake(session, args.cases, Path(tmp) / "cases.csv"))
            results.append(_bench_reports(session, args))
            results += _heatmaps(session, args.explain)
            results += _evaluations(session)
            session.rollback()
        engine.dispose()
    print()
    print(f"{'measure':50} {'gridkit':24} {'baseline (same run)':38} {'ratio':26} target")
    for row in results:
        print(f"{row[0]:50} {row[1]:24} {row[2]:38} {row[3]:26} {row[4]}")


def _bench_reports(session: Session, args) -> tuple:
    """Single reports until the coordinator is known, against a bare INSERT; return the table row."""
    single, insert_only = _reports(session, args.reports)
    return (
        "report → coordinator known, p50 / p95 (ms)",
        f"{np.percentile(single, 50):.1f} / {np.percentile(single, 95):.1f}",
        f"bare INSERT p95 {np.percentile(insert_only, 95):.2f}",
        f"{np.percentile(single, 95) / np.percentile(insert_only, 95):.0f}×",
        "-",
    )


def _intake(session: Session, n: int, csv_path: Path) -> tuple:
    """Write n cases, COPY them raw into a text table, then import them; return the table row."""
    mapping = make_cases(n, csv_path)
    progress(f"{n:,} cases written to {csv_path} ({csv_path.stat().st_size / 1e6:.0f} MB)")
    raw = csv_path.read_text()
    session.execute(
        text(
            "CREATE TEMP TABLE raw_cases (id text, type text, reported text, closed text, "
            "due text, state text, lon text, lat text)"
        )
    )
    (t_raw,), _ = timed(lambda: _raw_copy(session, raw))
    progress(f"raw COPY: {t_raw:.1f} s")
    (t_import,), summary = timed(lambda: import_incidents(session, csv_path, mapping))
    progress(f"import_incidents: {t_import:.1f} s, assigned {summary['assigned']:,}")
    session.execute(text("ANALYZE incident"))
    session.execute(text("ANALYZE incident_heat"))
    session.execute(text("ANALYZE incident_eval"))
    return (
        "bulk intake (rows/s)",
        f"{n / t_import:,.0f}",
        f"raw COPY {n / t_raw:,.0f}",
        f"{t_import / t_raw:.1f}× the raw COPY time",
        "-",
    )


def _heatmaps(session: Session, explain: bool) -> list[tuple]:
    """Heatmaps at city zoom and closer: against raw points shipped, and against counting the cases."""
    span = BLOCKS * SIDE * CELL
    city = f"{LON0 - 0.01},{LAT0 - 0.01},{LON0 + span + 0.01},{LAT0 + span + 0.01}"
    raw_times, raw_payload = timed(lambda: _raw_points(session), 1)
    raw_kb = len(raw_payload) / 1024
    rows = []
    for label, zoom, extra in (
        ("heatmap, city zoom 12 (all cases)", 12, {}),
        ("heatmap, city zoom 12, the last 365 days", 12, {"from_": (END - timedelta(days=365)).isoformat()}),
        (
            "heatmap, city zoom 12, one category, last 30 days",
            12,
            {"category": "E0408", "from_": (END - timedelta(days=30)).isoformat()},
        ),
        ("heatmap, zoom 14, a 1280×800 px view", 14, {}),
        ("heatmap, zoom 16, a 1280×800 px view", 16, {}),
    ):
        view = city if zoom <= 12 else _view(zoom)
        filters = parse_filters(bbox=view, zoom=zoom, **extra)
        times, data = timed(lambda f=filters: json.dumps(heatmap(session, f)), 5)
        counted, _ = timed(lambda f=filters: density.count_cases(session, f), 3)
        ms, kb = statistics.median(times) * 1000, len(data) / 1024
        rows.append(
            (
                label,
                f"{ms:.0f} ms, {kb:.0f} kB",
                f"count cases {statistics.median(counted) * 1000:.0f} ms; raw {raw_kb:,.0f} kB",
                f"{statistics.median(counted) * 1000 / ms:.1f}× faster, {raw_kb / kb:,.0f}× smaller",
                "ok" if ms <= 300 and kb <= 500 else "MISSED (≤ 300 ms, ≤ 500 kB)",
            )
        )
        if explain and zoom == 12 and not extra:
            _explain_heatmap(session, filters)
    progress(f"raw points: {raw_times[0] * 1000:.0f} ms, {raw_kb:,.0f} kB")
    return rows


def _evaluations(session: Session) -> list[tuple]:
    """Evaluation over a year by each grouping, against counting every case (the rollup bypassed)."""
    rows = []
    year = {"from_": END - timedelta(days=365), "to": END}
    for by in ("department", "work-cell", "community", "coordinator"):
        times, data = timed(lambda b=by: evaluate(session, by=b, **year), 3)
        counted, _ = timed(lambda b=by: _evaluate_counting(session, b, year), 1)
        s = statistics.median(times)
        rows.append(
            (
                f"evaluation over a year by {by}",
                f"{s * 1000:.0f} ms",
                f"counting cases {counted[0] * 1000:.0f} ms ({data['total']['cases']:,} cases)",
                f"{counted[0] / s:.1f}× faster" + (f", p90 of {data['p90_sample']}" if data["p90_sample"] else ""),
                "ok" if s <= 1 else "MISSED (≤ 1 s)",
            )
        )
    return rows


def _evaluate_counting(session: Session, by: str, year: dict) -> dict:
    """The same evaluation with no whole day read from the rollup and p90 over every case."""
    saved = evaluate_module._whole_days, evaluate_module.P90_ALL_MAX
    long_ago = datetime(1900, 1, 1).date()
    evaluate_module._whole_days = lambda start, end: (start and long_ago, long_ago)
    evaluate_module.P90_ALL_MAX = 10**12
    try:
        return evaluate(session, by=by, **year)
    finally:
        evaluate_module._whole_days, evaluate_module.P90_ALL_MAX = saved


def _explain_heatmap(session: Session, filters: dict) -> None:
    """Print the plan of the rollup query behind the city-zoom heatmap."""
    size_shift = 13 - filters["zoom"]
    plan = session.execute(
        text(
            "EXPLAIN (ANALYZE, BUFFERS) SELECT h.ix >> :s AS ix, h.iy >> :s AS iy, sum(h.n) FROM incident_heat h "
            "WHERE h.level = 13 GROUP BY 1, 2"
        ),
        {"s": size_shift},
    ).scalars()
    print("\n".join(plan))


def _view(zoom: int) -> str:
    """Return the bbox of a 1280×800 px map view at `zoom` around the city's centre."""
    centre = BLOCKS * SIDE * CELL / 2
    half_w, half_h = 640 * 360 / (256 * 2**zoom), 400 * 360 / (256 * 2**zoom)
    return f"{LON0 + centre - half_w},{LAT0 + centre - half_h},{LON0 + centre + half_w},{LAT0 + centre + half_h}"


def _raw_copy(session: Session, raw: str) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy("COPY raw_cases FROM STDIN WITH (FORMAT csv, HEADER true)") as c:
        c.write(raw)


def _reports(session: Session, n: int) -> tuple[list[float], list[float]]:
    """Time n single reports carried to a known coordinator, and n bare incident INSERTs."""
    rng = np.random.default_rng(11)
    span = BLOCKS * SIDE * CELL
    single, bare = [], []
    for i in range(n):
        lon, lat = LON0 + rng.random() * span, LAT0 + rng.random() * span
        t0 = time.perf_counter()
        case = wf.report_incident(
            session, lon=lon, lat=lat, description="bench", category="E0103", actor=ADMIN, key=f"bench-{i}"
        ).incident
        wf.accept(session, case.id, ADMIN)
        wf.classify(session, case.id, ADMIN, category="E0103")
        wf.dispatch(session, case.id, ADMIN)
        assert case.coordinator_id is not None
        single.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        session.execute(
            text(
                "INSERT INTO incident (code, status, geom, reported_at) VALUES "
                "(:c, 'reported', ST_SetSRID(ST_MakePoint(:x, :y), 4490), now())"
            ),
            {"c": f"BARE{i}", "x": lon, "y": lat},
        )
        bare.append((time.perf_counter() - t0) * 1000)
    return single, bare


def _raw_points(session: Session) -> str:
    rows = session.execute(text("SELECT ST_X(geom), ST_Y(geom) FROM incident WHERE geom IS NOT NULL")).all()
    return json.dumps([[round(x, 6), round(y, 6)] for x, y in rows])


if __name__ == "__main__":
    main()
