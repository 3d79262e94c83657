#!/usr/bin/env python
"""Benchmark: the role workspaces at city scale, every page and JSON endpoint each role uses.

    .venv/bin/python scripts/bench_pages.py                                      # full scale
    .venv/bin/python scripts/bench_pages.py --residents 100000 --cases 30000 --audit 20000   # reduced

A throwaway private cluster under /tmp (committed there: the server reads it from another process)
holding the city of bench_workgrid.py (10,000 base cells in 100 communities, three departments'
published work grids with 800 coordinators, `--residents` residents), `--cases` cases over the last
year imported as bench_incidents.py does (90 % closed, the rest dispatched), an account per
coordinator and `--audit` audit rows. `gridkit serve` (waitress, as bench_web.py) serves it; the
benchmark signs in as a coordinator, a supervisor, an analyst, a planner and an administrator and
asks each page `--requests` times, one request after another (server time, no queueing).

Each page is printed with p50 / p95 and its ratio to a baseline measured in the same run: the
page's main SQL query run alone through psycopg (the same rows, `--requests` times), so the ratio
shows what the web, the ORM and the page's other queries add. A list's baseline is its plain query
as written before 2026-12-05 (whole rows with OFFSET, a coordinator's work cells as IN (subquery)):
a ratio under 1 is what the lists' rewrite and indexes gained. A second table gives absolute times
against the target: p95 ≤ 300 ms. The tables are vacuumed after the build, as autovacuum keeps a
city's. Full scale takes about 3 minutes on 2 cores (1 minute of it the build); `--only TEXT`
measures the pages whose label holds TEXT.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import httpload  # noqa: E402
from bench_web import Server, load_script, log, pct  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.incidents.categories import seed_categories  # noqa: E402
from gridkit.incidents.importer import import_incidents  # noqa: E402
from gridkit.users import add_user  # noqa: E402

PASSWORD = "bench-password-1"
ROLES = ("coordinator", "supervisor", "analyst", "planner", "admin")
TARGET_MS = 300.0
OPEN = "('closed', 'rejected', 'duplicate')"
# The rows of a case list (gridkit.incidents.queries.list_incidents), `{where}` and `{order}` filled in.
CASE_ROWS = """
SELECT i.id, i.code, i.status, i.category_code, c.name AS category_name, i.severity, i.dept_code,
       b.code AS base_cell, b.community_code AS community, w.code AS work_cell, i.coordinator_id,
       i.reported_at, i.step_deadline, i.deadline, i.rework_count, i.revision, i.description,
       ST_X(i.geom) AS lon, ST_Y(i.geom) AS lat
