"""Every route, probed: hostile values never give a 500, and a role × endpoint matrix in which
each route refuses (401/403/404, or the sign-in page) every role and scope that may not use it,
and no personal value reaches a role that may not see it."""

from __future__ import annotations

import json
import os
import re

import pytest
from factories_web import (
    DEPT,
    PHONE_A,
    PHONE_B,
    POINT_A,
    RESIDENT_NAMES,
    RESIDENT_PHONES,
    USERS,
    A,
    B,
    commit,
    make_web_city,
    sign_in,
)

from gridkit import db
from web import create_app

BAD_VALUES = [
    "2147483648",
    "99999999999999999999",
    "-1",
    "0",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "\x00",
    "",
    "abc",
    "x" * 3000,
    "1,2,3,NaN",
    "114,22,115,nan",
    "２０２６",
    "²",  # a digit to str.isdigit(), no number to int()
]
QUERY_NAMES = [
    "bbox",
    "edition",
    "limit",
    "offset",
    "tolerance",
    "level",
    "parent",
    "lon",
    "lat",
    "at",
    "q",
    "from",
    "to",
    "action",
    "before",
    "done",
    "lang",
    "next",
    "crs",
    "bbox-crs",
]
PATH_VALUES = {"int": ["2147483648", "987654"], "default": ["%00", "NaN", "x" * 300, "10000144030400100201", "²"]}
BAD_BODIES = [
    '{"revision": 2147483648, "to": 2147483648, "from_version": 2147483648}',
    '{"revision": NaN, "to": Infinity, "share": NaN, "cells": ["\\u0000"]}',
    '{"revision": 0, "work_cell": "\\u0000", "cells": ["1"], "polygon": {"type": "Polygon", '
    '"coordinates": [[[NaN, 22], [114, NaN], [114, 22], [NaN, 22]]]}}',
    '{"revision": 0, "share": 1e400, "polygon": {"type": "Polygon", "coordinates": [[[1e400, 22], [114, 22]]]}}',
    "[1, 2, 3]",
    "not json",
    '{"revision": -1, "note": "\\u0000", "reason": 5}',
]


@pytest.fixture(scope="module")
def module_settings(pg_server, tmp_path_factory):
    """One migrated database with the web city for the whole module (the sweep only reads or is refused)."""
    from conftest import TEMPLATE_DB, _dispose_engine_for

    from gridkit.config import Settings

    name = f"gridkit_web_sweep_{os.getpid()}"
    pg_server.drop_database(name)
    url = pg_server.create_database(name, template=TEMPLATE_DB)
    settings = Settings(home=tmp_path_factory.mktemp("home"), database_url=url)
    ids = commit(settings, make_web_city)
    yield settings, ids
    _dispose_engine_for(db.database_url(settings))
    pg_server.drop_database(name)


@pytest.fixture(scope="module")
def app(module_settings):
    settings, _ = module_settings
    app = create_app(settings)
    app.config["TESTING"] = True
    return app


_addresses = iter(range(1, 250))


def _signed_in(app, role):
    # Each client its own address: the sweep's failed sign-ins must not hold up the next role's.
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = f"10.77.0.{next(_addresses)}"
    token = sign_in(client, USERS[role]) if role else None
    return client, token


def _urls(rule) -> list[str]:
    """Return the rule's URL with each path part replaced by each hostile value in turn."""
    parts = list(rule.arguments)
    if not parts:
        return [rule.rule]
    urls = []
    for name in parts:
        converter = type(rule._converters[name]).__name__
        values = PATH_VALUES["int" if "Id" in converter or "Integer" in converter else "default"]
        for value in values:
            url = rule.rule
            for other in parts:
                fill = value if other == name else ("1" if "<int:" + other in url else "x")
                url = re.sub(r"<(?:\w+:)?" + other + ">", fill, url)
            urls.append(url)
    return urls


def _queries():
    # Every parameter at once with each hostile value, then each alone (a view may stop at the first
    # bad one, hiding the next). NUL bytes are refused before any view runs.
    for value in BAD_VALUES:
        yield dict.fromkeys(QUERY_NAMES, value)
    for name in QUERY_NAMES:
        yield {name: "NaN"}


