"""The read-only JSON API under /api/: summary, GeoJSON layers, health. Public: no personal data."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gridkit import maps
from gridkit.errors import ValidationError
from gridkit.grids.generate.layer import target_cells_geojson
from gridkit.grids.generate.target import Target
from gridkit.health import health as database_health
from web.database import db_session

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/summary")
def summary():
    """Return the city's counts (admin units, base grid, work grids, subjects, incidents)."""
    return jsonify(maps.summary(db_session()))


@bp.get("/admin-units")
def admin_units():
    """Return admin units as GeoJSON: ?level=district|street|community|city&parent=CODE&tolerance=DEG."""
    return jsonify(maps.admin_units_geojson(
        db_session(), level=request.args.get("level") or None, parent=request.args.get("parent") or None,
        tolerance=request.args.get("tolerance", maps.ADMIN_TOLERANCE)))


@bp.get("/base-cells")
def base_cells():
    """Return base cells as GeoJSON: ?bbox=minx,miny,maxx,maxy (lon/lat)&edition=ID."""
    bbox = request.args.get("bbox")
    return jsonify(maps.base_cells_geojson(
        db_session(), bbox=maps.parse_bbox(bbox) if bbox is not None else None,
        edition_id=_int_arg("edition")))


@bp.get("/basegrid/problems")
def basegrid_problems():
    """Return the validation problems of base grid edition ?edition=NAME (default: current) as GeoJSON.

    Properties: type, codes, area_m2, message, bbox. Results are kept per edition and cell count.
    """
    return jsonify(maps.base_grid_problems_geojson(
        db_session(), request.args.get("edition") or None,
        cache=current_app.extensions.setdefault("gridkit_problem_cache", {})))


@bp.get("/basegrid/target-cells")
def basegrid_target_cells():
    """Return edition ?edition=ID's cells (?bbox=…) as GeoJSON with buildings and status against the target.

    Target: ?target-buildings=MIN-MAX or ?target-area-m2=MIN-MAX; buildings counted by the building
    rule, so a draft shows the counts it will have after publishing.
    """
    buildings, area = request.args.get("target-buildings"), request.args.get("target-area-m2")
    if (buildings is None) == (area is None) or _int_arg("edition") is None:
        raise ValidationError("generate.target_missing")
    target = Target.parse(buildings, "buildings") if buildings is not None else Target.parse(area, "area")
    bbox = request.args.get("bbox")
    return jsonify(target_cells_geojson(db_session(), _int_arg("edition"), target,
                                        bbox=maps.parse_bbox(bbox) if bbox is not None else None))


@bp.get("/health")
def health():
    """Return whether the database is reachable and at the current schema (503 when outdated)."""
    result = database_health(db_session())
    return jsonify(result), 200 if result["status"] == "ok" else 503


def _int_arg(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValidationError(f"{name}={raw!r} is not a number: give the id of a base grid edition.")