FROM incident i LEFT JOIN base_cell b ON b.id = i.base_cell_id
LEFT JOIN incident_category c ON c.code = i.category_code
LEFT JOIN work_cell w ON w.id = i.work_cell_id
WHERE {where} ORDER BY {order} LIMIT {limit} OFFSET {offset}"""
MINE = (
    "(i.coordinator_id = {c} OR i.work_cell_id IN "
    "(SELECT work_cell_id FROM coordinator_assignment WHERE coordinator_id = {c}))"
)


# -- the city --------------------------------------------------------------------------------------


def build(session: Session, args, tmp: Path) -> dict:
    """Build the city, its cases, accounts and audit rows; return the ids and codes the pages ask for."""
    workgrid = load_script("bench_workgrid")
    workgrid.build(session, args.residents)
    # The grids were in force before the year of cases: a case gets its work cell and coordinator.
    session.execute(text("UPDATE base_grid_edition SET published_at = '2024-01-01'"))
    session.execute(text("UPDATE work_grid_version SET valid_from = '2024-01-01', published_at = '2024-01-01'"))
    seed_categories(session)
    log(f"city built: 10,000 base cells, {args.residents:,} residents")
    cases = load_script("bench_incidents")
    csv = tmp / "cases.csv"
    mapping = cases.make_cases(
        args.cases, csv, origin=(workgrid.X0, workgrid.Y0), days=365, end=datetime.now(UTC).replace(microsecond=0)
    )
    summary = import_incidents(session, csv, mapping)
    log(f"{args.cases:,} cases imported, {summary['assigned']:,} assigned")
    mine = session.execute(
        text(f"""
        SELECT a.coordinator_id, min(w.code) FROM incident i
        JOIN coordinator_assignment a ON a.work_cell_id = i.work_cell_id JOIN work_cell w ON w.id = a.work_cell_id
        WHERE i.status NOT IN {OPEN} GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1""")
    ).one()
    for role in ROLES:
        add_user(session, f"bench_{role}", role, password=PASSWORD)
    session.execute(text("UPDATE app_user SET coordinator_id = :c WHERE name = 'bench_coordinator'"), {"c": mine[0]})
    # Every other coordinator has an account too (no password: never signs in here).
    session.execute(
        text(
            "INSERT INTO app_user (name, role, coordinator_id) SELECT 'coordinator' || id, 'coordinator', id "
            "FROM coordinator WHERE id <> :c"
        ),
        {"c": mine[0]},
    )
    session.execute(
        text("""
        INSERT INTO audit_log (at, actor, action, object_type, object_id, detail)
        SELECT now() - (g || ' minutes')::interval, 'coordinator' || (g % 800 + 1),
               (ARRAY['personal_data.read', 'search', 'export', 'user.add'])[g % 4 + 1], 'work_cell', g::text,
               jsonb_build_object('residents', g % 200, 'via', 'web')
        FROM generate_series(1, :n) g"""),
        {"n": args.audit},
    )
    session.execute(text("ANALYZE"))
    return _facts(session, mine)


def _facts(session: Session, mine) -> dict:
    one = session.execute
    return {
        "coordinator": mine[0],
        "work_cell": mine[1],
        "my_case": one(text(f"SELECT min(id) FROM incident i WHERE {MINE.format(c=mine[0])}")).scalar(),
        "case": one(
            text("SELECT id FROM incident ORDER BY id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM incident)")
        ).scalar(),
        "open": one(text(f"SELECT count(*) FROM incident WHERE status NOT IN {OPEN}")).scalar(),
        "all": one(text("SELECT count(*) FROM incident")).scalar(),
        "mine_open": one(
            text(f"SELECT count(*) FROM incident i WHERE status NOT IN {OPEN} AND {MINE.format(c=mine[0])}")
        ).scalar(),
        "version": one(
            text("SELECT id FROM work_grid_version WHERE status = 'published' ORDER BY dept_code LIMIT 1")
        ).scalar(),
        "audit_mid": one(text("SELECT max(id) / 2 FROM audit_log")).scalar(),
        "users": one(text("SELECT count(*) FROM app_user")).scalar(),
        # The OGC API's deep page of cases: its offset, and the last code before it (what a next link carries).
        "ogc_after": one(
            text("SELECT code FROM incident ORDER BY code OFFSET (SELECT count(*) * 4 / 5 FROM incident) - 1 LIMIT 1")
        ).scalar(),
    }


# -- the pages and their baselines -----------------------------------------------------------------


def _cases_sql(where: str, order: str, limit: int = 25, offset: int = 0) -> str:
    return CASE_ROWS.format(where=where, order=order, limit=limit, offset=offset)


def _deep(total: int, size: int = 25) -> tuple[int, int]:
    """Return (page, offset) of a page 80 % of the way down a list of `total` rows."""
    page = max(1, int(total * 0.8) // size)
    return page, (page - 1) * size


def _searches() -> list[tuple[str, str, str, str]]:
    """The supervisor's case searches: a code, a Chinese text, two ASCII characters (none for the trigrams)."""
    texts = (("B0001", "B0001", ""), ("井盖", "%E4%BA%95%E7%9B%96", " (text)"), ("A1", "A1", " (two ASCII)"))
    return [
        ("supervisor", f"cases, search ?q={q}{note}", f"/supervisor/cases?open=0&q={quoted}",
         _cases_sql(f"(i.code ILIKE '%{q}%' OR i.description ILIKE '%{q}%')", "i.reported_at DESC, i.id DESC"))
        for q, quoted, note in texts
    ]  # fmt: skip


