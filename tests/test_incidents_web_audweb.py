"""Incidents through the test client, hostile (audit of the web, audweb): a scoped supervisor
reaching a case outside its area through another case; the reporter's name as personal data."""

from __future__ import annotations

import json

import pytest
from factories_incidents import IN_C2
from sqlalchemy import select
from test_incidents_web import commit, login, make_cases, read

from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.incidents.queries import show_incident
from gridkit.models import AuditLog, Incident
from web import create_app


@pytest.fixture
def site(fresh_settings):
    ids = commit(fresh_settings, make_cases)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def _state(settings, incident_id):
    return read(settings, lambda s: s.scalar(select(Incident.status).where(Incident.id == incident_id)))


def test_a_scoped_supervisor_may_not_mark_a_case_a_duplicate_of_one_outside_its_area(site):
    app, settings, ids = site
    client = app.test_client()
    token = login(client, "street_super")  # scoped to community 2
    # c1 lies in community 1: linking to it told its code and tied the two areas' cases together.
    response = client.post(
        f"/api/incidents/{ids['c2']}/duplicate",
        data=json.dumps({"of": ids["c1"]}),
        content_type="application/json",
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 403
    assert _state(settings, ids["c2"]) == "reported"
    # A supervisor of the whole city may.
    client = app.test_client()
    token = login(client, "super1")
    response = client.post(
        f"/api/incidents/{ids['c2']}/duplicate",
        data=json.dumps({"of": ids["c1"]}),
        content_type="application/json",
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 200 and response.get_json()["duplicate_of"] == ids["c1"]


def test_the_reporter_is_personal_data_clear_only_when_audited(site):
    app, settings, ids = site

    def citizen_case(s):
        return wf.report_incident(
            s, lon=IN_C2[0], lat=IN_C2[1], description="路灯不亮", reporter="王小明", actor="hotline"
        ).incident.id

    case = commit(settings, citizen_case)

    def reads(s):
        return [
            (a.actor, a.object_type, a.detail["detail_fields"])
            for a in s.scalars(select(AuditLog).where(AuditLog.action == "personal_data.read").order_by(AuditLog.id))
        ]

    before = read(settings, reads)
    client = app.test_client()
    login(client, "street_super")
    # The citizen's name was sent in clear and nothing recorded that it was read.
    assert client.get(f"/api/incidents/{case}").get_json()["reporter"] == "王小明"
    assert read(settings, reads)[len(before) :] == [("street_super", "incident", ["reporter"])]
    # A caller who names no actor, or one who may not read personal data, gets it masked.
    assert read(settings, lambda s: show_incident(s, case, None)["reporter"]) == "王**"
    assert read(settings, lambda s: show_incident(s, case, Actor("analyst1", "analyst"))["reporter"]) == "王**"


@pytest.mark.parametrize(
    ("action", "body", "words"),
    [
        ("accept", '{"revision": 1e400}', "revision"),  # infinity: int() overflowed
        ("accept", '{"revision": [1]}', "revision"),
        ("accept", '{"revision": 1.5}', "revision"),
        ("duplicate", '{"note": "同一井盖"}', "of"),  # mark_duplicate() missing 'of'
        ("classify", '{"severity": "high"}', "category"),  # classify() missing 'category'
    ],
)
def test_a_transition_with_a_bad_or_missing_value_is_a_400_that_names_it(site, action, body, words):
    app, settings, ids = site
    client = app.test_client()
    token = login(client, "super1")
    response = client.post(
        f"/api/incidents/{ids['c2']}/{action}?lang=en",
        data=body,
        content_type="application/json",
        headers={"X-CSRF-Token": token},
    )
    assert response.status_code == 400 and words in response.get_json()["message"]
    assert _state(settings, ids["c2"]) == "reported"
