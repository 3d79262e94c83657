"""Incidents through the test client, hostile (audit of the web, audweb): a scoped supervisor
reaching a case outside its area through another case; the reporter's name as personal data."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from test_incidents_web import commit, login, make_cases, read

from gridkit.models import Incident
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
