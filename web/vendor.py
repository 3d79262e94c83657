"""Leaflet at /static/vendor/leaflet/, served from the one copy packaged with gridkit (gridkit/vendor/leaflet)."""

from __future__ import annotations

from flask import Blueprint, current_app, send_from_directory

from gridkit.vendor import LEAFLET_DIR

bp = Blueprint("vendor", __name__)


@bp.get("/static/vendor/leaflet/<path:filename>")
def leaflet(filename: str):
    """Return one Leaflet file (script, stylesheet, image, licence), cached as the app's static files are."""
    return send_from_directory(LEAFLET_DIR, filename, max_age=current_app.get_send_file_max_age(filename))
