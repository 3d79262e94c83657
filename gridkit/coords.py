"""Coordinate helpers: GCJ-02 offsets and the CGCS2000 Gauss-Kruger zone of a longitude.

GCJ-02 ("Mars coordinates") is the obfuscated lon/lat used by Chinese web maps (Amap, Tencent).
It is WGS84 plus a smooth, published offset of a few hundred metres inside China. CGCS2000
(EPSG:4490) and WGS84 agree to a few centimetres, far below the accuracy of any GCJ-02 data, so
here "GCJ-02 → WGS84" and "GCJ-02 → CGCS2000" are the same computation.

All functions accept Python floats or numpy arrays (any shape, broadcast together) and return the
same kind they were given.
"""

from __future__ import annotations

import math
import re
import unicodedata

import numpy as np
import shapely

from gridkit.messages import Message
from gridkit.standard import InvalidValue

__all__ = [
    "out_of_china",
    "wgs84_to_gcj02",
    "gcj02_to_wgs84",
    "transform_geometry_gcj02_to_cgcs2000",
    "transform_geometry_cgcs2000_to_gcj02",
    "gauss_kruger_epsg",
    "dms_degrees",
    "dms_fault",
]

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 formula.
_A = 6378245.0
_EE = 0.00669342162296594323

# The bounding box the standard formula uses for "inside China"; outside it the offset is zero.
_CHINA_LON = (72.004, 137.8347)
_CHINA_LAT = (0.8293, 55.8271)

# Iterative inversion: the forward map is within 1e-5 of a pure shift, so each step gains ~5 digits.
_INVERSE_TOLERANCE = 1e-10  # degrees, well under the 1e-7 promised
_INVERSE_MAX_STEPS = 30

# CGCS2000 3-degree Gauss-Kruger zones, "CM" variants (false easting 500 km, no zone prefix):
# EPSG:4534 is central meridian 75E, each next code 3 degrees further east, EPSG:4554 is 135E.
_GK_FIRST_EPSG = 4534
_GK_FIRST_CM = 75
_GK_LAST_CM = 135


def out_of_china(lon, lat):
    """Return True where (lon, lat) lies outside the box in which GCJ-02 applies an offset."""
    lon_a, lat_a = np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    outside = (lon_a < _CHINA_LON[0]) | (lon_a > _CHINA_LON[1]) | (lat_a < _CHINA_LAT[0]) | (lat_a > _CHINA_LAT[1])
    return bool(outside) if outside.ndim == 0 else outside


