"""The work grid editor and the base grid page through Flask's test client: pages, roles and
scopes, the planner JSON API (moves, polygons, exclusions, publish, drafts, rollback, diff), optimistic
locking, CSRF, and the base grid problems API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from factories import STREET, X0, Y0, D, make_base_grid
from geoalchemy2.shape import from_shape
from shapely.geometry import box
from sqlalchemy import select

from gridkit import db, layers
from gridkit.checks import base_grid_problems_geojson
from gridkit.grids import work
from gridkit.messages import catalogue
from gridkit.models import (
    SRID,
    BaseCell,
    BaseGridEdition,
    EditionCheck,
    WorkCell,
    WorkCellMember,
    WorkGridVersion,
)
from gridkit.users import add_user
from tests.factories import STREET, X0, Y0, D, make_base_grid
from web import create_app, pages
from web.mapview import BASEGRID_JS_STRINGS
from web.planner import JS_STRINGS
from web.scope import jurisdiction_within_scope

WEB = Path(__file__).resolve().parent.parent / "web"
PASSWORD = "correct-horse-7"
DEPT, OTHER_DEPT = "100001", "200002"
C1, C2 = f"{STREET}001", f"{STREET}002"
# Work cells: department + area + sequence (20 digits).
# Coded for the street (area part 440304001000), so that base cells may move between them: a work
# cell's area part must name an admin unit holding all its base cells.
A, B = f"{DEPT}{STREET}00001", f"{DEPT}{STREET}00002"
NEW = f"{DEPT}{C1}01"  # coded for community 1: the editor suggests the community's next free code


def cell(community: str, n: int) -> str:
    """Base cell n (1-9, north-west first) of a community of the 3×3 test grid."""
    return f"{community}{n:03d}"


def make_planner_data(session) -> dict:
    """Two 3×3 communities side by side; department DEPT (jurisdiction: the street) with version 1
    published (A = community 1, B = community 2) and version 2 drafted from it; department
    OTHER_DEPT (jurisdiction: community 1) with nothing yet; users of every kind."""
    make_base_grid(session, communities=2)
    work.add_department(session, DEPT, "城市管理", jurisdiction=STREET)
    work.add_department(session, OTHER_DEPT, "民政服务", jurisdiction=C1)
    first = work.start_draft(session, DEPT, by="setup")
    work.set_members(session, first, A, [cell(C1, n) for n in range(1, 10)], name="一号网格")
    work.set_members(session, first, B, [cell(C2, n) for n in range(1, 10)], name="二号网格")
    work.publish(session, first, by="setup")
    draft = work.start_draft(session, DEPT, by="setup")
    add_user(session, "planner1", "planner", password=PASSWORD)
    add_user(session, "planner2", "planner", password=PASSWORD)
    add_user(session, "admin1", "admin", password=PASSWORD)
    add_user(session, "street1", "planner", scope=STREET, password=PASSWORD)
    add_user(session, "community1", "planner", scope=C1, password=PASSWORD)
    add_user(session, "coord1", "coordinator", password=PASSWORD)
    return {"published": first.id, "draft": draft.id}


def commit(settings, fill):
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        return fill(session)


def read(settings, query):
    with db.session_factory(db.engine_for(settings))() as session:
        return query(session)


def members(settings, version_id: int) -> dict[str, str]:
    """Return {base cell code: work cell code} of a version, read from the database."""
    return read(
        settings,
        lambda s: dict(
            s.execute(
                select(BaseCell.code, WorkCell.code)
                .join(WorkCellMember, WorkCellMember.base_cell_id == BaseCell.id)
                .join(WorkCell, WorkCell.id == WorkCellMember.work_cell_id)
                .where(WorkCellMember.version_id == version_id)
            ).all()
        ),
    )


@pytest.fixture
def planner_app(fresh_settings):
    ids = commit(fresh_settings, make_planner_data)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings, ids


def login(client, name: str) -> str:
    """Sign `name` in and return the session's CSRF token (as the pages hand it to their scripts)."""
    html = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    response = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302, f"{name} could not sign in"
    # Signing in starts a fresh session: its token is on the next page (here: the sign-out form).
    html = client.get("/").get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def post(client, url, token, payload):
    return client.post(url, json=payload, headers={"X-CSRF-Token": token})


