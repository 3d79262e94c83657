"""Public pages: the home page with the city summary and the grid map, the base grid page (no personal data)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from gridkit.maps import basegrid_overview, map_extent, summary
from web.database import db_session
from web.mapview import basegrid_map, city_map

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    """Show the summary panel and the map of admin units and base cells."""
    session = db_session()
    return render_template("home.html", summary=summary(session), map=city_map(map_extent(session)))


@bp.route("/basegrid")
def basegrid():
    """Show one base grid edition (?edition=NAME, default the current one) with its validation problems."""
    overview = basegrid_overview(db_session(), request.args.get("edition") or None)
    edition = overview["edition"]
    return render_template("basegrid.html", overview=overview,
                           map=basegrid_map(overview["extent"], edition["id"] if edition else None))
