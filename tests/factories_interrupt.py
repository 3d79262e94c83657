"""Interrupting an import run by the CLI in a child process while a given COPY runs (tests of Ctrl+C / kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from gridkit import db

ROOT = Path(__file__).resolve().parents[1]
KEY = "test-personal-data-key"


def interrupt_import(settings, kind: str, path: Path, copying: str, signal_: int = signal.SIGINT) -> str:
    """Run `gridkit import KIND PATH` in a child process; send it `signal_` while a COPY whose statement starts
    with `copying` (e.g. "COPY resident ") is running; assert that the child then failed. Return the database
    URL for psycopg, to check that nothing was written."""
    env = {
        **os.environ,
        "GRIDKIT_DATABASE_URL": db.database_url(settings),
        "GRIDKIT_HOME": str(settings.home),
        "GRIDKIT_PII_KEY": KEY,
        "GRIDKIT_LANG": "en",
    }
    url = db.database_url(settings).replace("postgresql+psycopg", "postgresql")
    command = [sys.executable, "-m", "gridkit.cli", "import", kind, str(path)]
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        with psycopg.connect(url, autocommit=True) as conn:
            # `state = 'active'`: pg_stat_activity keeps an idle connection's last statement.
            while time.monotonic() < deadline and child.poll() is None:
                busy = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND state = 'active' AND query LIKE %s",
                    (copying.replace("%", r"\%") + "%",),
                ).fetchone()[0]
                if busy:
                    break
                time.sleep(0.02)
        assert child.poll() is None, "the import ended before it could be interrupted"
        child.send_signal(signal_)
        child.wait(timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode != 0
    return url