@pytest.fixture
def planner(planner_app):
    app, settings, ids = planner_app
    client = app.test_client()
    token = login(client, "planner1")
    return client, token, settings, ids


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


# Changing ------------------------------------------------------------------------------------------


def test_move_cells_to_another_work_cell(planner):
    client, token, settings, ids = planner
    url = f"/api/planner/drafts/{ids['draft']}/move"
    response = post(client, url, token, {"revision": 0, "work_cell": B, "cells": [cell(C1, 3), cell(C1, 6)]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "draft": ids["draft"],
        "revision": 1,
        "work_cell": B,
        "cells": [cell(C1, 3), cell(C1, 6)],
    }
    after = members(settings, ids["draft"])
    assert after[cell(C1, 3)] == B and after[cell(C1, 6)] == B and after[cell(C1, 1)] == A
    # The published version is untouched, and the draft remembers who changed it.
    assert members(settings, ids["published"])[cell(C1, 3)] == A
    version = read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]))
    assert version.revision == 1 and version.updated_by == "planner1"
    # A new work cell, with a name.
    created = post(
        client,
        url,
        token,
        {"revision": 1, "work_cell": NEW, "name": "三号网格", "cells": [cell(C1, 7), cell(C1, 8), cell(C1, 9)]},
    )
    assert created.status_code == 200 and created.get_json()["revision"] == 2
    overview = client.get(f"/api/planner/versions/{ids['draft']}").get_json()
    assert {w["code"]: w["base_cells"] for w in overview["work_cells"]} == {A: 4, NEW: 3, B: 11}


def test_stale_revision_is_409_naming_who_changed_it(planner_app):
    app, settings, ids = planner_app
    first, second = app.test_client(), app.test_client()
    token1, token2 = login(first, "planner1"), login(second, "planner2")
    url = f"/api/planner/drafts/{ids['draft']}/move"
    assert post(second, url, token2, {"revision": 0, "work_cell": B, "cells": [cell(C1, 3)]}).status_code == 200
    stale = post(first, url, token1, {"revision": 0, "work_cell": A, "cells": [cell(C2, 1)]})
    assert stale.status_code == 409
    body = stale.get_json()
    assert body["error"] == "Conflict"
    assert "planner2" in body["message"] and "修订号 1" in body["message"]
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", body["message"]), "the message says when"
    # Nothing of the stale save was written.
    assert members(settings, ids["draft"])[cell(C2, 1)] == B
    assert read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]).revision) == 1


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"revision": 0, "work_cell": "123", "cells": [cell(C1, 1)]}, "20 位数字"),
        ({"revision": 0, "work_cell": f"999999{C1}01", "cells": [cell(C1, 1)]}, "部门编码"),
        ({"revision": 0, "work_cell": f"{DEPT}999999999999" + "01", "cells": [cell(C1, 1)]}, "行政区划代码"),
        ({"work_cell": A, "cells": [cell(C1, 1)]}, "revision"),
        ({"revision": "1", "work_cell": A, "cells": [cell(C1, 1)]}, "revision"),
        ({"revision": 0, "work_cell": A, "cells": []}, "没有选中"),
        ({"revision": 0, "work_cell": A, "cells": "440304001001001"}, "cells"),
        ({"revision": 0, "cells": [cell(C1, 1)]}, "工作网格编码"),
        ({"revision": 0, "work_cell": A, "polygon": {"type": "Point", "coordinates": [114, 22]}}, "Polygon"),
    ],
)
def test_bad_moves_are_400_json(planner, payload, fragment):
    client, token, settings, ids = planner
    response = post(client, f"/api/planner/drafts/{ids['draft']}/move", token, payload)
    assert response.status_code == 400, response.get_json()
    body = response.get_json()
    assert body["error"] == "ValidationError" and fragment in body["message"], body
    assert read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]).revision) == 0


