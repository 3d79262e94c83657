"""Signing in, hostile: what `next` may carry, the session cookie's flags (audit of the web, audweb)."""

from __future__ import annotations

import pytest
from factories_web import PASSWORD, USERS, csrf_of, make_web_city

from gridkit import db
from web import create_app


def _commit(settings, fill):
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        return fill(session)


@pytest.fixture
def city(fresh_settings):
    _commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings


@pytest.mark.parametrize(
    "next_",
    ["/coordinator\r\nSet-Cookie: session=stolen", "/api/me\n", "/\x0b/evil.example", "/\u3000/evil.example"],
)
def test_a_next_with_control_characters_goes_to_the_workspace(city, next_):
    app, _ = city
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    # A line break in `next` went into the Location header: an error (500) after a right password.
    response = client.post(
        "/login", data={"name": USERS["coordinator"], "password": PASSWORD, "csrf_token": token, "next": next_}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/coordinator"
    assert "stolen" not in response.headers.get("Set-Cookie", "")