@pytest.mark.parametrize("role", [None, "admin", "coordinator"])
def test_no_route_answers_500_to_hostile_values(app, role):
    client, token = _signed_in(app, role)
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static", "auth.logout"):
            continue
        for url in _urls(rule):
            if "GET" in rule.methods:
                for query in _queries():
                    response = client.get(url, query_string=query)
                    if response.status_code >= 500:
                        failures.append(("GET", url, query, response.status_code))
            if "POST" in rule.methods:
                for body in BAD_BODIES:
                    response = client.post(
                        url, data=body, content_type="application/json", headers={"X-CSRF-Token": token or ""}
                    )
                    if response.status_code >= 500:
                        failures.append(("POST", url, body, response.status_code))
                for value in BAD_VALUES:
                    form = dict.fromkeys(("name", "role", "scope", "password", "coordinator_phone", "active"), value)
                    form["csrf_token"] = token or ""
                    response = client.post(url, data=form)
                    if response.status_code >= 500:
                        failures.append(("POST form", url, value, response.status_code))
    assert not failures, failures[:20]


# Times at the ends of the calendar, each alone (a period check would hide one given with its partner):
# date arithmetic on them overflowed (a 500 from the heatmap, the choropleth, Open311's list).
TIME_NAMES = ("from", "to", "at", "before", "start_date", "end_date", "datetime")
EDGE_TIMES = ("9999-12-31T23:59:59", "9999-12-31", "0001-01-01", "0001-01-01T00:00:00Z")


@pytest.mark.parametrize("role", [None, "admin"])
def test_no_route_answers_500_to_times_at_the_ends_of_the_calendar(app, role):
    client, _token = _signed_in(app, role)
    failures = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or "GET" not in rule.methods:
            continue
        for url in _urls(rule)[:1]:
            for name in TIME_NAMES:
                for value in EDGE_TIMES:
                    response = client.get(url, query_string={name: value})
                    if response.status_code >= 500:
                        failures.append((url, name, value, response.status_code))
    assert not failures, failures[:20]


def test_the_sweep_reaches_every_route(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()} - {"static"}
    # The matrix below names an expectation for every route of the app; a new route must be added there.
    assert endpoints <= set(MATRIX) | {"auth.logout"}, sorted(endpoints - set(MATRIX))


ALL = {None, "admin", "planner", "coordinator", "coordinator_b", "supervisor", "supervisor_c2", "analyst"}
SIGNED_IN = ALL - {None}
PLANNERS = {"admin", "planner"}
ANALYSTS = {"admin", "analyst"}
SUPERVISORS = {"admin", "supervisor", "supervisor_c2"}
COORDINATORS = {"coordinator", "coordinator_b"}
INCIDENT_READERS = SUPERVISORS | COORDINATORS

