"""The coordinate system a file's user names (`--src-crs`): an EPSG code, PROJ string, WKT or GCJ-02.

Kept apart from vector.py so that table imports (CSV, XLSX), which need only this, do not load
the vector stack (geopandas, pandas, pyogrio).
"""

from __future__ import annotations

import pyproj

from gridkit.io.problems import _fatal, _first_line

__all__ = ["parse_crs"]

_GCJ02_NAMES = {"gcj02", "gcj-02", "gcj", "gcj_02"}


def parse_crs(value: str) -> tuple[pyproj.CRS | None, bool]:
    """Return (CRS, is_gcj02) for a --src-crs value: an EPSG code, PROJ string, WKT or 'gcj02'."""
    text = str(value).strip()
    if text.lower() in _GCJ02_NAMES:
        return None, True
    if text.isdigit():
        text = f"EPSG:{text}"
    try:
        return pyproj.CRS.from_user_input(text), False
    except pyproj.exceptions.CRSError as exc:
        raise _fatal({}, "bad_src_crs", "bad_src_crs", crs=str(value), reason=_first_line(exc)) from None
