"""The work grid editor and the base grid page through Flask's test client: pages, roles and scopes,
reading versions and problems, the base grid problems API, and the script strings in both languages."""

from __future__ import annotations

import json
import re

import pytest
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from sqlalchemy import select

from gridkit import layers
from gridkit.checks import base_grid_problems_geojson
from gridkit.grids import work
from gridkit.messages import catalogue
from gridkit.models import SRID, BaseCell, BaseGridEdition, EditionCheck
from tests.factories import STREET, X0, Y0, D, make_base_grid
from tests.factories_planner import (  # noqa: F401 - planner, planner_app: fixtures used by name
    C1,
    C2,
    DEPT,
    OTHER_DEPT,
    WEB,
    A,
    B,
    cell,
    commit,
    login,
    make_overlapping_edition,
    planner,
    planner_app,
    post,
)
from web import create_app, pages
from web.mapview import BASEGRID_JS_STRINGS
from web.planner import JS_STRINGS
from web.scope import jurisdiction_within_scope

# Pages ---------------------------------------------------------------------------------------------


def test_planner_pages_need_a_planner_or_admin(planner_app):
    app, _, ids = planner_app
    client = app.test_client()
    for path in ("/planner", f"/planner/draft/{ids['draft']}", f"/planner/diff/{DEPT}/1/2"):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=/planner")
    login(client, "coord1")
    denied = client.get("/planner")
    assert denied.status_code == 403 and "网格员" in denied.get_data(as_text=True)
    assert client.get(f"/planner/draft/{ids['draft']}").status_code == 403
    # The nav link appears only for those who may plan.
    assert 'href="/planner"' not in client.get("/").get_data(as_text=True)
    admin = app.test_client()
    login(admin, "admin1")
    assert admin.get("/planner").status_code == 200
    assert 'href="/planner"' in admin.get("/").get_data(as_text=True)


def test_planner_list_shows_departments_versions_and_drafts(planner):
    client, _, _, ids = planner
    html = client.get("/planner").get_data(as_text=True)
    assert "工作网格规划" in html and "城市管理" in html and "民政服务" in html
    assert f'href="/planner/version/{ids["published"]}">第 1 版</a>' in html
    assert f'data-draft="{ids["draft"]}"' in html and "第 2 版草稿" in html
    assert f'data-new-draft="/api/planner/departments/{DEPT}/drafts"' in html
    assert "尚未发布" in html  # the other department
    english = client.get("/planner?lang=en").get_data(as_text=True)
    assert "Work grid planning" in english and "Draft version 2" in english


def test_editor_page_renders_the_map_and_config(planner):
    client, _, _, ids = planner
    response = client.get(f"/planner/draft/{ids['draft']}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "城市管理" in html and "移入所选工作网格" in html and "发布此草稿" in html
    assert "gridkit-planner.js" in html and 'class="folium-map"' in html
    config = json.loads(re.search(r'id="gridkit-planner-config">(.*?)</script>', html, re.DOTALL).group(1))
    assert config["mode"] == "edit" and config["version"]["revision"] == 0 and config["fullLoad"] is True
    assert config["api"]["move"] == f"/api/planner/drafts/{ids['draft']}/move"
    assert config["urls"]["diff"] == "/planner/diff/{dept}/{old}/{new}"
    assert config["urls"]["version"] == "/planner/version/{id}"
    assert config["csrf"]
    # Base cells are fetched by the page, never inlined.
    assert cell(C1, 1) not in html
    # A published version opens read-only: no editing tools.
    published = client.get(f"/planner/version/{ids['published']}").get_data(as_text=True)
    assert "移入所选工作网格" not in published and "新建草稿" in published
    assert '"mode": "view"' in published


def test_scope_limits_the_departments_a_planner_may_open(planner_app):
    app, _, ids = planner_app
    street = app.test_client()
    token = login(street, "street1")
    assert street.get(f"/planner/draft/{ids['draft']}").status_code == 200
    community = app.test_client()
    token = login(community, "community1")
    denied = community.get(f"/planner/draft/{ids['draft']}")
    assert denied.status_code == 403 and DEPT in denied.get_data(as_text=True)
    assert community.get(f"/planner/diff/{DEPT}/1/2").status_code == 403
    api = community.get(f"/api/planner/versions/{ids['draft']}/cells")
    assert api.status_code == 403 and api.get_json()["error"] == "PermissionDenied"
    refused = post(
        community,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 0, "work_cell": A, "cells": [cell(C2, 1)]},
    )
    assert refused.status_code == 403
    assert post(community, f"/api/planner/departments/{DEPT}/drafts", token, {}).status_code == 403
    # The department whose jurisdiction is community 1 is inside that scope.
    started = post(community, f"/api/planner/departments/{OTHER_DEPT}/drafts", token, {})
    assert started.status_code == 201
    html = community.get("/planner").get_data(as_text=True)
    assert "超出管辖范围" in html
    assert f'data-new-draft="/api/planner/departments/{OTHER_DEPT}/drafts"' in html
    assert f'data-new-draft="/api/planner/departments/{DEPT}/drafts"' not in html


