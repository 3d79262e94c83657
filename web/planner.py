"""The planner's work grid editor: pages under /planner and their JSON API under /api/planner.

Pages and API are for planners and administrators. A user with a scope (an admin unit) may only
open departments whose jurisdiction lies inside it (403 otherwise). Every change is a POST with
the session's CSRF token in the X-CSRF-Token header, runs in one transaction, and names the
draft revision the page last saw: a stale one is refused with 409 (optimistic locking).
"""

from __future__ import annotations

from datetime import datetime
from functools import wraps

from flask import Blueprint, jsonify, render_template, request, url_for

from gridkit import layers, rules
from gridkit.colouring import PALETTE
from gridkit.errors import GridkitError, PermissionDenied, ValidationError
from gridkit.grids import work
from gridkit.rules import local_tz, parse_time
from gridkit.users import may_see_personal_data
from web import pages
from web.auth import check_csrf, csrf_token, current_user, login_required
from web.database import db_session, transaction
from web.i18n import current_language, strings
from web.mapview import leaflet_map, locate_config
from web.params import (
    bbox_arg,
    body_codes,
    body_int,
    body_share,
    body_text,
    json_body,
    parse_int,
    polygon_from_geojson,
)
from web.scope import jurisdiction_within_scope, version_dept_code
from web.summary import forget_counts

bp = Blueprint("planner", __name__, url_prefix="/planner")
api = Blueprint("planner_api", __name__, url_prefix="/api/planner")

PLANNER_ROLES = ("planner", "admin")
# Up to this many base cells in the edition, the editor loads them all at once; above it, the
# cells of the view (bbox) after every move, from web.mapview.MIN_CELL_ZOOM on.
FULL_LOAD_CELLS = 5000
# Share of a base cell's area that must lie inside a drawn polygon (the rule's; the page lets the user change it).
DEFAULT_SHARE = rules.WORK_CELL_SHARE
WORK_PROBLEM_TYPES = (
    "retired_base_edition",
    "unassigned_base_cells",
    "outside_jurisdiction",
    "multipart_work_cell",
    "work_cell_code",
    "no_coordinator",
)
# A number no URL uses, replaced by "{id}" etc. to give the page's script URL templates.
_SLOT = 987654321

JS_STRINGS = (
    "planner.status.loading",
    "planner.status.count",
    "planner.status.zoom_in",
    "planner.status.error",
    "planner.tooltip.community",
    "planner.tooltip.work_cell",
    "planner.tooltip.unassigned",
    "planner.tooltip.excluded",
    "planner.tooltip.outside",
    "planner.tooltip.moved",
    "planner.legend.unassigned",
    "planner.legend.excluded",
    "planner.legend.cells",
    "planner.legend.coordinators",
    "planner.legend.none",
    "planner.select.count",
    "planner.select.none",
    "planner.select.polygon_result",
    "planner.select.polygon_empty",
    "planner.select.polygon_short",
    "planner.tool.hint.click",
    "planner.tool.hint.box",
    "planner.tool.hint.polygon",
    "planner.tool.hint.whois",
    "planner.move.new",
    "planner.move.choose",
    "planner.move.code_format",
    "planner.move.done",
    "planner.move.nothing",
    "planner.exclude.done",
    "planner.exclude.reason_needed",
    "planner.saving",
    "planner.error",
    "planner.conflict",
    "planner.conflict.someone",
    "planner.conflict.reloaded",
    "planner.problems.checking",
    "planner.problems.none",
    "planner.problems.summary",
    "planner.problems.error",
    "planner.problems.warning",
    "planner.problems.codes",
    "planner.problems.more",
    "planner.publish.confirm",
    "planner.publish.refused",
    "planner.publish.outdated",
    "planner.publish.done",
    "planner.history.version",
    "planner.history.current",
    "planner.history.this",
    "planner.history.open",
    "planner.history.diff",
    "planner.history.rollback",
    "planner.history.rollback_confirm",
    "planner.history.cells",
    "planner.history.published",
    "planner.history.created",
    "planner.history.empty",
    "planner.draft.started",
    "planner.revision",
    "planner.notice.close",
    "edition.status.draft",
    "edition.status.published",
    "edition.status.retired",
    *(f"planner.problem.{kind}" for kind in WORK_PROBLEM_TYPES),
    # The import of drawn work cells (web.planner_import, gridkit-planner-import.js).
    "planner.import.reading",
    "planner.import.fields",
    "planner.import.importing",
    "planner.import.feature",
    "planner.import.file_problem",
    "planner.import.code",
    "planner.import.unlisted",
    "planner.import.notes",
    "planner.import.report",
    "planner.import.no_file",
    "planner.import.count.work_cells",
    "planner.import.count.assigned",
    "planner.import.count.split",
    "planner.import.count.unassigned",
    "planner.import.count.removed",
)


