"""The work grid editor in a real Chromium (audit): publishing a draft another planner's publish has outdated."""

from __future__ import annotations

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 (a fixture)
from test_browser_planner import confirm, server, sign_in, wait_ready  # noqa: F401 (server: a fixture)

from gridkit.grids import work
from gridkit.models import WorkGridVersion
from tests.factories_planner import DEPT, commit, read

pytestmark = pytest.mark.browser


def test_publishing_a_draft_outdated_by_another_publish_says_so_and_changes_nothing(chromium, server):
    base_url, settings, ids = server
    page, _, errors = _offline_page(chromium, base_url)
    sign_in(page, base_url, then=f"/planner/draft/{ids['draft']}")
    wait_ready(page)

    # Another planner starts a draft of their own and publishes it while this page is open.
    def other_planner(session):
        theirs = work.start_draft(session, DEPT, by="planner2")
        return work.publish(session, theirs, by="planner2").number

    theirs = commit(settings, other_planner)
    page.click("#gk-publish")
    confirm(page)
    page.wait_for_function("() => document.querySelector('#gk-notice').innerText.includes('未发布')")
    notice = page.inner_text("#gk-notice")
    assert "本草稿创建之后" in notice and f"第 {theirs} 版已由 planner2" in notice, notice
    assert "已被" not in notice  # not "someone changed your draft": nobody did
    assert read(settings, lambda s: s.get(WorkGridVersion, ids["draft"]).status) == "draft"
    assert not errors, errors
    page.close()