def test_jurisdiction_within_scope_follows_the_admin_tree(session):
    make_base_grid(session, communities=2)
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    work.add_department(session, OTHER_DEPT, "全市部门")
    assert jurisdiction_within_scope(session, DEPT, None)
    assert jurisdiction_within_scope(session, DEPT, STREET)
    assert jurisdiction_within_scope(session, DEPT, "440304")  # the district
    assert jurisdiction_within_scope(session, DEPT, "440300")  # the city: not a code prefix
    assert not jurisdiction_within_scope(session, DEPT, C1)
    assert jurisdiction_within_scope(session, OTHER_DEPT, "440300")
    assert not jurisdiction_within_scope(session, OTHER_DEPT, STREET)


# Reading -------------------------------------------------------------------------------------------


def test_version_cells_geojson(planner):
    client, _, _, ids = planner
    body = client.get(f"/api/planner/versions/{ids['draft']}/cells").get_json()
    assert body["type"] == "FeatureCollection" and len(body["features"]) == 18
    assert body["version"] == {"id": ids["draft"], "number": 2, "status": "draft", "revision": 0, "dept_code": DEPT}
    first = body["features"][0]["properties"]
    assert first == {
        "code": cell(C1, 1),
        "community_code": C1,
        "community_name": "测试1社区",
        "work_cell": A,
        "work_cell_name": "一号网格",
        "excluded": False,
        "exclusion_reason": None,
        "in_jurisdiction": True,
    }
    eps = D / 10
    some = client.get(
        f"/api/planner/versions/{ids['draft']}/cells?bbox={X0 + eps},{Y0 + eps},{X0 + D - eps},{Y0 + D - eps}"
    ).get_json()
    assert [f["properties"]["code"] for f in some["features"]] == [cell(C1, 7)]
    assert client.get(f"/api/planner/versions/{ids['draft']}/cells?bbox=1,2").status_code == 400
    assert client.get("/api/planner/versions/987654/cells").status_code == 404


def test_version_cells_geojson_limit_and_jurisdiction(session):
    make_base_grid(session, communities=2)
    work.add_department(session, OTHER_DEPT, "民政服务", jurisdiction=C1)
    draft = work.start_draft(session, OTHER_DEPT)
    work.set_members(session, draft, f"{OTHER_DEPT}{C1}01", [cell(C1, 1), cell(C2, 1)])
    features = layers.version_cells_geojson(session, draft.id)["features"]
    inside = {f["properties"]["code"]: f["properties"]["in_jurisdiction"] for f in features}
    assert inside[cell(C1, 5)] is True and inside[cell(C2, 5)] is False and inside[cell(C2, 1)] is False
    with pytest.raises(Exception, match="More than 5 base cells"):
        layers.version_cells_geojson(session, draft.id, limit=5)
    overview = pages.version_overview(session, draft.id)
    assert overview["counts"] == {
        "edition_cells": 18,
        "base_cells": 9,
        "assigned": 1,
        "excluded": 0,
        "unassigned": 8,
        "outside_jurisdiction": 1,
    }


def test_version_overview_api(planner):
    client, _, _, ids = planner
    body = client.get(f"/api/planner/versions/{ids['draft']}").get_json()
    assert body["version"]["number"] == 2 and body["version"]["based_on"] == 1
    assert body["department"] == {
        "code": DEPT,
        "name": "城市管理",
        "jurisdiction": STREET,
        "jurisdiction_name": "园岭街道",
        "current_version": 1,
    }
    assert body["work_cells"] == [
        {"code": A, "name": "一号网格", "base_cells": 9, "coordinators": 0},
        {"code": B, "name": "二号网格", "base_cells": 9, "coordinators": 0},
    ]
    assert body["counts"]["unassigned"] == 0 and body["counts"]["base_cells"] == 18
    assert body["extent"] == pytest.approx([X0, Y0, X0 + 6 * D, Y0 + 3 * D])


def test_problems_history_and_departments_api(planner):
    client, _, _, ids = planner
    problems = client.get(f"/api/planner/drafts/{ids['draft']}/problems").get_json()
    assert problems["errors"] == 0 and problems["warnings"] == 1
    assert problems["problems"][0]["type"] == "no_coordinator"
    assert problems["problems"][0]["codes"] == [A, B]
    # Only drafts are validated here; a published version is 409.
    assert client.get(f"/api/planner/drafts/{ids['published']}/problems").status_code == 409
    history = client.get(f"/api/planner/departments/{DEPT}/history").get_json()
    assert [(v["number"], v["status"]) for v in history["versions"]] == [(1, "published"), (2, "draft")]
    departments = client.get("/api/planner/departments").get_json()
    assert [d["code"] for d in departments] == [DEPT, OTHER_DEPT]
    assert departments[0]["drafts"][0]["id"] == ids["draft"] and departments[0]["editable"] is True
    assert client.get("/api/planner/departments/999999/history").status_code == 404


