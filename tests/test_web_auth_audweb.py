"""Signing in, hostile: what `next` may carry, the session cookie's flags (audit of the web, audweb)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from factories_web import PASSWORD, USERS, commit, csrf_of, make_web_city
from sqlalchemy import text

from gridkit.config import Settings
from gridkit.errors import SetupError
from web import create_app
from web.database import db_session


@pytest.fixture
def city(fresh_settings):
    commit(fresh_settings, make_web_city)
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


def _session_cookie(app) -> str:
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": USERS["analyst"], "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    return response.headers["Set-Cookie"]


def test_the_session_cookie_is_secure_when_configured(city):
    app, settings = city
    cookie = _session_cookie(app)
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    # Behind a TLS proxy the deployment says so, and the cookie is never sent over plain HTTP.
    secure = create_app(replace(settings, secure_cookies=True))
    assert "; Secure" in _session_cookie(secure) and "HttpOnly" in _session_cookie(secure)
    assert Settings.from_env({"GRIDKIT_SECURE_COOKIES": "1"}).secure_cookies is True
    assert Settings.from_env({"GRIDKIT_SECURE_COOKIES": "off"}).secure_cookies is False
    with pytest.raises(SetupError, match="GRIDKIT_SECURE_COOKIES"):
        Settings.from_env({"GRIDKIT_SECURE_COOKIES": "https"})


def _signed_in(app, name):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}).status_code == 302
    return client


def test_an_ogc_offset_past_the_database_range_is_a_400(city):
    app, _ = city
    client = _signed_in(app, USERS["analyst"])
    # The database refused it (bigint out of range) and the error page, reading the signed-in
    # user through the aborted transaction, failed in turn: 500.
    response = client.get("/ogc/collections/incidents/items?offset=99999999999999999999")
    assert response.status_code == 400 and response.get_json()["code"] == "ogc.bad_number"
    assert client.get("/ogc/collections/base-cells/items?offset=2147483647").status_code == 200


def test_a_value_the_database_refuses_is_a_400_page_for_a_signed_in_user(city):
    app, _ = city

    @app.get("/refused-by-the-database")
    def refused():
        # A statement the database refuses with a data error (22012), as a missed check would.
        db_session().execute(text("SELECT 1 / 0"))

    client = _signed_in(app, USERS["analyst"])
    response = client.get("/refused-by-the-database?lang=en")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    # The page layout still knows who is signed in (it reads the user after the rollback).
    assert USERS["analyst"] in page


def test_a_password_set_by_an_administrator_is_kept_as_typed(city):
    app, _ = city
    client = _signed_in(app, USERS["admin"])
    token = csrf_of(client.get("/admin").get_data(as_text=True))
    spaced, long_ = "  with spaces around  ", "长" * 150 + "x" * 60
    # Added with spaces: they were stripped, so the password the user was given never worked.
    added = client.post(
        "/admin/users", data={"csrf_token": token, "name": "newbie", "role": "analyst", "password": spaced}
    )
    assert added.status_code == 302
    _signed_in_with(app, "newbie", spaced)
    # A password over 200 characters was cut to 200 without a word: now refused, saying so.
    refused = client.post("/admin/users/newbie/password?lang=en", data={"csrf_token": token, "password": long_})
    assert refused.status_code == 400 and "at most 200" in refused.get_data(as_text=True)
    _signed_in_with(app, "newbie", spaced)


def _signed_in_with(app, name, password):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"name": name, "password": password, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in with the password set"
