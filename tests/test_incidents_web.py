"""Incident pages and JSON API through Flask's test client: roles, scopes, CSRF, transitions,
paging, heatmap size, the coordinator's feedback with a photo, bad input in Chinese."""

from __future__ import annotations

import io
import json
import re

import pytest
from factories_incidents import (
    IN_C1,
    IN_C2,
    OUTSIDE,
    PASSWORD,
    PNG,
    SUPERVISOR,
    make_incident_world,
)
from factories_web import commit
from sqlalchemy import func, select

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.models import Incident, IncidentAttachment, IncidentHistory
from web import create_app


def read(settings, query):
    with db.session_factory(db.engine_for(settings))() as session:
        return query(session)


def make_cases(session) -> dict:
    make_incident_world(session)
    ids = {}
    for name, where in (("c1", IN_C1), ("c2", IN_C2), ("out", OUTSIDE)):
        ids[name] = wf.report_incident(
            session, lon=where[0], lat=where[1], description=f"事件{name}", category="0101", actor=SUPERVISOR
        ).incident.id
    case = ids["c1"]
    wf.accept(session, case, SUPERVISOR)
    wf.classify(session, case, SUPERVISOR, category="0101")
    wf.dispatch(session, case, SUPERVISOR)
    return ids


@pytest.fixture
def site(fresh_settings):
    ids = commit(fresh_settings, make_cases)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def login(client, name: str) -> str:
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in"
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_supervisor_pages_and_roles(site):
    app, _settings, ids = site
    client = app.test_client()
    assert client.get("/supervisor").status_code == 302  # to the sign-in page
    login(client, "super1")
    page = client.get("/supervisor").get_data(as_text=True)
    assert "监督指挥" in page and "综合评价" in page and 'id="evaluation"' in page
    assert "未落格事件（1）" in page
    case = client.get(f"/supervisor/incidents/{ids['c2']}").get_data(as_text=True)
    assert 'data-action="accept"' in case and 'data-action="reject"' in case and 'data-action="close"' not in case
    other = app.test_client()
    login(other, "coord1")
    assert other.get("/supervisor").status_code == 403
    assert other.get("/api/incidents/heatmap").status_code == 403


def test_transition_buttons_and_refusals(site):
    app, settings, ids = site
    client = app.test_client()
    token = login(client, "super1")
    url = f"/supervisor/incidents/{ids['c2']}"
    assert client.post(f"{url}/accept", data={"revision": "0"}).status_code == 400  # no CSRF token
    response = client.post(f"{url}/accept", data={"csrf_token": token, "revision": "0"})
    assert response.status_code == 302 and "done=accept" in response.headers["Location"]
    stale = client.post(f"{url}/classify", data={"csrf_token": token, "revision": "0", "category": "0101"})
    assert stale.status_code == 409 and "已被他人处理" in stale.get_data(as_text=True)
    wrong = client.post(f"{url}/close", data={"csrf_token": token})
    body = wrong.get_data(as_text=True)
    assert wrong.status_code == 409 and "已受理" in body and "分级分类" in body
    assert read(settings, lambda s: s.get(Incident, ids["c2"]).status) == "accepted"


