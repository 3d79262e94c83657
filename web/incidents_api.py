"""The incidents JSON API under /api/incidents: lists (paged), one case, transitions, heatmap.

Signed-in supervisors and administrators see the cases of their area; coordinators only the
cases of their work cells. A transition is a POST with this session's CSRF token (X-CSRF-Token
header, or the csrf_token field of a multipart form carrying a photo).
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from gridkit.errors import PermissionDenied, ValidationError
from gridkit.incidents import heatmap as density
from gridkit.incidents.actors import Actor
from gridkit.incidents.cases import coordinator_case
from gridkit.incidents.queries import list_incidents, show_incident
from gridkit.incidents.workflow import ACTIONS, transition
from web.auth import check_csrf, current_user, login_required
from web.database import db_session, transaction
from web.i18n import t
from web.params import text_arg

bp = Blueprint("incidents_api", __name__, url_prefix="/api/incidents")

READERS = ("supervisor", "admin", "coordinator")
# The fields each action takes from a request body, besides note and revision.
PARAMS = {
    "duplicate": ("of",),
    "classify": ("category", "severity"),
    "dispatch": ("dept", "coordinator_phone", "reason"),
}
# Of those, the ones an action cannot go without (the case it duplicates, its category).
REQUIRED = ("of", "category")


# Labels of values the incident pages show: kind → catalogue key prefix (keys `<prefix><value>`).
LABELS = {
    "action": "incident.action.",
    "state": "incident.state.",
    "step": "incident.step.",
    "severity": "case.severity.",
    "by": "sup.by.",
    "step_name": "sup.step.",
    "dispatch_gap": "incident.dispatch_gap.",
}


@bp.app_context_processor
def _labels():
    """Give templates `label(kind, value)`: the translated name of a state, action, step …"""
    return {"label": label}


def label(kind: str, value) -> str:
    """Return the translated label of `value` (a state, action, step, severity, grouping)."""
    return t(LABELS[kind] + str(value))


@bp.before_request
@login_required(roles=READERS)
def _signed_in():
    """Only supervisors, administrators and coordinators reach the incident API."""


def web_actor() -> Actor:
    """Return the signed-in user as a workflow actor."""
    return Actor.of_user(current_user())


def my_coordinator_id() -> int | None:
    """A coordinator sees only the cases of their work cells: their coordinator id, else None."""
    user = current_user()
    if user.role != "coordinator":
        return None
    if user.coordinator_id is None:
        raise PermissionDenied("incident.web.no_coordinator")
    return user.coordinator_id


def _flag(name: str) -> bool:
    return request.args.get(name, "").lower() in ("1", "true", "yes")


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValidationError("incident.web.not_a_number", name=name, value=raw) from None


@bp.get("")
def incidents():
    """Return {"total", "limit", "offset", "items"}.

    Filters: ?state=&dept=&area=&category=&overdue=1&unassigned=1&needs_dispatch=1&open=1&q=;
    ?order=newest|oldest|deadline|todo; pages: ?limit=&offset=.
    """
    args = request.args
    coordinator_id, actor = my_coordinator_id(), web_actor()
    # A transaction: phone or ID numbers in the descriptions read in clear are recorded in the audit log.
    with transaction() as session:
        found = list_incidents(
            session,
            state=args.get("state") or None,
            dept=args.get("dept") or None,
            area=args.get("area") or None,
            category=args.get("category") or None,
            overdue=_flag("overdue"),
            unassigned=_flag("unassigned"),
            needs_dispatch=_flag("needs_dispatch"),
            open_only=_flag("open"),
            coordinator_id=coordinator_id,
            actor=actor,
            q=text_arg("q", max_length=100),
            order=args.get("order") or "newest",
            limit=_int_arg("limit", 50),
            offset=_int_arg("offset", 0),
        )
    return jsonify(found)


@bp.get("/<ident>")
def incident(ident):
    """Return one case with its history, deadlines and the transitions this user may make."""
    # A transaction: the coordinator's name and phone given in clear are recorded in the audit log.
    with transaction() as session:
        data = show_incident(session, ident, web_actor())
        check_mine(session, data["id"], data["code"])
    return jsonify(data)


def check_mine(session, incident_id: int, code: str) -> None:
    """Refuse a coordinator a case that is neither theirs nor in one of their work cells (others pass)."""
    mine = my_coordinator_id()
    if mine is not None and not coordinator_case(session, mine, incident_id):
        raise PermissionDenied("incident.web.not_yours", code=code)


@bp.post("/<ident>/<action>")
def act(ident, action):
    """Run a transition; the body (JSON or form) carries note, revision and the action's fields."""
    check_csrf()
    if action not in ACTIONS:
        raise ValidationError("incident.web.unknown_action", action=action)
    params = transition_params(action)
    with transaction() as session:
        case = transition(session, ident, action, web_actor(), **params)
        data = show_incident(session, case.id, web_actor())
    return jsonify(data)


def transition_params(action: str) -> dict:
    """Return the keyword arguments of a transition from the request (JSON body or form + files)."""
    body = request.get_json(silent=True) if request.is_json else request.form
    if body is None or not hasattr(body, "get"):
        raise ValidationError("incident.web.bad_body")
    params = {"note": _text(body.get("note"))}
    revision = body.get("revision")
    if revision not in (None, ""):
        # A whole number, as JSON or form text: a JSON float (1e400 is infinity) or list is no revision.
        if isinstance(revision, bool) or not isinstance(revision, (int, str)):
            raise ValidationError("incident.web.not_a_number", name="revision", value=str(revision)[:40])
        try:
            params["expected_revision"] = int(revision)
        except (TypeError, ValueError):
            raise ValidationError("incident.web.not_a_number", name="revision", value=revision) from None
    for name in PARAMS.get(action, ()):
        value = _text(body.get(name))
        if value is not None:
            params[name] = value
        elif name in REQUIRED:
            raise ValidationError("web.param_missing", name=name)
    if action == "feedback":
        from gridkit.incidents.attachments import MAX_BYTES, MAX_FILES

        # Read at most one file over the count and one byte over the size: the service refuses what is too much.
        files = [f for f in request.files.getlist("photo") if f and f.filename][: MAX_FILES + 1]
        params["attachments"] = [(f.filename, f.stream.read(MAX_BYTES + 1)) for f in files]
        params["home"] = current_app.config["GRIDKIT_SETTINGS"].home
        params["note"] = params["note"] or ""
    elif action == "rework":
        params["note"] = params["note"] or ""
    return params


def _text(value) -> str | None:
    if value is None:
        return None
    return str(value).strip() or None


@bp.get("/heatmap")
def heatmap():
    """Return incident counts in square bins (aggregated in PostGIS).

    ?from=&to=&category=&state=&dept=&bbox=&zoom=
    """
    return jsonify(density.heatmap(db_session(), _filters(), web_actor()))


@bp.get("/choropleth")
def choropleth():
    """Return counts per community (or per base cell from zoom 14) as GeoJSON, same filters as the heatmap."""
    return jsonify(density.choropleth(db_session(), _filters(), web_actor()))


def _filters() -> dict:
    if current_user().role == "coordinator":
        raise PermissionDenied("incident.web.supervisors_only")
    args = request.args
    return density.parse_filters(
        from_=args.get("from"),
        to=args.get("to"),
        category=args.get("category"),
        state=args.get("state"),
        dept=args.get("dept"),
        bbox=args.get("bbox"),
        zoom=args.get("zoom"),
    )
