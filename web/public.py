"""Public pages: the home page with the city summary and the grid map, the base grid page (no personal data)."""

from __future__ import annotations

from flask import Blueprint, render_template

from web.basegrid_target import target_config
from web.database import db_session
from web.mapview import basegrid_map, city_map
from web.pages import basegrid_overview
from web.params import text_arg
from web.summary import cached_counts, cached_extent

bp = Blueprint("public", __name__)


@bp.route("/")
def home():
    """Show the summary panel and the map of admin units and base cells."""
    return render_template("home.html", summary=cached_counts(), map=city_map(cached_extent()))


@bp.route("/basegrid")
def basegrid():
    """Show one base grid edition (?edition=NAME, default the current one) with its validation problems
    and, for a planner, its cells against a target (by default the one a draft was generated to)."""
    overview = basegrid_overview(db_session(), text_arg("edition", max_length=100))
    edition = overview["edition"]
    return render_template(
        "basegrid.html",
        overview=overview,
        map=basegrid_map(overview["extent"], edition["id"] if edition else None),
        target=target_config(db_session(), edition) if edition else None,
    )