# endpoint → (method, URL template, roles that may use it)
MATRIX = {
    "public.home": ("GET", "/", ALL),
    "public.basegrid": ("GET", "/basegrid", ALL),
    "vendor.leaflet": ("GET", "/static/vendor/leaflet/leaflet.js", ALL),
    "auth.login": ("GET", "/login", ALL),
    "api.summary": ("GET", "/api/summary", ALL),
    "api.admin_units": ("GET", "/api/admin-units", ALL),
    "api.base_cells": ("GET", "/api/base-cells", ALL),
    "api.health": ("GET", "/api/health", ALL),
    "api.search_": ("GET", "/api/search?q=王", ALL),
    "api.whois": ("GET", "/api/whois?lon={lon}&lat={lat}", ALL),
    "api.basegrid_problems": ("GET", "/api/basegrid/problems", SIGNED_IN),
    "api.me": ("GET", "/api/me", SIGNED_IN),
    "planner.index": ("GET", "/planner", PLANNERS),
    "planner.version": ("GET", "/planner/version/{version}", PLANNERS),
    "planner.diff": ("GET", "/planner/diff/{dept}/1/1", PLANNERS),
    "planner_api.departments": ("GET", "/api/planner/departments", PLANNERS),
    "planner_api.overview": ("GET", "/api/planner/versions/{version}", PLANNERS),
    "planner_api.cells": ("GET", "/api/planner/versions/{version}/cells", PLANNERS),
    "planner_api.work_cells": ("GET", "/api/planner/versions/{version}/work-cells", PLANNERS),
    "planner_api.problems": ("GET", "/api/planner/drafts/{version}/problems", PLANNERS),
    "planner_api.history": ("GET", "/api/planner/departments/{dept}/history", PLANNERS),
    "planner_api.diff_json": ("GET", "/api/planner/departments/{dept}/diff?from=1&to=1", PLANNERS),
    "planner_api.cells_in_polygon": ("POST", "/api/planner/drafts/{version}/cells-in-polygon", PLANNERS),
    "planner_api.move": ("POST", "/api/planner/drafts/{version}/move", PLANNERS),
    "planner_api.exclude": ("POST", "/api/planner/drafts/{version}/exclude", PLANNERS),
    "planner_api.publish": ("POST", "/api/planner/drafts/{version}/publish", PLANNERS),
    "planner_api.new_draft": ("POST", "/api/planner/departments/{dept}/drafts", PLANNERS),
    "planner_api.rollback_": ("POST", "/api/planner/departments/{dept}/rollback", PLANNERS),
    "planner_api.import_fields": ("POST", "/api/planner/drafts/{version}/import/fields", PLANNERS),
    "planner_api.import_work_cells": ("POST", "/api/planner/drafts/{version}/import", PLANNERS),
    # No such report: 404 for those let in.
    "planner.import_report": (
        "GET",
        "/planner/draft/{version}/import-reports/20260101-000000-workgrid-import.csv",
        PLANNERS,
    ),
    "coordinator.index": ("GET", "/coordinator", {"coordinator", "coordinator_b"}),
    "work_cells_api.cell": (
        "GET",
        "/api/work-cells/" + A,
        {"coordinator", "admin", "planner", "supervisor", "analyst"},
    ),
    "admin.index": ("GET", "/admin", {"admin"}),
    # Other workspaces built on this shell (supervisor, analyst, incidents, OGC API, Open311).
    "api.basegrid_target_cells": ("GET", "/api/basegrid/target-cells?edition=1&target-buildings=1-9", ALL),
    "analyst.index": ("GET", "/analyst/", ANALYSTS),
    "analyst.choropleth_json": ("GET", "/analyst/choropleth.json", ANALYSTS),
    "analyst.export": ("POST", "/analyst/export", ANALYSTS),
    "analyst.report_download": ("GET", "/analyst/report", ANALYSTS),
    "analyst.report_preview": ("GET", "/analyst/report.json", ANALYSTS),
    "supervisor.index": ("GET", "/supervisor", SUPERVISORS),
    "supervisor.case": ("GET", "/supervisor/incidents/1", SUPERVISORS),
    "supervisor.cases": ("GET", "/supervisor/cases", SUPERVISORS),
    "supervisor.act": ("POST", "/supervisor/incidents/1/accept", SUPERVISORS),
    "supervisor.photo": ("GET", "/supervisor/incidents/1/photos/1", SUPERVISORS),
    "incidents_api.incidents": ("GET", "/api/incidents", INCIDENT_READERS),
    "incidents_api.incident": ("GET", "/api/incidents/1", INCIDENT_READERS),
    # A coordinator acts on their own cases only (from /coordinator/cases); maps of all cases are the supervisors'.
    "incidents_api.act": ("POST", "/api/incidents/1/accept", SUPERVISORS),
    "incidents_api.choropleth": ("GET", "/api/incidents/choropleth", SUPERVISORS),
    "incidents_api.heatmap": ("GET", "/api/incidents/heatmap", SUPERVISORS),
    "coordinator_cases.index": ("GET", "/coordinator/cases", COORDINATORS),
    "coordinator_cases.feedback": ("POST", "/coordinator/cases/1/feedback", COORDINATORS),
    "coordinator_cases.case": ("GET", "/coordinator/cases/1", COORDINATORS),
    "coordinator_cases.photo": ("GET", "/coordinator/cases/1/photos/1", COORDINATORS),
    "ogc.landing": ("GET", "/ogc", ALL),
    "ogc.api": ("GET", "/ogc/api", ALL),
    "ogc.conformance": ("GET", "/ogc/conformance", ALL),
    "ogc.collections_list": ("GET", "/ogc/collections", ALL),
    "ogc.collection_doc": ("GET", "/ogc/collections/base-cells", ALL),
    "ogc.items_page": ("GET", "/ogc/collections/base-cells/items", ALL),
    "ogc.item": ("GET", "/ogc/collections/base-cells/items/1", ALL),
    "open311.services": ("GET", "/open311/v2/services.json", ALL),
    "open311.requests_list": ("GET", "/open311/v2/requests.json", ALL),
    "open311.request_one": ("GET", "/open311/v2/requests/1.json", ALL),
    "open311.requests_post": ("POST", "/open311/v2/requests.json", ALL),
    "admin.add": ("POST", "/admin/users", {"admin"}),
    "admin.reset_password": ("POST", "/admin/users/nobody/password", {"admin"}),
    "admin.change_role": ("POST", "/admin/users/nobody/role", {"admin"}),
    "admin.change_active": ("POST", "/admin/users/nobody/active", {"admin"}),
    # Below the layer's first zoom: an empty tile (the matrix reads bodies as text).
    "tiles.tile": ("GET", "/tiles/work-cells/2/3/1.mvt?dept={dept}", ALL),
    "tiles.layers": ("GET", "/tiles/layers.json", ALL),
    "tiles.work_cell_labels": ("GET", "/tiles/work-cells/labels.json?dept={dept}&bbox=113,22,115,23", ALL),
    # Single sign-on is not configured here: 404 for everyone.
    "oidc.login": ("GET", "/login/oidc", set()),
    "oidc.callback": ("GET", "/login/oidc/callback", set()),
}


