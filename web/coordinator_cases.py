"""The coordinator's "my cases" under /coordinator/cases: open cases in my work cells with their
deadlines, and the feedback form (note + photo) for a dispatched case, made for a phone screen."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from gridkit.incidents.queries import list_incidents
from gridkit.incidents.workflow import transition
from web.auth import check_csrf, login_required
from web.database import transaction
from web.incidents_api import my_coordinator_id, transition_params, web_actor
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


@bp.post("/<int:incident_id>/feedback")
def feedback(incident_id):
    """Record the feedback (note + photos) of one of my cases, then back to the list."""
    check_csrf()
    params = transition_params("feedback")
    with transaction() as session:
        code = transition(session, incident_id, "feedback", web_actor(), **params).code
    return redirect(url_for("coordinator_cases.index", done=code))
