"""Commands run at the same time, as cron jobs and several operators start them: real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url

from gridkit import db
from gridkit.io.subjects.staging import import_lock_name
from gridkit.standard.ids import citizen_id_check_char
from tests.test_db_crash import home  # noqa: F401 (fixture)
from tests.test_db_private import run

ROOT = Path(__file__).resolve().parent.parent
GRIDKIT = [sys.executable, "-m", "gridkit.cli"]


def _env(settings) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRIDKIT_")}
    env.update(GRIDKIT_HOME=str(settings.home), GRIDKIT_LANG="en", GRIDKIT_PG_PORT=str(settings.pg_port))
    if settings.database_url:
        env["GRIDKIT_DATABASE_URL"] = settings.database_url
    return env


def test_commands_started_together_on_an_embedded_home_all_start(home):  # noqa: F811
    """Each start makes sure of the roles and grants (catalogue rows PostgreSQL refuses to update twice at
    once: "tuple concurrently updated"): one process at a time does it."""
    for _ in range(3):
        procs = [
            subprocess.Popen(
                [*GRIDKIT, "dept", "list"], cwd=ROOT, env=_env(home), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
            for _ in range(6)
        ]
        outputs = [(p.wait(timeout=180), p.stdout.read().decode()) for p in procs]
        assert [rc for rc, _ in outputs] == [0] * 6, [out for rc, out in outputs if rc][:1]


def _residents(path: Path, numbers: range) -> Path:
    lines = ["id_number,name,phone,household,population_type,lon,lat"]
    for n in numbers:
        first = f"44030419900101{n:03d}"
        lines.append(f"{first}{citizen_id_check_char(first)},王小明,139{n:08d},H{n},registered,114.05,22.55")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _admin(settings):
    url = make_url(db.database_url(settings)).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)


def test_two_imports_of_overlapping_residents_at_once_wait_and_the_second_is_refused_clearly(fresh_settings, tmp_path):
    run(fresh_settings, "import", "residents", str(_residents(tmp_path / "first.csv", range(900, 901))))
    files = [_residents(tmp_path / "a.csv", range(100, 300)), _residents(tmp_path / "b.csv", range(200, 400))]
    with _admin(fresh_settings) as holder:
        # Both imports stage their file, then wait for the imports' lock of the table (held here) before
        # comparing with it; the table itself stays open to other writers.
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (import_lock_name("resident"),))
        procs = [
            subprocess.Popen(
                [*GRIDKIT, "import", "residents", str(f)],
                cwd=ROOT,
                env=_env(fresh_settings),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for f in files
        ]
        deadline = time.monotonic() + 120
        waiting = 0
        while waiting < 2 and time.monotonic() < deadline and all(p.poll() is None for p in procs):
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            ).fetchone()[0]
            time.sleep(0.1)
        assert waiting == 2
        holder.execute("COMMIT")
        outputs = [(p.wait(timeout=180), p.stdout.read().decode()) for p in procs]
    codes = sorted(rc for rc, _ in outputs)
    assert codes == [0, 1], outputs
    refused = next(out for rc, out in outputs if rc == 1)
    assert "Traceback" not in refused and "already" in refused and "Nothing was imported" in refused, refused
    with db.engine_for(fresh_settings).connect() as conn:
        total, distinct = conn.execute(text("SELECT count(*), count(DISTINCT id_number_hash) FROM resident")).one()
    assert total == distinct == 201
