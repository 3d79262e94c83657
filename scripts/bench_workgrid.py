"""Benchmark: publishing a work grid over 10,000 base cells with 5,000,000 residents, and `whois`.

Targets (issue 4): publish ≤ 2 s; whois p95 ≤ 2 ms in process. Each target is measured next to a
baseline from the same run:
- publish vs "store copies": materialising every resident's work cell, which is what a design
  that keeps department/work cell on subject rows would have to do at each publish;
- whois (one SQL round trip) vs a naive lookup: one query for the base cell, then one per
  department for its work cell and one for its coordinators.

Runs in a throwaway private cluster under /tmp (or GRIDKIT_DATABASE_URL's database, inside a
transaction that is rolled back). Usage: .venv/bin/python scripts/bench_workgrid.py [--residents N]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from gridkit import db  # noqa: E402
from gridkit.grids import work  # noqa: E402

X0, Y0 = 114.0, 22.5
CELL = 0.001  # ~100 m
SIDE = 100  # 100 × 100 = 10,000 base cells, 100 communities of 10 × 10
DEPTS = ("100001", "200001", "300001")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build(session: Session, residents: int) -> None:
    """Admin units, 10,000 base cells, 3 departments with published work grids, residents."""
    session.execute(text("SET LOCAL synchronous_commit = off"))
    span = SIDE * CELL
    session.execute(
        text(f"""
        INSERT INTO admin_unit (code, name, level, parent_code, geom) VALUES
        ('440300', '深圳市', 'city', NULL, ST_Multi(ST_MakeEnvelope({X0}, {Y0}, {X0 + span}, {Y0 + span}, 4490))),
        ('440304', '福田区', 'district', '440300', ST_Multi(ST_MakeEnvelope({X0}, {Y0}, {X0 + span}, {Y0 + span}, 4490))),
        ('440304001', '园岭街道', 'street', '440304', ST_Multi(ST_MakeEnvelope({X0}, {Y0}, {X0 + span}, {Y0 + span}, 4490)))""")
    )
    session.execute(
        text(f"""
        INSERT INTO admin_unit (code, name, level, parent_code, geom)
        SELECT '440304001' || lpad((cy * 10 + cx + 1)::text, 3, '0'), '社区' || (cy * 10 + cx + 1), 'community', '440304001',
               ST_Multi(ST_MakeEnvelope({X0} + cx * 10 * {CELL}, {Y0} + cy * 10 * {CELL},
                                        {X0} + (cx + 1) * 10 * {CELL}, {Y0} + (cy + 1) * 10 * {CELL}, 4490))
        FROM generate_series(0, 9) cx, generate_series(0, 9) cy""")
    )
    session.execute(
        text(
            "INSERT INTO base_grid_edition (name, status, published_at) VALUES ('bench', 'published', now() - interval '1 day')"
        )
    )
    # Cell (i, j) of community (cx, cy): sequence numbered north→south, west→east.
    session.execute(
        text(f"""
        INSERT INTO base_cell (edition_id, code, community_code, geom)
        SELECT 1, '440304001' || lpad((cy * 10 + cx + 1)::text, 3, '0') || lpad(((9 - j) * 10 + i + 1)::text, 3, '0'),
               '440304001' || lpad((cy * 10 + cx + 1)::text, 3, '0'),
               ST_MakeEnvelope({X0} + (cx * 10 + i) * {CELL}, {Y0} + (cy * 10 + j) * {CELL},
                               {X0} + (cx * 10 + i + 1) * {CELL}, {Y0} + (cy * 10 + j + 1) * {CELL}, 4490)
        FROM generate_series(0, 9) cx, generate_series(0, 9) cy, generate_series(0, 9) i, generate_series(0, 9) j""")
    )
    for n, dept in enumerate(DEPTS):
        work.add_department(session, dept, f"部门{n + 1}", jurisdiction="440304")
        draft = work.start_draft(session, dept, by="bench")
        # 5 work cells per community for the first department (two rows each), fewer for the others.
        rows_per_cell = (2, 5, 10)[n]
        session.execute(
            text(f"""
            INSERT INTO work_cell (version_id, code)
            SELECT :v, :d || community_code || lpad((((right(code, 3)::int - 1) / 10) / {rows_per_cell} + 1)::text, 2, '0')
            FROM base_cell GROUP BY 2"""),
            {"v": draft.id, "d": dept},
        )
        session.execute(
            text(f"""
            INSERT INTO work_cell_member (version_id, base_cell_id, work_cell_id)
            SELECT :v, b.id, w.id FROM base_cell b JOIN work_cell w ON w.version_id = :v
             AND w.code = :d || b.community_code || lpad((((right(b.code, 3)::int - 1) / 10) / {rows_per_cell} + 1)::text, 2, '0')"""),
            {"v": draft.id, "d": dept},
        )
        session.execute(
            text(
                "INSERT INTO coordinator (name, phone) SELECT '网格员' || w.id, '138' || lpad(w.id::text, 8, '0') "
                "FROM work_cell w WHERE w.version_id = :v"
            ),
            {"v": draft.id},
        )
        session.execute(
            text(
                "INSERT INTO coordinator_assignment (coordinator_id, work_cell_id) "
                "SELECT c.id, w.id FROM work_cell w JOIN coordinator c ON c.name = '网格员' || w.id "
                "WHERE w.version_id = :v"
            ),
            {"v": draft.id},
        )
        work.publish(session, draft, by="bench")
    log(f"inserting {residents:,} residents")
    session.execute(
        text("""
        WITH r AS (INSERT INTO resident (id_number_hash, id_number_masked, name, population_type)
                   SELECT md5(i::text), '4403**********0000', '居民', 'registered'
                   FROM generate_series(1, :n) i RETURNING id)
        INSERT INTO resident_cell (resident_id, base_cell_id) SELECT id, 1 + (id % 10000) FROM r"""),
        {"n": residents},
    )
    session.execute(text("ANALYZE"))


def bench_publish(session: Session) -> list[tuple]:
    """Publish a new version of department 1 that moves 100 base cells; compare with storing copies."""
    dept = DEPTS[0]
    draft = work.start_draft(session, dept, by="bench")
    moved = session.scalars(
        text("SELECT b.code FROM base_cell b WHERE right(b.code, 3)::int BETWEEN 11 AND 11 ORDER BY b.code")
    ).all()
    # Move the first cell of row 2 in every community to the work cell of row 1 (stays connected).
    for code in moved:
        session.execute(
            text(
                "UPDATE work_cell_member m SET work_cell_id = w.id FROM work_cell w, base_cell b "
                "WHERE m.version_id = :v AND b.id = m.base_cell_id AND b.code = :c "
                "AND w.version_id = :v AND w.code = :d || b.community_code || '01'"
            ),
            {"v": draft.id, "c": code, "d": dept},
        )
    session.flush()
    t0 = time.perf_counter()
    sp = session.begin_nested()
    work.publish(session, draft, by="bench")
    sp.commit()
    publish_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # The rejected design: a copy of department/work cell on every subject row, rewritten at publish.
    session.execute(
        text(
            "CREATE TEMP TABLE resident_work_cell AS SELECT r.resident_id, m.work_cell_id FROM resident_cell r "
            "JOIN work_cell_member m ON m.base_cell_id = r.base_cell_id AND m.version_id = :v"
        ),
        {"v": draft.id},
    )
    copies_s = time.perf_counter() - t0
    return [
        ("publish (membership + cached union, no subject rows touched)", publish_s, copies_s / publish_s),
        ("baseline: rewrite each resident's work cell copy", copies_s, 1.0),
    ]


def naive_whois(session: Session, lon: float, lat: float) -> dict:
    """The straightforward lookup: base cell, then per department its version, work cell, coordinators."""
    cell = session.execute(
        text(
            "SELECT b.code FROM base_cell b JOIN base_grid_edition e ON e.id = b.edition_id AND e.status = 'published' "
            "WHERE ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) ORDER BY b.code LIMIT 1"
        ),
        {"x": lon, "y": lat},
    ).scalar()
    out = {"base_cell": cell, "departments": []}
    for dept in session.scalars(text("SELECT code FROM department ORDER BY code")).all():
        version = work.current_version(session, dept)
        wc = session.execute(
            text(
                "SELECT w.id, w.code FROM work_cell w JOIN work_cell_member m ON m.work_cell_id = w.id "
                "JOIN base_cell b ON b.id = m.base_cell_id WHERE m.version_id = :v AND b.code = :c"
            ),
            {"v": version.id, "c": cell},
        ).first()
        coordinators = session.execute(
            text(
                "SELECT c.name FROM coordinator_assignment a JOIN coordinator c ON c.id = a.coordinator_id "
                "WHERE a.work_cell_id = :w"
            ),
            {"w": wc.id if wc else None},
        ).all()
        out["departments"].append((dept, wc.code if wc else None, [c.name for c in coordinators]))
    return out


def bench_whois(session: Session, n: int = 2000) -> list[tuple]:
    """Latency of responsibility_at over random points, in process, against the naive lookup."""
    rng = random.Random(42)
    points = [(X0 + rng.random() * SIDE * CELL, Y0 + rng.random() * SIDE * CELL) for _ in range(n)]
    for lon, lat in points[:50]:  # warm the caches and plans
        work.responsibility_at(session, lon, lat)
        naive_whois(session, lon, lat)
    results = []
    for label, func in (
        ("whois: responsibility_at (one round trip)", work.responsibility_at),
        ("baseline: naive lookup (1 + 3 per department queries)", naive_whois),
    ):
        times = []
        for lon, lat in points:
            t0 = time.perf_counter()
            answer = func(session, lon, lat)
            times.append((time.perf_counter() - t0) * 1000)
            assert answer["base_cell"] is not None
        times.sort()
        results.append(
            (label, statistics.median(times), times[int(0.95 * len(times)) - 1], times[int(0.99 * len(times)) - 1])
        )
    # Both must agree on every answer.
    for lon, lat in points[:200]:
        a = work.responsibility_at(session, lon, lat)
        b = naive_whois(session, lon, lat)
        assert a["base_cell"] == b["base_cell"]
        assert [(d["dept"], d["work_cell"]) for d in a["departments"]] == [(d, w) for d, w, _ in b["departments"]]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, default=5_000_000)
    args = parser.parse_args()
    with db.bench_database(5497) as (url, where):
        log(f"database: {where}")
        engine = db.make_engine(url)
        try:
            with Session(engine) as session:
                session.begin()
                t0 = time.perf_counter()
                build(session, args.residents)
                log(
                    f"built 10,000 base cells, 3 work grids, {args.residents:,} residents in "
                    f"{time.perf_counter() - t0:.1f} s"
                )
                publish_rows = bench_publish(session)
                whois_rows = bench_whois(session)
                session.rollback()
        finally:
            engine.dispose()
    print()
    print(f"{'benchmark':62} {'seconds':>9} {'speed-up vs baseline':>21}")
    for label, seconds, ratio in publish_rows:
        print(f"{label:62} {seconds:9.3f} {ratio:20.1f}×")
    print()
    print(f"{'benchmark':62} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'p95 ratio':>10}")
    base_p95 = whois_rows[1][2]
    for label, p50, p95, p99 in whois_rows:
        print(f"{label:62} {p50:8.2f} {p95:8.2f} {p99:8.2f} {base_p95 / p95:9.1f}×")
    print()
    publish_s = publish_rows[0][1]
    whois_p95 = whois_rows[0][2]
    print(f"publish_s={publish_s:.3f} (target ≤ 2) whois_p95_ms={whois_p95:.3f} (target ≤ 2)")


if __name__ == "__main__":
    main()
