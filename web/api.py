"""The JSON API under /api/ shared by every map: summary, GeoJSON layers, health, me, whois, search.

No personal data except coordinators' phones in whois, for the roles allowed (audited)."""

from __future__ import annotations

import logging
import threading

from flask import Blueprint, jsonify, request
from sqlalchemy.exc import OperationalError

from gridkit import layers, search
from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.checks import base_grid_problems_geojson
from gridkit.errors import SetupError, ValidationError
from gridkit.grids.generate.layer import target_cells_geojson
from gridkit.grids.generate.target import Target
from gridkit.grids.work import responsibility_at
from gridkit.grids.work.responsibility_cache import ResponsibilityCache
from gridkit.health import health as database_health
from gridkit.models import Coordinator
from gridkit.pii import mask_typed_phone
from gridkit.users import may_see_personal_data
from web.auth import current_user, home_of, login_required
from web.database import COMMITS, db_session, reading_session, transaction
from web.i18n import t
from web.params import bbox_arg, float_arg, int_arg, parse_float, text_arg, time_arg
from web.security import from_another_site
from web.summary import cached_counts
from web.tiles import app_kept

bp = Blueprint("api", __name__, url_prefix="/api")
log = logging.getLogger(__name__)


@bp.get("/summary")
def summary():
    """Return the city's counts (admin units, base grid, work grids, subjects, incidents)."""
    return jsonify(cached_counts())


@bp.get("/admin-units")
def admin_units():
    """Return admin units as GeoJSON: ?level=district|street|community|city&parent=CODE&tolerance=DEG."""
    tolerance = float_arg("tolerance", low=0, high=layers.MAX_TOLERANCE)
    return jsonify(
        layers.admin_units_geojson(
            db_session(),
            level=text_arg("level", max_length=20),
            parent=text_arg("parent", max_length=20),
            tolerance=layers.ADMIN_TOLERANCE if tolerance is None else tolerance,
        )
    )


@bp.get("/base-cells")
def base_cells():
    """Return base cells as GeoJSON: ?bbox=minx,miny,maxx,maxy (lon/lat)&edition=ID&limit=N&offset=N.

    Without offset, more than `limit` cells in the view are refused (zoom in); with offset, pages.
    """
    return jsonify(
        layers.base_cells_geojson(
            db_session(),
            bbox=bbox_arg(),
            edition_id=int_arg("edition"),
            limit=int_arg("limit", low=1, high=layers.CELL_LIMIT) or layers.CELL_LIMIT,
            offset=int_arg("offset"),
        )
    )


@bp.get("/basegrid/problems")
@login_required
def basegrid_problems():
    """Return the validation problems of base grid edition ?edition=ID (default: current) as GeoJSON.

    Properties: type, codes, area_m2, message, bbox. Signed-in users only: validating is expensive,
    so the result is stored per edition state and read back until the edition's cells change.
    """
    edition = int_arg("edition")
    with transaction() as session:
        result = base_grid_problems_geojson(session, edition)
    return jsonify(result)


@bp.get("/basegrid/target-cells")
def basegrid_target_cells():
    """Return edition ?edition=ID's cells (?bbox=…) as GeoJSON with buildings and status against the target.

    Target: ?target-buildings=MIN-MAX or ?target-area-m2=MIN-MAX; buildings counted by the building
    rule, so a draft shows the counts it will have after publishing.
    """
    buildings, area = text_arg("target-buildings", max_length=40), text_arg("target-area-m2", max_length=40)
    edition = int_arg("edition")
    if (buildings is None) == (area is None) or edition is None:
        raise ValidationError("generate.target_missing")
    target = Target.parse(buildings, "buildings") if buildings is not None else Target.parse(area, "area")
    return jsonify(target_cells_geojson(db_session(), edition, target, bbox=bbox_arg()))


@bp.get("/health")
def health():
    """Return whether the database is reachable and at the current schema (503 when outdated)."""
    result = database_health(db_session())
    return jsonify(result), 200 if result["status"] == "ok" else 503


# -- who am I, who is responsible here, search ---------------------------------------------------------


@bp.get("/me")
@login_required
def me():
    """Return the signed-in user: name, role, scope, linked coordinator and workspace URL (401 when anonymous)."""
    user = current_user()
    coordinator = None
    if user.coordinator_id is not None:
        found = db_session().get(Coordinator, user.coordinator_id)
        coordinator = {"id": found.id, "name": found.name} if found is not None else None
    return jsonify(
        {
            "name": user.name,
            "role": user.role,
            "role_name": t(f"role.{user.role}"),
            "scope": user.scope_code,
            "coordinator": coordinator,
            "workspace": home_of(user),
        }
    )


