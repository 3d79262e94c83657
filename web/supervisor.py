"""The supervisor's pages under /supervisor (supervisors and administrators): the incident heatmap
and per-cell choropleth, overdue and escalation lists, the unassigned queue, the evaluation table,
and a case page with its history and the allowed transitions as buttons."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, redirect, render_template, request, send_file, url_for

from gridkit.grids.work import list_departments
from gridkit.incidents.categories import category_rows
from gridkit.incidents.evaluate import GROUPS, SORTS, STEPS, evaluate, sort_rows
from gridkit.incidents.queries import incident_photo, list_incidents, overdue_cases, show_incident
from gridkit.incidents.workflow import ACTIONS, transition
from gridkit.layers import map_extent
from gridkit.rules import SEVERITIES, IncidentState, today
from web.auth import check_csrf, login_required
from web.database import db_session, transaction
from web.i18n import strings, t
from web.incidents_api import transition_params, web_actor
from web.mapview import leaflet_map, locate_config
from web.paging import PAGE_SIZE, page_request, pager
from web.params import text_arg

bp = Blueprint("supervisor", __name__, url_prefix="/supervisor")

SUPERVISOR_ROLES = ("supervisor", "admin")
EVAL_PAGE_SIZE = 50
# Orders the supervisor's case list offers (gridkit.incidents.queries.ORDERS).
CASE_ORDERS = ("newest", "oldest", "deadline")
JS_STRINGS = (
    "sup.map.heatmap",
    "sup.map.choropleth",
    "sup.map.loading",
    "sup.map.count",
    "sup.map.error",
    "sup.map.cases",
    "sup.map.legend.title",
    "sup.map.legend.none",
)


@bp.before_request
@login_required(roles=SUPERVISOR_ROLES)
def _supervisors_only():
    """Only supervisors and administrators enter."""


@bp.app_template_global()
def late_text(hours: float, working: bool = False, day: float = 24) -> str:
    """Return how late a case is for a reader, counted as its limits count (working hours, or around the clock):
    hours under two days of that clock (`day` hours: deadlines.day_hours), else days and hours."""
    kind = "working_" if working else ""
    if hours < 2 * day or day <= 0:
        return t(f"sup.{kind}hours_late", hours=hours)
    days, rest = divmod(round(hours), round(day))
    return t(f"sup.{kind}days_late", days=days, hours=rest)


@bp.app_template_global()
def left_text(left: dict | None) -> str:
    """Return what a case's pending step has left (queries' `time_left`), or how late it is, for a reader."""
    if not left:
        return ""
    if left["hours"] < 0:
        return late_text(-left["hours"], left["working"], left["day_hours"])
    return t("case.working_hours_left" if left["working"] else "case.hours_left", hours=left["hours"])


@bp.get("")
def index():
    """Show the map, the overdue and escalation lists, the unassigned queue, the cases waiting for a manual
    dispatch and the evaluation table."""
    actor = web_actor()
    args = request.args
    by = args.get("by") if args.get("by") in GROUPS else "department"
    sort = args.get("sort") or "cases"
    start = args.get("from") or (today() - timedelta(days=365)).isoformat()
    filters = {
        "from": start,
        "to": args.get("to") or "",
        "category": args.get("category") or "",
        "state": args.get("state") or "",
        "dept": args.get("dept") or "",
    }
    # A transaction: coordinators' names shown in clear are recorded in the audit log.
    with transaction() as session:
        evaluation = evaluate(
            session, by=by, from_=start, to=args.get("to") or None, actor=actor, dept=filters["dept"] or None
        )
    # Thousands of work cells or coordinators: the table shows a page of them, the worst first.
    rows = sort_rows(evaluation["rows"], sort)
    page, offset = page_request(EVAL_PAGE_SIZE)
    extent = map_extent(session)
    quiet = {"actor": actor, "descriptions": False}
    the_map = leaflet_map(
        extent,
        api={"heatmap": url_for("incidents_api.heatmap"), "choropleth": url_for("incidents_api.choropleth")},
        filters=filters,
        strings=strings(*JS_STRINGS),
        locate=locate_config(),
    )
    return render_template(
        "supervisor.html",
        map=the_map,
        filters=filters,
        by=by,
        groups=list(GROUPS),
        steps=list(STEPS),
        evaluation=evaluation,
        rows=rows[offset : offset + EVAL_PAGE_SIZE],
        pages=pager(len(rows), page, EVAL_PAGE_SIZE),
        sort=sort,
        sorts=SORTS,
        overdue=overdue_cases(session, actor=actor, limit=50),
        # The queue to be worked: its most urgent first (newest first hid the oldest past the 20th).
        # The lists show no description: none is read (nor audited).
        unassigned=list_incidents(session, **quiet, unassigned=True, open_only=True, limit=20, order="deadline"),
        # Dispatched, but no coordinator was found: each waits for a manual dispatch (redispatch), with why.
        needs_dispatch=list_incidents(session, **quiet, needs_dispatch=True, limit=20, order="deadline"),
        recent=list_incidents(session, **quiet, open_only=True, limit=20),
        categories=category_rows(session),
        departments=list_departments(session),
        states=[s.value for s in IncidentState],
    )


@bp.get("/cases")
def cases():
    """List every case a page at a time: search by number or words, filter by state, open only, order."""
    page, offset = page_request()
    q = text_arg("q", max_length=100)
    state = request.args.get("state") or None
    order = request.args.get("order") if request.args.get("order") in CASE_ORDERS else "newest"
    open_only = request.args.get("open", "1") == "1"
    overdue = request.args.get("overdue") == "1"
    needs_dispatch = request.args.get("needs_dispatch") == "1"
    found = list_incidents(
        db_session(),
        state=state,
        overdue=overdue,
        needs_dispatch=needs_dispatch,
        q=q,
        order=order,
        open_only=open_only,
        actor=web_actor(),
        limit=PAGE_SIZE,
        offset=offset,
        # The page shows no description: none is read (nor audited).
        descriptions=False,
    )
    return render_template(
        "supervisor_cases.html",
        cases=found["items"],
        pages=pager(found["total"], page),
        q=q or "",
        state=state or "",
        order=order,
        open_only=open_only,
        overdue=overdue,
        needs_dispatch=needs_dispatch,
        states=[s.value for s in IncidentState],
        orders=CASE_ORDERS,
    )


@bp.get("/incidents/<ident>")
def case(ident):
    """Show one case: details, deadlines, history, photos, and a button per allowed transition."""
    # A transaction: the coordinator's name and phone and the reporter shown in clear are recorded in the audit log.
    with transaction() as session:
        data = show_incident(session, ident, web_actor())
    return render_template(
        "supervisor_case.html",
        case=data,
        categories=category_rows(session),
        departments=list_departments(session),
        severities=SEVERITIES,
        # An action's name only: a link carrying any other text shows no notice.
        done=request.args.get("done") if request.args.get("done") in ACTIONS else None,
    )


@bp.get("/incidents/<ident>/photos/<int:photo>")
def photo(ident, photo):
    """Send one feedback photo of a case the supervisor may see (shown on the case page to verify the work)."""
    path, media_type = incident_photo(
        db_session(), ident, photo, web_actor(), current_app.config["GRIDKIT_SETTINGS"].home
    )
    return send_file(path, mimetype=media_type, max_age=0)


@bp.post("/incidents/<ident>/<action>")
def act(ident, action):
    """Run the transition of a button; back to the case page, which says what was done."""
    check_csrf()
    params = transition_params(action)
    with transaction() as session:
        case_id = transition(session, ident, action, web_actor(), **params).id
    return redirect(url_for("supervisor.case", ident=case_id, done=action))
