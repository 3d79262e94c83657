"""Open311 GeoReport v2 under /open311/v2: services, requests, posting into the workflow, errors."""

from __future__ import annotations

import dataclasses

import pytest
from factories import X0, Y0, D
from factories_exports import C1, make_city
from sqlalchemy import select

from gridkit import db
from gridkit.models import BaseCell, Incident, IncidentHistory
from web import create_app


@pytest.fixture
def open311(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)
    settings = dataclasses.replace(fresh_settings, open311_keys="city-hotline=s3cret", open311_rate=3)
    app = create_app(settings)
    app.config["TESTING"] = True
    return app.test_client(), settings


def read(settings, fn):
    with db.session_factory(db.engine_for(settings))() as session:
        return fn(session)


def test_services_and_requests(open311):
    client, _ = open311
    services = client.get("/open311/v2/services.json").get_json()
    codes = {s["service_code"]: s for s in services}
    assert codes["0101"]["service_name"] == "上水井盖" and codes["0101"]["type"] == "realtime"
    listed = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z").get_json()
    assert len(listed) == 6 and {r["status"] for r in listed} == {"open", "closed"}
    closed = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&status=closed").get_json()
    assert len(closed) == 4
    events = client.get("/open311/v2/requests.json?start_date=2026-01-01T00:00:00Z&service_code=E0101").get_json()
    assert {r["service_code"] for r in events} == {"E0101"} and len(events) == 3
    one = client.get("/open311/v2/requests/INC0000.json").get_json()
    assert one[0]["service_request_id"] == "INC0000" and one[0]["agency_responsible"] == "综合治理"
    assert "reporter" not in one[0] and 114 < one[0]["long"] < 115
    missing = client.get("/open311/v2/requests/NOPE.json")
    assert missing.status_code == 404 and missing.get_json()[0]["code"] == 404


def test_post_enters_the_workflow_at_step_one(open311):
    client, settings = open311
    lon, lat = X0 + D / 2, Y0 + 2.5 * D
    response = client.post(
        "/open311/v2/requests.json",
        data={
            "service_code": "E0101",
            "lat": str(lat),
            "long": str(lon),
            "description": "路边有暴露垃圾",
            "first_name": "王",
            "last_name": "小明",
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    request_id = response.get_json()[0]["service_request_id"]

    def check(session):
        incident = session.scalar(select(Incident).where(Incident.code == request_id))
        cell = session.get(BaseCell, incident.base_cell_id)
        history = session.scalars(select(IncidentHistory).where(IncidentHistory.incident_id == incident.id)).all()
        return (
            incident.status,
            cell.code,
            incident.reporter,
            incident.source,
            [(h.from_status, h.to_status) for h in history],
        )

    status, cell, reporter, source, history = read(settings, check)
    assert status == "reported" and cell == f"{C1}001" and reporter == "王 小明" and source == "open311"
    assert history == [(None, "reported")]  # step 1 of the workflow, through its report service
    shown = client.get(f"/open311/v2/requests/{request_id}.json").get_json()[0]
    assert shown["status"] == "open" and shown["description"] == "路边有暴露垃圾"
    by_address = client.post(
        "/open311/v2/requests.json", data={"service_code": "0101", "address_id": "B0004", "api_key": "s3cret"}
    )
    assert by_address.status_code == 201
    case = read(
        settings,
        lambda s: s.scalar(select(Incident).where(Incident.code == by_address.get_json()[0]["service_request_id"])),
    )
    assert case.source == "open311:city-hotline" and case.category_code == "0101"
    assert "address_id=B0004" in case.description


def test_bad_posts_and_the_rate_limit(open311):
    client, settings = open311
    no_location = client.post(
        "/open311/v2/requests.json", data={"service_code": "E0101"}, environ_base={"REMOTE_ADDR": "10.0.0.1"}
    )
    assert no_location.status_code == 400
    body = no_location.get_json()
    assert isinstance(body, list) and body[0]["code"] == 400 and "lat" in body[0]["description"]
    unknown = client.post(
        "/open311/v2/requests.json?lang=en",
        data={"service_code": "X99", "lat": "22.5", "long": "114.0"},
        environ_base={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert unknown.status_code == 400 and "X99" in unknown.get_json()[0]["description"]
    bad_key = client.post("/open311/v2/requests.json", data={"service_code": "E0101", "api_key": "guess"})
    assert bad_key.status_code == 403
    before = read(settings, lambda s: s.query(Incident).count())
    for n in range(3):
        ok = client.post(
            "/open311/v2/requests.json",
            # Three reports (the same post again would be the same case).
            data={"service_code": "E0101", "lat": "22.531", "long": "114.0505", "description": f"垃圾{n}"},
            environ_base={"REMOTE_ADDR": "10.0.0.9"},
        )
        assert ok.status_code == 201
    limited = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "E0101", "lat": "22.531", "long": "114.0505"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert limited.status_code == 429 and limited.get_json()[0]["code"] == 429
    trusted = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "E0101", "lat": "22.531", "long": "114.0505", "api_key": "s3cret"},
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert trusted.status_code == 201
    assert read(settings, lambda s: s.query(Incident).count()) == before + 4
