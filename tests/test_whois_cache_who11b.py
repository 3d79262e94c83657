"""Whois answers kept in memory (gridkit.grids.work.responsibility_cache), cached tiles sent before
Flask (web/fastpath.py), pooled connections tested only after being idle and reads without a
Session (gridkit.db)."""

from __future__ import annotations

import time
from contextlib import contextmanager

import psycopg
import pytest
from factories import X0, Y0, D
from factories_web import PHONE_A, POINT_A, USERS, commit, make_web_city, sign_in
from sqlalchemy import text

from gridkit import db
from gridkit.grids.work import responsibility_at
from gridkit.grids.work.responsibility_cache import ResponsibilityCache
from web import create_app
from web.api import responsibility_cache
from web.tiles import tile_cache


@pytest.fixture
def city(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings


def _connect(settings):
    @contextmanager
    def connect():
        with db.session_factory(db.engine_for(settings))() as session:
            yield session

    return connect


def _without_time(answer: dict) -> dict:
    return {k: v for k, v in answer.items() if k != "at"}


# Interiors, shared edges, corners and points outside every cell of the two 3 × 3 communities.
POINTS = [(X0 + i * D / 4, Y0 + j * D / 4) for i in range(-3, 28) for j in range(-3, 16)]


def test_kept_answers_are_the_services_answers_everywhere(city):
    _, settings = city
    cache = ResponsibilityCache()
    connect = _connect(settings)
    for _ in range(2):  # the first pass fills the cache, the second reads it
        for lon, lat in POINTS:
            expected = commit(settings, lambda s, lon=lon, lat=lat: responsibility_at(s, lon, lat))
            assert _without_time(cache.responsibility(connect, lon, lat)) == _without_time(expected), (lon, lat)
    # Interior points are answered from memory; edge points always ask the database.
    assert cache.hits > len(POINTS) // 2 and cache.direct > 0


def test_whois_api_follows_changes_of_coordinators(city):
    app, settings = city
    app.config["GRIDKIT_TILE_RECHECK_SECONDS"] = 0.2
    lon, lat = POINT_A
    supervisor = app.test_client()
    sign_in(supervisor, USERS["supervisor"])

    def phone():
        return supervisor.get(f"/api/whois?lon={lon}&lat={lat}").get_json()["departments"][0]["coordinators"][0]

    assert phone()["phone"] == PHONE_A
    # A commit through a session of this process: the very next request sees it.
    commit(
        settings,
        lambda s: s.execute(text("UPDATE coordinator SET phone = '13700000000' WHERE phone = :p"), {"p": PHONE_A}),
    )
    assert phone()["phone"] == "13700000000"
    # A change that never passes through a session here (another process): seen after the recheck period.
    with db.engine_for(settings).begin() as conn:
        conn.execute(text("UPDATE coordinator SET name = '王芳芳' WHERE phone = '13700000000'"))
    time.sleep(0.3)
    assert phone()["name"] == "王芳芳"
    anonymous = app.test_client().get(f"/api/whois?lon={lon}&lat={lat}").get_json()
    assert anonymous["departments"][0]["coordinators"][0] == {**phone(), "phone": None}
    assert responsibility_cache(app).hits > 0


def test_whois_api_after_a_work_cell_loses_its_coordinator(city):
    app, settings = city
    lon, lat = POINT_A
    client = app.test_client()
    assert client.get(f"/api/whois?lon={lon}&lat={lat}").get_json()["departments"][0]["coordinators"]
    commit(settings, lambda s: s.execute(text("DELETE FROM coordinator_assignment")))
    assert client.get(f"/api/whois?lon={lon}&lat={lat}").get_json()["departments"][0]["coordinators"] == []


def test_cached_tile_goes_out_before_flask_with_the_same_headers(city):
    app, _ = city
    client = app.test_client()
    path = "/tiles/base-cells/16/53530/28556.mvt"
    first = client.get(path)
    hits = tile_cache(app).hits
    second = client.get(path)
    assert tile_cache(app).hits == hits + 1
    assert first.status_code == second.status_code == 200 and first.data == second.data

    def headers(response):
        return [(k, v.split("nonce-")[0]) for k, v in response.headers.items()]

    assert headers(first) == headers(second)
    not_modified = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert "Content-Security-Policy" in not_modified.headers and not_modified.headers["X-Frame-Options"] == "DENY"
    # What the fast path does not handle goes to Flask: a language choice sets its cookie, errors answer.
    assert "gridkit_lang=en" in client.get(path + "?lang=en").headers.get("Set-Cookie", "")
    assert client.get(path + "?dept=100001").status_code == 400
    assert client.get("/tiles/base-cells/16/53530/28556.mvt?edition=%00").status_code == 400
    assert client.get("/tiles/base-cells/16/99999999999/0.mvt").status_code == 404


def test_an_idle_pooled_connection_lost_meanwhile_is_replaced(fresh_settings, pg_server, monkeypatch):
    engine = db.make_engine(db.database_url(fresh_settings))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with pg_server._admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        monkeypatch.setattr(db, "PING_IDLE_SECONDS", 0.0)
        time.sleep(0.05)
        with engine.connect() as conn:  # the ping finds the connection gone: a new one is opened
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()


def test_visitors_kept_whois_goes_out_before_flask_as_flask_sends_it(city):
    app, _ = city
    lon, lat = POINT_A
    client = app.test_client()
    path = f"/api/whois?lon={lon}&lat={lat}"
    first = client.get(path)  # Flask: asks the database and keeps the answer
    hits = responsibility_cache(app).hits
    second = client.get(path)  # the fast path
    assert responsibility_cache(app).hits == hits + 1

    def same(response):
        body = {k: v for k, v in response.get_json().items() if k != "at"}
        return body, [(k, v.split("nonce-")[0]) for k, v in response.headers.items() if k != "Content-Length"]

    assert same(first) == same(second)
    assert second.get_json()["phones"] == "hidden"
    assert second.get_json()["departments"][0]["coordinators"][0]["phone"] is None
    # A signed-in user, another parameter or a bad value: Flask (phones by role, errors in the user's language).
    signed = app.test_client()
    sign_in(signed, USERS["supervisor"])
    assert signed.get(path).get_json()["departments"][0]["coordinators"][0]["phone"] == PHONE_A
    assert client.get(path + "&lang=en").headers.get("Set-Cookie", "").startswith("gridkit_lang=en")
    assert client.get(f"/api/whois?lon=nan&lat={lat}").status_code == 400
    assert client.get(f"/api/whois?lon=10&lat={lat}").status_code == 400


def test_a_signed_in_user_is_read_again_after_a_commit_or_the_recheck_period(city):
    app, settings = city
    app.config["GRIDKIT_TILE_RECHECK_SECONDS"] = 0.3
    client = app.test_client()
    sign_in(client, USERS["analyst"])
    assert client.get("/api/me").status_code == 200
    assert client.get("/api/me").status_code == 200  # the kept copy: no query for the user
    # Stopped by another process (no commit through a session here): refused after the period.
    with db.engine_for(settings).begin() as conn:
        conn.execute(text("UPDATE app_user SET active = false WHERE name = :n"), {"n": USERS["analyst"]})
    time.sleep(0.4)
    assert client.get("/api/me").status_code == 401
    # A role changed through a session of this process: the very next request has it.
    admin = app.test_client()
    sign_in(admin, USERS["admin"])
    assert admin.get("/api/me").get_json()["role"] == "admin"
    commit(
        settings,
        lambda s: s.execute(text("UPDATE app_user SET role = 'analyst' WHERE name = :n"), {"n": USERS["admin"]}),
    )
    assert admin.get("/api/me").get_json()["role"] == "analyst"


def test_autocommit_scalar_hands_the_connection_back_as_the_pool_gave_it(fresh_settings, pg_server):
    engine = db.make_engine(db.database_url(fresh_settings), pool_size=1, max_overflow=0)
    try:
        assert db.autocommit_scalar(engine, text("SELECT CAST(:n AS integer) + 1"), {"n": 41}) == 42
        with pytest.raises(psycopg.errors.DivisionByZero):
            db.autocommit_scalar(engine, text("SELECT 1 / CAST(:n AS integer)"), {"n": 0})
        # The pool's one connection: transactional again, so a rollback undoes what was done.
        with engine.connect() as conn:
            assert conn.connection.driver_connection.autocommit is False
            conn.execute(text("CREATE TEMP TABLE kept (n integer)"))
            conn.rollback()
            assert conn.execute(text("SELECT to_regclass('pg_temp.kept')")).scalar() is None
        # A connection lost meanwhile fails once and is dropped: the next read gets a new one.
        pid = db.autocommit_scalar(engine, text("SELECT pg_backend_pid()"), {})
        with pg_server._admin() as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.05)
        with pytest.raises(psycopg.OperationalError):
            db.autocommit_scalar(engine, text("SELECT pg_backend_pid()"), {})
        assert db.autocommit_scalar(engine, text("SELECT pg_backend_pid()"), {}) not in (None, pid)
    finally:
        engine.dispose()
