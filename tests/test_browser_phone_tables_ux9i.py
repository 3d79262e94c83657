"""Pages as their users meet them in a real Chromium (Playwright, offline) on a 375 px phone and a
1366 px desktop: a case's history and the audit log read as one card a row on a phone (no word cut in
pieces by a narrow column, no column out of sight), the analyst's forms stay within the page, and a
report grouped by work cell asks for its department at the field instead of failing after a request."""

from __future__ import annotations

import pytest
from factories_incidents import DEPT
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_workspaces_ui5k import SHOTS, _sign_in, site  # noqa: F401 - the fixture is used by name

from gridkit.messages import catalogue

PHONE = {"width": 375, "height": 740}
DESKTOP = {"width": 1366, "height": 900}

pytestmark = pytest.mark.browser

# Text nodes of single words (a state, a user name) in `selector`'s cells drawn on more than one line.
BROKEN_WORDS = """s => Array.from(document.querySelectorAll(s + ' td')).flatMap(td => {
  const words = td.textContent.trim();
  if (!words || /\\s/.test(words)) { return []; }
  const range = document.createRange();
  range.selectNodeContents(td);
  const lines = new Set(Array.from(range.getClientRects()).filter(r => r.width).map(r => Math.round(r.top)));
  return lines.size > 1 ? [words] : [];
})"""

# Cells of `selector` (or its controls) whose right edge lies beyond the page's visible width.
CUT_OFF = """s => Array.from(document.querySelectorAll(s)).filter(e => {
  const r = e.getBoundingClientRect();
  return r.width > 0 && r.right > document.documentElement.clientWidth + 1;
}).map(e => e.textContent.trim().slice(0, 30) || e.name || e.id)"""


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_case_history_and_audit_log_read_as_cards_on_a_phone(chromium, site, lang):  # noqa: F811
    base_url, ids = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    _sign_in(page, base_url, "super1", lang)
    page.goto(f"{base_url}/supervisor/incidents/{ids['case']}")
    page.wait_for_load_state("networkidle")
    page.locator("#case-history").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"ux9i-history-{lang}-375.png"), full_page=True)
    assert page.locator("#case-history tbody tr").count() == 4  # reported, accepted, classified, dispatched
    assert page.evaluate(BROKEN_WORDS, "#case-history") == []
    assert page.evaluate(CUT_OFF, "#case-history td") == []
    # Each field of a card is named: the column's header is not on screen.
    labels = page.eval_on_selector_all(
        "#case-history tbody tr:first-child td", "tds => tds.map(td => getComputedStyle(td, '::before').content)"
    )
    assert catalogue(lang)["case.history.to"] in " ".join(labels)
    page.close()

    page, _, admin_errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    _sign_in(page, base_url, "admin1", lang)
    page.goto(f"{base_url}/admin#audit")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"ux9i-audit-{lang}-375.png"), full_page=True)
    assert page.locator("#gk-audit tbody td[data-label]").count() > 0
    assert page.evaluate(CUT_OFF, "#gk-audit td") == []
    # On a desktop the audit log stays a table with its column headers.
    page.set_viewport_size(DESKTOP)
    assert page.locator("#gk-audit thead th").first.is_visible()
    assert errors + admin_errors == []
    page.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_analyst_forms_stay_within_a_phone(chromium, site, lang):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    _sign_in(page, base_url, "analyst1", lang)
    page.goto(f"{base_url}/analyst/")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SHOTS / f"ux9i-analyst-{lang}-375.png"), full_page=True)
    # Every control lies within its form, the card's width: none runs past the card's edge.
    outside = page.evaluate(
        """() => Array.from(document.querySelectorAll('#gk-export, #gk-report')).flatMap(form => {
          const edge = form.getBoundingClientRect().right;
          return Array.from(form.querySelectorAll('select, input:not([type=hidden]), textarea, button'))
            .filter(e => e.getBoundingClientRect().right > edge + 1).map(e => e.name || e.id);
        })"""
    )
    assert outside == []
    assert errors == []
    page.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_a_report_by_work_cell_asks_for_its_department_first(chromium, site, lang):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(DESKTOP)
    _sign_in(page, base_url, "analyst1", lang)
    page.goto(f"{base_url}/analyst/")
    page.wait_for_load_state("networkidle")
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/analyst/report" in r.url else None)
    page.select_option("#gk-report-name", "workload")
    assert page.input_value("#gk-report-by") == "work-cell"
    page.click("#gk-report-preview")
    page.wait_for_timeout(300)
    # Nothing is asked of the server; the department field says what is missing, in the page's language.
    assert asked == []
    assert page.inner_text("#gk-report-out") == ""
    message = page.eval_on_selector("#gk-report-dept", "e => e.validationMessage")
    assert message == catalogue(lang)["error.report.work_cell_needs_dept.web"]
    # The download button is held back the same way.
    page.click("#gk-report button[type=submit]")
    page.wait_for_timeout(300)
    assert asked == [] and page.url.endswith("/analyst/")
    # With the department chosen, the preview is the report's.
    page.select_option("#gk-report-dept", DEPT)
    with page.expect_response(lambda r: "/analyst/report.json" in r.url) as answer:
        page.click("#gk-report-preview")
    assert answer.value.status == 200
    page.wait_for_selector("#gk-report-out h3")
    # Grouped by community again, no department is needed.
    page.select_option("#gk-report-name", "population")
    page.select_option("#gk-report-dept", "")
    assert page.eval_on_selector("#gk-report-dept", "e => e.checkValidity()")
    page.screenshot(path=str(SHOTS / f"ux9i-report-dept-{lang}.png"))
    assert errors == []
    page.close()


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_evaluation_table_fits_a_desktop(chromium, site, lang):  # noqa: F811
    """Every column of the supervisor's evaluation (the steps' times too) is in sight on a 1366 px
    desktop, without scrolling the table sideways; a step's unit is said under its name."""
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(DESKTOP)
    _sign_in(page, base_url, "super1", lang)
    page.goto(f"{base_url}/supervisor")
    page.wait_for_load_state("networkidle")
    page.locator("#evaluation").scroll_into_view_if_needed()
    page.locator(".sup-evaluation").screenshot(path=str(SHOTS / f"ux9i-evaluation-{lang}-1366.png"))
    box = page.evaluate(
        "() => { const w = document.querySelector('#evaluation').parentElement;"
        " return [w.scrollWidth, w.clientWidth]; }"
    )
    assert box[0] <= box[1], box
    units = page.locator("#evaluation thead th .unit").all_inner_texts()
    assert units and set(units) == {catalogue(lang)["sup.eval.step_unit"]}
    assert errors == []
    page.close()