def test_api_list_show_and_transition(site):
    app, _settings, ids = site
    client = app.test_client()
    token = login(client, "super1")
    page = client.get("/api/incidents?limit=2").get_json()
    assert page["total"] == 3 and len(page["items"]) == 2 and page["limit"] == 2
    assert client.get("/api/incidents?unassigned=1").get_json()["total"] == 1
    shown = client.get(f"/api/incidents/{ids['c1']}").get_json()
    # Feedback is the coordinator's; the supervisor may dispatch it again (with a reason).
    assert shown["state"] == "dispatched" and shown["allowed"] == ["dispatch"]
    response = client.post(f"/api/incidents/{ids['c2']}/accept", json={"note": "收到"})
    assert response.status_code == 400
    response = client.post(f"/api/incidents/{ids['c2']}/accept", json={"note": "收到"}, headers={"X-CSRF-Token": token})
    assert response.status_code == 200 and response.get_json()["state"] == "accepted"
    response = client.post(
        f"/api/incidents/{ids['c2']}/classify", json={"category": "9999"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 404 and "9999" in response.get_json()["message"]
    response = client.post(f"/api/incidents/{ids['c2']}/launch", json={}, headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    scoped = app.test_client()
    scoped_token = login(scoped, "street_super")
    assert scoped.get("/api/incidents").get_json()["total"] == 1  # community 2 only
    assert scoped.get(f"/api/incidents/{ids['c1']}").status_code == 403
    assert (
        scoped.post(f"/api/incidents/{ids['c1']}/accept", json={}, headers={"X-CSRF-Token": scoped_token}).status_code
        == 403
    )


def test_heatmap_api_is_aggregated(site):
    app, _settings, _ids = site
    client = app.test_client()
    login(client, "admin1")
    data = client.get("/api/incidents/heatmap?zoom=12").get_json()
    assert data["total"] == 3 and all(len(b) == 3 for b in data["bins"])  # the case outside counts too
    assert client.get("/api/incidents/heatmap?bbox=1,2,3").status_code == 400
    assert "无效" in client.get("/api/incidents/heatmap?bbox=1,2,3").get_json()["message"]
    assert client.get("/api/incidents/choropleth?zoom=16").get_json()["level"] == "base_cell"


def test_coordinator_my_cases_and_feedback_with_photo(site):
    app, settings, ids = site
    client = app.test_client()
    token = login(client, "coord1")
    page = client.get("/coordinator/cases").get_data(as_text=True)
    assert "我的事件" in page and "事件c1" in page and "事件c2" not in page
    not_image = client.post(
        f"/coordinator/cases/{ids['c1']}/feedback",
        content_type="multipart/form-data",
        data={"csrf_token": token, "note": "修好了", "photo": (io.BytesIO(b"%PDF-1.4"), "report.jpg")},
    )
    assert not_image.status_code == 400 and "不是图片" in not_image.get_data(as_text=True)
    assert read(settings, lambda s: s.get(Incident, ids["c1"]).status) == "dispatched"
    done = client.post(
        f"/coordinator/cases/{ids['c1']}/feedback",
        content_type="multipart/form-data",
        data={"csrf_token": token, "note": "修好了", "photo": (io.BytesIO(PNG), "after.png")},
    )
    assert done.status_code == 302
    assert read(settings, lambda s: s.get(Incident, ids["c1"]).status) == "fed_back"
    stored = read(settings, lambda s: s.scalar(select(IncidentAttachment)))
    assert (settings.home / stored.path).read_bytes() == PNG
    assert client.get(f"/api/incidents/{ids['c2']}").status_code == 403  # not in coord1's cells
    other = app.test_client()
    other_token = login(other, "coord2")
    refused = other.post(f"/api/incidents/{ids['c1']}/feedback", data={"csrf_token": other_token, "note": "x"})
    assert refused.status_code in (403, 409)
    assert (
        read(
            settings,
            lambda s: s.scalar(
                select(func.count()).select_from(IncidentHistory).where(IncidentHistory.incident_id == ids["c1"])
            ),
        )
        == 5
    )
    assert json.dumps(client.get("/api/incidents").get_json()).count('"id"') == 1


def test_every_label_the_pages_show_exists_in_both_languages():
    from gridkit.incidents.evaluate import GROUPS, STEPS
    from gridkit.incidents.workflow import ACTIONS, PENDING_STEP
    from gridkit.messages import catalogue
    from gridkit.rules import SEVERITIES, IncidentState
    from web.incidents_api import LABELS

    values = {
        "action": ACTIONS,
        "state": list(IncidentState),
        "step": set(PENDING_STEP.values()),
        "severity": SEVERITIES,
        "by": GROUPS,
        "step_name": STEPS,
    }
    for lang in ("zh-CN", "en"):
        keys = [LABELS[k] + str(v) for k, vs in values.items() for v in vs]
        missing = [key for key in keys if key not in catalogue(lang)]
        assert not missing, (lang, missing)
