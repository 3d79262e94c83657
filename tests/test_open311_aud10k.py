"""Open311 audited as a citizen and an attacker would use it (aud10k): what the public reads of a
case (no staff note, no phone or ID number), bodies too large, descriptions too long, guessed keys."""

from __future__ import annotations

import dataclasses
import io
import threading

import pytest
from factories import X0, Y0, D
from factories_web import commit
from sqlalchemy import func, select
from test_open311 import open311, read  # noqa: F401 (the fixture)

from gridkit.incidents import workflow as wf
from gridkit.incidents.actors import Actor
from gridkit.models import Incident
from web import create_app

HERE = {"lat": str(Y0 + 2.5 * D), "long": str(X0 + D / 2)}
SUPERVISOR = Actor("super", "supervisor")


def _count(settings):
    return read(settings, lambda s: s.scalar(select(func.count()).select_from(Incident)))


def test_the_public_reads_no_staff_note_and_no_phone_or_id_number(open311):  # noqa: F811
    client, settings = open311

    def cases(session):
        told = wf.report_incident(
            session,
            lon=X0 + D / 2,
            lat=Y0 + 2.5 * D,
            description="楼道堆物，联系人王小明 13800138000，身份证 440304199001011234，座机 0755-83211234",
            category="E0101",
            actor="hotline",
        ).incident
        wf.accept(session, told.id, SUPERVISOR, note="王小明来电，住 3 栋 501")
        again = wf.report_incident(
            session, lon=X0 + D / 2, lat=Y0 + 2.5 * D, description="楼道堆物", category="E0101", actor="hotline"
        ).incident
        wf.mark_duplicate(session, again.id, SUPERVISOR, of=told.id, note="同一户 13800138000")
        return told.code, again.code

    told, again = commit(settings, cases)
    shown = client.get(f"/open311/v2/requests/{told}.json").get_json()[0]
    # The supervisor's note (a citizen's name and flat) was the public status_notes.
    assert shown["status_notes"] == "已受理，正在分类。"
    assert shown["description"] == "楼道堆物，联系人王小明 138****8000，身份证 4403**********1234，座机 0755-****1234"
    duplicate = client.get(f"/open311/v2/requests/{again}.json?lang=en").get_json()[0]
    assert duplicate["status"] == "closed" and duplicate["status_notes"] == f"Duplicate of {told}, handled there."
    listed = client.get("/open311/v2/requests.json").get_data(as_text=True)
    assert "13800138000" not in listed and "440304199001011234" not in listed and "来电" not in listed


def test_a_body_over_the_limit_is_refused_and_nothing_stored(open311):  # noqa: F811
    client, settings = open311
    before = _count(settings)
    # 20 MB of "photo" from anyone on the internet was read (spooled to disk) and the case stored.
    big = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "E0101", **HERE, "media": (io.BytesIO(b"x" * 20_000_000), "a.jpg")},
        content_type="multipart/form-data",
        environ_base={"REMOTE_ADDR": "10.2.0.1"},
    )
    assert big.status_code == 413 and big.get_json()[0]["code"] == 413
    assert _count(settings) == before


def test_a_description_too_long_is_refused_not_cut(open311):  # noqa: F811
    client, settings = open311
    before = _count(settings)
    long = client.post(
        "/open311/v2/requests.json?lang=en",
        data={"service_code": "E0101", **HERE, "description": "井" * 2001},
        environ_base={"REMOTE_ADDR": "10.2.0.2"},
    )
    # It was stored cut to its first 2,000 characters, and the citizen told nothing.
    assert long.status_code == 400 and "2001" in long.get_json()[0]["description"]
    assert _count(settings) == before
    whole = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "E0101", **HERE, "description": "井" * 2000},
        environ_base={"REMOTE_ADDR": "10.2.0.2"},
    )
    assert whole.status_code == 201
    code = whole.get_json()[0]["service_request_id"]
    stored = read(settings, lambda s: s.scalar(select(Incident.description).where(Incident.code == code)))
    assert stored == "井" * 2000


def test_guessed_api_keys_are_held_to_the_rate(open311):  # noqa: F811
    client, _settings = open311  # at most 3 posts an hour from one address
    answers = [
        client.post(
            "/open311/v2/requests.json",
            data={"service_code": "E0101", **HERE, "api_key": f"guess{n}"},
            environ_base={"REMOTE_ADDR": "10.2.0.3"},
        ).status_code
        for n in range(5)
    ]
    # Every guess was a 403, as fast and as many as the attacker liked.
    assert answers == [403, 403, 403, 429, 429]
    # The right key still gets through from that address; another address is not held.
    trusted = client.post(
        "/open311/v2/requests.json",
        data={"service_code": "E0101", **HERE, "api_key": "s3cret"},
        environ_base={"REMOTE_ADDR": "10.2.0.3"},
    )
    assert trusted.status_code == 201


