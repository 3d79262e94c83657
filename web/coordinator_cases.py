"""The coordinator's "my cases" under /coordinator/cases: open cases in my work cells with their
deadlines, one case's page (place, deadlines, history, photos), and the feedback form (note + photo) for a
dispatched case, made for a phone screen."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, send_file, url_for

from gridkit.incidents.cases import get_incident
from gridkit.incidents.queries import incident_photo, list_incidents, show_incident
from gridkit.incidents.workflow import transition
from web.auth import check_csrf, login_required
from web.database import db_session, transaction
from web.incidents_api import check_mine, my_coordinator_id, transition_params, web_actor
from web.paging import PAGE_SIZE, page_request, pager
from web.params import text_arg

bp = Blueprint("coordinator_cases", __name__, url_prefix="/coordinator/cases")


@bp.before_request
@login_required(roles=("coordinator",))
def _coordinators_only():
    """Only coordinators enter: the list is their own."""


@bp.get("")
def index():
    """List my open cases a page at a time, dispatched first and nearest deadline first; `?q=` finds by code or text."""
    page, offset = page_request()
    q = text_arg("q", max_length=100)
    coordinator_id, actor = my_coordinator_id(), web_actor()
    # A transaction: phone or ID numbers in the descriptions read in clear are recorded in the audit log.
    with transaction() as session:
        cases = list_incidents(
            session,
            coordinator_id=coordinator_id,
            open_only=True,
            actor=actor,
            q=q,
            order="todo",
            limit=PAGE_SIZE,
            offset=offset,
        )
    # The notice names a case of this list only: a link carrying any other text ("… call 138…") shows none.
    done = request.args.get("done")
    done = done if any(c["code"] == done for c in cases["items"]) else None
    return render_template(
        "coordinator_cases.html",
        cases=cases["items"],
        total=cases["total"],
        pages=pager(cases["total"], page),
        q=q or "",
        done=done,
    )


@bp.get("/<ident>")
def case(ident):
    """Show one of my cases (mine, or in one of my work cells): place, deadlines, history and its photos, and
    the feedback form while it is dispatched. Another coordinator's case is refused."""
    # A transaction: a phone or ID number read in clear is recorded in the audit log (not if refused).
    with transaction() as session:
        data = show_incident(session, ident, web_actor())
        check_mine(session, data["id"], data["code"])
    return render_template("supervisor_case.html", case=data, coordinator=True, done=None)


@bp.get("/<ident>/photos/<int:photo>")
def photo(ident, photo):
    """Send one photo of one of my cases (the feedback I sent, to check it arrived)."""
    session = db_session()
    incident = get_incident(session, ident)
    check_mine(session, incident.id, incident.code)
    path, media_type = incident_photo(session, ident, photo, web_actor(), current_app.config["GRIDKIT_SETTINGS"].home)
    return send_file(path, mimetype=media_type, max_age=0)


@bp.post("/<int:incident_id>/feedback")
def feedback(incident_id):
    """Record the feedback (note + photos) of one of my cases, then back to the list."""
    check_csrf()
    params = transition_params("feedback")
    with transaction() as session:
        code = transition(session, incident_id, "feedback", web_actor(), **params).code
    return redirect(url_for("coordinator_cases.index", done=code))