# Where a whois point may lie: China, as gridkit.grids.base.check_lon_lat.
CHINA = {"lon": (73.0, 136.0), "lat": (3.0, 54.0)}


def responsibility_cache(app=None) -> ResponsibilityCache:
    """Return the app's cache of whois answers (one per app, so one per database); it reads its
    state again as often as the tile cache (GRIDKIT_TILE_RECHECK_SECONDS) and after any commit here."""
    return app_kept(
        app, "gridkit_whois_cache", lambda recheck: ResponsibilityCache(recheck=recheck, commits=lambda: COMMITS.count)
    )


def warm_whois(app) -> threading.Thread:
    """Start reading the whois cache's state (every base cell's answer) in a background thread and
    return it: the server starts listening meanwhile, and its first visitors are answered from memory."""

    def warm():
        with app.app_context():
            try:
                responsibility_cache(app).warm(reading_session)
            except (OperationalError, SetupError) as exc:  # the database is down: the first whois request tries again
                log.warning("whois answers not loaded at start: %s", exc)

    thread = threading.Thread(target=warm, name="gridkit-whois-warm", daemon=True)
    thread.start()
    return thread


@bp.get("/whois")
def whois():
    """Return who is responsible for ?lon=&lat= (CGCS2000) [&at=ISO time]: base cell, community and, per
    department, work cell and coordinators, as `gridkit whois`. Phones: in clear (audited) for roles
    that may read personal data there, masked for other signed-in users, left out for visitors.

    web/fastpath.py answers a visitor's request (no session cookie, only lon and lat) whose answer
    is kept, with `whois_point` and `shown_to`, before Flask's request handling. A request another site
    made (web.security.from_another_site) is answered as to a visitor: no phones, nothing audited."""
    lon, lat = whois_point(request.args.get("lon"), request.args.get("lat"))
    at = time_arg("at")
    user = None if from_another_site() else current_user()
    if at is None:
        result = responsibility_cache().responsibility(reading_session, lon, lat)
    else:
        result = responsibility_at(db_session(), lon, lat, at)
    clear = user is not None and may_see_personal_data(user, result["community"])
    if shown_to(result, user, clear):
        with transaction() as session:
            record(
                session,
                user.name,
                PERSONAL_DATA_READ,
                object_type="coordinator",
                detail_fields=["phone"],
                lon=lon,
                lat=lat,
                via="web",
            )
    return jsonify(result)


def whois_point(lon: str | None, lat: str | None) -> tuple[float, float]:
    """Return the point of a whois request's ?lon=&lat= as sent, or raise ValidationError."""
    x, y = _coordinate(lon, "lon", 180), _coordinate(lat, "lat", 90)
    if not (CHINA["lon"][0] <= x <= CHINA["lon"][1] and CHINA["lat"][0] <= y <= CHINA["lat"][1]):
        raise ValidationError("web.point_outside", lon=x, lat=y)
    return x, y


def _coordinate(raw: str | None, name: str, limit: float) -> float:
    if raw is None or raw == "":
        raise ValidationError("web.param_missing", name=name)
    return parse_float(raw, name, low=-limit, high=limit)


def shown_to(result: dict, user, clear: bool) -> int:
    """Make a whois answer what `user` (None: a visitor) may read and return how many phones stay in
    clear (to be audited): phones in clear when `clear`, masked for other users, left out for visitors."""
    phones = 0
    for dept in result["departments"]:
        for person in dept["coordinators"]:
            if not person.get("phone"):
                continue
            if clear:
                phones += 1
            elif user is not None:
                person["phone"] = mask_typed_phone(person["phone"])
            else:
                person["phone"] = None
    result["phones"] = "clear" if clear else ("masked" if user is not None else "hidden")
    return phones


@bp.get("/search")
def search_():
    """Return search hits for ?q=: codes of base cells, work cells and buildings, addresses, place and
    coordinator names, or "lon,lat"; each with kind, label, point and bbox (lon/lat)."""
    query = text_arg("q", required=True, max_length=search.MAX_QUERY)
    return jsonify({"query": query, "hits": search.search(db_session(), query)})
