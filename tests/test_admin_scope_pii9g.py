"""A scoped administrator links logins only to coordinators of its own scope (pii9g): a coordinator login reads the
residents of its coordinator's work cells whatever its own scope, so a district's administrator who linked a new
login to another district's coordinator (and gave it a password) read that district's people."""

from __future__ import annotations

import pytest
from factories_web import C1, C2, PASSWORD, PHONE_A, PHONE_B, A, B, commit, csrf_of, make_web_city, sign_in
from sqlalchemy import select

from gridkit import db
from gridkit.errors import PermissionDenied
from gridkit.models import User
from gridkit.users import add_user, link_coordinator
from web import create_app


def test_a_scoped_administrator_links_only_coordinators_of_its_scope(session):
    make_web_city(session)
    admin_c2 = add_user(session, "admin_c2", "admin", scope=C2, password=PASSWORD)
    login = add_user(session, "coord_x", "coordinator", scope=C2)
    with pytest.raises(PermissionDenied) as refused:
        link_coordinator(session, login, PHONE_A, by=admin_c2)  # 王芳 covers A, in C1
    assert refused.value.code == "account.coordinator_outside_scope" and login.coordinator_id is None
    assert link_coordinator(session, login, PHONE_B, by=admin_c2).phone == PHONE_B  # 李强 covers B, in C2
    city_admin = add_user(session, "admin_city", "admin")
    assert link_coordinator(session, login, PHONE_A, by=city_admin).phone == PHONE_A
    c1_admin = add_user(session, "admin_c1", "admin", scope=C1)
    assert link_coordinator(session, login, PHONE_A, by=c1_admin).phone == PHONE_A


def test_the_admin_page_refuses_a_login_to_another_areas_coordinator(fresh_settings):
    def fill(session):
        make_web_city(session)
        add_user(session, "admin_c2", "admin", scope=C2, password=PASSWORD)

    commit(fresh_settings, fill)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    token = sign_in(client, "admin_c2")
    form = {"csrf_token": token, "role": "coordinator", "scope": C2, "password": "another-pass-1"}
    refused = client.post("/admin/users?lang=en", data={**form, "name": "coord_x", "coordinator_phone": PHONE_A})
    assert refused.status_code == 403 and "outside your scope" in refused.get_data(as_text=True)
    assert PHONE_A not in refused.get_data(as_text=True)
    with db.session_factory(db.engine_for(fresh_settings))() as session:
        assert session.scalar(select(User).where(User.name == "coord_x")) is None  # nothing changed
    added = client.post("/admin/users", data={**form, "name": "coord_y", "coordinator_phone": PHONE_B})
    assert added.status_code == 302
    # The new login reads its own coordinator's cell, never A's residents.
    other = app.test_client()
    login_token = csrf_of(other.get("/login").get_data(as_text=True))
    signed = other.post("/login", data={"name": "coord_y", "password": "another-pass-1", "csrf_token": login_token})
    assert signed.status_code == 302
    assert other.get(f"/api/work-cells/{B}").status_code == 200
    assert other.get(f"/api/work-cells/{A}").status_code == 403


def test_stopping_a_user_ends_the_sessions_they_have(fresh_settings):
    commit(fresh_settings, make_web_city)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    admin, analyst = app.test_client(), app.test_client()
    token = sign_in(admin, "admin1")
    sign_in(analyst, "analyst1")
    assert analyst.get("/api/me").status_code == 200
    assert admin.post("/admin/users/analyst1/active", data={"csrf_token": token, "active": "0"}).status_code == 302
    assert analyst.get("/api/me").status_code == 401
    # Allowed again, the old cookie stays over: a new sign-in is needed.
    assert admin.post("/admin/users/analyst1/active", data={"csrf_token": token, "active": "1"}).status_code == 302
    assert analyst.get("/api/me").status_code == 401