def test_unknown_base_cell_is_404_and_not_json_body_is_400(planner):
    client, token, _, ids = planner
    url = f"/api/planner/drafts/{ids['draft']}/move"
    missing = post(client, url, token, {"revision": 0, "work_cell": A, "cells": ["440304001001099"]})
    assert missing.status_code == 404 and "440304001001099" in missing.get_json()["message"]
    not_json = client.post(url, data="revision=0", headers={"X-CSRF-Token": token})
    assert not_json.status_code == 400 and not_json.get_json()["error"] == "ValidationError"


def test_changes_need_the_csrf_token(planner):
    client, token, settings, ids = planner
    url = f"/api/planner/drafts/{ids['draft']}/move"
    payload = {"revision": 0, "work_cell": B, "cells": [cell(C1, 3)]}
    missing = client.post(url, json=payload)
    assert missing.status_code == 400 and missing.get_json()["error"] == "ValidationError"
    wrong = client.post(url, json=payload, headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 400
    for path in (
        f"/api/planner/drafts/{ids['draft']}/publish",
        f"/api/planner/departments/{DEPT}/drafts",
        f"/api/planner/departments/{DEPT}/rollback",
        f"/api/planner/drafts/{ids['draft']}/exclude",
        f"/api/planner/drafts/{ids['draft']}/cells-in-polygon",
    ):
        assert client.post(path, json={"revision": 0, "to": 1}).status_code == 400, path
    assert members(settings, ids["draft"])[cell(C1, 3)] == A
    # Anonymous callers are refused before the token is even looked at; GET needs no token.
    anonymous = client.application.test_client()
    assert anonymous.post(url, json=payload, headers={"X-CSRF-Token": token}).status_code == 401
    assert anonymous.get(f"/api/planner/versions/{ids['draft']}").status_code == 401


def test_polygon_selects_and_assigns_cells_by_share(planner):
    client, token, settings, ids = planner
    # Community 2's east column (cells 3, 6, 9) fully, and 40 % of its middle column.
    x0, x1 = X0 + 4 * D + 0.6 * D, X0 + 6 * D + D / 10
    ring = [[x0, Y0 - D / 10], [x1, Y0 - D / 10], [x1, Y0 + 3 * D + D / 10], [x0, Y0 + 3 * D + D / 10]]
    polygon = {"type": "Polygon", "coordinates": [ring + [ring[0]]]}
    found = post(
        client, f"/api/planner/drafts/{ids['draft']}/cells-in-polygon", token, {"polygon": polygon, "share": 0.5}
    )
    assert found.status_code == 200
    assert found.get_json()["cells"] == [cell(C2, 3), cell(C2, 6), cell(C2, 9)]
    more = post(
        client, f"/api/planner/drafts/{ids['draft']}/cells-in-polygon", token, {"polygon": polygon, "share": 0.3}
    ).get_json()["cells"]
    assert len(more) == 6
    assert (
        post(
            client, f"/api/planner/drafts/{ids['draft']}/cells-in-polygon", token, {"polygon": polygon, "share": 2}
        ).status_code
        == 400
    )
    target = f"{DEPT}{C2}02"
    assigned = post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 0, "work_cell": target, "polygon": polygon},
    )
    assert assigned.status_code == 200 and assigned.get_json()["cells"] == [cell(C2, 3), cell(C2, 6), cell(C2, 9)]
    assert members(settings, ids["draft"])[cell(C2, 6)] == target
    nowhere = {"type": "Polygon", "coordinates": [[[100, 30], [100.1, 30], [100.1, 30.1], [100, 30]]]}
    empty = post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 1, "work_cell": target, "polygon": nowhere},
    )
    assert empty.status_code == 400


