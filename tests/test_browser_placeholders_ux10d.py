"""Form placeholders read whole on a phone (ux10d): on a 390×844 screen, in Chinese and in English, no field's
placeholder (sign-in, the map's place search, case searches, the case report and reply forms, the analyst's and
the planner's and the administrator's forms) is cut off by its field, and no field reaches past the screen's edge."""

from __future__ import annotations

import pytest
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_workspaces_ui5k import _sign_in, site  # noqa: F401 - the fixture is used by name

PHONE = {"width": 390, "height": 844}

pytestmark = pytest.mark.browser

# Every visible field with a placeholder whose text does not fit it: the placeholder written in as the value (the
# value restored after), then the text's width (scrollWidth) against the field's (clientWidth); a textarea wraps,
# so its height. Also any such field whose right edge lies past the screen. Closed <details> are opened first.
CUT_PLACEHOLDERS = """() => {
  document.querySelectorAll('details').forEach(d => { d.open = true; });
  return Array.from(document.querySelectorAll('input[placeholder], textarea[placeholder]')).flatMap(e => {
    const r = e.getBoundingClientRect();
    if (!r.width || getComputedStyle(e).visibility === 'hidden' || !e.placeholder) { return []; }
    const kept = e.value, type = e.type;
    if (type === 'password') { e.type = 'text'; }
    e.value = e.placeholder;
    const text = e.scrollWidth + '/' + e.clientWidth + 'px';
    const cut = e.tagName === 'TEXTAREA' ? e.scrollHeight > e.clientHeight + 1 : e.scrollWidth > e.clientWidth + 1;
    e.value = kept;
    if (type === 'password') { e.type = type; }
    const out = r.right > document.documentElement.clientWidth + 1;
    const said = (e.name || e.id) + ': ' + e.placeholder + ' (' + text + (out ? ', past the edge' : '') + ')';
    return cut || out ? [said] : [];
  });
}"""

# The map's place search when it lies over the map's zoom buttons (made wider on a phone, it must stay beside them).
OVER_ZOOM = """() => {
  const search = document.querySelector('.gk-search'), zoom = document.querySelector('.leaflet-control-zoom');
  if (!search || !zoom) { return false; }
  const a = search.getBoundingClientRect(), b = zoom.getBoundingClientRect();
  return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
}"""

PAGES = {
    None: ["/", "/basegrid", "/login"],
    "coord1": ["/coordinator", "/coordinator/cases"],
    "super1": ["/supervisor", "/supervisor/cases", "/supervisor/incidents/{case}"],
    "analyst1": ["/analyst/"],
    "planner1": ["/planner", "/planner/version/{version}", "/basegrid"],
    "admin1": ["/admin", "/basegrid"],
}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_no_placeholder_is_cut_off_on_a_phone(chromium, site, lang):  # noqa: F811
    base_url, ids = site
    cut, seen, all_errors = {}, 0, []
    for user, paths in PAGES.items():
        page, _, errors = _offline_page(chromium, base_url)
        page.set_viewport_size(PHONE)
        _sign_in(page, base_url, user, lang)
        for path in paths:
            page.goto(base_url + path.format(case=ids["case"], version=ids["version"]))
            page.wait_for_load_state("networkidle")
            seen += page.locator("input[placeholder], textarea[placeholder]").count()
            found = page.evaluate(CUT_PLACEHOLDERS)
            if page.evaluate(OVER_ZOOM):
                found.append("the place search covers the zoom buttons")
            if found:
                cut[path] = found
        all_errors += errors
        page.close()
    assert seen >= 8  # the fields are there to be measured
    assert cut == {}
    assert all_errors == []