def pages(f: dict) -> list[tuple[str, str, str, str]]:
    """Return (role, label, path, baseline SQL) of every page measured."""
    c, vid = f["coordinator"], f["version"]
    mine = f"i.status NOT IN {OPEN} AND {MINE.format(c=c)}"
    todo = "(i.status <> 'dispatched'), i.step_deadline NULLS LAST, i.id"
    open_ = f"i.status NOT IN {OPEN}"
    my_deep, my_off = _deep(f["mine_open"])
    sup_deep, sup_off = _deep(f["open"])
    all_deep, all_off = _deep(f["all"])
    case_sql = f"SELECT * FROM incident WHERE id = {f['case']}"
    city = "113.99,22.49,114.11,22.61"
    bbox = "114.045,22.545,114.055,22.555"
    return [
        ("coordinator", "my work cells /coordinator", "/coordinator", _my_cells_sql(c)),
        ("coordinator", "my cases, page 1", "/coordinator/cases", _cases_sql(mine, todo)),
        ("coordinator", f"my cases, page {my_deep}", f"/coordinator/cases?page={my_deep}",
         _cases_sql(mine, todo, offset=my_off)),
        ("coordinator", "my cases, search ?q=B000", "/coordinator/cases?q=B000",
         _cases_sql(f"{mine} AND (i.code ILIKE '%B000%' OR i.description ILIKE '%B000%')", todo)),
        ("coordinator", "JSON my cases (50)", "/api/incidents?open=1&order=todo",
         _cases_sql(mine, todo, limit=50)),
        ("coordinator", "JSON my work cell (residents)", f"/api/work-cells/{f['work_cell']}",
         _cell_sql(f["work_cell"])),
        ("coordinator", "JSON one of my cases", f"/api/incidents/{f['my_case']}",
         f"SELECT * FROM incident WHERE id = {f['my_case']}"),
        ("supervisor", "dashboard /supervisor", "/supervisor",
         _cases_sql(f"{open_} AND i.step_deadline < now()", "i.step_deadline", limit=50)),
        ("supervisor", "cases, page 1 (open)", "/supervisor/cases",
         _cases_sql(open_, "i.reported_at DESC, i.id DESC")),
        ("supervisor", f"cases, page {sup_deep} (open)", f"/supervisor/cases?page={sup_deep}",
         _cases_sql(open_, "i.reported_at DESC, i.id DESC", offset=sup_off)),
        ("supervisor", "cases, all, page 1", "/supervisor/cases?open=0",
         _cases_sql("TRUE", "i.reported_at DESC, i.id DESC")),
        ("supervisor", f"cases, all, page {all_deep}", f"/supervisor/cases?open=0&page={all_deep}",
         _cases_sql("TRUE", "i.reported_at DESC, i.id DESC", offset=all_off)),
        ("supervisor", "cases, all, oldest first", "/supervisor/cases?open=0&order=oldest",
         _cases_sql("TRUE", "i.reported_at, i.id")),
        ("supervisor", "cases, by deadline", "/supervisor/cases?order=deadline",
         _cases_sql(open_, "i.step_deadline NULLS LAST, i.id")),
        ("supervisor", "cases, overdue", "/supervisor/cases?overdue=1",
         _cases_sql(f"{open_} AND i.step_deadline < now()", "i.reported_at DESC, i.id DESC")),
        *_searches(),
        ("supervisor", "case page", f"/supervisor/incidents/{f['case']}", case_sql),
        ("supervisor", "JSON case", f"/api/incidents/{f['case']}", case_sql),
        ("supervisor", "JSON cases offset 10,000", "/api/incidents?offset=10000",
         _cases_sql("TRUE", "i.reported_at DESC, i.id DESC", limit=50, offset=10000)),
        ("supervisor", "JSON heatmap, city zoom 12", f"/api/incidents/heatmap?bbox={city}&zoom=12",
         "SELECT h.ix >> 1, h.iy >> 1, sum(h.n) FROM incident_heat h WHERE h.level = 13 GROUP BY 1, 2"),
        ("supervisor", "JSON choropleth by community", f"/api/incidents/choropleth?bbox={city}&zoom=12",
         "SELECT community_code, sum(n) FROM incident_heat WHERE level = 13 GROUP BY 1"),
        ("analyst", "page /analyst/", "/analyst/", "SELECT code, name, level FROM admin_unit ORDER BY code"),
        ("analyst", "JSON report population by community", "/analyst/report.json?name=population&by=community",
         _residents_sql()),
        ("analyst", "JSON choropleth residents by cell", "/analyst/choropleth.json?count=residents&by=cell",
         "SELECT b.code, s.residents, ST_AsGeoJSON(b.geom, 6) FROM base_cell b "
         "LEFT JOIN resident_cell_summary s ON s.base_cell_id = b.id ORDER BY b.code"),
        ("supervisor", "dashboard by coordinator", "/supervisor?by=coordinator",
         "SELECT coordinator_id, sum(cases) FROM incident_eval GROUP BY 1"),
        ("planner", "page /planner", "/planner", "SELECT * FROM work_grid_version ORDER BY dept_code, number"),
        ("planner", "page a version", f"/planner/version/{vid}", f"SELECT * FROM work_cell WHERE version_id = {vid}"),
        ("planner", "JSON version overview", f"/api/planner/versions/{vid}",
         f"SELECT * FROM work_cell WHERE version_id = {vid}"),
        ("planner", "JSON cells in a 1 km view", f"/api/planner/versions/{vid}/cells?bbox={bbox}",
         f"SELECT code, ST_AsGeoJSON(geom) FROM base_cell WHERE geom && ST_MakeEnvelope({bbox}, 4490)"),
        ("planner", "JSON search ?q=社区5", "/api/search?q=%E7%A4%BE%E5%8C%BA5",
         "SELECT code, name FROM admin_unit WHERE name LIKE '%社区5%' ORDER BY code LIMIT 20"),
        *_ogc_pages(f),
        ("admin", "users and audit /admin", "/admin", _admin_sql()),
        ("admin", "users page 10", "/admin?page=10", _admin_sql(offset=450)),
        ("admin", "find a user ?user=coordinator12", "/admin?user=coordinator12",
         "SELECT * FROM app_user WHERE name ILIKE '%coordinator12%' ORDER BY name LIMIT 50"),
        ("admin", "audit, one action", "/admin?action=export",
         "SELECT * FROM audit_log WHERE action = 'export' ORDER BY id DESC LIMIT 100"),
        ("admin", "audit, older rows", f"/admin?before={f['audit_mid']}",
         f"SELECT * FROM audit_log WHERE id < {f['audit_mid']} ORDER BY id DESC LIMIT 100"),
    ]  # fmt: skip