def _refused(response) -> bool:
    if response.status_code in (401, 403, 404):
        return True
    return response.status_code == 302 and "/login" in response.headers.get("Location", "")


def _personal_values_allowed(role, endpoint) -> set[str]:
    allowed = set()
    if role == "coordinator" and endpoint == "work_cells_api.cell":
        allowed |= {*RESIDENT_NAMES[:2], *RESIDENT_PHONES[:2]}
    if endpoint == "api.whois" and role in ("admin", "coordinator", "coordinator_b", "supervisor"):
        allowed.add(PHONE_A)
    return allowed


@pytest.mark.parametrize("role", sorted(ALL, key=str))
def test_role_endpoint_matrix(app, module_settings, role):
    _, ids = module_settings
    client, token = _signed_in(app, role)
    personal = {*RESIDENT_NAMES, *RESIDENT_PHONES, PHONE_A, PHONE_B}
    wrong = []
    for endpoint, (method, template, roles) in MATRIX.items():
        url = template.format(version=ids["version"], dept=DEPT, lon=POINT_A[0], lat=POINT_A[1])
        if method == "GET":
            response = client.get(url)
        else:
            # A body that would be refused anyway: the point is who gets past the door.
            response = client.post(
                url,
                data=json.dumps({"revision": -1}),
                content_type="application/json",
                headers={"X-CSRF-Token": token or ""},
            )
        allowed = role in roles
        if allowed and (
            response.status_code in (401, 403)
            or response.status_code >= 500
            or (response.status_code == 302 and "/login" in response.headers.get("Location", ""))
        ):
            wrong.append((endpoint, "refused", response.status_code))
        if not allowed and not _refused(response):
            wrong.append((endpoint, "let in", response.status_code))
        body = response.get_data(as_text=True)
        leaked = {value for value in personal - _personal_values_allowed(role, endpoint) if value in body}
        if leaked:
            wrong.append((endpoint, "leaked", sorted(leaked)))
    assert not wrong, (role, wrong)


def test_scope_and_ownership_refusals(app):
    # Another coordinator's cell, and a supervisor scoped to the other community: refused.
    client, _ = _signed_in(app, "coordinator_b")
    assert client.get(f"/api/work-cells/{A}").status_code == 403
    assert client.get(f"/api/work-cells/{B}").get_json()["personal"] is True
    client, _ = _signed_in(app, "supervisor_c2")
    assert client.get(f"/api/work-cells/{A}").status_code == 403
