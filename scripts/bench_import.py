#!/usr/bin/env python
"""Benchmark of streaming subject imports and of the first assignment of millions of stored residents.

    .venv/bin/python scripts/bench_import.py                    # 1,000,000 rows, 5,000,000 to assign
    .venv/bin/python scripts/bench_import.py --rows 100000 --assign 500000
    .venv/bin/python scripts/bench_import.py --rows 200000 --assign 0 --files buildings   # one file alone
    .venv/bin/python scripts/bench_import.py --rows 1000000 --assign 0 --files components  # the component inventory

Runs in a throwaway private cluster (or GRIDKIT_DATABASE_URL's database, which it fills and empties:
use one nobody else uses). The city: 10 communities of 30 × 30 square base cells (9,000 cells).
Files are generated in a temporary folder: buildings (code, address, floors, lon, lat), residents
with building codes, residents with lon/lat, and the lon/lat file with a bad last row. Residents live in
households of three, as in a register: together in one building (or a few metres apart), 1% of them
elsewhere; `--households scattered` puts every member anywhere (almost every household split over cells:
the files of the runs before 2026-12-04's fourth session). `--files components` adds (it is not in the default
list) a component inventory (`gridkit import components`: 16-digit codes of four categories, lon/lat).

Each import runs in a child process (`gridkit.io.subjects.import_subjects`, committed), so its peak
resident memory (VmHWM) is its own. The baseline for each file, in the same run and also in a child
process, is what PostgreSQL alone needs: a raw COPY of the file into a temporary table of text columns and a
hash join (to building codes, or making the points) counted. The ratio is import seconds / baseline seconds.
"stored" is the same COPY into an ordinary table and the join written to another (CREATE TABLE AS), as the
issue's own figures were taken (COPY 1.6 s, join 3.4 s): a second, looser baseline.
After each import that stored its rows, "floor" is PostgreSQL alone storing those same rows into copies of the
tables and building the schema's keys, indexes and foreign keys (scripts/benchfloor.py): what any import into
gridkit's schema costs the server, the client's reading and checking left out.

Then `--assign` residents are stored (points, phone, household; no cell) and
`assign_subjects(["residents"])` runs end to end (read, compute, write: the residents frozen, their
cells COPYed into `resident_cell`, gridkit.resident_cells) in a child transaction that is rolled back,
for each way of writing the cells (`--variants`, default "hot,narrow"):

- "hot": what gridkit does (the name is the one of the earlier path, heap-only UPDATEs of the wide
  resident rows, which migration 20261204_cell9f replaced): the cells COPYed into the narrow table
  `resident_cell` with its index and foreign keys dropped before and built again after
  (gridkit.spatial.bulk);
- "kept": the same with the index and foreign keys of `resident_cell` kept and updated row by row;
- "narrow": not a gridkit path, a lower bound: the same read and compute, and the cells COPYed into
  a temporary (id, cell) table with its primary key (no WAL, no foreign keys, no index after).

(The variant "rebuilt", the wide rows packed full and updated with all their indexes dropped, measured the
column `resident.base_cell_id`, which no longer exists.)

Each assignment is checked against PostGIS (ST_Covers, smallest code on ties) on a sample of 20,000
residents: the "agree" column. Its parts include "server cpu", the CPU seconds of the session's server
process (not its parallel workers): on a loaded machine less noisy than wall time; and "connection idle",
the seconds no statement was running (the client working alone). `--rows 0` runs the
assignment part alone.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

X0, Y0, D = 114.05, 22.53, 0.001  # as tests/factories.py
COMMUNITIES, ROWS, COLS = 10, 30, 30
KEY = "bench-personal-data-key"


def peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- files -------------------------------------------------------------------------------------------


def citizen_ids(n: int, start: int = 0) -> np.ndarray:
    """Return n distinct valid 18-digit citizen IDs (region 440304, 1000 per birth day from 1950)."""
    from gridkit.standard.ids import citizen_id_check_bytes

    i = np.arange(start, start + n)
    days = np.datetime64("1950-01-01") + (i // 1000).astype("timedelta64[D]")
    ymd = np.char.replace(np.datetime_as_string(days), "-", "")
    first = np.char.add(np.char.add("440304", ymd), np.char.zfill((i % 1000).astype(str), 3))
    digits = np.frombuffer("".join(first.tolist()).encode(), dtype=np.uint8).reshape(n, 17) - 48
    check = citizen_id_check_bytes(digits)  # the import's own rule (gridkit.standard.ids)
    return np.char.add(first, check.view("S1").astype(str))


def points(n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over the city (about 1 % outside every cell)."""
    lon = rng.uniform(X0 - 0.0003, X0 + COMMUNITIES * COLS * D + 0.0003, n)
    lat = rng.uniform(Y0 - 0.0003, Y0 + ROWS * D + 0.0003, n)
    return lon, lat


