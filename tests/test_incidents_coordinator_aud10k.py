"""The coordinator's "my cases" audited as a tired coordinator uses it (aud10k): a list cut short
leaves out the least urgent cases, not the most overdue; a feedback form from before a rework is
refused; deadlines read in Beijing time whatever the database server's time zone."""

from __future__ import annotations

import dataclasses
import io
import re
from datetime import timedelta

import pytest
from factories_incidents import IN_C1, OUTSIDE, PNG, SUPERVISOR, make_incident_world
from factories_web import commit
from sqlalchemy import select
from sqlalchemy.engine import make_url
from test_incidents_web import login, read

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.models import Incident, IncidentHistory
from gridkit.rules import local_tz, now
from web import create_app


def _dispatched(session, days_ago: float, description: str) -> int:
    case = wf.report_incident(
        session,
        lon=IN_C1[0],
        lat=IN_C1[1],
        description=description,
        category="0101",
        actor=SUPERVISOR,
        reported_at=now() - timedelta(days=days_ago),
    ).incident
    wf.accept(session, case.id, SUPERVISOR)
    wf.classify(session, case.id, SUPERVISOR, category="0101")
    wf.dispatch(session, case.id, SUPERVISOR)
    return case.id


def _world(session) -> dict:
    world = make_incident_world(session)
    # Reported 30 days ago and dispatched then: the step deadlines run from the report, long past.
    oldest = _dispatched(session, 30, "三十天前的井盖")
    newer = [_dispatched(session, 0, f"今天的井盖{n}") for n in (1, 2)]
    return {"oldest": oldest, "newer": newer, "coord1": world["coord1"].id}


def _site(settings):
    facts = commit(settings, _world)
    app = create_app(settings)
    app.config["TESTING"] = True
    return app, facts


def test_the_most_overdue_case_comes_first(fresh_settings):
    # A page of the list (web/paging.py: 25) keeps the most urgent cases; tests/test_web_lists_ui5k.py pages 2,000.
    app, facts = _site(fresh_settings)
    client = app.test_client()
    login(client, "coord1")
    page = client.get("/coordinator/cases").get_data(as_text=True)
    shown = re.findall(r'data-code="([^"]+)"', page)
    codes = read(fresh_settings, lambda s: dict(s.execute(select(Incident.id, Incident.code)).all()))
    # Newest first, the case thirty days overdue was listed last (and left off a page cut short).
    assert len(shown) == 3 and codes[facts["oldest"]] == shown[0]
    assert "在办 3 件" in page


def test_a_feedback_form_from_before_a_rework_is_refused(fresh_settings):
    app, facts = _site(fresh_settings)
    case = facts["newer"][0]
    client = app.test_client()
    login(client, "coord1")
    page = client.get("/coordinator/cases").get_data(as_text=True)
    form = re.search(rf'action="/coordinator/cases/{case}/feedback".*?</form>', page, re.S).group(0)
    fields = dict(re.findall(r'name="(csrf_token|revision)" value="([^"]*)"', form))

    def answered_and_sent_back(session):
        # From the phone: feedback sent; the supervisor sends it back for rework.
        wf.feedback(session, case, Actor("coord1", "coordinator", None, facts["coord1"]), note="已清理")
        wf.rework(session, case, SUPERVISOR, note="井盖仍未盖好")

    commit(fresh_settings, answered_and_sent_back)
    # The page left open on the other device answers the rework with the old note.
    stale = client.post(f"/coordinator/cases/{case}/feedback", data={**fields, "note": "已清理"})
    assert stale.status_code == 409
    assert _history(fresh_settings, case)[-2:] == ["fed_back", "dispatched"]


@pytest.mark.parametrize("server_zone", ["UTC", "America/New_York"])
def test_deadlines_read_in_beijing_time_whatever_the_servers_time_zone(fresh_settings, server_zone):
    # A database server of the city's cloud, run in another time zone than the embedded one (Asia/Shanghai).
    url = make_url(fresh_settings.database_url).update_query_dict({"options": f"-c timezone={server_zone}"})
    settings = dataclasses.replace(fresh_settings, database_url=url.render_as_string(hide_password=False))
    try:
        app, facts = _site(settings)
        case = facts["newer"][0]
        due = read(settings, lambda s: s.get(Incident, case).step_deadline).astimezone(local_tz())
        client = app.test_client()
        login(client, "coord1")
        page = client.get("/coordinator/cases").get_data(as_text=True)
        # The server's clock time was shown as if it were Beijing's: eight (or thirteen) hours off.
        assert f"处置时限：{due:%Y-%m-%d %H:%M}" in page
        listed = client.get("/api/incidents?order=todo").get_json()["items"]
        assert {item["step_deadline"][-6:] for item in listed} == {"+08:00"}
    finally:
        engine = db._engines.pop(db.database_url(settings), None)
        if engine is not None:
            engine.dispose()