def test_the_same_post_sent_twice_is_one_case(open311):  # noqa: F811
    client, settings = open311
    before = _count(settings)
    post = {"service_code": "E0101", **HERE, "description": "路灯不亮", "first_name": "王", "last_name": "小明"}
    # A double tap, or an app retrying after a timeout: two cases for one lamp, each to be handled.
    first, again = (
        client.post("/open311/v2/requests.json", data=post, environ_base={"REMOTE_ADDR": "10.2.0.4"}) for _ in range(2)
    )
    assert first.status_code == again.status_code == 201
    assert first.get_json()[0]["service_request_id"] == again.get_json()[0]["service_request_id"]
    assert _count(settings) == before + 1
    # Another citizen telling the same, or the same citizen telling more, is a case of its own.
    other = client.post(
        "/open311/v2/requests.json", data={**post, "first_name": "李"}, environ_base={"REMOTE_ADDR": "10.2.0.5"}
    )
    more = client.post(
        "/open311/v2/requests.json",
        data={**post, "description": "路灯不亮，已三天"},
        environ_base={"REMOTE_ADDR": "10.2.0.5"},
    )
    assert other.status_code == more.status_code == 201
    assert _count(settings) == before + 3


def test_the_same_post_sent_at_the_same_moment_is_one_case(open311):  # noqa: F811
    client, settings = open311
    before = _count(settings)
    start, answers = threading.Barrier(4), []

    def post(n: int) -> None:
        start.wait()
        response = client.application.test_client().post(
            "/open311/v2/requests.json",
            data={"service_code": "E0101", **HERE, "description": "井盖丢失"},
            environ_base={"REMOTE_ADDR": f"10.2.1.{n}"},
        )
        answers.append((response.status_code, response.get_json()[0].get("service_request_id")))

    threads = [threading.Thread(target=post, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 4 and len(set(answers)) == 1 and answers[0][0] == 201
    assert _count(settings) == before + 1


def test_a_json_body_is_told_to_be_a_form(open311):  # noqa: F811
    client, settings = open311
    before = _count(settings)
    posted = client.post(
        "/open311/v2/requests.json?lang=en",
        json={"service_code": "E0101", **HERE},
        environ_base={"REMOTE_ADDR": "10.2.0.6"},
    )
    # It was answered "service_code is missing" although the body held one.
    assert posted.status_code == 400
    assert "application/json" in posted.get_json()[0]["description"]
    assert "service_code" not in posted.get_json()[0]["description"]
    assert _count(settings) == before


@pytest.mark.parametrize("proxies", [0, 1])
def test_behind_a_proxy_each_citizen_has_its_own_count(open311, proxies):  # noqa: F811
    _client, settings = open311  # at most 3 posts an hour from one address
    app = create_app(dataclasses.replace(settings, trusted_proxies=proxies))
    client = app.test_client()

    def post(citizen: str, n: int) -> int:
        return client.post(
            "/open311/v2/requests.json",
            data={"service_code": "E0101", **HERE, "description": f"第{n}件"},
            environ_base={"REMOTE_ADDR": "10.9.0.1"},  # the city's TLS proxy
            headers={"X-Forwarded-For": citizen},
        ).status_code

    first = [post("203.0.113.7", n) for n in range(4)]
    other = post("198.51.100.8", 9)
    if proxies:
        # Every citizen came from the proxy's address: three posts an hour for the whole city.
        assert first == [201, 201, 201, 429] and other == 201
    else:
        # Not behind a proxy, a forged header is ignored: it does not lift the limit.
        assert first == [201, 201, 201, 429] and other == 429


def test_the_phone_a_citizen_leaves_is_kept_and_never_listed(open311):  # noqa: F811
    client, settings = open311
    posted = client.post(
        "/open311/v2/requests.json",
        data={
            "service_code": "E0101",
            **HERE,
            "description": "请回电",
            "phone": "13900139000",
            "email": "w@example.cn",
        },
        environ_base={"REMOTE_ADDR": "10.2.0.7"},
    )
    code = posted.get_json()[0]["service_request_id"]
    # Only the e-mail was kept; the number to call back was dropped without a word.
    stored = read(settings, lambda s: s.scalar(select(Incident.reporter).where(Incident.code == code)))
    assert stored == "w@example.cn / 13900139000"
    listed = client.get(f"/open311/v2/requests/{code}.json").get_data(as_text=True)
    assert "13900139000" not in listed and "example.cn" not in listed
