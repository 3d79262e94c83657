"""Coordinators' names in incident views follow the personal-data rule: in clear (and audited) only
for roles and areas that may read them, masked otherwise; through the service, the CLI and the web.
And every error of the incidents JSON API carries a catalogue code, rendered in the request's language."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from factories_incidents import C2, IN_C1, IN_C2, PASSWORD, SUPERVISOR, make_incident_world
from sqlalchemy import select

from gridkit import db
from gridkit.cli import main
from gridkit.incidents import evaluate as evaluate_module
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.evaluate import evaluate
from gridkit.incidents.queries import show_incident
from gridkit.models import AuditLog
from gridkit.users import add_user
from web import create_app

READ = "personal_data.read"


def _dispatched(session, where) -> int:
    case = wf.report_incident(
        session, lon=where[0], lat=where[1], description="井盖缺失", category="0101", actor=SUPERVISOR
    ).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    return case.id


def _world(session) -> dict:
    world = make_incident_world(session)
    add_user(session, "coord_unlinked", "coordinator", password=PASSWORD)
    return {"c1": _dispatched(session, IN_C1), "c2": _dispatched(session, IN_C2), "world": world}


def _reads(session) -> list[AuditLog]:
    return list(session.scalars(select(AuditLog).where(AuditLog.action == READ).order_by(AuditLog.id)))


# -- the service -----------------------------------------------------------------------------------


def test_evaluation_names_masked_unless_the_actor_may_read_them(session):
    _world(session)
    before = len(_reads(session))

    def names(actor):
        rows = evaluate(session, by="coordinator", from_="2020-01-01", actor=actor)["rows"]
        return sorted(r["name"] for r in rows if r["key"])

    assert names(None) == ["张*", "李*"]  # no one named: masked
    assert names(Actor("analyst1", "analyst")) == ["张*", "李*"]  # a role without personal data
    assert names(Actor("planner1", "planner")) == ["张*", "李*"]
    assert len(_reads(session)) == before  # nothing read in clear, nothing audited
    assert names(SUPERVISOR) == ["张三", "李四"]
    assert names(Actor("street_super", "supervisor", C2)) == ["李四"]
    reads = _reads(session)[before:]
    assert [(a.actor, a.object_type, a.detail["count"], a.detail["evaluation"]) for a in reads] == [
        ("super1", "coordinator", 2, "coordinator"),
        ("street_super", "coordinator", 1, "coordinator"),
    ]
    # Other groupings carry no personal data: no audit rows.
    evaluate(session, by="work-cell", actor=SUPERVISOR)
    assert len(_reads(session)) == before + 2


def test_show_incident_masks_the_coordinator_for_callers_who_may_not_read_it(session):
    ids = _world(session)
    before = len(_reads(session))
    masked = show_incident(session, ids["c1"], None)["coordinator"]
    assert masked["name"] == "张*" and masked["phone"] == "138****8001"
    assert show_incident(session, ids["c1"], Actor("analyst1", "analyst"))["coordinator"]["name"] == "张*"
    assert len(_reads(session)) == before
    clear = show_incident(session, ids["c1"], SUPERVISOR)["coordinator"]
    assert (clear["name"], clear["phone"]) == ("张三", "13800138001")
    (audit,) = _reads(session)[before:]
    assert (audit.actor, audit.detail["detail_fields"], audit.detail["incident"]) == (
        "super1",
        ["name", "phone", "reporter"],
        show_incident(session, ids["c1"], None)["code"],
    )


# -- CLI and web ------------------------------------------------------------------------------------


@pytest.fixture
def site(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        ids = _world(session)
        ids.pop("world")
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def _cli(settings, *args, user=None, lang="en"):
    env = {"GRIDKIT_LANG": lang, "GRIDKIT_USER": user or ""}
    return CliRunner().invoke(main, [str(a) for a in args], obj=settings, env=env, catch_exceptions=False)


def _audit(settings) -> list[tuple]:
    with db.session_factory(db.engine_for(settings))() as session:
        return [(a.actor, a.object_type, a.detail.get("via")) for a in _reads(session)]


def test_cli_evaluation_by_coordinator(site):
    _app, settings, _ids = site
    before = len(_audit(settings))
    for user in (None, "analyst1"):
        result = _cli(
            settings, "incident", "evaluate", "--by", "coordinator", "--from", "2020-01-01", "--json", user=user
        )
        assert result.exit_code == 0, result.output
        assert "张三" not in result.output and "李四" not in result.output
        assert sorted(r["name"] for r in json.loads(result.output)["rows"]) == ["张*", "李*"]
    assert len(_audit(settings)) == before
    table = _cli(settings, "incident", "evaluate", "--by", "coordinator", "--from", "2020-01-01", user="super1")
    assert table.exit_code == 0 and "张三" in table.output and "李四" in table.output
    assert _audit(settings)[before:] == [("super1", "coordinator", None)]
    shown = _cli(settings, "incident", "show", "1", "--json")
    assert "张三" not in shown.output and json.loads(shown.output)["coordinator"]["name"] == "张*"


def login(client, name: str) -> str:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in"
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True)).group(1)


def test_supervisor_page_and_cli_say_when_p90_ranks_the_sample(site, monkeypatch):
    app, settings, _ids = site
    client = app.test_client()
    login(client, "super1")
    assert "p90-sample" not in client.get("/supervisor?from=2020-01-01").get_data(as_text=True)
    monkeypatch.setattr(evaluate_module, "P90_ALL_MAX", 0)
    assert "十分之一样本" in client.get("/supervisor?from=2020-01-01").get_data(as_text=True)
    result = _cli(settings, "incident", "evaluate", "--from", "2020-01-01", user="super1")
    assert result.exit_code == 0 and "one-in-ten sample" in result.output


def test_web_shows_names_only_to_who_may_read_them_and_audits_it(site):
    app, settings, ids = site
    client = app.test_client()
    login(client, "super1")
    before = len(_audit(settings))
    page = client.get("/supervisor?by=coordinator&from=2020-01-01").get_data(as_text=True)
    assert "张三" in page and "李四" in page
    assert _audit(settings)[before:] == [("super1", "coordinator", None)]
    shown = client.get(f"/api/incidents/{ids['c1']}").get_json()
    assert shown["coordinator"]["name"] == "张三"
    assert "张三" in client.get(f"/supervisor/incidents/{ids['c1']}").get_data(as_text=True)
    assert len(_audit(settings)) == before + 3
    scoped = app.test_client()
    login(scoped, "street_super")  # scoped to community 2: coordinator 1 is not theirs to read
    page = scoped.get("/supervisor?by=coordinator&from=2020-01-01").get_data(as_text=True)
    assert "李四" in page and "张三" not in page and "张*" not in page
    assert scoped.get(f"/api/incidents/{ids['c1']}").status_code == 403
    analyst = app.test_client()
    login(analyst, "analyst1")
    assert analyst.get("/supervisor?by=coordinator").status_code == 403
    assert analyst.get(f"/api/incidents/{ids['c1']}").status_code == 403
    assert len(_audit(settings)) == before + 4


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "zh-CN",
            ["不是整数", "没有“launch”这个操作", "请求内容应为", "不在您负责的网格内", "仅供监督员", "未关联网格员"],
        ),
        (
            "en",
            [
                "not a whole number",
                "no action “launch”",
                "JSON object",
                "not in your work cells",
                "supervisors",
                "not linked",
            ],
        ),
    ],
)
def test_api_errors_carry_a_code_rendered_in_the_request_language(site, lang, words):
    app, _settings, ids = site
    supervisor, coordinator, unlinked = app.test_client(), app.test_client(), app.test_client()
    token = login(supervisor, "super1")
    coord_token = login(coordinator, "coord1")
    login(unlinked, "coord_unlinked")
    q = f"lang={lang}"
    answers = [
        supervisor.get(f"/api/incidents?limit=many&{q}"),
        supervisor.post(f"/api/incidents/{ids['c2']}/launch?{q}", json={}, headers={"X-CSRF-Token": token}),
        supervisor.post(f"/api/incidents/{ids['c2']}/accept?{q}", json=[1], headers={"X-CSRF-Token": token}),
        coordinator.get(f"/api/incidents/{ids['c2']}?{q}"),
        coordinator.get(f"/api/incidents/heatmap?{q}"),
        unlinked.get(f"/api/incidents?{q}"),
    ]
    codes = [
        ("incident.web.not_a_number", 400),
        ("incident.web.unknown_action", 400),
        ("incident.web.bad_body", 400),
        ("incident.web.not_yours", 403),
        ("incident.web.supervisors_only", 403),
        ("incident.web.no_coordinator", 403),
    ]
    assert coord_token
    for response, (code, status), word in zip(answers, codes, words, strict=True):
        body = response.get_json()
        assert (response.status_code, body["code"]) == (status, code), body
        assert word in body["message"], (lang, body)