def test_exclude_cells(planner):
    client, token, _settings, ids = planner
    url = f"/api/planner/drafts/{ids['draft']}/exclude"
    assert post(client, url, token, {"revision": 0, "cells": [cell(C1, 5)]}).status_code == 400  # no reason
    response = post(client, url, token, {"revision": 0, "cells": [cell(C1, 5)], "reason": "水库"})
    assert response.status_code == 200 and response.get_json()["excluded"] == 1
    cells = client.get(f"/api/planner/versions/{ids['draft']}/cells").get_json()["features"]
    props = next(f["properties"] for f in cells if f["properties"]["code"] == cell(C1, 5))
    assert props["excluded"] is True and props["exclusion_reason"] == "水库" and props["work_cell"] is None
    assert client.get(f"/api/planner/versions/{ids['draft']}").get_json()["counts"]["excluded"] == 1


def test_publish_refused_while_errors_then_published(planner):
    client, token, settings, ids = planner
    # Community 1's north-west cell put into B lies away from the rest of B: B falls in two pieces.
    post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 0, "work_cell": B, "cells": [cell(C1, 1)]},
    )
    refused = post(client, f"/api/planner/drafts/{ids['draft']}/publish", token, {"revision": 1})
    assert refused.status_code == 400
    body = refused.get_json()
    assert body["error"] == "ValidationError" and "不能发布" in body["message"]
    assert body["problems"][0]["type"] == "multipart_work_cell" and body["problems"][0]["codes"] == [B]
    assert body["problems"][0]["severity"] == "error"
    version = read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]))
    assert version.status == "draft" and version.revision == 1, "a refused publish changes nothing"
    problems = client.get(f"/api/planner/drafts/{ids['draft']}/problems").get_json()
    assert problems["errors"] == 1
    # A stale publish is a conflict, even for a valid draft.
    post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 1, "work_cell": A, "cells": [cell(C1, 1)]},
    )
    stale = post(client, f"/api/planner/drafts/{ids['draft']}/publish", token, {"revision": 1})
    assert stale.status_code == 409 and stale.get_json()["error"] == "Conflict"
    published = post(client, f"/api/planner/drafts/{ids['draft']}/publish", token, {"revision": 2})
    assert published.status_code == 200, published.get_json()
    assert published.get_json()["number"] == 2 and published.get_json()["url"] == f"/planner/version/{ids['draft']}"
    statuses = read(
        settings,
        lambda s: dict(
            s.execute(
                select(WorkGridVersion.number, WorkGridVersion.status).where(WorkGridVersion.dept_code == DEPT)
            ).all()
        ),
    )
    assert statuses == {1: "retired", 2: "published"}
    again = post(client, f"/api/planner/drafts/{ids['draft']}/publish", token, {"revision": 3})
    assert again.status_code == 409 and again.get_json()["error"] == "InvalidTransition"
    moved = post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 3, "work_cell": A, "cells": [cell(C2, 1)]},
    )
    assert moved.status_code == 409, "a published version never changes"


