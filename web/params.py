"""Request parsing: every query parameter, URL part and JSON field a view reads, checked here.

Each reader returns a clean Python value or raises ValidationError (400) with a catalogue code,
so that nothing a visitor types reaches the database unchecked: no out-of-range integer, no NaN
or infinity, no NUL byte. URL ids use the bounded `int` converter (404 beyond PostgreSQL's
integer range).
"""

from __future__ import annotations

import math

from flask import request
from werkzeug.routing import IntegerConverter

from gridkit.errors import ValidationError
from gridkit.layers import Bbox, check_bbox
from gridkit.rules import parse_time

# PostgreSQL's `integer`: every id column but audit_log's.
INT_MAX = 2**31 - 1
# PostgreSQL's `bigint`: audit_log's id.
BIGINT_MAX = 2**63 - 1
# Longest free text a query parameter may carry (search boxes, names, codes).
TEXT_MAX = 200


class IdConverter(IntegerConverter):
    """`<int:...>` in URLs: 0 .. 2**31-1, so an id beyond PostgreSQL's integer range is a 404."""

    def __init__(self, map, *args, **kwargs):
        kwargs.setdefault("max", INT_MAX)
        super().__init__(map, *args, **kwargs)


def has_nul(values) -> bool:
    """True when any of the strings in `values` holds a NUL byte (PostgreSQL refuses them)."""
    return any("\x00" in value for value in values if isinstance(value, str))


def parse_int(raw, name: str, *, low: int = 0, high: int = INT_MAX) -> int:
    """Return `raw` (text or int) as an int in low..high, or raise ValidationError."""
    if isinstance(raw, bool):
        raise ValidationError("web.param_integer", name=name, value=str(raw), low=low, high=high)
    if isinstance(raw, str):
        text = raw.strip()
        value = int(text) if text.isascii() and text.lstrip("-").isdigit() and len(text) <= 12 else None
    else:
        value = raw if isinstance(raw, int) else None
    if value is None or not low <= value <= high:
        raise ValidationError("web.param_integer", name=name, value=str(raw)[:40], low=low, high=high)
    return value


def parse_float(raw, name: str, *, low: float, high: float) -> float:
    """Return `raw` (text or number) as a finite float in low..high, or raise ValidationError."""
    try:
        value = float(raw) if not isinstance(raw, bool) else math.nan
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high:
        raise ValidationError("web.param_number", name=name, value=str(raw)[:40], low=low, high=high)
    return value


def int_arg(name: str, *, low: int = 0, high: int = INT_MAX) -> int | None:
    """Return query parameter `name` as an int in low..high, None when absent or empty."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    return parse_int(raw, name, low=low, high=high)


def float_arg(name: str, *, low: float, high: float, required: bool = False) -> float | None:
    """Return query parameter `name` as a finite float in low..high (None when absent and not required)."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        if required:
            raise ValidationError("web.param_missing", name=name)
        return None
    return parse_float(raw, name, low=low, high=high)


def text_arg(name: str, *, required: bool = False, max_length: int = TEXT_MAX) -> str | None:
    """Return query parameter `name` stripped (None when absent or blank), at most `max_length` characters."""
    raw = (request.args.get(name) or "").strip()
    if not raw:
        if required:
            raise ValidationError("web.param_missing", name=name)
        return None
    if len(raw) > max_length:
        raise ValidationError("web.param_too_long", name=name, max=max_length)
    return raw


def parse_bbox(text: str) -> Bbox:
    """Return (minx, miny, maxx, maxy) from 'minx,miny,maxx,maxy' (lon/lat degrees), checked."""
    parts = [p.strip() for p in text.split(",")]
    try:
        if len(parts) != 4:
            raise ValueError
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValidationError("layers.bbox_text", bbox=text[:100]) from None
    return check_bbox(values)


def bbox_arg(name: str = "bbox") -> Bbox | None:
    """Return query parameter `name` as a bbox, None when absent."""
    raw = request.args.get(name)
    return parse_bbox(raw) if raw is not None else None


def time_arg(name: str = "at"):
    """Return query parameter `name` as an aware datetime (ISO-8601; naive = Beijing time), or None."""
    raw = text_arg(name, max_length=40)
    return parse_time(raw, field=name) if raw is not None else None


# -- JSON bodies --------------------------------------------------------------------------------------


def json_body() -> dict:
    """Return the request's JSON object, or raise ValidationError."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("web.json_body")
    return body


def body_int(body: dict, name: str, *, required: bool = True, low: int = 0, high: int = INT_MAX) -> int | None:
    """Return field `name` of a JSON body as an int in low..high (None when absent and not required)."""
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError("web.param_integer", name=name, value=str(value)[:40], low=low, high=high)
    return value


def body_share(body: dict, default: float) -> float:
    """Return field `share` (0 < share <= 1) of a JSON body, `default` when absent."""
    share = body.get("share", default)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not math.isfinite(share) or not 0 < share <= 1:
        raise ValidationError("web.share")
    return float(share)


def body_text(body: dict, name: str, *, max_length: int = 2000) -> str | None:
    """Return field `name` of a JSON body as stripped text (None when absent or blank)."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or has_nul([value]):
        raise ValidationError("web.text", name=name)
    if len(value) > max_length:
        raise ValidationError("web.param_too_long", name=name, max=max_length)
    return value.strip() or None


def body_codes(body: dict, name: str = "cells") -> list[str]:
    """Return the list of codes in field `name`, de-duplicated and sorted; at least one."""
    codes = body.get(name)
    if not isinstance(codes, list) or not all(isinstance(c, str) and len(c) <= 40 for c in codes) or has_nul(codes):
        raise ValidationError("web.cells")
    codes = sorted({c.strip() for c in codes if c.strip()})
    if not codes:
        raise ValidationError("web.no_cells")
    return codes


def polygon_from_geojson(geometry):
    """Return a shapely (Multi)Polygon from a GeoJSON geometry object in lon/lat, or raise ValidationError."""
    from shapely import make_valid
    from shapely.geometry import shape

    if not isinstance(geometry, dict) or geometry.get("type") not in ("Polygon", "MultiPolygon"):
        raise ValidationError("web.polygon_type")
    try:
        polygon = shape(geometry)
    except (TypeError, ValueError, KeyError, IndexError, AttributeError):
        raise ValidationError("web.polygon_invalid") from None
    check_bbox(polygon.bounds)
    if polygon.is_empty or not polygon.area > 0:
        raise ValidationError("web.polygon_empty")
    if not polygon.is_valid:
        # A ring drawn across itself: make_valid keeps the areas the user enclosed.
        polygon = make_valid(polygon)
    return polygon
