"""Open311 GeoReport v2 under /open311/v2: services, requests (GET and POST), one request.

Posting is open, as the spec intends, and rate-limited per network address (GRIDKIT_OPEN311_RATE
posts an hour, a moving window); an `api_key` from GRIDKIT_OPEN311_KEYS marks the source trusted
and lifts the limit (a wrong key counts as a post: keys cannot be guessed faster than posts are
taken). A post's body is at most MAX_POST_BYTES (no media are taken): a larger one is refused with
413 before it is read. Errors use the Open311 format: a list of {"code", "description"} with the
HTTP status.

A case's place is read to about 100 m by the public; exactly with a trusted source's `api_key` (a
wrong one is counted as a post) or by a signed-in user who may read personal data in the case's
community (gridkit.io.export_open311.requests, the rule in gridkit.pii).

The counts live where GRIDKIT_OPEN311_RATE_STORAGE says (the `limits` library, which
Flask-Limiter is built on): `memory://` by default, one store per process shared by all its
threads, which is right for the shipped server (waitress: one process, many threads). Several
processes behind one address need a shared store (redis://, memcached://) or each would allow the
full rate.
"""

from __future__ import annotations

import hmac
import threading

from flask import Blueprint, current_app, jsonify, request
from limits import RateLimitItemPerHour
from limits.errors import ConfigurationError
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from gridkit.errors import GridkitError, PermissionDenied, SetupError, ValidationError
from gridkit.io import export_open311 as service
from web.auth import current_user
from web.database import db_session, transaction
from web.i18n import current_language

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

# The largest post body taken, in bytes: a request is a few short fields (a description of at most
# gridkit.incidents.report.DESCRIPTION_MAX characters).
MAX_POST_BYTES = 64 * 1024

_lock = threading.Lock()


class TooManyRequests(GridkitError):
    """An address posted more than the hourly limit."""

    status = 429


def _error(status: int, description: str):
    response = jsonify([{"code": status, "description": description}])
    response.status_code = status
    return response


@bp.errorhandler(GridkitError)
def _gridkit_error(exc: GridkitError):
    return _error(exc.status, exc.render(current_language()))


@bp.errorhandler(404)
def _not_found(exc):
    return _error(404, "not found: see /open311/v2/services.json")


@bp.errorhandler(413)
def _too_large(exc):
    return _error(413, f"request body larger than {MAX_POST_BYTES} bytes")


@bp.url_value_preprocessor
def _limit_body(endpoint, values) -> None:
    # Runs before every before_request (the app's NUL check reads the form): the limit holds from the first read.
    request.max_content_length = MAX_POST_BYTES


def _trusted_source(address: str) -> str | None:
    """Return the name of the trusted source whose api_key was given, None without a key."""
    key = request.values.get("api_key")
    if not key:
        return None
    settings = current_app.config["GRIDKIT_SETTINGS"]
    for pair in (settings.open311_keys or "").split(","):
        name, _, value = pair.strip().partition("=")
        if value and hmac.compare_digest(value.encode(), key.encode()):
            return name
    # A wrong key is counted as a post from this address: guessing is held to the hourly rate.
    _check_rate(address)
    raise PermissionDenied("open311.bad_api_key")


def _limiter(app) -> MovingWindowRateLimiter:
    """Return the app's rate limiter over the store GRIDKIT_OPEN311_RATE_STORAGE names (made once)."""
    with _lock:
        limiter = app.extensions.get("gridkit_open311_limiter")
        if limiter is None:
            uri = app.config["GRIDKIT_SETTINGS"].open311_rate_storage
            try:
                limiter = MovingWindowRateLimiter(storage_from_string(uri))
            except (ConfigurationError, ValueError) as exc:
                raise SetupError("open311.bad_rate_storage", storage=uri, reason=str(exc)) from None
            app.extensions["gridkit_open311_limiter"] = limiter
        return limiter


@bp.record_once
def _make_limiter(state) -> None:
    # At create_app: a store that cannot be used stops the app from starting, not a citizen's post.
    _limiter(state.app)


def _check_rate(address: str) -> None:
    limit = current_app.config["GRIDKIT_SETTINGS"].open311_rate
    if not _limiter(current_app).hit(RateLimitItemPerHour(limit), "open311-post", address):
        raise TooManyRequests("open311.rate_limited", limit=limit)


def _exact_reader() -> service.ExactReader | None:
    """Return who reads exact places in this request: a trusted key every case, a signed-in user the
    cases where they may read personal data (a coordinator none: service.staff_reader), the public none."""
    if request.args.get("api_key"):
        source = _trusted_source(request.remote_addr or "-")
        return service.ExactReader(f"open311:{source}", lambda area: True)
    return service.staff_reader(current_user())


@bp.get("/services.json")
def services():
    """Every service (incident category)."""
    return jsonify(service.services(db_session()))


@bp.get("/requests.json")
def requests_list():
    """Requests by service_request_id, or filtered by service_code, start_date, end_date, status."""
    ids = [i.strip() for i in request.args.get("service_request_id", "").split(",") if i.strip()]
    exact, lang = _exact_reader(), current_language()
    # A transaction: exact places given are recorded in the audit log.
    with transaction() as session:
        found = service.requests(
            session,
            ids=ids or None,
            service_code=request.args.get("service_code"),
            start=request.args.get("start_date"),
            end=request.args.get("end_date"),
            status=request.args.get("status"),
            lang=lang,
            exact=exact,
        )
    return jsonify(found)


@bp.post("/requests.json")
def requests_post():
    """Create a request: service_code and lat/long or address_id; it becomes an incident at step 1."""
    if request.mimetype not in ("", "application/x-www-form-urlencoded", "multipart/form-data"):
        # A JSON body was read as no fields at all, and answered "service_code is missing".
        raise ValidationError("open311.form_expected", content_type=request.mimetype)
    form = request.values
    address = request.remote_addr or "-"
    source = _trusted_source(address)
    if source is None:
        _check_rate(address)
    reporter = service.reporter_of(form.get("first_name"), form.get("last_name"), form.get("email"), form.get("phone"))
    with transaction() as session:
        incident = service.create_request(
            session,
            service_code=form.get("service_code"),
            lat=form.get("lat"),
            lon=form.get("long"),
            address_id=form.get("address_id"),
            description=form.get("description"),
            reporter=reporter,
            source=f"open311:{source}" if source else "open311",
        )
        code = incident.code
    response = jsonify([{"service_request_id": code, "service_notice": None, "account_id": None}])
    response.status_code = 201
    return response


@bp.get("/requests/<request_id>.json")
def request_one(request_id: str):
    """One request, as a one-element list (the spec's shape)."""
    exact, lang = _exact_reader(), current_language()
    # A transaction: an exact place given is recorded in the audit log.
    with transaction() as session:
        found = service.request_by_id(session, request_id, lang, exact)
    return jsonify([found])
