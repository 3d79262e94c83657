"""Request bodies have a size limit (web.bodies), through the server `gridkit serve` runs (waitress): an
anonymous gigabyte to /login is refused unread, a feedback over its photos' limit gets a 413 page in
the user's language, and a real browser shows it (hostile8a)."""

from __future__ import annotations

import http.client
import io
import threading
from contextlib import contextmanager

import pytest
from factories_incidents import PNG
from factories_web import commit
from test_browser import chromium  # noqa: F401 - the fixture
from test_browser_incidents import sign_in as browser_sign_in
from test_incidents_web import login, make_cases, read

from gridkit.models import Incident
from web import create_app
from web.bodies import BODY_BYTES, SERVER_BYTES, UPLOAD_BYTES
from web.server import make_server


@pytest.fixture
def site(fresh_settings):
    ids = commit(fresh_settings, make_cases)
    app = create_app(fresh_settings)
    return app, fresh_settings, ids


@contextmanager
def waitress_serving(app):
    """Serve `app` with the server and settings of `gridkit serve`, on a free port; yield (host, port)."""
    server = make_server(app, "127.0.0.1", 0)
    stopping = threading.Event()

    def run():
        try:
            server.run()
        except OSError:  # its loop waiting on the sockets closed below
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.effective_port
    finally:
        stopping.set()
        server.close()
        thread.join(timeout=10)


def _post(host, port, path, size, headers=None):
    """POST `size` bytes of form to `path`, sent in pieces; return (status, body text)."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/x-www-form-urlencoded")
    conn.putheader("Content-Length", str(size))
    for name, value in (headers or {}).items():
        conn.putheader(name, value)
    conn.endheaders()
    piece = b"a" * (1 << 20)
    try:
        for start in range(0, size, len(piece)):
            conn.send(piece[: min(len(piece), size - start)])
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered before taking it all
    response = conn.getresponse()
    body = response.read().decode("utf-8", "replace")
    conn.close()
    return response.status, body


def test_an_anonymous_oversize_post_is_refused_in_the_page_language(site):
    app, _settings, _ids = site
    with waitress_serving(app) as (host, port):
        status, body = _post(host, port, "/login?lang=en", BODY_BYTES + 1)
        assert status == 413
        assert f"larger than this page takes ({BODY_BYTES // 1024**2} MB); nothing was saved" in body
        assert "photos" not in body  # the sign-in page takes none
        status, body = _post(host, port, "/login?lang=zh-CN", BODY_BYTES + 1)
        assert status == 413 and "超过本页面允许的大小" in body
        # Past what the server takes at all: refused by its Content-Length, before the body is read.
        conn = http.client.HTTPConnection(host, port, timeout=30)
        conn.request("POST", "/login", headers={"Content-Length": str(SERVER_BYTES + 1)})
        assert conn.getresponse().status == 413
        conn.close()


def test_feedback_photos_over_the_limit_get_a_413_and_under_it_still_work(site):
    app, settings, ids = site
    client = app.test_client()
    token = login(client, "coord1")
    url = f"/coordinator/cases/{ids['c1']}/feedback?lang=en"
    big = io.BytesIO(PNG + b"\0" * (UPLOAD_BYTES - len(PNG)))
    refused = client.post(
        url,
        content_type="multipart/form-data",
        data={"csrf_token": token, "note": "fixed", "photo": (big, "huge.png")},
    )
    assert refused.status_code == 413
    page = refused.get_data(as_text=True)
    assert "A feedback carries at most 9 photos of at most 10 MB each" in page
    assert read(settings, lambda s: s.get(Incident, ids["c1"]).status) == "dispatched"
    # A form under the feedback's limit but over everyone else's is still read: two photos of 9 MB.
    photos = [(io.BytesIO(PNG + b"\0" * (9 * 1024**2)), f"after{i}.png") for i in range(2)]
    assert 2 * 9 * 1024**2 > BODY_BYTES
    done = client.post(
        url,
        content_type="multipart/form-data",
        data={"csrf_token": token, "note": "fixed", "photo": photos},
    )
    assert done.status_code == 302
    assert read(settings, lambda s: s.get(Incident, ids["c1"]).status) == "fed_back"


@pytest.mark.browser
def test_the_phone_shows_the_413_in_chinese(chromium, site, tmp_path):  # noqa: F811
    app, settings, ids = site
    photo = tmp_path / "huge.jpg"
    with open(photo, "wb") as fh:
        fh.write(b"\xff\xd8\xff")
        fh.truncate(UPLOAD_BYTES + 1024)
    with waitress_serving(app) as (host, port):
        base_url = f"http://{host}:{port}"
        phone = chromium.new_page(viewport={"width": 375, "height": 740}, locale="zh-CN")
        phone.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
        browser_sign_in(phone, base_url, "coord1")
        phone.goto(base_url + "/coordinator/cases")
        card = phone.locator("article.case-card").first
        card.locator("textarea[name=note]").fill("已处理")
        card.locator("input[type=file]").set_input_files(str(photo))
        with phone.expect_navigation() as navigation:
            card.locator("button").click()
        assert navigation.value.status == 413
        text = phone.inner_text("main")
        assert "超过本页面允许的大小" in text and "一次反馈最多 9 张照片" in text
    assert read(settings, lambda s: s.get(Incident, ids["c1"]).status) == "dispatched"
