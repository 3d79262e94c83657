"""Coordinate systems of input files: the one a user names (`--src-crs`: an EPSG code, PROJ string, WKT or
GCJ-02), the datums PROJ cannot bring to CGCS2000 (Beijing 1954, Xi'an 1980), and what the extent of a file
without one suggests.

Kept apart from vector.py so that table imports (CSV, XLSX), which need only this, do not load
the vector stack (geopandas, pandas, pyogrio).
"""

from __future__ import annotations

import functools
import math

import pyproj

from gridkit.io.problems import _fatal, _first_line
from gridkit.messages import Message
from gridkit.pii import public_extent

__all__ = [
    "cgcs2000_via",
    "check_datum",
    "from_cgcs2000",
    "city_zone_hint",
    "city_zones",
    "coordinate_hint",
    "crs_label",
    "lonlat_converter",
    "datum_without_shift",
    "GCJ02_WKT",
    "is_gcj02",
    "looks_projected",
    "parse_crs",
    "proj_text",
]

_GCJ02_NAMES = {"gcj02", "gcj-02", "gcj", "gcj_02"}

# The CRS written into files exported in GCJ-02 (.prj, GeoPackage): GCJ-02 has no EPSG code, and a file labelled
# WGS 84 would be read back, by gridkit or any GIS, hundreds of metres off. Its name says what it is; `is_gcj02`
# recognises it (and GIS tools' own GCJ-02 definitions) when such a file comes back.
GCJ02_WKT = (
    'GEOGCRS["GCJ-02",DATUM["GCJ-02 (offset WGS 84 of Chinese web maps)",ELLIPSOID["WGS 84",6378137,298.257223563]],'
    'CS[ellipsoidal,2],AXIS["longitude",east,ANGLEUNIT["degree",0.0174532925199433]],'
    'AXIS["latitude",north,ANGLEUNIT["degree",0.0174532925199433]]]'
)


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


# Ellipsoids of the modern frames gridkit takes as CGCS2000 (CGCS2000, GRS 80, WGS 84: semi-major axis 6 378 137 m).
# Beijing 1954 (Krasovsky, 6 378 245 m) and Xi'an 1980 (IAG 1975, 6 378 140 m) are the older Chinese datums.
_MODERN_SEMI_MAJOR_M = 6_378_137.0


def cgcs2000_via(crs: pyproj.CRS) -> int:
    """Return the EPSG code to transform `crs` to for CGCS2000 lon/lat: 4326 when it carries its own parameters.

    A CRS with its own datum shift (+towgs84 / TOWGS84[...], a BoundCRS) has it applied by PROJ only on the way
    to WGS 84: straight to EPSG:4490 PROJ takes a "ballpark" path that leaves them out. WGS 84 and CGCS2000 differ
    by centimetres (gridkit takes one for the other, see gridkit.io.vector), so such a CRS goes to 4326.
    """
    return 4326 if crs.is_bound else 4490


def from_cgcs2000(crs: pyproj.CRS) -> pyproj.Transformer:
    """Return the transformer from stored CGCS2000 lon/lat to `crs` (an export's): the way back of an import's,
    through WGS 84 for a CRS with its own datum parameters (`cgcs2000_via`), where PROJ applies them."""
    return pyproj.Transformer.from_crs(pyproj.CRS.from_epsg(cgcs2000_via(crs)), crs, always_xy=True)


def datum_without_shift(crs: pyproj.CRS) -> str | None:
    """Return the datum name of `crs` when PROJ has no transformation from it to CGCS2000, else None.

    For Beijing 1954 and Xi'an 1980 PROJ only knows a "ballpark" step that keeps longitude and latitude as they
    are: the data would land tens of metres off (Beijing 1954 around Shenzhen: about 50 m) with no error. A
    CRS carrying its own parameters (BoundCRS) or on a CGCS2000/GRS 80/WGS 84 ellipsoid is fine.
    """
    geodetic = crs.geodetic_crs
    if crs.is_bound or geodetic is None or geodetic.ellipsoid is None:
        return None
    if abs(geodetic.ellipsoid.semi_major_metre - _MODERN_SEMI_MAJOR_M) < 1.0:
        return None
    transformer = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(4490), always_xy=True)
    if "ballpark" not in transformer.description.lower():
        return None
    return geodetic.datum.name if geodetic.datum is not None else geodetic.name


def proj_text(crs: pyproj.CRS) -> str:
    """Return `crs` as a PROJ string to which '+towgs84=…' can be appended (no '+type=crs')."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "you will likely lose important projection information"
        text = crs.to_proj4() or ""
    return " ".join(part for part in text.split() if part not in ("+type=crs", "+no_defs"))


def crs_label(crs: pyproj.CRS) -> str:
    """Return 'EPSG:4547 (CGCS2000 / 3-degree Gauss-Kruger CM 114E)', or the CRS's name when it has no code."""
    epsg = crs.to_epsg(min_confidence=90)
    if epsg:
        return f"EPSG:{epsg} ({crs.name})"
    return crs.name if crs.name not in ("", "unknown") else proj_text(crs)  # a PROJ string given by the user


def check_datum(crs: pyproj.CRS, source: dict) -> None:
    """Raise VectorReadError when `crs` is on a datum PROJ would take as CGCS2000 unchanged (`datum_without_shift`)."""
    datum = datum_without_shift(crs)
    if datum is not None:
        said = {"file": source.get("display", ""), "crs": crs_label(crs), "datum": datum, "proj": proj_text(crs)}
        raise _fatal(source, "datum_without_shift", "datum_without_shift", **said)


