"""The CRS of an export (`--crs`): an EPSG code PostGIS transforms to, GCJ-02, or a CRS given as a PROJ string or
WKT — an old datum (Beijing 1954, Xi'an 1980) with the seven parameters of a surveying department.

Exports follow the rule of imports (gridkit.io.crs): a CRS on an old datum without parameters is refused
(`datum_without_shift`: PROJ would only relabel CGCS2000 positions, tens of metres off), and a CRS with its own
parameters is reached through WGS 84 (`from_cgcs2000`, the way back of `cgcs2000_via`), where PROJ applies
them. Such geometries leave PostGIS in CGCS2000 and are moved here, by PROJ; the file says the parameters
(TOWGS84 in its WKT, the .prj included, which GDAL would otherwise write without them).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from gridkit.coords import wgs84_to_gcj02
from gridkit.errors import ValidationError
from gridkit.rules import SRID

__all__ = ["GCJ02", "TargetCrs", "moved_geometries", "target_crs"]

GCJ02 = "gcj02"
# What in a CRS's text names a file PROJ would open (init files, grids): the seven parameters are numbers.
_NAMES_FILES = re.compile(r"\+init\b|grids\s*=|PARAMETERFILE|\+proj\s*=\s*pipeline", re.IGNORECASE)


@dataclass(frozen=True)
class TargetCrs:
    """The CRS of the output: an EPSG code PostGIS transforms to, GCJ-02 (offset from WGS84), or a CRS given as
    text (`custom`: a PROJ string or WKT) that PROJ moves the geometries into here."""

    label: str
    srid: int  # SRID that PostGIS transforms to (4326 for GCJ-02, then offset here; 4490 for a custom CRS)
    gcj02: bool = False
    custom: str | None = None

    @property
    def moves(self) -> bool:
        """Whether the geometries PostGIS gives are moved here before they are written (`moved_geometries`)."""
        return self.gcj02 or self.custom is not None

    @property
    def file_crs(self) -> str:
        """Return the CRS written into the file (.prj, GPKG): GCJ-02, which has no EPSG code, by its name; a CRS
        given as text as WKT1, which keeps a datum's seven parameters (TOWGS84) for GDAL, QGIS and gridkit."""
        if self.gcj02:
            from gridkit.io.crs import GCJ02_WKT

            return GCJ02_WKT
        if self.custom is not None:
            return _parsed(self.custom).to_wkt("WKT1_GDAL")
        return f"EPSG:{self.srid}"

    @property
    def prj(self) -> str | None:
        """Return the .prj text a shapefile must hold instead of GDAL's, or None to keep GDAL's: GDAL writes an
        Esri .prj, which has no place for the seven parameters of a datum (read back, tens of metres off)."""
        if self.custom is None or not _parsed(self.custom).is_bound:
            return None
        return self.file_crs


@functools.lru_cache(maxsize=16)
def _parsed(value: str):
    from gridkit.io.crs import parse_crs

    return parse_crs(value)[0]


@functools.lru_cache(maxsize=16)
def _transformer(value: str):
    from gridkit.io.crs import from_cgcs2000

    return from_cgcs2000(_parsed(value))


def target_crs(session: Session, value: str | None) -> TargetCrs:
    """Return the output CRS for 'EPSG:4547', '4547', 'gcj02' or a PROJ string / WKT; refuse codes PostGIS does
    not know, text PROJ cannot read, and old datums without their parameters."""
    raw = (value or f"EPSG:{SRID}").strip()
    if raw.lower().replace("-", "") == GCJ02:
        return TargetCrs("GCJ-02", 4326, gcj02=True)
    code = raw.upper().removeprefix("EPSG:")
    if code.isascii() and code.isdigit():
        known = session.execute(text("SELECT 1 FROM spatial_ref_sys WHERE srid = :s"), {"s": int(code)}).first()
        if known is None:
            raise ValidationError("export.unknown_crs", crs=raw)
        _refuse_datum_without_shift(f"EPSG:{int(code)}")
        return TargetCrs(f"EPSG:{int(code)}", int(code))
    from gridkit.io.crs import crs_label
    from gridkit.io.problems import VectorReadError

    if _NAMES_FILES.search(raw):  # text from a form post: PROJ would open the files it names on the server
        raise ValidationError("export.unknown_crs", crs=raw)
    try:
        crs = _parsed(raw)
    except VectorReadError:
        raise ValidationError("export.unknown_crs", crs=raw) from None
    _refuse_datum_without_shift(raw)
    return TargetCrs(crs_label(crs), SRID, custom=raw)


def _refuse_datum_without_shift(value: str) -> None:
    """Refuse an output CRS on Beijing 1954 or Xi'an 1980 without its parameters (the rule of imports:
    gridkit.io.crs.datum_without_shift): ST_Transform would only relabel CGCS2000 lon/lat."""
    from gridkit.io.crs import crs_label, datum_without_shift, proj_text
    from gridkit.io.problems import VectorReadError

    try:
        crs = _parsed(value)
    except VectorReadError:  # a code PostGIS has and PROJ's database does not: PostGIS decides
        return
    datum = datum_without_shift(crs)
    if datum is not None:
        raise ValidationError("export.datum_without_shift", crs=crs_label(crs), datum=datum, proj=proj_text(crs))


def moved_geometries(crs: TargetCrs, wkb) -> np.ndarray:
    """Return the WKB of `wkb` (a list or Arrow binary array, as PostGIS gave it) moved into the output CRS:
    offset from WGS84 to GCJ-02, or by PROJ from CGCS2000 into a CRS given as text."""
    geoms = shapely.from_wkb(np.asarray(wkb.to_pylist() if hasattr(wkb, "to_pylist") else wkb, dtype=object))
    convert = wgs84_to_gcj02 if crs.gcj02 else _transformer(crs.custom).transform  # (x, y) arrays → (x, y)
    return shapely.to_wkb(shapely.transform(geoms, lambda coords: np.column_stack(convert(coords[:, 0], coords[:, 1]))))