def _ogc_pages(f: dict) -> list[tuple[str, str, str, str]]:
    """The OGC API's deep page of cases by offset and by its next link; baseline: the plain OFFSET query."""
    off = f["all"] * 4 // 5
    sql = f"SELECT code, ST_AsGeoJSON(geom, 7, 0) FROM incident ORDER BY code LIMIT 100 OFFSET {off}"
    items = "/ogc/collections/incidents/items?limit=100"
    return [
        ("analyst", f"OGC cases, offset {off:,}", f"{items}&offset={off}", sql),
        ("analyst", "OGC cases, the next link there (after)", f"{items}&offset={off}&after={f['ogc_after']}", sql),
    ]


def _my_cells_sql(coordinator: int) -> str:
    return (
        "SELECT w.code, ST_AsGeoJSON(w.geom) FROM coordinator_assignment a JOIN work_cell w ON w.id = a.work_cell_id "
        "JOIN work_grid_version v ON v.id = w.version_id AND v.status = 'published' "
        f"WHERE a.coordinator_id = {coordinator}"
    )


def _cell_sql(code: str) -> str:
    return f"""
    SELECT r.id, r.name, r.id_number_masked, r.phone, r.household FROM work_cell w
    JOIN work_grid_version v ON v.id = w.version_id AND v.status = 'published'
    JOIN work_cell_member m ON m.work_cell_id = w.id JOIN resident_cell rc ON rc.base_cell_id = m.base_cell_id
    JOIN resident r ON r.id = rc.resident_id WHERE w.code = '{code}' ORDER BY r.id LIMIT 200"""