# -- helpers -----------------------------------------------------------------------------------------


def _require_scope(session, dept_code: str) -> None:
    """Raise PermissionDenied unless the signed-in user's scope holds the department's jurisdiction."""
    user = current_user()
    if not jurisdiction_within_scope(session, dept_code, user.scope_code):
        raise PermissionDenied("web.out_of_scope", dept=dept_code, scope=user.scope_code)


def _require_version_scope(session, version_id: int) -> str:
    dept_code = version_dept_code(session, version_id)
    _require_scope(session, dept_code)
    return dept_code


def _changes(view):
    """Refuse a state-changing request without this session's CSRF token (checked after sign-in)."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        check_csrf()
        return view(*args, **kwargs)

    return wrapped


def _url_template(endpoint: str, **slots) -> str:
    url = url_for(endpoint, **{name: _SLOT + i for i, name in enumerate(slots)})
    for i, name in enumerate(slots):
        url = url.replace(str(_SLOT + i), "{" + slots[name] + "}")
    return url


def _version_url(version_id: int) -> str:
    return url_for("planner.version", version_id=version_id)


# -- pages -------------------------------------------------------------------------------------------


@bp.get("")
@login_required(roles=PLANNER_ROLES)
def index():
    """List departments with their current version and drafts; start a draft from here."""
    departments = pages.planner_departments(db_session(), current_user().scope_code, current_language())
    config = {
        "csrf": csrf_token(),
        "lang": current_language(),
        # Times are shown in the city's zone, as the server writes them, not in the browser's.
        "timeZone": local_tz().key,
        "strings": strings("planner.error", "planner.saving", "planner.draft.started"),
    }
    return render_template("planner_index.html", departments=departments, config=config)


@bp.get("/draft/<int:version_id>")
@bp.get("/version/<int:version_id>")
@login_required(roles=PLANNER_ROLES)
def version(version_id: int):
    """Show a version on the map: the editor for a draft, read-only for a published or retired one."""
    session = db_session()
    _require_version_scope(session, version_id)
    overview = pages.version_overview(session, version_id, current_language())
    editable = overview["version"]["status"] == "draft"
    dept = overview["department"]["code"]
    config = _map_config(overview, mode="edit" if editable else "view")
    return render_template(
        "planner_editor.html",
        overview=overview,
        editable=editable,
        diff=None,
        map=leaflet_map(overview["extent"], **config),
        history_url=url_for("planner_api.history", dept_code=dept),
    )


@bp.get("/diff/<dept_code>/<int:old>/<int:new>")
@login_required(roles=PLANNER_ROLES)
def diff(dept_code: str, old: int, new: int):
    """Compare two versions of a department's work grid: the newer one on the map, moved base cells
    highlighted, and the lists of moved cells, added and removed work cells, coordinator changes."""
    session = db_session()
    _require_scope(session, dept_code)
    result = work.diff_versions(session, dept_code, old, new, hide_small_counts=_hides_small_counts())
    overview = pages.version_overview(session, work.version_by_number(session, dept_code, new).id, current_language())
    config = _map_config(overview, mode="diff")
    config["diff"] = {"old": old, "new": new, "moved": result["moved"]}
    return render_template(
        "planner_editor.html",
        overview=overview,
        editable=False,
        diff=result,
        map=leaflet_map(overview["extent"], **config),
        history_url=url_for("planner_api.history", dept_code=dept_code),
    )


def _map_config(overview: dict, *, mode: str) -> dict:
    version_ = overview["version"]
    dept = overview["department"]["code"]
    vid = version_["id"]
    return {
        "mode": mode,
        "lang": current_language(),
        "csrf": csrf_token(),
        "version": {
            "id": vid,
            "number": version_["number"],
            "status": version_["status"],
            "revision": version_["revision"],
        },
        "dept": {"code": dept, "name": overview["department"]["name"]},
        "fullLoad": overview["counts"]["edition_cells"] <= FULL_LOAD_CELLS,
        "share": DEFAULT_SHARE,
        # One colour per work cell, touching ones different: the indexes come with the GeoJSON.
        "palette": list(PALETTE),
        # "Who is responsible here": a click on the map (in the editor, with the whois tool).
        "locate": locate_config(),
        "api": {
            "overview": url_for("planner_api.overview", version_id=vid),
            "cells": url_for("planner_api.cells", version_id=vid),
            "workCells": url_for("planner_api.work_cells", version_id=vid),
            # Unsimplified: community lines must run along the cell edges they follow.
            "communities": url_for("api.admin_units", level="community", tolerance=0),
            "problems": url_for("planner_api.problems", draft_id=vid),
            "polygon": url_for("planner_api.cells_in_polygon", draft_id=vid),
            "move": url_for("planner_api.move", draft_id=vid),
            "exclude": url_for("planner_api.exclude", draft_id=vid),
            "publish": url_for("planner_api.publish", draft_id=vid),
            "importFields": url_for("planner_api.import_fields", draft_id=vid),
            "import": url_for("planner_api.import_work_cells", draft_id=vid),
            "history": url_for("planner_api.history", dept_code=dept),
            "newDraft": url_for("planner_api.new_draft", dept_code=dept),
            "rollback": url_for("planner_api.rollback_", dept_code=dept),
        },
        "urls": {
            "version": _url_template("planner.version", version_id="id"),
            "diff": _url_template("planner.diff", dept_code="dept", old="old", new="new"),
        },
        "strings": strings(*JS_STRINGS),
    }


@bp.app_template_filter("when")
def when(value: str | datetime | None) -> str:
    """Return an ISO timestamp (or a datetime) as 'YYYY-MM-DD HH:MM' in Beijing time, whatever zone it was
    written in (an external database's sessions may run in UTC)."""
    if not value:
        return ""
    try:
        return parse_time(value).astimezone(local_tz()).strftime("%Y-%m-%d %H:%M")
    except (GridkitError, TypeError):
        return str(value)[:16].replace("T", " ")


# -- API: reading ------------------------------------------------------------------------------------


@api.get("/departments")
@login_required(roles=PLANNER_ROLES)
def departments():
    """Return the departments with current version, drafts and whether the user may edit them."""
    return jsonify(pages.planner_departments(db_session(), current_user().scope_code, current_language()))


@api.get("/versions/<int:version_id>")
@login_required(roles=PLANNER_ROLES)
def overview(version_id: int):
    """Return a version's overview: department, edition, work cells with counts, base cell counts."""
    session = db_session()
    _require_version_scope(session, version_id)
    return jsonify(pages.version_overview(session, version_id, current_language()))


@api.get("/versions/<int:version_id>/cells")
@login_required(roles=PLANNER_ROLES)
def cells(version_id: int):
    """Return the version's base cells with their work cell as GeoJSON: ?bbox=minx,miny,maxx,maxy."""
    session = db_session()
    _require_version_scope(session, version_id)
    return jsonify(layers.version_cells_geojson(session, version_id, bbox=bbox_arg()))


@api.get("/versions/<int:version_id>/work-cells")
@login_required(roles=PLANNER_ROLES)
def work_cells(version_id: int):
    """Return the version's work cells as GeoJSON (union of their base cells): ?bbox=minx,miny,maxx,maxy."""
    session = db_session()
    _require_version_scope(session, version_id)
    return jsonify(layers.version_work_cells_geojson(session, version_id, bbox=bbox_arg()))


@api.get("/drafts/<int:draft_id>/problems")
@login_required(roles=PLANNER_ROLES)
def problems(draft_id: int):
    """Return the draft's validation problems (errors block publishing, warnings do not)."""
    session = db_session()
    _require_version_scope(session, draft_id)
    draft = work.draft(session, draft_id)
    found = [p.to_dict(current_language()) for p in work.validate_version(session, draft)]
    return jsonify(
        {
            "draft": draft.id,
            "revision": draft.revision,
            "problems": found,
            "errors": sum(p["severity"] == "error" for p in found),
            "warnings": sum(p["severity"] != "error" for p in found),
        }
    )


@api.get("/departments/<dept_code>/history")
@login_required(roles=PLANNER_ROLES)
def history(dept_code: str):
    """Return every version of the department's work grid, oldest first."""
    session = db_session()
    _require_scope(session, dept_code)
    versions = work.version_history(session, dept_code)
    for v in versions:
        v["note"] = pages.note_text(v["note"], current_language())
    return jsonify({"dept": dept_code, "versions": versions})


@api.get("/departments/<dept_code>/diff")
@login_required(roles=PLANNER_ROLES)
def diff_json(dept_code: str):
    """Return what changed between versions ?from=N and ?to=M: moved base cells, work cells, subjects."""
    session = db_session()
    _require_scope(session, dept_code)
    numbers = {}
    for name in ("from", "to"):
        numbers[name] = parse_int(request.args.get(name, ""), name)
    return jsonify(
        work.diff_versions(session, dept_code, numbers["from"], numbers["to"], hide_small_counts=_hides_small_counts())
    )


def _hides_small_counts() -> bool:
    """True when the signed-in user may not see residents: counts of 1–2 residents single one out."""
    user = current_user()
    return not may_see_personal_data(user, user.scope_code)


@api.post("/drafts/<int:draft_id>/cells-in-polygon")
@login_required(roles=PLANNER_ROLES)
@_changes
def cells_in_polygon(draft_id: int):
    """Return the codes of the base cells with at least `share` of their area inside `polygon`.

    Body: {"polygon": GeoJSON geometry in lon/lat, "share": 0.5}. Changes nothing.
    """
    session = db_session()
    _require_version_scope(session, draft_id)
    body = json_body()
    polygon = polygon_from_geojson(body.get("polygon"))
    codes = work.cells_in_polygon(
        session, work.draft(session, draft_id), polygon, threshold=body_share(body, DEFAULT_SHARE)
    )
    return jsonify({"draft": draft_id, "cells": codes})


# -- API: changing -----------------------------------------------------------------------------------


@api.post("/drafts/<int:draft_id>/move")
@login_required(roles=PLANNER_ROLES)
@_changes
def move(draft_id: int):
    """Put base cells into a work cell (created when new), taking them from their work cells.

    Body: {"revision": R, "work_cell": 20-digit code, "cells": [codes] or "polygon": GeoJSON with
    optional "share", "name": optional work cell name}. Returns the new revision.
    """
    session = db_session()
    _require_version_scope(session, draft_id)
    by = current_user().name
    body = json_body()
    revision = body_int(body, "revision")
    code = body_text(body, "work_cell")
    if code is None:
        raise ValidationError("web.work_cell")
    polygon = polygon_from_geojson(body["polygon"]) if "polygon" in body else None
    codes = None if polygon is not None else body_codes(body)
    with transaction() as session:
        draft = work.draft(session, draft_id)
        if polygon is not None:
            codes = work.cells_in_polygon(session, draft, polygon, threshold=body_share(body, DEFAULT_SHARE))
            if not codes:
                raise ValidationError("web.no_cells")
        cell = work.set_members(
            session, draft, code, codes, name=body_text(body, "name"), expected_revision=revision, by=by
        )
        result = {"draft": draft.id, "revision": draft.revision, "work_cell": cell.code, "cells": codes}
    return jsonify(result)


@api.post("/drafts/<int:draft_id>/exclude")
@login_required(roles=PLANNER_ROLES)
@_changes
def exclude(draft_id: int):
    """Leave base cells out of every work cell on purpose. Body: {"revision", "cells", "reason"}."""
    session = db_session()
    _require_version_scope(session, draft_id)
    by = current_user().name
    body = json_body()
    revision, codes, reason = body_int(body, "revision"), body_codes(body), body_text(body, "reason") or ""
    with transaction() as session:
        draft = work.draft(session, draft_id)
        count = work.exclude_cells(session, draft, codes, reason, expected_revision=revision, by=by)
        result = {"draft": draft.id, "revision": draft.revision, "excluded": count}
    return jsonify(result)


@api.post("/drafts/<int:draft_id>/publish")
@login_required(roles=PLANNER_ROLES)
@_changes
def publish(draft_id: int):
    """Publish the draft at the revision the page shows; refused (400, with the problems) while it
    has validation errors, and (409) when someone changed it since."""
    session = db_session()
    _require_version_scope(session, draft_id)
    by = current_user().name
    revision = body_int(json_body(), "revision")
    with transaction() as session:
        draft = work.draft(session, draft_id)
        # Publish exactly what the planner saw: a change made meanwhile is a conflict.
        version_ = work.publish(session, draft, by=by, expected_revision=revision)
        forget_counts()
        result = {
            "id": version_.id,
            "dept": version_.dept_code,
            "number": version_.number,
            "status": version_.status,
            "valid_from": version_.valid_from.isoformat(),
            "url": _version_url(version_.id),
        }
    return jsonify(result)


@api.post("/departments/<dept_code>/drafts")
@login_required(roles=PLANNER_ROLES)
@_changes
def new_draft(dept_code: str):
    """Start a draft from the current version (or {"from_version": N}). Returns its id and page URL."""
    session = db_session()
    _require_scope(session, dept_code)
    by = current_user().name
    body = json_body() if request.content_length else {}
    from_version, note = body_int(body, "from_version", required=False), body_text(body, "note")
    with transaction() as session:
        draft = work.start_draft(session, dept_code, from_version=from_version, by=by, note=note)
        result = {
            "id": draft.id,
            "dept": draft.dept_code,
            "number": draft.number,
            "revision": draft.revision,
            "url": url_for("planner.version", version_id=draft.id),
        }
    return jsonify(result), 201


@api.post("/departments/<dept_code>/rollback")
@login_required(roles=PLANNER_ROLES)
@_changes
def rollback_(dept_code: str):
    """Publish a copy of version {"to": N} as a new version. Returns the new version and its URL."""
    session = db_session()
    _require_scope(session, dept_code)
    by = current_user().name
    to = body_int(json_body(), "to")
    with transaction() as session:
        version_ = work.rollback(session, dept_code, to, by=by)
        forget_counts()
        result = {
            "id": version_.id,
            "dept": version_.dept_code,
            "number": version_.number,
            "copy_of": to,
            "status": version_.status,
            "url": _version_url(version_.id),
        }
    return jsonify(result), 201