def write_csv(path: Path, header: list[str], columns: list, chunk: int = 200_000) -> None:
    n = len(columns[0])
    with path.open("w", encoding="utf-8") as f:
        f.write(",".join(header) + "\n")
        for s in range(0, n, chunk):
            parts = [np.asarray(c[s : s + chunk]).astype(str) for c in columns]
            rows = parts[0]
            for p in parts[1:]:
                rows = np.char.add(np.char.add(rows, ","), p)
            f.write("\n".join(rows.tolist()) + "\n")


def make_files(folder: Path, n: int, scattered: bool = False) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    codes = np.char.add("B", np.char.zfill(np.arange(n).astype(str), 8))
    lon, lat = points(n, rng)
    files = {
        "buildings": folder / "buildings.csv",
        "residents_codes": folder / "residents_codes.csv",
        "residents_lonlat": folder / "residents_lonlat.csv",
        "residents_bad_last": folder / "bad_last.csv",
    }
    write_csv(
        files["buildings"],
        ["code", "address", "floors", "lon", "lat"],
        [
            codes,
            np.char.add("测试路", np.arange(n).astype(str)),
            rng.integers(1, 40, n),
            np.round(lon, 7),
            np.round(lat, 7),
        ],
    )
    ids = citizen_ids(n)
    names = np.array(["王小明", "李大力", "赵敏", "钱多多"])[rng.integers(0, 4, n)]
    phones = np.char.add("139", np.char.zfill(rng.integers(0, 10**8, n).astype(str), 8))
    kinds = np.array(["registered", "floating", "户籍", "流动"])[rng.integers(0, 4, n)]
    # Households of three living together, as in a register (and in bench_export.py): one building, or
    # points a few metres apart; 1% of the residents live elsewhere (households split over cells).
    # `scattered`: every member anywhere (almost every household split), the files of earlier runs.
    households = np.char.add("H", (np.arange(n) // 3).astype(str))
    elsewhere = rng.random(n) < (1.0 if scattered else 0.01)
    home = np.repeat(rng.integers(0, n, n // 3 + 1), 3)[:n]
    write_csv(
        files["residents_codes"],
        ["id_number", "name", "phone", "household", "population_type", "building_code"],
        [ids, names, phones, households, kinds, codes[np.where(elsewhere, rng.integers(0, n, n), home)]],
    )
    lon2, lat2 = points(n, rng)
    home_lon, home_lat = np.repeat(lon2[::3], 3)[:n], np.repeat(lat2[::3], 3)[:n]
    lon2 = np.where(elsewhere, lon2, home_lon + rng.uniform(-5e-5, 5e-5, n))
    lat2 = np.where(elsewhere, lat2, home_lat + rng.uniform(-5e-5, 5e-5, n))
    ids2 = citizen_ids(n, start=n)
    write_csv(
        files["residents_lonlat"],
        ["id_number", "name", "phone", "household", "population_type", "lon", "lat"],
        [ids2, names, phones, households, kinds, np.round(lon2, 7), np.round(lat2, 7)],
    )
    data = files["residents_lonlat"].read_bytes()
    last = ids2[-1]
    bad = last[:17] + ("0" if last[17] != "0" else "1")  # a wrong check character on the last row
    files["residents_bad_last"].write_bytes(
        data[: data.rstrip(b"\n").rfind(b"\n") + 1]
        + data[data.rstrip(b"\n").rfind(b"\n") + 1 :].replace(last.encode(), bad.encode())
    )
    return files


def make_components(path: Path, n: int) -> Path:
    """Write n components (code of one of four categories, name on every third row, lon, lat) over the city."""
    rng = np.random.default_rng(3)
    i = np.arange(n)
    categories = np.array(["0101", "0102", "0108", "0301"])
    codes = np.char.add(np.char.add("440304", categories[i % 4]), np.char.zfill((i // 4 + 1).astype(str), 6))
    lon, lat = points(n, rng)
    names = np.where(i % 3 == 0, "上水井盖", "")
    write_csv(path, ["code", "name", "lon", "lat"], [codes, names, np.round(lon, 7), np.round(lat, 7)])
    return path


# -- children ----------------------------------------------------------------------------------------


def child(args) -> dict:
    """Run one measured step in this (child) process and return its numbers."""
    from gridkit import db
    from gridkit.config import Settings

    settings = Settings.from_env()
    started = time.perf_counter()
    if args.child == "import":
        from gridkit.errors import ValidationError
        from gridkit.io.subjects import import_subjects

        try:
            with db.transaction(settings) as session:
                if args.kind == "components":
                    from gridkit.incidents.components import import_components

                    got = import_components(session, args.path)
                    out = {"created": got["imported"], "assigned": got["assigned"], "unassigned": got["unassigned"]}
                else:
                    result = import_subjects(session, args.kind, args.path, pii_key=KEY.encode())
                    out = {"created": result.created, "assigned": result.assigned, "unassigned": result.unassigned}
        except ValidationError as exc:
            from gridkit.io.problems import problem_count

            out = {"refused": True, "problems": problem_count(exc.problems), "first": exc.problems[0]["message"]}
    elif args.child == "baseline":
        import psycopg

        stored = args.variant == "stored"  # the file COPYed into an ordinary table, the join written to another
        url = db.bench_admin_url(db.database_url(settings)) if stored else db.database_url(settings)
        with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
            header = Path(args.path).open(encoding="utf-8").readline().strip().split(",")
            conn.execute(f"CREATE {'' if stored else 'TEMP '}TABLE raw ({', '.join(h + ' text' for h in header)})")
            with (
                conn.cursor().copy("COPY raw FROM STDIN (FORMAT csv, HEADER true)") as copy,
                open(args.path, "rb") as f,
            ):
                while block := f.read(1 << 20):
                    copy.write(block)
            point = "ST_MakePoint(r.lon::float8, r.lat::float8)"
            if "building_code" in header:
                joined = "count(b.id) FROM raw r LEFT JOIN building b ON b.code = r.building_code"
                written = "r.*, b.id AS building_id FROM raw r LEFT JOIN building b ON b.code = r.building_code"
            elif args.kind == "buildings":
                rows = "FROM raw r LEFT JOIN building b ON b.code = r.code"
                joined = f"count(b.id), count({point}) {rows}"
                written = f"r.*, b.id AS building_id, {point} AS geom {rows}"
            else:
                joined, written = f"count({point}) FROM raw r", f"r.*, {point} AS geom FROM raw r"
            conn.execute("SET work_mem = '256MB'")
            if stored:
                conn.execute(f"CREATE TABLE joined AS SELECT {written}")
            else:
                conn.execute(f"SELECT {joined}").fetchone()
            conn.rollback()
        out = {}
    elif args.child == "floor":
        from benchfloor import floor_seconds

        got = floor_seconds(db.bench_admin_url(db.database_url(settings)), args.kind)
        out = {"floor": got["seconds"], "parts": got["parts"]}
    elif args.child == "rewrite":
        # PostgreSQL alone writing every stored resident once (a full copy of the table): the floor of a first
        # assignment that stored a cell in each row (before migration 20261204_cell9f); kept as this run's
        # measure of the machine's speed.
        import psycopg

        with psycopg.connect(db.database_url(settings).replace("postgresql+psycopg", "postgresql")) as conn:
            conn.execute("CREATE TEMP TABLE gk_rewrite AS SELECT * FROM resident")
            conn.rollback()
        out = {"parts": {}}
    else:  # assign
        out = assign_child(settings, args.variant)
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    # The client's own CPU seconds (reading, checking, COPY formatting): less at the mercy of a loaded machine.
    out.update(seconds=time.perf_counter() - started, peak_mb=peak_mb(), cpu=usage.ru_utime + usage.ru_stime)
    return out


def assign_child(settings, variant: str) -> dict:
    """Assign the stored residents one way (see the module's docstring); return counts, parts and agreement."""
    from sqlalchemy import event, text

    from gridkit import assign, db
    from gridkit.db.arrays import COPY_HEADER, COPY_TRAILER
    from gridkit.spatial import bulk

    engine = db.engine_for(settings)
    parts: dict[str, float] = {}
    started: dict[int, float] = {}

    # Time the statements that matter (the UPDATE, the index drop and rebuild) as the client sees them.
    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn, cursor, statement, *args):
        started[id(cursor)] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn, cursor, statement, *args):
        for key, label in (("gridkit_drop", "drop"), ("gridkit_restore", "rebuild")):
            if key in statement:
                parts[label] = parts.get(label, 0) + time.perf_counter() - started.pop(id(cursor), 0)

    if variant == "kept":
        bulk.BULK_INDEX_ROWS = 10**12  # indexes kept and updated row by row
    read_points = assign.read_points

    def timed_read(*args, **kwargs):
        r = time.perf_counter()
        points = read_points(*args, **kwargs)
        parts["read"] = time.perf_counter() - r
        return points

    assign.read_points = timed_read
    busy = connection_busy()
    with db.session_factory(engine)() as session:
        backend = backend_cpu(session, text)
        t = time.perf_counter()
        if variant == "narrow":
            points = assign.read_points(session, "residents")
            edition = assign.current_edition(session)
            cells = assign.base_cell_index(session, edition).cells_at(points.lon, points.lat)
            parts["compute"] = time.perf_counter() - t - parts["read"]
            rows = np.empty(
                len(points.ids), dtype=[("n", ">i2"), ("l0", ">i4"), ("id", ">i4"), ("l1", ">i4"), ("c", ">i4")]
            )
            rows["n"], rows["l0"], rows["l1"], rows["id"], rows["c"] = 2, 4, 4, points.ids, cells
            conn = db.driver_connection(session)
            with conn.cursor() as cur:
                w = time.perf_counter()
                cur.execute("CREATE TEMP TABLE subject_cell (id int PRIMARY KEY, cell int NOT NULL)")
                with cur.copy("COPY subject_cell (id, cell) FROM STDIN (FORMAT BINARY)") as copy:
                    copy.write(COPY_HEADER + rows.tobytes() + COPY_TRAILER)
                parts["write"] = time.perf_counter() - w
            assigned = int((cells > 0).sum())
            elapsed = time.perf_counter() - t
            session.rollback()
            return {"assigned": assigned, "parts": parts, "agree": float("nan"), "assign_s": elapsed}
        counts = assign.assign_subjects(session, ["residents"])
        # The rest: building the cell index, locating the points, COPY of the new cells, the UPDATE.
        elapsed = time.perf_counter() - t
        parts["compute+write"] = elapsed - sum(parts.values())
        parts["server cpu"] = backend()
        parts["connection idle"] = elapsed - busy()
        agree = agreement(session, text)
        session.rollback()
    return {"assigned": counts["residents"]["assigned"], "parts": parts, "agree": agree, "assign_s": elapsed}


def connection_busy():
    """Return a function giving the seconds spent in statements (psycopg's execute, whatever thread runs it)
    since now. Statements on one connection never overlap, so the assignment's wall time minus this is the
    time its connection sat idle while the client worked alone."""
    import psycopg

    spent = [0.0]
    execute = psycopg.Cursor.execute

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return execute(self, *args, **kwargs)
        finally:
            spent[0] += time.perf_counter() - started

    psycopg.Cursor.execute = timed
    return lambda: spent[0]


def backend_cpu(session, text):
    """Return a function giving the CPU seconds the session's server process has used since now (NaN when the
    server is not on this machine): on a loaded machine, less noisy than wall time."""
    stat = Path(f"/proc/{session.scalar(text('SELECT pg_backend_pid()'))}/stat")

    def used() -> float:
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    start = used()
    return lambda: used() - start


def agreement(session, text, sample: int = 20_000) -> float:
    """Share of a sample of residents whose stored cell is PostGIS's (ST_Covers, smallest code on ties)."""
    return float(
        session.scalar(
            text(
                "SELECT avg((c.base_cell_id IS NOT DISTINCT FROM (SELECT b.id FROM base_cell b "
                "WHERE ST_Covers(b.geom, r.geom) ORDER BY b.code LIMIT 1))::int) "
                "FROM (SELECT * FROM resident ORDER BY id LIMIT :n) r LEFT JOIN resident_cell c ON c.resident_id = r.id"
            ),
            {"n": sample},
        )
    )


def run_child(env: dict, **options) -> dict:
    argv = [sys.executable, __file__]
    for key, value in options.items():
        argv += [f"--{key}", str(value)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"child {options} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the run ---------------------------------------------------------------------------------------


def setup_city(url: str) -> None:
    from gridkit import db
    from gridkit.config import Settings
    from gridkit.incidents.categories import seed_categories
    from tests.factories import make_base_grid

    with db.session_factory(db.engine_for(Settings.from_env()))() as session, session.begin():
        make_base_grid(session, rows=ROWS, cols=COLS, communities=COMMUNITIES)
        seed_categories(session)  # the component categories


def admin_conninfo() -> str:
    """The superuser's libpq URL of the bench database (the imports run as the application role)."""
    from gridkit import db
    from gridkit.config import Settings

    return db.bench_admin_url(db.database_url(Settings.from_env())).replace("postgresql+psycopg", "postgresql")


def empty(table: str) -> None:
    import psycopg

    with psycopg.connect(admin_conninfo()) as conn:
        conn.execute(f"TRUNCATE {table} CASCADE")  # a fixed name of this script (resident: resident_cell too)


def store_residents(n: int) -> None:
    """Store n residents with points, phone and household and no cell."""
    import psycopg

    with psycopg.connect(admin_conninfo()) as conn:
        conn.execute("TRUNCATE resident, resident_cell")
        conn.execute(
            "INSERT INTO resident (id_number_hash, id_number_masked, name, phone, household, population_type, geom) "
            "SELECT encode(sha256(i::text::bytea), 'hex'), '4403**********0000', '测试' || (i %% 100), "
            "'139' || lpad((i::int8 * 7919 %% 100000000)::text, 8, '0'), 'H' || (i / 3), "
            "CASE WHEN i %% 3 = 0 THEN 'floating' ELSE 'registered' END, "
            "ST_SetSRID(ST_MakePoint(%s + random() * %s, %s + random() * %s), 4490) "
            "FROM generate_series(1, %s) i",
            (X0 - 0.0003, COMMUNITIES * COLS * D + 0.0006, Y0 - 0.0003, ROWS * D + 0.0006, n),
        )
    with psycopg.connect(admin_conninfo(), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE resident")
        conn.execute("VACUUM ANALYZE resident_cell")
        conn.execute("CHECKPOINT")


def print_report(table: list, rewrite: dict, assigned: list, assign: int) -> None:
    """Print the imports' table, then the assignments' table, then what the ratios mean."""
    print(
        f"{'import':36} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8} {'client CPU s':>12} "
        f"{'COPY+join s':>11} {'ratio':>6} {'stored s':>8} {'ratio':>6} {'floor s':>7} {'× floor':>7}  result"
    )
    for label, n, got, base, floor in table:  # empty with --rows 0
        result = (
            f"refused: {got['problems']} problem(s): {got['first'][:70]}"
            if got.get("refused")
            else f"created {got['created']}, assigned {got['assigned']}"
        )
        print(
            f"{label:36} {n:>9,} {got['seconds']:>8.1f} {n / got['seconds']:>9,.0f} {got['peak_mb']:>8.0f} "
            f"{got['cpu']:>12.1f} {base['seconds']:>11.1f} {got['seconds'] / base['seconds']:>6.1f} "
            f"{base['stored']:>8.1f} {got['seconds'] / base['stored']:>6.1f} "
            + (f"{floor['floor']:>7.1f} {got['seconds'] / floor['floor']:>7.1f}" if floor else f"{'-':>7} {'-':>7}")
            + f"  {result}"
        )
    print()
    # The target: 5M residents in 20 s end to end, i.e. 4 µs per resident.
    target = 20 * assign / 5_000_000
    print(
        f"{'first assignment of stored residents':36} {'rows':>9} {'seconds':>8} {'peak MB':>8} {'rewrite s':>11} "
        f"{'ratio':>6} {'target s':>8} {'agree':>8}  parts"
    )
    for variant, got in assigned:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in got["parts"].items())
        # The assignment alone (from the first read to the last write), not the child's start nor the check.
        seconds = got["assign_s"]
        print(
            f"{variant:36} {assign:>9,} {seconds:>8.1f} {got['peak_mb']:>8.0f} {rewrite['seconds']:>11.1f} "
            f"{seconds / rewrite['seconds']:>6.1f} {target:>8.1f} {got['agree']:>8.4f}  {parts}"
        )
    print(
        "ratio = seconds / the same run's baseline: a raw COPY + join of the file (imports: into a temporary table "
        "of text columns, the join counted; 'stored': into an ordinary table, the join written to another, as "
        "#9 measured it); a plain copy of the stored residents' table, CREATE TABLE AS (assignment). Imports run "
        "as the application role. "
        "floor = PostgreSQL alone storing the rows the import stored (scripts/benchfloor.py: a binary COPY of them "
        "into copies of the tables, then the schema's keys, indexes and foreign keys built, ANALYZE). "
        "agree = share of 20,000 residents whose cell is PostGIS's ST_Covers cell (smallest code on ties)."
    )


def run_assignments(env: dict, n: int, variants: list[str]) -> tuple[dict, list]:
    """Store n residents and assign them each way in `variants`; return the table copy's and their numbers."""
    t = time.perf_counter()
    store_residents(n)
    print(f"stored {n:,} residents in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    rewrite = run_child(env, child="rewrite")
    print(f"rewrite: {rewrite}", file=sys.stderr)
    assigned = []
    for variant in variants:  # each in a transaction rolled back: the same stored table for all
        got = run_child(env, child="assign", variant=variant)
        print(f"assign {variant}: {got}", file=sys.stderr)
        assigned.append((variant, got))
    return rewrite, assigned


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per file (default 1,000,000)")
    parser.add_argument("--assign", type=int, default=5_000_000, help="stored residents to assign (default 5M)")
    parser.add_argument("--port", type=int, default=5497)
    parser.add_argument(
        "--households",
        choices=("together", "scattered"),
        default="together",
        help="residents' households: members in one building, 1%% elsewhere (default), or each member anywhere",
    )
    parser.add_argument(
        "--variants", default="hot,narrow", help="ways to write the cells: hot (gridkit's), kept, narrow"
    )
    parser.add_argument(
        "--files",
        default="buildings,residents_codes,residents_lonlat,residents_bad_last",
        help="files to import (default the four above; also: components)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    from gridkit import db

    table = []
    from gridkit.db.embedded import APP_ROLE

    with (
        db.bench_database(args.port, role=APP_ROLE) as (url, where),
        tempfile.TemporaryDirectory(prefix="gk-bench-") as tmp,
    ):
        print(f"database: {where}", file=sys.stderr)
        env = {**os.environ, "GRIDKIT_DATABASE_URL": url, "GRIDKIT_HOME": tmp, "GRIDKIT_PII_KEY": KEY}
        os.environ.update(GRIDKIT_DATABASE_URL=url, GRIDKIT_HOME=tmp)
        setup_city(url)
        t = time.perf_counter()
        # --rows 0: the assignment alone
        files = make_files(Path(tmp), args.rows, args.households == "scattered") if args.rows else {}
        if args.rows and "components" in args.files.split(","):
            files["components"] = make_components(Path(tmp) / "components.csv", args.rows)
        print(f"files made in {time.perf_counter() - t:.1f} s", file=sys.stderr)
        for label, kind, key in (
            ()
            if not args.rows
            else (
                ("buildings", "buildings", "buildings"),
                ("residents, building codes", "residents", "residents_codes"),
                ("residents, lon/lat", "residents", "residents_lonlat"),
                ("residents, lon/lat, last row bad", "residents", "residents_bad_last"),
                ("components (inventory)", "components", "components"),
            )
        ):
            if key not in args.files.split(","):
                continue
            if kind == "residents":
                empty("resident")  # each residents file is imported into an empty table
            base = run_child(env, child="baseline", kind=kind, path=files[key])
            base["stored"] = run_child(env, child="baseline", kind=kind, path=files[key], variant="stored")["seconds"]
            got = run_child(env, child="import", kind=kind, path=files[key])
            floor = None if got.get("refused") else run_child(env, child="floor", kind=kind)
            print(f"{label}: {got}; COPY + join: {base['seconds']:.1f} s; floor: {floor}", file=sys.stderr)
            table.append((label, args.rows, got, base, floor))
        # --assign 0: the imports alone
        rewrite, assigned = run_assignments(env, args.assign, args.variants.split(",")) if args.assign else (None, [])
    print_report(table, rewrite, assigned, args.assign)
    return 0


if __name__ == "__main__":
    sys.exit(main())
