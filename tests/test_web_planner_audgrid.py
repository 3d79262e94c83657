"""The planner's page API when two planners publish one department's work grid (audit)."""

from __future__ import annotations

from tests.factories_planner import DEPT, login, members, planner_app, post  # noqa: F401 - planner_app: a fixture


def test_a_draft_outdated_by_another_planners_publish_is_refused_with_who_and_what_to_do(planner_app):
    app, settings, ids = planner_app
    first, second = app.test_client(), app.test_client()
    token1, token2 = login(first, "planner1"), login(second, "planner2")
    # planner2 starts a draft of their own after planner1's and publishes it first.
    started = post(second, f"/api/planner/departments/{DEPT}/drafts", token2, {})
    assert started.status_code == 201
    theirs = started.get_json()
    assert post(second, f"/api/planner/drafts/{theirs['id']}/publish", token2, {"revision": 0}).status_code == 200

    refused = post(first, f"/api/planner/drafts/{ids['draft']}/publish", token1, {"revision": 0})
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["code"] == "work.published_since_draft"
    assert f"第 {theirs['number']} 版已由 planner2" in body["message"] and "新建草稿" in body["message"]
    # planner1's draft is still a draft, with what it held; planner2's version is in force.
    history = first.get(f"/api/planner/departments/{DEPT}/history").get_json()["versions"]
    assert [(v["number"], v["status"]) for v in history] == [(1, "retired"), (2, "draft"), (3, "published")]
    assert members(settings, ids["draft"]) == members(settings, ids["published"])