def _offset(lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """GCJ-02 minus WGS84 in degrees at WGS84 (lon, lat), zero outside China."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    sqrt_abs_x = np.sqrt(np.abs(x))
    wave = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0

    d_lat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + wave
    d_lat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    d_lat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0

    d_lon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + wave
    d_lon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    d_lon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0

    rad_lat = lat / 180.0 * pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    d_lat = (d_lat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * pi)
    d_lon = (d_lon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * pi)

    outside = out_of_china(lon, lat)
    return np.where(outside, 0.0, d_lon), np.where(outside, 0.0, d_lat)


def _as_arrays(lon, lat) -> tuple[np.ndarray, np.ndarray, bool]:
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=float), np.asarray(lat, dtype=float))
    return lon_a, lat_a, lon_a.ndim == 0


def _result(lon: np.ndarray, lat: np.ndarray, scalar: bool):
    if scalar:
        return float(lon), float(lat)
    return lon, lat


def wgs84_to_gcj02(lon, lat):
    """Return GCJ-02 (lon, lat) for WGS84/CGCS2000 (lon, lat); identity outside China."""
    lon_a, lat_a, scalar = _as_arrays(lon, lat)
    d_lon, d_lat = _offset(lon_a, lat_a)
    return _result(lon_a + d_lon, lat_a + d_lat, scalar)


def gcj02_to_wgs84(lon, lat):
    """Return WGS84/CGCS2000 (lon, lat) for GCJ-02 (lon, lat), inverted iteratively to < 1e-7 degrees."""
    gcj_lon, gcj_lat, scalar = _as_arrays(lon, lat)
    # Start from the one-step estimate (subtract the offset taken at the GCJ-02 point), then
    # correct by the residual until the forward map reproduces the input.
    d_lon, d_lat = _offset(gcj_lon, gcj_lat)
    wgs_lon, wgs_lat = gcj_lon - d_lon, gcj_lat - d_lat
    for _ in range(_INVERSE_MAX_STEPS):
        d_lon, d_lat = _offset(wgs_lon, wgs_lat)
        err_lon = wgs_lon + d_lon - gcj_lon
        err_lat = wgs_lat + d_lat - gcj_lat
        wgs_lon = wgs_lon - err_lon
        wgs_lat = wgs_lat - err_lat
        if err_lon.size == 0 or max(np.max(np.abs(err_lon)), np.max(np.abs(err_lat))) < _INVERSE_TOLERANCE:
            break
    # Points whose GCJ-02 input is outside the box were never offset: keep them exactly.
    outside = out_of_china(gcj_lon, gcj_lat)
    wgs_lon = np.where(outside, gcj_lon, wgs_lon)
    wgs_lat = np.where(outside, gcj_lat, wgs_lat)
    return _result(wgs_lon, wgs_lat, scalar)


def _transform_xy(func):
    def transform(coords: np.ndarray) -> np.ndarray:
        out = np.array(coords, dtype=float, copy=True)
        out[:, 0], out[:, 1] = func(coords[:, 0], coords[:, 1])
        return out

    return transform


def transform_geometry_gcj02_to_cgcs2000(geom):
    """Return a copy of a shapely geometry moved from GCJ-02 to CGCS2000 (EPSG:4490) lon/lat.

    This is the GCJ-02 → WGS84 inversion: CGCS2000 and WGS84 differ by centimetres, far less than
    the error of any GCJ-02 source. Z values, if any, are kept unchanged.
    """
    return shapely.transform(geom, _transform_xy(gcj02_to_wgs84), include_z=None)


def transform_geometry_cgcs2000_to_gcj02(geom):
    """Return a copy of a shapely geometry moved from CGCS2000 (EPSG:4490) to GCJ-02 lon/lat, e.g. for Amap tiles."""
    return shapely.transform(geom, _transform_xy(wgs84_to_gcj02), include_z=None)


def gauss_kruger_epsg(lon: float) -> int:
    """Return the EPSG code of the CGCS2000 3-degree Gauss-Kruger zone (CM variant) containing lon.

    Zones are 3 degrees wide and centred on multiples of 3 degrees; a longitude exactly on a zone
    edge (1.5 + 3k) goes to the eastern zone. Shenzhen (114E) is EPSG:4547.
    """
    lon = float(lon)
    if not math.isfinite(lon):
        raise InvalidValue("coords.longitude_not_finite", lon=lon)
    central_meridian = 3 * math.floor((lon + 1.5) / 3)
    if not _GK_FIRST_CM <= central_meridian <= _GK_LAST_CM:
        raise InvalidValue(
            "coords.longitude_outside_zones",
            lon=f"{lon:g}",
            west=f"{_GK_FIRST_CM - 1.5:g}",
            east=f"{_GK_LAST_CM + 1.5:g}",
        )
    return _GK_FIRST_EPSG + (central_meridian - _GK_FIRST_CM) // 3


# Degrees, minutes and seconds as departments type them: 113°58′4.13″E, 22°32'18.6"N, 东经113度58分4.13秒,
# N22°32.31′ (seconds or minutes and seconds may be left out), and decimal degrees with their sign (114.0579°E).
# After NFKC a double prime ″ reads as two primes.
_DMS = re.compile(
    r"(?P<before>[NSEW]|东经|西经|北纬|南纬)?(?P<d>\d+(?:\.\d+)?)[°º度]"
    r"(?:(?P<m>\d+(?:\.\d+)?)(?:['′’分]))?"
    r"(?:(?P<s>\d+(?:\.\d+)?)(?:[\"″”秒]|\'\'|′′|’’))?"
    r"(?P<after>[NSEW])?",
    re.IGNORECASE,
)


def _dms(text) -> tuple[float, float, float, bool] | None:
    """Return (degrees, minutes, seconds, negative) of a degrees-minutes-seconds text, minutes required; else None."""
    if not isinstance(text, str):
        return None
    found = _DMS.fullmatch(re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)))
    if found is None or (found["before"] and found["after"]):
        return None
    if found["m"] is None and (found["s"] is not None or "." not in found["d"]):
        # Whole degrees alone (东经114度) place a point to within 50 km: not a location. Decimal degrees with a
        # degree sign (114.0579°E, 东经114.0579度: GPS and POI lists) are as precise as their decimals.
        return None
    hemisphere = (found["before"] or found["after"] or "").upper()
    negative = hemisphere in ("S", "W", "西经", "南纬")
    return float(found["d"]), float(found["m"] or 0), float(found["s"] or 0), negative


# Seconds or minutes of exactly 60 are the carry a tool leaves when it rounds 59.996″ to 60″ (or 59.9996′ to 60′)
# without carrying it into the minute (degree): 113°58′60″ is 113°59′, and is read so. Anything past 60, or
# minutes of 60 followed by seconds, is no rounding of a real value: refused (`dms_fault`).
_CARRY = 60.0


def _fault(minutes: float, seconds: float) -> str | None:
    if seconds > _CARRY:
        return "seconds"
    if minutes > _CARRY or (minutes == _CARRY and seconds > 0):
        return "minutes"
    return None


def dms_degrees(text) -> float | None:
    """Return decimal degrees for a degrees-minutes-seconds text (113°58′4.13″E, 东经113度58分4.13秒), else None.

    South and west (S, W, 南纬, 西经) are negative; minutes are required unless the degrees have decimals
    (114.0579°E, 东经114.0579度), whole degrees alone being no location. Seconds of exactly 60 (113°58′60″, a
    rounded 59.996″) are read as the next minute, and minutes of exactly 60 with no seconds as the next degree;
    more than that is no position (`dms_fault` says why).
    """
    parts = _dms(text)
    if parts is None:
        return None
    degrees, minutes, seconds, negative = parts
    if _fault(minutes, seconds) is not None:
        return None
    value = degrees + minutes / 60 + seconds / 3600
    return -value if negative else value


def dms_fault(text) -> Message | None:
    """Return why a degrees-minutes-seconds text is no position (seconds or minutes past 60); None when the text
    is no such text or is a position. The value is not repeated: the caller shows it where it may."""
    parts = _dms(text)
    fault = None if parts is None else _fault(parts[1], parts[2])
    if fault is None:
        return None
    return Message(f"coords.dms_{fault}_over_60")