def _residents_sql() -> str:
    return (
        "SELECT b.community_code, count(*) FROM resident_cell rc JOIN base_cell b ON b.id = rc.base_cell_id GROUP BY 1"
    )


def _admin_sql(offset: int = 0) -> str:
    return (
        f"(SELECT id, name FROM app_user ORDER BY name LIMIT 50 OFFSET {offset}) "
        "UNION ALL (SELECT id, actor FROM audit_log ORDER BY id DESC LIMIT 100)"
    )


# -- the measurement -------------------------------------------------------------------------------


def baseline(dsn: str, sql: str, requests: int) -> tuple[list[float], int]:
    """Run `sql` alone `requests` times (after one warm-up) through psycopg; return (ms each, rows)."""
    times, rows = [], 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql).fetchall()
        for _ in range(requests):
            t0 = time.perf_counter()
            rows = len(conn.execute(sql).fetchall())
            times.append((time.perf_counter() - t0) * 1000)
    return times, rows


def measure(server: Server, dsn: str, facts: dict, requests: int, only: str | None) -> list[dict]:
    """Ask every page `requests` times as its role and run its baseline; return one result per page."""
    headers = {role: httpload.sign_in(server.port, f"bench_{role}", PASSWORD) for role in ROLES}
    results = []
    for role, label, path, sql in pages(facts):
        if only and only not in label:
            continue
        httpload.sequential(server.port, [path], headers[role])  # warm up
        answers = httpload.sequential(server.port, [path] * requests, headers[role])
        bad = [status for _, status, _ in answers if status != 200]
        if bad:
            raise SystemExit(f"{role} {path}: status {bad[:3]}")
        base, rows = baseline(dsn, sql, requests)
        lat = [ms for ms, _, _ in answers]
        results.append({"role": role, "label": label, "lat": lat, "base": base, "rows": rows, "size": answers[-1][2]})
        log(f"{role:11} {label:44} p95 {pct(lat, 95):8.1f} ms  (baseline {pct(base, 95):7.1f} ms)")
    return results


def print_tables(results: list[dict]) -> None:
    print()
    print("(load average during the run: {:.1f}; server time, one client)".format(__import__("os").getloadavg()[0]))
    head = f"{'role':11} {'page':44} {'p50 ms':>8} {'p95 ms':>8} {'base p50':>9} {'base p95':>9} {'ratio':>7}"
    print(head)
    print("-" * len(head))
    for r in results:
        ratio = pct(r["lat"], 95) / max(0.01, pct(r["base"], 95))
        print(
            f"{r['role']:11} {r['label']:44} {statistics.median(r['lat']):8.1f} {pct(r['lat'], 95):8.1f} "
            f"{statistics.median(r['base']):9.1f} {pct(r['base'], 95):9.1f} {ratio:6.1f}×"
        )
    print()
    head = f"{'role':11} {'page':44} {'p95 ms':>8} {'bytes':>10}  target p95 ≤ {TARGET_MS:.0f} ms"
    print(head)
    print("-" * len(head))
    for r in results:
        p95 = pct(r["lat"], 95)
        print(f"{r['role']:11} {r['label']:44} {p95:8.1f} {r['size']:10,}  {'ok' if p95 <= TARGET_MS else 'SLOW'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=1_000_000)
    parser.add_argument("--cases", type=int, default=300_000)
    parser.add_argument("--audit", type=int, default=200_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--port", type=int, default=5644)
    parser.add_argument("--only", help="Measure only the pages whose label holds this text.")
    args = parser.parse_args()
    started = time.perf_counter()
    with db.bench_database(args.port, "gridkit_bench_pages") as (url, where), tempfile.TemporaryDirectory() as tmp:
        log(f"database: {where}")
        engine = db.make_engine(url)
        with Session(engine) as session, session.begin():
            facts = build(session, args, Path(tmp))
        # A city's tables are vacuumed by autovacuum: its visibility map lets lists read ids from indexes alone.
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))
        engine.dispose()
        log(f"built in {time.perf_counter() - started:.0f} s: {facts}")
        dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
        with Server(url) as server:
            results = measure(server, dsn, facts, args.requests, args.only)
    print_tables(results)
    log(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
