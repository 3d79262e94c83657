"""Audited reads of personal data and requests made by another site (test client; the browser's own
behaviour in tests/test_browser_cross_site_pii11k.py).

A signed-in user's SameSite=Lax cookie goes with a link or redirect from any site: a GET must not
start an export, and a read whose answer is personal data answers another site's request as to a
visitor, auditing nothing."""

from __future__ import annotations

import pytest
from factories_web import C1, PHONE_A, POINT_A, RESIDENT_NAMES, USERS, A, commit, make_web_city, sign_in
from sqlalchemy import select

from gridkit.models import AuditLog
from web import create_app

WHOIS = f"/api/whois?lon={POINT_A[0]}&lat={POINT_A[1]}"
EXPORT = {"layer": "residents", "format": "csv", "area": C1, "unmasked": "1"}


@pytest.fixture
def city(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings


def _audited(settings) -> list[tuple]:
    return commit(
        settings,
        lambda s: [
            (r.actor, r.object_type)
            for r in s.scalars(select(AuditLog).where(AuditLog.action == "personal_data.read").order_by(AuditLog.id))
        ],
    )


def _signed_in(app, role: str):
    client = app.test_client()
    return client, sign_in(client, USERS[role])


def test_an_unmasked_export_needs_a_form_post_with_the_sessions_token(city):
    app, settings = city
    client, token = _signed_in(app, "admin")
    # A link (or a redirect) from anywhere: no export, nothing audited.
    query = "&".join(f"{k}={v}" for k, v in EXPORT.items())
    assert client.get(f"/analyst/export?{query}").status_code == 405
    # A form another site posts has no token (and, SameSite=Lax, no cookie either).
    refused = client.post("/analyst/export?lang=en", data=EXPORT)
    assert refused.status_code == 400 and "form" in refused.get_data(as_text=True).lower()
    assert client.post("/analyst/export", data=dict(EXPORT, csrf_token="not-the-token")).status_code == 400
    assert _audited(settings) == []
    # The page's own form: the file, personal data in clear, one audit row.
    sent = client.post("/analyst/export", data=dict(EXPORT, csrf_token=token))
    assert sent.status_code == 200 and sent.headers["Content-Disposition"].startswith("attachment")
    assert RESIDENT_NAMES[0] in sent.get_data(as_text=True)
    assert _audited(settings) == [("web:admin1", "export")]
    page = client.get("/analyst/").get_data(as_text=True)
    assert 'id="gk-export" class="analyst-form" method="post"' in page and f'value="{token}"' in page


@pytest.mark.parametrize(
    ("fetch_site", "clear"),
    [
        ("cross-site", False),  # a link, redirect, form or script on another site
        ("same-site", False),  # a sibling host: another application
        ("same-origin", True),  # the app's own pages (gridkit-locate.js)
        ("none", True),  # the address bar, a bookmark
        (None, True),  # not a browser: a script with a session of its own
    ],
)
def test_whois_answers_another_sites_request_as_to_a_visitor(city, fetch_site, clear):
    app, settings = city
    client, _ = _signed_in(app, "supervisor")
    headers = {"Sec-Fetch-Site": fetch_site} if fetch_site else {}
    answer = client.get(WHOIS, headers=headers).get_json()
    person = answer["departments"][0]["coordinators"][0]
    assert person["name"] == "王芳"
    if clear:
        assert (person["phone"], answer["phones"]) == (PHONE_A, "clear")
        assert _audited(settings) == [("super1", "coordinator")]
    else:
        assert (person["phone"], answer["phones"]) == (None, "hidden")
        assert _audited(settings) == []


def test_a_coordinators_cell_lists_residents_only_to_its_own_pages(city):
    app, settings = city
    client, _ = _signed_in(app, "coordinator")
    elsewhere = client.get(f"/api/work-cells/{A}", headers={"Sec-Fetch-Site": "cross-site"}).get_json()
    assert elsewhere["code"] == A and not elsewhere.get("residents")
    assert RESIDENT_NAMES[0] not in str(elsewhere) and _audited(settings) == []
    own = client.get(f"/api/work-cells/{A}", headers={"Sec-Fetch-Site": "same-origin"}).get_json()
    assert RESIDENT_NAMES[0] in str(own["residents"])
    assert _audited(settings) == [("coord_a", "work_cell")]
