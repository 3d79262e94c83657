"""Reading and writing files at the edge: vector layers in (vector.py), import reports out (report.py).

The names below are loaded on first use, so that importing one module of this package (a CSV
import, an export) does not load the vector stack (geopandas, pandas, pyogrio).
"""

from __future__ import annotations

import importlib

__all__ = ["VectorRead", "VectorReadError", "read_vector", "write_report"]

_HOMES = {
    "VectorRead": "gridkit.io.vector",
    "VectorReadError": "gridkit.io.problems",
    "read_vector": "gridkit.io.vector",
    "write_report": "gridkit.io.report",
}


def __getattr__(name: str):
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
