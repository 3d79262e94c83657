"""The coordinator's workspace: /coordinator (my cells on a map, their counts and people) and the
work cell API /api/work-cells/<code>.

A coordinator login is linked to one coordinator (`gridkit user add NAME --role coordinator
--coordinator PHONE`); its scope is that coordinator's work cells in every department. Personal
fields (residents' names, ID numbers, phones; legal entities) reach only the cell's own
coordinator, and every such read is written to the audit log. Another coordinator's cell is 403.
Other roles may read a cell's outline and counts inside their scope, never its people.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, url_for

from gridkit.audit import PERSONAL_DATA_READ, record
from gridkit.errors import NotFound, PermissionDenied
from gridkit.models import Coordinator
from gridkit.users import may_see_personal_data
from gridkit.workcells import (
    LIST_LIMIT,
    cell_within_scope,
    coordinator_ids,
    coordinator_work_cells,
    work_cell_detail,
    work_cell_in_force,
)
from web.auth import current_user, login_required
from web.database import db_session, transaction
from web.i18n import current_language, strings
from web.mapview import leaflet_map, locate_config
from web.params import int_arg
from web.security import from_another_site

bp = Blueprint("coordinator", __name__, url_prefix="/coordinator")
api = Blueprint("work_cells_api", __name__, url_prefix="/api/work-cells")

# Roles that may open a work cell at all (coordinators: only their own).
CELL_ROLES = ("coordinator", "admin", "supervisor", "planner", "analyst")

JS_STRINGS = (
    "coordinator.loading",
    "coordinator.error",
    "coordinator.counts.base_cells",
    "coordinator.counts.buildings",
    "coordinator.counts.residents",
    "coordinator.counts.households",
    "coordinator.counts.legal_entities",
    "coordinator.residents",
    "coordinator.entities",
    "coordinator.col.name",
    "coordinator.col.id_number",
    "coordinator.col.phone",
    "coordinator.col.household",
    "coordinator.col.address",
    "coordinator.col.credit_code",
    "coordinator.none",
    "coordinator.more",
    "map.legend.title",
    "coordinator.layer.cell",
    "coordinator.layer.base_cells",
    "coordinator.layer.buildings",
    "coordinator.population.registered",
    "coordinator.population.floating",
    "coordinator.population.other",
)


def _own_coordinator() -> Coordinator | None:
    user = current_user()
    if user.coordinator_id is None:
        return None
    return db_session().get(Coordinator, user.coordinator_id)


@bp.get("")
@login_required(roles=("coordinator",))
def index():
    """Show my work cells (every department) in a list and on a map; a cell opens its counts and people."""
    coordinator = _own_coordinator()
    cells = coordinator_work_cells(db_session(), coordinator.id) if coordinator else []
    boxes = [c["bbox"] for c in cells if c["bbox"]]
    extent = (
        (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
        if boxes
        else None
    )
    config = {
        "lang": current_language(),
        "cells": cells,
        "api": {"cell": url_for("work_cells_api.cell", code="CODE").replace("CODE", "{code}")},
        "strings": strings(*JS_STRINGS),
        "locate": locate_config(),
    }
    return render_template(
        "coordinator.html",
        coordinator=coordinator,
        cells=cells,
        map=leaflet_map(extent, **config),
        cases_url=_cases_url(),
    )


# The coordinator's cases page belongs to the incidents workspace; linked here once it is registered.
CASES_PATH = "/coordinator/cases"


def _cases_url() -> str | None:
    for rule in current_app.url_map.iter_rules():
        if rule.rule == CASES_PATH and "GET" in rule.methods:
            return CASES_PATH
    return None


@api.get("/<code>")
@login_required(roles=CELL_ROLES)
def cell(code: str):
    """Return the work cell in force with this code: outline, base cells, buildings, counts and,
    for its own coordinator only, residents and legal entities (?offset=N pages them; audited), unless
    another site made the request (web.security.from_another_site): then none, and nothing audited."""
    code = _cell_code(code)
    user = current_user()
    session = db_session()
    found = work_cell_in_force(session, code)
    if user.role == "coordinator":
        if user.coordinator_id is None or user.coordinator_id not in coordinator_ids(session, found):
            raise PermissionDenied("workcell.not_yours", code=code)
        personal = not from_another_site()
    else:
        if not cell_within_scope(session, found, user.scope_code):
            raise PermissionDenied("workcell.not_yours", code=code)
        personal = False
    offset = int_arg("offset") or 0
    # Counts of 1–2 residents single a person out: hidden from a reader who may not see residents.
    hidden = not personal and not may_see_personal_data(user, user.scope_code)
    result = work_cell_detail(
        session, found, personal=personal, offset=offset, limit=LIST_LIMIT, hide_small_counts=hidden
    )
    if personal:
        with transaction() as db:
            record(
                db,
                user.name,
                PERSONAL_DATA_READ,
                object_type="work_cell",
                object_id=code,
                detail_fields=["name", "id_number", "phone", "household"],
                residents=len(result["residents"]),
                legal_entities=len(result["legal_entities"]),
                offset=offset,
                via="web",
            )
    return jsonify(result)


def _cell_code(code: str) -> str:
    """Return a work cell code from the URL, or raise NotFound when it cannot be one (digits only)."""
    if not (1 <= len(code) <= 40 and code.isascii() and code.isdigit()):
        raise NotFound("workcell.not_found", code=code[:40])
    return code
