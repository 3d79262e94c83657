"""Public pages: the home page with the city summary and the grid map (no personal data)."""

from __future__ import annotations

from flask import Blueprint, render_template

from gridkit.maps import map_extent, summary
from web.database import db_session
from web.mapview import city_map

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    """Show the summary panel and the map of admin units and base cells."""
    session = db_session()
    return render_template("home.html", summary=summary(session), map=city_map(map_extent(session)))
