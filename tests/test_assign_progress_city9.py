"""`gridkit assign` shows a progress bar on a terminal, and none with --json or when stderr is not a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from sqlalchemy.orm import Session

from gridkit import db
from gridkit.models import Resident
from gridkit.rules import make_point
from tests.factories import X0, Y0, D, make_base_grid

ROOT = Path(__file__).resolve().parents[1]


def _run_on_a_terminal(settings, *args) -> tuple[int, str, str]:
    """Run `gridkit args` with stderr on a pseudo-terminal; return (exit code, stdout, what the terminal showed)."""
    env = {
        **os.environ,
        "GRIDKIT_DATABASE_URL": settings.database_url,
        "GRIDKIT_HOME": str(settings.home),
        "GRIDKIT_LANG": "en",
        "COLUMNS": "100",
    }
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gridkit.cli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=slave
    )
    os.close(slave)
    shown = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                data = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                data = b""
            if not data and proc.poll() is not None:
                break
            shown += data
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read().decode()
    proc.wait(timeout=120)
    return proc.returncode, out, shown.decode("utf-8", "replace")


def _city(settings) -> None:
    with Session(db.engine_for(settings)) as session, session.begin():
        make_base_grid(session)
        for i in range(5):
            lon, lat = X0 + (i + 0.5) * D / 2, Y0 + D / 2
            session.add(
                Resident(
                    id_number_hash=f"h{i}",
                    id_number_masked="4403**********0000",
                    name="测试",
                    population_type="registered",
                    geom=make_point(lon, lat),
                )
            )


def test_assign_shows_a_progress_bar_on_a_terminal(fresh_settings):
    _city(fresh_settings)
    code, out, shown = _run_on_a_terminal(fresh_settings, "assign", "--kind", "residents", "--kind", "buildings")
    assert code == 0, shown
    assert "Assigning" in shown and "100%" in shown  # the label from the catalogue (GRIDKIT_LANG=en)
    assert "residents" in out  # the result table still goes to stdout


def test_assign_with_json_shows_no_bar(fresh_settings):
    _city(fresh_settings)
    code, out, shown = _run_on_a_terminal(fresh_settings, "assign", "--kind", "residents", "--json")
    assert code == 0, shown
    assert "%" not in shown
    assert json.loads(out)["residents"]["total"] == 5