def _history(settings, case):
    return read(
        settings,
        lambda s: s.scalars(
            select(IncidentHistory.to_status).where(IncidentHistory.incident_id == case).order_by(IncidentHistory.id)
        ).all(),
    )


def test_a_feedback_with_too_many_photos_or_too_long_a_note_is_refused(fresh_settings):
    app, facts = _site(fresh_settings)
    case = facts["newer"][0]
    client = app.test_client()
    token = login(client, "coord1")
    before = _history(fresh_settings, case)
    # Every photo of the post was read whole into memory (10 MB each, a thousand parts allowed).
    photos = [(io.BytesIO(PNG), f"p{n}.png") for n in range(10)]
    many = client.post(
        f"/coordinator/cases/{case}/feedback",
        data={"csrf_token": token, "note": "已清理", "photo": photos},
        content_type="multipart/form-data",
    )
    assert many.status_code == 400 and "最多 9 个" in many.get_data(as_text=True)
    # A note of megabytes was kept, and shown in full by every view of the case ever after.
    long = client.post(f"/coordinator/cases/{case}/feedback", data={"csrf_token": token, "note": "清" * 2001})
    assert long.status_code == 400 and "2001" in long.get_data(as_text=True)
    assert _history(fresh_settings, case) == before
    assert not (fresh_settings.home / "attachments").exists()
    nine = [(io.BytesIO(PNG), f"p{n}.png") for n in range(9)]
    ok = client.post(
        f"/coordinator/cases/{case}/feedback",
        data={"csrf_token": token, "note": "清" * 2000, "photo": nine},
        content_type="multipart/form-data",
    )
    assert ok.status_code == 302 and _history(fresh_settings, case)[-1] == "fed_back"


def test_a_link_cannot_put_its_own_words_in_the_done_notice(fresh_settings):
    app, facts = _site(fresh_settings)
    lure = "请立即拨打 400-000-0000 核实身份"
    coordinator = app.test_client()
    login(coordinator, "coord1")
    # "事件 请立即拨打 … 已反馈。" in the city's own page, from a link sent to the coordinator.
    page = coordinator.get("/coordinator/cases", query_string={"done": lure}).get_data(as_text=True)
    assert lure not in page and 'id="mycases-done"' not in page
    code = read(fresh_settings, lambda s: s.get(Incident, facts["newer"][0]).code)
    page = coordinator.get("/coordinator/cases", query_string={"done": code}).get_data(as_text=True)
    assert f"事件 {code} 已反馈" in page
    supervisor = app.test_client()
    login(supervisor, "super1")
    case = supervisor.get(f"/supervisor/incidents/{facts['oldest']}", query_string={"done": lure})
    assert lure not in case.get_data(as_text=True) and 'id="case-done"' not in case.get_data(as_text=True)
    case = supervisor.get(f"/supervisor/incidents/{facts['oldest']}", query_string={"done": "dispatch"})
    assert 'id="case-done"' in case.get_data(as_text=True)


def test_the_supervisors_queue_of_unplaced_cases_shows_the_oldest(fresh_settings):
    def world(session):
        make_incident_world(session)
        codes = [
            wf.report_incident(
                session,
                lon=OUTSIDE[0],
                lat=OUTSIDE[1],
                description=f"网格外{n}",
                actor=SUPERVISOR,
                reported_at=now() - timedelta(days=30 - n),
            ).incident.code
            for n in range(21)
        ]
        return codes

    codes = commit(fresh_settings, world)
    app = create_app(fresh_settings)
    client = app.test_client()
    login(client, "super1")
    page = client.get("/supervisor").get_data(as_text=True)
    queue = re.search(r'id="unassigned-list">(.*?)</ul>', page, re.S).group(1)
    # The 20 newest were listed: the case waiting for 30 days was not on the page.
    assert codes[0] in queue and codes[-1] not in queue
