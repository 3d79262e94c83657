"""Changing a draft through the planner JSON API: moves, polygons, exclusions, publish, new drafts, rollback, diff,
optimistic locking and CSRF."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from gridkit.models import WorkGridVersion
from tests.factories import X0, Y0, D
from tests.factories_planner import (  # noqa: F401 - planner, planner_app: fixtures used by name
    C1,
    C2,
    DEPT,
    NEW,
    OTHER_DEPT,
    A,
    B,
    cell,
    login,
    members,
    planner,
    planner_app,
    post,
    read,
)

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
