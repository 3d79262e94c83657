"""A case's deadlines as a supervisor reads them in a real Chromium (Playwright, offline), in zh-CN
and en: the current step's deadline written in the page's language (a Chinese page with the Chinese
colon), and the case's own deadline, the last of its steps', beside it on the case page."""

from __future__ import annotations

import re

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_workspaces_ui5k import SHOTS, _sign_in, site  # noqa: F401 - the fixture is used by name

from gridkit.messages import catalogue

pytestmark = pytest.mark.browser
WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}"


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_case_pages_show_the_step_and_case_deadlines_in_the_pages_language(chromium, site, lang):  # noqa: F811
    base_url, ids = site
    words = catalogue(lang)
    # The case is dispatched: its pending step is handling.
    step_due = re.escape(words["case.step_due"]).replace(r"\{step\}", re.escape(words["incident.step.handle"]))
    # Followed by the time left (or late) on the case's own clock (tests/test_overdue_worktime_cal10c.py).
    step_due = "^" + step_due.replace(r"\{at\}", WHEN) + r"( \S.*)?$"
    page, _, errors = _offline_page(chromium, base_url)
    _sign_in(page, base_url, "super1", lang)
    page.goto(f"{base_url}/supervisor/incidents/{ids['case']}")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"ux9i-case-deadlines-{lang}.png"), full_page=True)
    assert re.match(step_due, page.inner_text("#case-step-due").strip())
    assert page.inner_text("#case-time-left").strip()
    assert page.locator("dt", has_text=words["case.case_deadline"]).count() == 1
    assert re.fullmatch(WHEN, page.inner_text("#case-due").strip())
    page.goto(f"{base_url}/supervisor/cases")
    page.wait_for_load_state("networkidle")
    cells = page.locator(f"td[data-label='{words['case.deadline']}']").all_inner_texts()
    assert any(re.match(step_due, c.strip().split("\n")[0].strip()) for c in cells), cells
    assert errors == []
    page.close()
