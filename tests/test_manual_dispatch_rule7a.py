"""A dispatch that finds no coordinator (audit): the case is dispatched to the department but does not vanish. It
is listed as waiting for a manual dispatch, with why (outside every base cell, in no work cell of the department,
a work cell without an active coordinator), the CLI and the web say so when it is dispatched, the historic-case
import counts such cases, and a supervisor's dispatch naming a coordinator (改派) takes it off the list."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from factories_incidents import IN_C1, IN_C2, OUTSIDE, PASSWORD, PHONE1, SUPERVISOR, make_incident_world
from factories_web import commit
from sqlalchemy import text

from gridkit.cli import main
from gridkit.grids import work
from gridkit.incidents import workflow as wf
from gridkit.incidents.importer import import_incidents
from gridkit.incidents.queries import list_incidents, show_incident
from web import create_app


def dispatched(session, where, **dispatch) -> int:
    """Report, accept, classify and dispatch a case at `where`; return its id."""
    case = wf.report_incident(
        session, lon=where[0], lat=where[1], description="井盖", category="0101", actor=SUPERVISOR
    ).incident.id
    wf.accept(session, case, SUPERVISOR)
    wf.classify(session, case, SUPERVISOR, category="0101")
    wf.dispatch(session, case, SUPERVISOR, **dispatch)
    return case


def stop_coordinator_of_c2(session) -> None:
    session.execute(text("UPDATE coordinator SET active = false WHERE phone = '13800138002'"))


def test_cases_without_a_coordinator_wait_for_a_manual_dispatch_with_why(session):
    world = make_incident_world(session)
    stop_coordinator_of_c2(session)
    outside = dispatched(session, OUTSIDE)
    no_coordinator = dispatched(session, IN_C2)
    fine = dispatched(session, IN_C1)
    assert show_incident(session, fine)["needs_dispatch"] is None
    reasons = {outside: "outside_grid", no_coordinator: "no_coordinator"}
    for case, reason in reasons.items():
        shown = show_incident(session, case)
        assert shown["state"] == "dispatched" and shown["coordinator"] is None
        assert shown["needs_dispatch"] == reason
    listed = list_incidents(session, needs_dispatch=True)
    assert {c["id"]: c["needs_dispatch"] for c in listed["items"]} == reasons and listed["total"] == 2
    # A supervisor dispatches it by hand (改派), naming a coordinator and why: off the list.
    wf.dispatch(session, no_coordinator, SUPERVISOR, coordinator_phone=PHONE1, reason="二号网格员离岗，由张三代办")
    shown = show_incident(session, no_coordinator)
    assert shown["coordinator"]["id"] == world["coord1"].id and shown["needs_dispatch"] is None
    assert [c["id"] for c in list_incidents(session, needs_dispatch=True)["items"]] == [outside]


def test_a_cell_in_no_work_cell_of_the_department_is_said(session):
    make_incident_world(session)
    cell = session.scalar(
        text(
            "SELECT code FROM base_cell WHERE ST_Covers(geom, ST_SetSRID(ST_MakePoint(:x, :y), 4490)) "
            "ORDER BY code LIMIT 1"
        ),
        {"x": IN_C1[0], "y": IN_C1[1]},
    )
    draft = work.start_draft(session, "200001", by="planner")
    work.exclude_cells(session, draft, [cell], "水库")
    work.publish(session, draft, at=wf.now(), by="planner")
    case = dispatched(session, IN_C1)
    assert show_incident(session, case)["needs_dispatch"] == "no_work_cell"


@pytest.fixture
def city(fresh_settings):
    def fill(session):
        make_incident_world(session)
        stop_coordinator_of_c2(session)
        return {
            "in_c2": dispatched(session, IN_C2),
            "out": dispatched(session, OUTSIDE),
            "c1": dispatched(session, IN_C1),
        }

    return fresh_settings, commit(fresh_settings, fill)


def test_the_cli_says_so_at_dispatch_and_lists_them(city):
    settings, _ = city

    def run(*args, lang="en"):
        env = {"GRIDKIT_LANG": lang, "GRIDKIT_USER": "super1"}
        result = CliRunner().invoke(main, [str(a) for a in args], obj=settings, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    case = commit(
        settings,
        lambda s: (
            wf.report_incident(
                s, lon=IN_C2[0], lat=IN_C2[1], description="路灯", category="0101", actor=SUPERVISOR
            ).incident.code
        ),
    )
    run("incident", "accept", case)
    run("incident", "classify", case, "--category", "0101")
    said = run("incident", "dispatch", case)
    assert "no coordinator found: its work cell has no active coordinator" in said
    assert f"waits for a manual dispatch: gridkit incident dispatch {case} --coordinator PHONE" in said
    listed = json.loads(run("incident", "list", "--needs-dispatch", "--json"))
    assert {c["code"]: c["needs_dispatch"] for c in listed["items"]}[case] == "no_coordinator"
    assert listed["total"] == 3
    zh = run("incident", "dispatch", case, "--coordinator", PHONE1, "--reason", "代办", lang="zh-CN")
    assert "等待人工派遣" not in zh
    assert json.loads(run("incident", "list", "--needs-dispatch", "--json"))["total"] == 2
    text_list = run("incident", "list", "--needs-dispatch", lang="zh-CN")
    assert "待人工派遣原因" in text_list and "outside_grid" in text_list


def test_the_supervisor_sees_them_with_why_and_dispatches_by_hand(city):
    settings, ids = city
    app = create_app(settings)
    app.config["TESTING"] = True
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    client.post("/login", data={"name": "super1", "password": PASSWORD, "csrf_token": token})
    page = client.get("/supervisor").get_data(as_text=True)
    assert "待人工派遣（2）" in page
    listed = page[page.index('id="needs-dispatch-list"') :]
    assert "所在工作网格没有在岗的网格员" in listed and "上报时不在任何基础网格内" in listed
    case = client.get(f"/supervisor/incidents/{ids['in_c2']}").get_data(as_text=True)
    assert 'id="case-needs-dispatch"' in case and "未找到负责该事件的网格员" in case
    assert 'id="case-needs-dispatch"' not in client.get(f"/supervisor/incidents/{ids['c1']}").get_data(as_text=True)
    filtered = client.get("/supervisor/cases?needs_dispatch=1").get_data(as_text=True)
    assert filtered.count('data-code="') == 2
    api = client.get("/api/incidents?needs_dispatch=1").get_json()
    assert sorted(c["id"] for c in api["items"]) == sorted([ids["in_c2"], ids["out"]])
    token = re.search(r'name="csrf_token" value="([^"]+)"', case).group(1)
    revision = re.search(r'name="revision" value="(\d+)"', case).group(1)
    form = {"csrf_token": token, "revision": revision, "coordinator_phone": PHONE1, "reason": "代办"}
    assert client.post(f"/supervisor/incidents/{ids['in_c2']}/dispatch", data=form).status_code == 302
    english = client.get(f"/supervisor/incidents/{ids['in_c2']}?lang=en").get_data(as_text=True)
    assert 'id="case-needs-dispatch"' not in english
    assert "Waiting for a manual dispatch (1)" in client.get("/supervisor").get_data(as_text=True)


def test_imported_dispatched_cases_without_a_coordinator_are_counted_and_listed(session, tmp_path):
    make_incident_world(session)
    stop_coordinator_of_c2(session)
    rows = ["id,type,reported,state,lon,lat"]
    for n, (where, state) in enumerate(((OUTSIDE, "open"), (IN_C2, "open"), (IN_C1, "open"), (IN_C2, "done"))):
        rows.append(f"H{n},0101,2026-0{n + 1}-02T08:00:00+00:00,{state},{where[0]!r},{where[1]!r}")
    rows.append("H9,0101,2026-06-02T08:00:00+00:00,open,,")  # no place: kept, and waiting too
    (tmp_path / "cases.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    mapping = {
        "source": "hist",
        "code_prefix": "H",
        "columns": {
            "external_id": "id",
            "category": "type",
            "reported_at": "reported",
            "state": "state",
            "lon": "lon",
            "lat": "lat",
        },
        "categories": {"0101": "0101"},
        "states": {"open": "dispatched", "done": "closed"},
    }
    summary = import_incidents(session, tmp_path / "cases.csv", mapping)
    assert summary["waiting_dispatch"] == 3
    listed = list_incidents(session, needs_dispatch=True)["items"]
    expected = {"H-H0": "outside_grid", "H-H1": "no_coordinator", "H-H9": "outside_grid"}
    assert {c["code"]: c["needs_dispatch"] for c in listed} == expected
