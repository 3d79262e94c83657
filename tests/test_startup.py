"""What a command loads before it starts: a table import (CSV, XLSX) or the check every command makes
of the database's revision must not load the vector stack or Alembic (each costs a few tenths of a
second of CPU per command; scripts/bench_import.py times whole imports)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_LOADED = """
import sys
import gridkit.cli.import_, gridkit.io.subjects, gridkit.io.tables, gridkit.io.csvtable, gridkit.io.xlsx
from gridkit import db
db.head_revision()
print(" ".join(sorted(m for m in ("geopandas", "pyogrio", "alembic", "gridkit.io.vector") if m in sys.modules)))
"""


def test_a_table_import_and_the_revision_check_load_neither_the_vector_stack_nor_alembic():
    out = subprocess.run([sys.executable, "-c", _LOADED], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == []


def test_the_vector_names_of_gridkit_io_still_load_on_use():
    code = (
        "import gridkit.io as io, sys; io.read_vector; print('geopandas' in sys.modules, io.VectorReadError.__name__)"
    )

    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "VectorReadError"]