def test_new_draft_rollback_and_diff(planner):
    client, token, settings, ids = planner
    post(
        client,
        f"/api/planner/drafts/{ids['draft']}/move",
        token,
        {"revision": 0, "work_cell": B, "cells": [cell(C1, 3), cell(C1, 6)]},
    )
    assert post(client, f"/api/planner/drafts/{ids['draft']}/publish", token, {"revision": 1}).status_code == 200
    diff = client.get(f"/api/planner/departments/{DEPT}/diff?from=1&to=2").get_json()
    assert diff["moved"] == [
        {"base_cell": cell(C1, 3), "from": A, "to": B},
        {"base_cell": cell(C1, 6), "from": A, "to": B},
    ]
    assert client.get(f"/api/planner/departments/{DEPT}/diff?from=1&to=x").status_code == 400
    assert client.get(f"/api/planner/departments/{DEPT}/diff?from=1&to=9").status_code == 404
    page = client.get(f"/planner/diff/{DEPT}/1/2").get_data(as_text=True)
    assert "第 1 版 → 第 2 版" in page and 'data-count="moved">2<' in page
    assert f'data-code="{cell(C1, 3)}"' in page and '"mode": "diff"' in page
    assert client.get(f"/planner/diff/{DEPT}/1/7").status_code == 404

    started = post(client, f"/api/planner/departments/{DEPT}/drafts", token, {})
    assert started.status_code == 201
    draft = started.get_json()
    assert draft["number"] == 3 and draft["revision"] == 0 and draft["url"] == f"/planner/version/{draft['id']}"
    assert members(settings, draft["id"])[cell(C1, 3)] == B, "a new draft copies the version in force"
    from_one = post(client, f"/api/planner/departments/{DEPT}/drafts", token, {"from_version": 1}).get_json()
    assert members(settings, from_one["id"])[cell(C1, 3)] == A

    rolled = post(client, f"/api/planner/departments/{DEPT}/rollback", token, {"to": 1})
    assert rolled.status_code == 201
    body = rolled.get_json()
    assert body["copy_of"] == 1 and body["status"] == "published" and body["number"] == 5
    assert members(settings, body["id"])[cell(C1, 3)] == A
    history = client.get(f"/api/planner/departments/{DEPT}/history").get_json()["versions"]
    assert [(v["number"], v["status"]) for v in history] == [
        (1, "retired"),
        (2, "retired"),
        (3, "draft"),
        (4, "draft"),
        (5, "published"),
    ]
    assert post(client, f"/api/planner/departments/{DEPT}/rollback", token, {"to": 3}).status_code == 409
    assert post(client, f"/api/planner/departments/{DEPT}/rollback", token, {}).status_code == 400
    assert post(client, f"/api/planner/departments/{DEPT}/rollback", token, {"to": 42}).status_code == 404


def test_new_draft_for_a_department_without_versions(planner):
    client, token, _settings, _ = planner
    response = post(client, f"/api/planner/departments/{OTHER_DEPT}/drafts", token, {"note": "first"})
    assert response.status_code == 201 and response.get_json()["number"] == 1
    page = client.get(response.get_json()["url"]).get_data(as_text=True)
    assert "民政服务" in page
    overview = client.get(f"/api/planner/versions/{response.get_json()['id']}").get_json()
    assert overview["work_cells"] == [] and overview["counts"]["unassigned"] == 9
    assert post(client, "/api/planner/departments/999999/drafts", token, {}).status_code == 404


# Base grid page --------------------------------------------------------------------------------------


def make_overlapping_edition(session, name: str = "2027-draft") -> BaseGridEdition:
    """A draft edition copying the published one, whose cell 5 of community 1 reaches into cell 6."""
    published = session.scalar(select(BaseGridEdition).where(BaseGridEdition.status == "published"))
    edition = BaseGridEdition(name=name, status="draft")
    session.add(edition)
    session.flush()
    for code, community, geom in session.execute(
        select(BaseCell.code, BaseCell.community_code, BaseCell.geom).where(BaseCell.edition_id == published.id)
    ):
        session.add(BaseCell(edition_id=edition.id, code=code, community_code=community, geom=geom))
    session.flush()
    grown = session.scalar(select(BaseCell).where(BaseCell.edition_id == edition.id, BaseCell.code == cell(C1, 5)))
    # Cell 5 is the middle one (column 1, row 1): it grows 30 % into cell 6 to the east.
    grown.geom = from_shape(box(X0 + D, Y0 + D, X0 + 2.3 * D, Y0 + 2 * D), srid=SRID)
    session.flush()
    return edition


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
