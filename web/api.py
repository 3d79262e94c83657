"""The read-only JSON API under /api/: summary, GeoJSON layers, health. Public: no personal data."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from gridkit import layers
from gridkit.checks import base_grid_problems_geojson
from gridkit.health import health as database_health
from web.auth import login_required
from web.database import db_session
from web.params import bbox_arg, float_arg, int_arg, text_arg
from web.summary import cached_counts

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/summary")
def summary():
    """Return the city's counts (admin units, base grid, work grids, subjects, incidents)."""
    return jsonify(cached_counts())


@bp.get("/admin-units")
def admin_units():
    """Return admin units as GeoJSON: ?level=district|street|community|city&parent=CODE&tolerance=DEG."""
    tolerance = float_arg("tolerance", low=0, high=layers.MAX_TOLERANCE)
    return jsonify(layers.admin_units_geojson(
        db_session(), level=text_arg("level", max_length=20), parent=text_arg("parent", max_length=20),
        tolerance=layers.ADMIN_TOLERANCE if tolerance is None else tolerance))


@bp.get("/base-cells")
def base_cells():
    """Return base cells as GeoJSON: ?bbox=minx,miny,maxx,maxy (lon/lat)&edition=ID&limit=N&offset=N.

    Without offset, more than `limit` cells in the view are refused (zoom in); with offset, pages.
    """
    return jsonify(layers.base_cells_geojson(
        db_session(), bbox=bbox_arg(), edition_id=int_arg("edition"),
        limit=int_arg("limit", low=1, high=layers.CELL_LIMIT) or layers.CELL_LIMIT,
        offset=int_arg("offset")))


@bp.get("/basegrid/problems")
@login_required
def basegrid_problems():
    """Return the validation problems of base grid edition ?edition=ID (default: current) as GeoJSON.

    Properties: type, codes, area_m2, message, bbox. Signed-in users only: validating is expensive.
    """
    return jsonify(base_grid_problems_geojson(
        db_session(), int_arg("edition"),
        cache=current_app.extensions.setdefault("gridkit_problem_cache", {})))


@bp.get("/health")
def health():
    """Return whether the database is reachable and at the current schema (503 when outdated)."""
    result = database_health(db_session())
    return jsonify(result), 200 if result["status"] == "ok" else 503
