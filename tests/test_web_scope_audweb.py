"""Scoped users through the test client (audit of the web, audweb): a district's analyst or
administrator reads and manages its scope only, whatever area the request names or leaves out."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace

import pytest
from factories import CITY, DISTRICT, STREET
from factories_web import C1, C2, PASSWORD, USERS, A, commit, make_web_city, sign_in
from sqlalchemy import select

from gridkit.errors import PermissionDenied
from gridkit.models import AuditLog, User
from gridkit.users import add_user, area_in_scope
from web import create_app


@pytest.fixture
def city(fresh_settings):
    def fill(session):
        make_web_city(session)
        add_user(session, "analyst_c2", "analyst", scope=C2, password=PASSWORD)
        add_user(session, "admin_c2", "admin", scope=C2, password=PASSWORD)

    commit(fresh_settings, fill)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings


def _client(app, name: str):
    client = app.test_client()
    return client, sign_in(client, name)


def _export(client, token: str, query: str):
    """Post the analyst page's export form (fields as in a query string) with the session's CSRF token."""
    form = dict(part.split("=", 1) for part in query.split("&"))
    return client.post("/analyst/export", data={"csrf_token": token, **form})


def _rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_area_in_scope_follows_the_admin_unit_tree(session):
    make_web_city(session)
    district, city_wide = SimpleNamespace(scope_code=DISTRICT), SimpleNamespace(scope_code=CITY)
    assert area_in_scope(session, None, C1) == C1
    assert area_in_scope(session, SimpleNamespace(scope_code=None), None) is None
    assert area_in_scope(session, district, None) == DISTRICT
    assert area_in_scope(session, district, C1) == C1
    # The city's scope is the whole city, though a district code does not start with the city's.
    assert area_in_scope(session, city_wide, None) is None
    assert area_in_scope(session, city_wide, STREET) == STREET
    with pytest.raises(PermissionDenied):
        area_in_scope(session, SimpleNamespace(scope_code=C2), C1)
    with pytest.raises(PermissionDenied):
        area_in_scope(session, SimpleNamespace(scope_code=C2), DISTRICT)


def test_a_scoped_analyst_exports_and_reports_its_scope_only(city):
    app, _ = city
    client, token = _client(app, "analyst_c2")
    # Leaving the area out used to export the whole city, naming another community that community.
    everything = _export(client, token, "layer=residents&format=csv")
    assert everything.status_code == 200
    # A masked export names no building (it would pin a dwelling): the community says whose residents they are.
    assert {r["community"] for r in _rows(everything)} == {C2}
    assert _export(client, token, f"layer=residents&format=csv&area={C1}").status_code == 403
    assert _export(client, token, f"layer=buildings&format=csv&area={DISTRICT}").status_code == 403
    refused = client.get(f"/analyst/report.json?name=population&by=community&area={C1}&lang=en")
    assert refused.status_code == 403 and C2 in refused.get_json()["message"]
    assert client.get(f"/analyst/report?name=population&format=csv&area={C1}").status_code == 403
    assert client.get(f"/analyst/choropleth.json?count=residents&by=cell&area={C1}").status_code == 403
    report = client.get("/analyst/report.json?name=population&by=community").get_json()
    assert C2 in report["sections"][0]["table"] and C1 not in report["sections"][0]["table"]
    cells = client.get("/analyst/choropleth.json?count=residents&by=cell").get_json()["features"]
    assert cells and {f["id"][:12] for f in cells} == {C2}
    # A city-wide analyst still reads everything.
    client, token = _client(app, USERS["analyst"])
    assert {r["community"] for r in _rows(_export(client, token, "layer=residents&format=csv"))} == {C1, C2}


def test_a_scoped_admin_manages_accounts_inside_its_scope_only(city):
    app, settings = city
    client, token = _client(app, "admin_c2")

    def post(url, **form):
        return client.post(url, data={"csrf_token": token, **form})

    # Itself city-wide, a city-wide account's password, another scope, an account without a scope: refused.
    assert post("/admin/users/admin_c2/role", role="admin", scope="").status_code == 403
    assert post("/admin/users/admin_c2/role", role="admin", scope=C1).status_code == 403
    assert post(f"/admin/users/{USERS['admin']}/password", password="taken-over-1").status_code == 403
    assert post(f"/admin/users/{USERS['admin']}/active", active="0").status_code == 403
    assert post("/admin/users", name="newcity", role="admin", password="long-enough-1").status_code == 403
    assert post("/admin/users/super_c2/role", role="admin", scope="").status_code == 403
    # Inside its scope it still works.
    assert post("/admin/users", name="new_c2", role="supervisor", scope=C2, password="long-enough-1").status_code == 302
    assert post("/admin/users/super_c2/password", password="long-enough-2").status_code == 302

    def accounts(session):
        return {u.name: (u.role, u.scope_code, u.active) for u in session.scalars(select(User))}

    found = commit(settings, accounts)
    assert found["admin_c2"] == ("admin", C2, True) and found[USERS["admin"]] == ("admin", None, True)
    assert "newcity" not in found and found["new_c2"] == ("supervisor", C2, True)
    # The city-wide administrator's password is unchanged: it still signs in.
    _client(app, USERS["admin"])


def test_a_scoped_admin_unmasks_its_scope_only_and_is_offered_to(city):
    app, settings = city
    client, token = _client(app, "admin_c2")
    # The page hid the choice from a scoped administrator, though its scope is its to read.
    assert 'name="unmasked"' in client.get("/analyst/").get_data(as_text=True)
    rows = _rows(_export(client, token, "layer=residents&format=csv&unmasked=1"))
    assert [r["name"] for r in rows] == ["居民乙一"]
    assert _export(client, token, f"layer=residents&format=csv&unmasked=1&area={C1}").status_code == 403

    def exports(session):
        return [
            (a.actor, a.detail["area"], a.detail["count"])
            for a in session.scalars(select(AuditLog).where(AuditLog.object_type == "export"))
        ]

    assert commit(settings, exports) == [("web:admin_c2", C2, 1)]
    client, _ = _client(app, "analyst_c2")
    assert 'name="unmasked"' not in client.get("/analyst/").get_data(as_text=True)


def test_a_scoped_admin_sees_the_accounts_and_audit_rows_of_its_scope(city):
    app, _ = city
    # Personal data read in community 1 (and what was searched for) by a city-wide coordinator …
    coordinator, _ = _client(app, USERS["coordinator"])
    assert coordinator.get(f"/api/work-cells/{A}").status_code == 200
    analyst, token = _client(app, "analyst_c2")
    assert _export(analyst, token, "layer=residents&format=csv&where=name=居民乙一").status_code == 200
    everything, _ = _client(app, USERS["admin"])
    page = everything.get("/admin").get_data(as_text=True)
    assert f"work_cell {A}" in page and USERS["coordinator"] in page and USERS["analyst"] in page
    # … is not for the administrator of community 2, who sees its own accounts only.
    scoped, _ = _client(app, "admin_c2")
    page = scoped.get("/admin").get_data(as_text=True)
    assert A not in page and USERS["coordinator"] not in page and USERS["analyst"] not in page
    assert "analyst_c2" in page and "super_c2" in page