# Base grid page --------------------------------------------------------------------------------------


def test_basegrid_page_and_problems_api(planner_app):
    app, settings, _ = planner_app
    commit(settings, make_overlapping_edition)
    client = app.test_client()
    page = client.get("/basegrid")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "基础网格版本与校验" in html and "gridkit-basegrid.js" not in html
    assert '<option value="2026" selected>' in html and '<option value="2027-draft">' in html
    # Validating is expensive: not for anonymous visitors.
    assert client.get("/api/basegrid/problems").status_code == 401
    login(client, "planner1")
    assert "gridkit-basegrid.js" in client.get("/basegrid").get_data(as_text=True)
    clean = client.get("/api/basegrid/problems").get_json()
    assert clean["type"] == "FeatureCollection" and clean["features"] == []
    assert clean["edition"]["name"] == "2026" and clean["cells"] == 18

    html = client.get("/basegrid?edition=2027-draft").get_data(as_text=True)
    assert '<option value="2027-draft" selected>' in html
    config = json.loads(re.search(r'id="gridkit-map-config">(.*?)</script>', html, re.DOTALL).group(1))
    assert config["edition"] and config["api"]["problems"] == "/api/basegrid/problems"
    body = client.get(f"/api/basegrid/problems?edition={config['edition']}").get_json()
    overlaps = [f for f in body["features"] if f["properties"]["type"] == "overlap"]
    assert len(overlaps) == 1
    overlap = overlaps[0]
    assert overlap["properties"]["codes"] == [cell(C1, 5), cell(C1, 6)]
    assert overlap["properties"]["area_m2"] == pytest.approx(0.3 * 11390, rel=0.02)
    assert overlap["geometry"]["type"] == "Polygon"
    minx, _miny, maxx, _maxy = overlap["properties"]["bbox"]
    assert (minx, maxx) == pytest.approx((X0 + 2 * D, X0 + 2.3 * D))
    assert set(overlap["properties"]) == {"type", "codes", "area_m2", "message", "bbox"}
    assert client.get("/basegrid?edition=nope").status_code == 404
    assert client.get("/api/basegrid/problems?edition=nope").status_code == 400
    missing = client.get("/api/basegrid/problems?edition=987654")
    assert missing.status_code == 404 and missing.get_json()["error"] == "NotFound"


def test_basegrid_problems_are_stored_per_edition_state(session):
    make_base_grid(session)
    edition = session.scalar(select(BaseGridEdition))
    first = base_grid_problems_geojson(session, edition.id)
    stored = session.get(EditionCheck, edition.id)
    assert first["features"] == [] and stored is not None
    # Read back, not validated again: the stored row is what answers.
    stored.result = {"features": [{"type": "Feature", "id": 1, "geometry": None, "properties": {"type": "marker"}}]}
    session.flush()
    assert base_grid_problems_geojson(session, edition.id)["features"][0]["properties"]["type"] == "marker"
    # A changed edition is validated again.
    session.add(
        BaseCell(
            edition_id=edition.id,
            code=f"{C1}010",
            community_code=C1,
            geom=from_shape(box(X0, Y0, X0 + D / 2, Y0 + D / 2), srid=SRID),
        )
    )
    session.flush()
    again = base_grid_problems_geojson(session, edition.id)
    assert any(f["properties"]["type"] == "overlap" for f in again["features"])


def test_basegrid_page_on_an_empty_database(fresh_settings):
    html = create_app(fresh_settings).test_client().get("/basegrid").get_data(as_text=True)
    assert "尚无基础网格版本。" in html and "gridkit-basegrid.js" not in html


# Translations ----------------------------------------------------------------------------------------


def test_script_strings_exist_in_both_languages():
    for lang in ("zh-CN", "en"):
        catalog = catalogue(lang)
        missing = sorted(set(JS_STRINGS) - set(catalog)) + sorted(set(BASEGRID_JS_STRINGS) - set(catalog))
        assert not missing, f"{lang}.json lacks {missing}"
    for script in ("gridkit-planner.js", "gridkit-basegrid.js", "gridkit-planner-list.js"):
        source = (WEB / "static" / "js" / script).read_text(encoding="utf-8")
        assert not re.search(r"[\u4e00-\u9fff]", source), (
            f"{script} has Chinese text: use the message catalogue gridkit/messages"
        )
        used = set(re.findall(r'S\["([a-z_.]+)"\]', source))
        assert used <= set(JS_STRINGS) | set(BASEGRID_JS_STRINGS), used - set(JS_STRINGS) - set(BASEGRID_JS_STRINGS)