def coordinate_hint(bounds, city=None, *, where: Message | None = None, personal: bool = False) -> Message | str:
    """Return what the extent (x0, y0, x1, y1) of a file without a CRS looks like, and the --src-crs to give.

    `city`: the extent (west, south, east, north, degrees) of the city's admin units (gridkit.admin.city_extent),
    None before any is imported. Metres without a zone number in front are then told the 3-degree zones the city
    lies in, and the one in which they fall on the city (`city_zone_hint`). `where`: how the hint names the values
    (a personal row's: gridkit.pii.typed_location), by default as they are, or for a layer of people's homes
    (`personal`: residents) as the public may read them (gridkit.pii.public_extent)."""
    if bounds is None or not all(map(math.isfinite, bounds)):
        return ""
    x0, y0, x1, y1 = bounds
    if where is None and personal:
        where = public_extent(x0, y0, x1, y1)
    elif where is None:
        where = f"x {x0:.6g}–{x1:.6g}, y {y0:.6g}–{y1:.6g}" if (x0, y0) != (x1, y1) else f"x {x0:.6g}, y {y0:.6g}"
    if -180 <= x0 and x1 <= 180 and -90 <= y0 and y1 <= 90:
        return Message("geometry.hint.degrees", where=where)
    zone = int(x0 // 1_000_000)
    if 25 <= zone <= 45 and int(x1 // 1_000_000) == zone:
        # Eastings with the zone number in front (38 500 000): CGCS2000 3-degree Gauss-Kruger zone 25-45 is
        # EPSG:4513-4533, central meridian 3 × zone degrees east.
        return Message("geometry.hint.metres_zone", where=where, zone=zone, epsg=4488 + zone, meridian=3 * zone)
    if 13 <= zone <= 23 and int(x1 // 1_000_000) == zone:
        # The same with a 6-degree zone number (20 500 000): CGCS2000 6-degree Gauss-Kruger zone 13-23 is
        # EPSG:4491-4501, central meridian 6 × zone − 3 degrees east. The two ranges of zone numbers do not meet.
        return Message("geometry.hint.metres_zone6", where=where, zone=zone, epsg=4478 + zone, meridian=6 * zone - 3)
    if city is not None:
        return city_zone_hint(bounds, city, where)
    return Message("geometry.hint.metres", where=where)


# How far (degrees, about 50 km) from the city's admin units a file's extent may fall and still be the city's.
_CITY_MARGIN_DEG = 0.5


def city_zones(city) -> list[int]:
    """Return the EPSG codes of the CGCS2000 3-degree Gauss-Kruger zones (CM variants, 4534-4554) that the city's
    extent (west, south, east, north) spans, west to east."""
    from gridkit.coords import gauss_kruger_epsg
    from gridkit.standard import InvalidValue

    try:
        first, last = gauss_kruger_epsg(city[0]), gauss_kruger_epsg(city[2])
    except InvalidValue:  # a city outside China's zones: no zone to offer
        return []
    return list(range(first, last + 1))


@functools.lru_cache(maxsize=32)
def _zone_to_lonlat(epsg: int) -> pyproj.Transformer:
    """Return the transformer from a Gauss-Kruger zone to CGCS2000 lon/lat, made once (a CSV's rows in metres ask
    for each of them; pyproj's transformers are thread-safe since 3.1)."""
    return pyproj.Transformer.from_crs(epsg, 4490, always_xy=True)


def city_zone_hint(bounds, city, where) -> Message:
    """Return the advice for projected metres without a zone number: the city's zones, and the first of them in
    which the extent's centre falls within about 50 km of the city (else that it falls in none of them)."""
    zones = city_zones(city)
    if not zones:
        return Message("geometry.hint.metres", where=where)
    x, y = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    west, south, east, north = city
    named = " / ".join(f"EPSG:{epsg} ({3 * (epsg - 4534) + 75}°E)" for epsg in zones)
    for epsg in zones:
        lon, lat = _zone_to_lonlat(epsg).transform(x, y, errcheck=False)
        m = _CITY_MARGIN_DEG
        if west - m <= lon <= east + m and south - m <= lat <= north + m:
            return Message("geometry.hint.metres_city", where=where, zones=named, epsg=epsg)
    return Message("geometry.hint.metres_city_elsewhere", where=where, zones=named)


def looks_projected(bounds) -> bool:
    """Return whether an extent (x0, y0, x1, y1) is metres, far beyond any degrees (swapped lon/lat included)."""
    if bounds is None or not all(map(math.isfinite, bounds)):
        return False
    return max(map(abs, bounds)) > 1000  # anywhere in China a projected x or y is over 100 000 m


def lonlat_converter(value, display: str):
    """Return a function (x, y arrays) → CGCS2000 (lon, lat) for the CRS a user names, or None when none is named.

    `value` is as for --src-crs (an EPSG code, PROJ string, WKT or gcj02); a bad one, or one on a datum PROJ cannot
    shift (`check_datum`), raises VectorReadError naming `display`.
    """
    if value is None or not str(value).strip():
        return None
    crs, gcj02 = parse_crs(value)
    if gcj02:
        from gridkit.coords import gcj02_to_wgs84

        return gcj02_to_wgs84
    check_datum(crs, {"display": display})
    transformer = pyproj.Transformer.from_crs(crs, pyproj.CRS.from_epsg(cgcs2000_via(crs)), always_xy=True)
    return lambda x, y: transformer.transform(x, y, errcheck=False)


def is_gcj02(crs: pyproj.CRS) -> bool:
    """Return whether a file's CRS is GCJ-02 by its name (gridkit's exports, GIS plug-ins' "GCJ02" definitions)."""
    geodetic = crs.geodetic_crs
    names = [crs.name, geodetic.name if geodetic else "", geodetic.datum.name if geodetic and geodetic.datum else ""]
    return crs.is_geographic and any("gcj" in name.lower().replace("-", "").replace("_", "") for name in names)
