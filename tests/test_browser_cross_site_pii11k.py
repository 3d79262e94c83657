"""Another site and a signed-in user's browser, in a real Chromium (Playwright): a page on another site
(http://localhost:PORT, another site than http://127.0.0.1:PORT) sends the browser to the app's audited
reads. The session cookie (SameSite=Lax) goes with such a top-level navigation, so the app must not
start an export on a GET nor give personal data to another site's request; its own pages still do."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from factories_web import PASSWORD, PHONE_A, POINT_A, RESIDENT_NAMES, commit, make_web_city, served
from sqlalchemy import select
from test_browser import chromium  # noqa: F401 - the fixture is used by name

from gridkit.models import AuditLog
from web import create_app

pytestmark = pytest.mark.browser

WHOIS = f"/api/whois?lon={POINT_A[0]}&lat={POINT_A[1]}"


@pytest.fixture
def server(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    inner, seen = app.wsgi_app, {}

    def recording(environ, start_response):
        # What the browser said of each request's origin (Sec-Fetch-Site), as the app received it.
        seen[environ.get("PATH_INFO")] = environ.get("HTTP_SEC_FETCH_SITE")
        return inner(environ, start_response)

    app.wsgi_app = recording
    with served(app) as url:
        yield urlsplit(url).port, fresh_settings, seen


def _audited(settings) -> list[tuple]:
    return commit(
        settings,
        lambda s: [
            (r.actor, r.object_type)
            for r in s.scalars(select(AuditLog).where(AuditLog.action == "personal_data.read").order_by(AuditLog.id))
        ],
    )


def _signed_in_admin(chromium, port):  # noqa: F811
    context = chromium.new_context(accept_downloads=True, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(20000)
    page.goto(f"http://127.0.0.1:{port}/login?next=/analyst/")
    page.fill("input[name=name]", "admin1")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/analyst/")
    return context, page


def _sent_from_another_site(page, port: int, target: str, seen: dict):
    """Open a page of another site that sends the browser to `target` on the app; return the app's response."""
    attacker = f"http://localhost:{port}/elsewhere"
    page.route(
        attacker,
        lambda route: route.fulfill(
            content_type="text/html", body=f'<script>location.href = "http://127.0.0.1:{port}{target}";</script>'
        ),
    )
    with page.expect_response(lambda r: r.url.startswith(f"http://127.0.0.1:{port}{target.split('?')[0]}")) as info:
        page.goto(attacker, wait_until="commit")
    response = info.value
    # The browser sent the session cookie with it (SameSite=Lax: a top-level navigation) and said where from.
    assert "session=" in response.request.all_headers().get("cookie", "")
    assert seen[target.split("?")[0]] == "cross-site"
    return response


def test_the_export_form_still_downloads_an_unmasked_file(chromium, server, tmp_path):  # noqa: F811
    port, settings, _ = server
    context, page = _signed_in_admin(chromium, port)
    page.select_option("#gk-layer", "residents")
    page.select_option("#gk-format", "csv")
    page.check("input[name=unmasked]")
    with page.expect_download() as info:
        page.click("#gk-export-go")
    target = tmp_path / "residents.csv"
    info.value.save_as(target)
    assert RESIDENT_NAMES[0] in target.read_text(encoding="utf-8-sig")
    assert _audited(settings) == [("web:admin1", "export")]
    # Masked, as the form is without the box ticked.
    page.uncheck("input[name=unmasked]")
    with page.expect_download() as info:
        page.click("#gk-export-go")
    info.value.save_as(tmp_path / "masked.csv")
    assert RESIDENT_NAMES[0] not in (tmp_path / "masked.csv").read_text(encoding="utf-8-sig")
    assert len(_audited(settings)) == 1
    context.close()


def test_another_site_cannot_start_an_unmasked_export(chromium, server):  # noqa: F811
    port, settings, seen = server
    context, page = _signed_in_admin(chromium, port)
    response = _sent_from_another_site(page, port, "/analyst/export?layer=residents&format=csv&unmasked=1", seen)
    assert response.status == 405
    assert _audited(settings) == []
    context.close()


def test_whois_gives_another_site_no_phone_and_the_apps_pages_the_phone(chromium, server):  # noqa: F811
    port, settings, seen = server
    context, page = _signed_in_admin(chromium, port)
    response = _sent_from_another_site(page, port, WHOIS, seen)
    answer = response.json()
    person = answer["departments"][0]["coordinators"][0]
    assert (person["name"], person["phone"], answer["phones"]) == ("王芳", None, "hidden")
    assert PHONE_A not in response.text()
    assert _audited(settings) == []
    # The app's own page asking (as gridkit-locate.js does): the phone in clear, audited.
    page.goto(f"http://127.0.0.1:{port}/analyst/")
    own = page.evaluate(f"async () => (await fetch('{WHOIS}', {{credentials: 'same-origin'}})).json()")
    assert own["departments"][0]["coordinators"][0]["phone"] == PHONE_A and own["phones"] == "clear"
    assert seen["/api/whois"] == "same-origin"
    assert _audited(settings) == [("admin1", "coordinator")]
    context.close()
