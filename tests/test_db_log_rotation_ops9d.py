"""The embedded server's log does not grow without end: its logging collector writes one file per weekday
in GRIDKIT_HOME/log, emptied when the day comes round again (the last seven days are kept), instead of one
postgres.log that `pg_ctl -l` appended to for years. A start that fails still names its reason."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from gridkit.db.embedded import EmbeddedCluster
from gridkit.errors import SetupError

PORT = 5640


@pytest.fixture
def cluster():
    home = Path(tempfile.mkdtemp(prefix="gk-log-"))
    os.chmod(home, 0o755)  # the server's user reaches it when the tests run as root
    made = EmbeddedCluster(home / "home", port=PORT, fast=True)
    made.init()
    made.start()
    made.wait_ready()
    yield made
    made.destroy()
    shutil.rmtree(home, ignore_errors=True)


def test_the_server_logs_to_a_file_per_weekday_emptied_when_its_day_comes_back(cluster):
    with cluster.connect("postgres") as conn:
        shown = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in ("logging_collector", "log_filename")}
        assert shown == {"logging_collector": "on", "log_filename": "postgresql-%a.log"}
        assert conn.execute("SHOW log_truncate_on_rotation").fetchone()[0] == "on"
        assert conn.execute("SHOW log_rotation_age").fetchone()[0] == "1d"
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 'a mark in the log ops9d', 1 / 0")
    today = cluster.home / "log" / f"postgresql-{time.strftime('%a')}.log"
    for _ in range(50):  # the collector writes a moment later
        if today.exists() and "division by zero" in today.read_text(errors="replace"):
            break
        time.sleep(0.1)
    assert "division by zero" in today.read_text(errors="replace")
    assert "division by zero" not in cluster.log_file.read_text(errors="replace")
    assert cluster.log_files()[0] == today and cluster.status().log_file == str(today)  # what `db status` shows


def test_a_start_that_fails_still_names_its_reason(cluster):
    cluster.stop()
    (cluster.data_dir / "postgresql.auto.conf").write_text("shared_buffers = 'lots'\n", encoding="utf-8")
    with pytest.raises(SetupError) as refused:
        cluster.start()
    assert 'postgresql.auto.conf" contains errors' in refused.value.render("en")
