"""A CLI command closes the database connections it opened, done or refused: no ResourceWarning at exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "args",
    [
        ("import", "buildings", str(DATA / "bad" / "null_geometry.geojson")),
        ("basegrid", "import", str(DATA / "bad" / "overlapping_cells.geojson"), "--code-field", "code"),
    ],
    ids=["buildings", "basegrid"],
)
def test_a_refused_import_leaves_no_connection_open_at_exit(fresh_settings, args):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GRIDKIT_DATABASE_URL": fresh_settings.database_url,
        "GRIDKIT_HOME": str(fresh_settings.home),
        "GRIDKIT_LANG": "en",
    }
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-m", "gridkit.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1 and "Nothing was imported" in proc.stderr, proc.stderr
    assert "ResourceWarning" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
