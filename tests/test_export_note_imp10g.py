"""The analyst's export download says when counts of 1–2 residents were left empty (the export summary's
small_counts_hidden, gridkit.rules.SMALL_COUNT_MAX): the download leaves the page as it was, so the answer carries
the sentence, in the page's language, in a cookie named by the form's token, which the page shows under the form."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import unquote, urlsplit

import pyogrio
import pytest
from factories_exports import C1, make_city
from factories_web import csrf_of, served
from test_browser import CHROMIUM, CHROMIUM_ARGS, LOCAL_HOSTS, chromium  # noqa: F401 - the browser fixture

from gridkit import db
from gridkit.messages import render
from gridkit.users import add_user
from web import create_app

PASSWORD = "correct horse battery"
HIDDEN = "residents, registered, floating, households"
TOKEN = "0123456789abcdef01234567"


@pytest.fixture
def app(fresh_settings):
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        make_city(session)  # two residents in each base cell
        add_user(session, "ana", "analyst", password=PASSWORD)
        add_user(session, "adm", "admin", password=PASSWORD)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app


def _export(app, name: str, lang: str, **form):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}).status_code == 302
    page = client.get(f"/analyst/?lang={lang}").get_data(as_text=True)
    assert 'name="download_token"' in page and 'id="gk-export-out"' in page
    data = {"csrf_token": csrf_of(page), "layer": "cell-stats", "format": "gpkg", "area": C1, **form}
    response = client.post("/analyst/export", data=data)
    assert response.status_code == 200 and response.headers["Content-Disposition"].startswith("attachment")
    response.get_data()
    cookies = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    return cookies.get(f"gk_export_{TOKEN}")


def test_a_masked_export_says_small_counts_were_hidden_in_the_pages_language(app):
    note = _export(app, "ana", "zh-CN", download_token=TOKEN)
    said = unquote(note.value)
    assert said == render("export.small_counts_note", "zh-CN", fields=HIDDEN)
    assert said.startswith("为保护个人信息") and HIDDEN in said
    assert note["path"] == "/analyst/" and note["samesite"] == "Strict" and not note["httponly"]
    english = unquote(_export(app, "ana", "en", download_token=TOKEN).value)
    assert english.startswith("To protect personal data, counts of 1–2 residents in " + HIDDEN)
    # Unmasked by an administrator: nothing hidden, nothing said (the cookie still says the download started).
    assert _export(app, "adm", "en", download_token=TOKEN, unmasked="1").value == ""
    # No token (no script on the page), or one that could name another cookie: no cookie.
    assert _export(app, "ana", "en") is None
    assert _export(app, "ana", "en", download_token="x; Path=/") is None


def _local_only(route) -> None:
    """Offline: only the local server answers."""
    if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
        route.continue_()
    else:
        route.abort()


@pytest.mark.browser
def test_the_page_shows_it_once_the_download_starts(chromium, app, tmp_path):  # noqa: F811 - pytest fixture
    with served(app) as url:
        context = chromium.new_context(accept_downloads=True)
        page = context.new_page()
        page.route("**/*", _local_only)
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"{url}/login?next=/analyst/&lang=zh-CN")
        page.fill("input[name=name]", "ana")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/analyst/")
        page.select_option("#gk-layer", "cell-stats")
        page.select_option("#gk-format", "gpkg")
        page.select_option("#gk-area", C1)
        with page.expect_download() as info:
            page.click("#gk-export-go")
        target = tmp_path / "cells.gpkg"
        info.value.save_as(target)
        assert pyogrio.read_dataframe(target)["residents"].isna().all()  # the file hides them
        out = page.locator("#gk-export-out")
        note = render("export.small_counts_note", "zh-CN", fields=HIDDEN)
        out.get_by_text(note).wait_for(timeout=20000)
        assert render("analyst.export.started", "zh-CN") in out.inner_text()
        # Read once: the cookie is gone, so the next download's answer is its own.
        assert not [c for c in context.cookies() if c["name"].startswith("gk_export_")]
        assert errors == []
        context.close()
