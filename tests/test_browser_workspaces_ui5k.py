"""Every role's workspace as its user sees it in a real Chromium (Playwright, offline), in zh-CN and
in en, on a 390 px phone and a 1366 px laptop: the top bar's links are all on screen and clickable
(not hidden under the page), the page never scrolls sideways, maps have a height, no string is
left in the other language, and the supervisor's heatmap has a readable legend that leaves the map
visible. Screenshots are kept under a temporary directory as test artifacts."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from factories_incidents import IN_C1, IN_C2, PASSWORD, SUPERVISOR, W1, W2, make_incident_world
from factories_web import served
from sqlalchemy import text
from test_browser import _offline_page, chromium  # noqa: F401 - the fixture is used by name
from test_browser_web import ALLOWED_WORDS, LATIN, VISIBLE_TEXT

from gridkit import db
from gridkit.incidents import workflow as wf
from gridkit.io.export import FORMATS, LAYERS
from gridkit.io.export_writers import ENCODINGS
from gridkit.reports.render import REPORT_FORMATS
from gridkit.users import add_user
from web import create_app

SHOTS = Path(tempfile.gettempdir()) / "gridkit-browser-workspaces"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1366, "height": 768}

pytestmark = pytest.mark.browser


@pytest.fixture
def site(fresh_settings):
    """The incident world with a planner, one case taken to 'dispatched' and one left 'reported'."""
    with db.session_factory(db.engine_for(fresh_settings))() as session, session.begin():
        world = make_incident_world(session)
        add_user(session, "planner1", "planner", password=PASSWORD)
        case = wf.report_incident(
            session, lon=IN_C1[0], lat=IN_C1[1], description="井盖缺失，急需处理", category="0101", actor=SUPERVISOR
        ).incident
        wf.transition(session, case.id, "accept", SUPERVISOR, note="已受理")
        wf.transition(session, case.id, "classify", SUPERVISOR, category="0101", severity="high")
        wf.transition(session, case.id, "dispatch", SUPERVISOR)
        wf.report_incident(
            session, lon=IN_C2[0], lat=IN_C2[1], description="暴露垃圾", category="E0101", actor=SUPERVISOR
        )
        # Coordinator 1 answers for both work cells: the page lists two.
        session.execute(
            text(
                "INSERT INTO coordinator_assignment (coordinator_id, work_cell_id)"
                " SELECT :c, id FROM work_cell WHERE code = :w"
            ),
            {"c": world["coord1"].id, "w": W2},
        )
        ids = {"case": case.id, "version": world["version"].id, "data": _data_text(session)}
    app = create_app(fresh_settings)
    with served(app) as url:
        SHOTS.mkdir(exist_ok=True)
        yield url, ids


USER_NAMES = {"coord1", "coord2", "super1", "street_super", "admin1", "analyst1", "planner1"}
# Identifiers a Chinese page shows as they are: user names, file formats, encodings, layer names
# (the names the CLI takes), "114°E" of a Gauss-Kruger zone.
IDENTIFIERS = (
    ALLOWED_WORDS
    | USER_NAMES
    | set(FORMATS)
    | set(REPORT_FORMATS)
    | set(LAYERS)
    | {e.upper() for e in ENCODINGS}
    | {"E", "GBK"}
)


def _untranslated(text: str) -> list[str]:
    return [
        w for w in LATIN.findall(text) if w not in IDENTIFIERS and not re.fullmatch(r"[A-Z]?-?\d[\w-]*|[0-9A-Z]{6,}", w)
    ]


def _data_text(session) -> str:
    """Return the city's own names and texts (shown as they are in either language), one per line."""
    rows = session.execute(
        text(
            "SELECT name FROM department UNION ALL SELECT name FROM work_cell UNION ALL SELECT name FROM coordinator"
            " UNION ALL SELECT name FROM admin_unit UNION ALL SELECT name FROM incident_category"
            " UNION ALL SELECT description FROM incident UNION ALL SELECT note FROM incident_history"
        )
    ).scalars()
    return "\n".join(r for r in rows if r)


def _pages(ids) -> dict:
    return {
        None: ["/", "/basegrid", "/login", "/no/such/page"],
        "coord1": ["/coordinator", "/coordinator/cases", "/admin"],
        "super1": [
            "/supervisor",
            "/supervisor/cases",
            f"/supervisor/incidents/{ids['case']}",
            "/supervisor/incidents/999999",
        ],
        "analyst1": ["/analyst/"],
        "planner1": ["/planner", f"/planner/version/{ids['version']}"],
        "admin1": ["/admin", "/planner"],
    }


def _sign_in(page, base_url, name, lang):
    page.goto(f"{base_url}/login?lang={lang}")
    if name:
        page.fill("#name", name)
        page.fill("#password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_load_state("networkidle")


# Top-bar links and buttons whose middle is off screen or under another element (hidden by the page).
HIDDEN_NAV = """() => Array.from(document.querySelectorAll('.topbar a, .topbar button')).filter(e => {
  const r = e.getBoundingClientRect();
  const x = r.left + r.width / 2, y = r.top + r.height / 2;
  if (!r.width || x < 0 || y < 0 || x > innerWidth || y > innerHeight) { return true; }
  const hit = document.elementFromPoint(x, y);
  return !(hit && (hit === e || e.contains(hit)));
}).map(e => e.textContent.trim())"""

# Form controls of the page (not of the map) that a user cannot reach without scrolling sideways.
OFF_SCREEN_CONTROLS = """() => Array.from(document.querySelectorAll(
    'main button, main input:not([type=hidden]), main select, main textarea')).filter(e => {
  if (e.closest('.leaflet-container')) { return false; }
  const r = e.getBoundingClientRect();
  return r.width > 0 && (r.left < 0 || r.right > document.documentElement.clientWidth + 1);
}).map(e => e.name || e.id || e.textContent.trim()).slice(0, 5)"""

# Pairs of map controls (legend, attribution, zoom, search …) drawn over each other.
OVERLAPPING_MAP_CONTROLS = """() => {
  const cs = Array.from(document.querySelectorAll('.leaflet-control')).filter(c => c.getBoundingClientRect().width);
  const out = [];
  for (let i = 0; i < cs.length; i++) {
    for (let j = i + 1; j < cs.length; j++) {
      const a = cs[i].getBoundingClientRect(), b = cs[j].getBoundingClientRect();
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > 1 && h > 1) { out.push(cs[i].className.split(' ')[0] + ' / ' + cs[j].className.split(' ')[0]); }
    }
  }
  return out;
}"""

# The words of the interface itself (not data): headings, labels, headers, buttons, controls' own text.
CHROME_TEXT = """() => {
  const parts = [document.title];
  document.querySelectorAll('nav, h1, h2, h3, th[scope=col], label, button, summary, .leaflet-control, .empty, .muted')
    .forEach(e => {
      if (e.closest('[translate="no"], .leaflet-control-attribution, .lang-switch')) { return; }
      e.childNodes.forEach(n => { if (n.nodeType === 3) { parts.push(n.textContent); } });
      ['placeholder', 'title', 'aria-label'].forEach(a => {
        if (e.getAttribute(a)) { parts.push(e.getAttribute(a)); }
      });
    });
  return parts.join('\\n');
}"""
CJK = re.compile(r"[\u4e00-\u9fff]+")


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_every_workspace_fits_a_phone_and_speaks_one_language(chromium, site, lang):  # noqa: F811
    base_url, ids = site
    found = {}
    for viewport in (PHONE, LAPTOP):
        for user, paths in _pages(ids).items():
            page, _, errors = _offline_page(chromium, base_url)
            page.set_viewport_size(viewport)
            _sign_in(page, base_url, user, lang)
            for path in paths:
                page.goto(f"{base_url}{path}")
                page.wait_for_load_state("networkidle")
                where = (viewport["width"], user, path)
                name = re.sub(r"\W+", "_", f"{lang}-{viewport['width']}-{user}{path}").strip("_")
                page.screenshot(path=str(SHOTS / f"{name}.png"))
                assert page.evaluate("() => document.documentElement.lang") == lang, where
                hidden = page.evaluate(HIDDEN_NAV)
                if hidden:
                    found[(*where, "top bar hidden")] = hidden
                width = page.evaluate("() => document.documentElement.scrollWidth")
                if width > viewport["width"]:
                    found[(*where, "scrolls sideways")] = width
                heights = page.evaluate(
                    "() => Array.from(document.querySelectorAll('.leaflet-container'))"
                    ".map(e => e.getBoundingClientRect().height)"
                )
                if any(h < 200 for h in heights):
                    found[(*where, "map too low")] = heights
                overlaps = page.evaluate(OVERLAPPING_MAP_CONTROLS)
                if overlaps:
                    found[(*where, "map controls overlap")] = overlaps
                if viewport is PHONE:
                    off = page.evaluate(OFF_SCREEN_CONTROLS)
                    if off:
                        found[(*where, "controls off screen")] = off
                    continue
                if lang == "zh-CN":
                    words = _untranslated(page.evaluate(VISIBLE_TEXT))
                else:
                    words = [w for w in CJK.findall(page.evaluate(CHROME_TEXT)) if w not in ids["data"]]
                if words:
                    found[(*where, "other language")] = sorted(set(words))
            assert not errors, errors
            page.close()
    assert not found, "\n".join(f"{k}: {v}" for k, v in found.items())


def _luminance(rgb) -> float:
    def channel(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a, b) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _rgb(css: str) -> tuple[int, int, int]:
    return tuple(int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])


LEGEND = """() => {
  const box = document.getElementById('sup-legend');
  const map = document.querySelector('.leaflet-container').getBoundingClientRect();
  const r = box.getBoundingClientRect();
  const style = getComputedStyle(box);
  const swatches = Array.from(box.querySelectorAll('.gk-bin-swatch')).map(s => getComputedStyle(s));
  return {
    text: box.innerText, colour: style.color, background: style.backgroundColor,
    rows: box.querySelectorAll('.gk-bin-legend-row').length,
    swatchBorders: swatches.map(s => s.borderTopColor), swatchWidths: swatches.map(s => parseFloat(s.borderTopWidth)),
    inside: r.left >= map.left && r.right <= map.right && r.top >= map.top && r.bottom <= map.bottom,
    share: (r.width * r.height) / (map.width * map.height),
  };
}"""


@pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])
def test_supervisor_heatmap_has_a_readable_legend(chromium, site, viewport):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(viewport)
    _sign_in(page, base_url, "super1", "zh-CN")
    page.goto(f"{base_url}/supervisor")
    page.wait_for_function("() => document.querySelector('.leaflet-container').dataset.bins !== undefined")
    legend = page.evaluate(LEGEND)
    page.screenshot(path=str(SHOTS / f"legend-{viewport['width']}.png"))
    # Two cases in two bins of one case each: one row, "1", under a Chinese title.
    assert legend["text"].splitlines()[0] == "每格事件数" and legend["rows"] == 1 and "1" in legend["text"]
    assert _contrast(_rgb(legend["colour"]), _rgb(legend["background"])) >= 4.5
    # The palest swatch is near-white: its border must stand out from the legend's background.
    assert all(w >= 1 for w in legend["swatchWidths"])
    assert all(_contrast(_rgb(c), _rgb(legend["background"])) >= 3 for c in legend["swatchBorders"])
    # On the map, and leaving it visible.
    assert legend["inside"] and legend["share"] < 0.1, legend
    assert not errors, errors


def test_coordinator_opens_cells_by_keyboard_and_the_back_button_returns(chromium, site):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    _sign_in(page, base_url, "coord1", "zh-CN")
    page.goto(f"{base_url}/coordinator")
    page.wait_for_function("() => window.gridkitCoordinator && window.gridkitCoordinator.state.loads > 0")
    assert page.evaluate("() => window.gridkitCoordinator.state.cell") == W1
    assert f"cell={W1}" in page.url
    loads = page.evaluate("() => window.gridkitCoordinator.state.loads")
    # Keyboard only: Tab to the second cell's button, Enter.
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("() => document.activeElement.getAttribute('data-cell')") == W2:
            break
    page.keyboard.press("Enter")
    page.wait_for_function("n => window.gridkitCoordinator.state.loads > n", arg=loads)
    assert page.evaluate("() => window.gridkitCoordinator.state.cell") == W2 and f"cell={W2}" in page.url
    assert page.get_attribute(f'[data-cell="{W2}"]', "aria-pressed") == "true"
    # Back: the first cell again, on the same page; a reload keeps the cell of the URL.
    loads = page.evaluate("() => window.gridkitCoordinator.state.loads")
    page.go_back()
    page.wait_for_function("n => window.gridkitCoordinator.state.loads > n", arg=loads)
    assert page.evaluate("() => window.gridkitCoordinator.state.cell") == W1 and f"cell={W1}" in page.url
    page.go_forward()
    page.reload()
    page.wait_for_function("() => window.gridkitCoordinator && window.gridkitCoordinator.state.loads > 0")
    assert page.evaluate("() => window.gridkitCoordinator.state.cell") == W2
    assert not errors, errors


def test_analyst_choropleth_legend_swatches_stand_out(chromium, site):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    _sign_in(page, base_url, "analyst1", "zh-CN")
    page.goto(f"{base_url}/analyst/")
    page.wait_for_selector("#gk-legend span.swatch")
    swatches = page.evaluate(
        """() => Array.from(document.querySelectorAll('#gk-legend span.swatch')).map(s => {
            const st = getComputedStyle(s);
            return [st.backgroundColor, st.borderTopColor, parseFloat(st.borderTopWidth)];
        })"""
    )
    background = _rgb(page.evaluate("() => getComputedStyle(document.querySelector('.sheet')).backgroundColor"))
    assert len(swatches) == 6
    # The palest class is barely different from the page; each swatch's border is what shows it.
    assert _contrast(_rgb(swatches[0][0]), background) < 1.5
    assert all(width >= 1 and _contrast(_rgb(border), background) >= 3 for _, border, width in swatches)
    assert not errors, errors


def test_report_preview_fits_a_phone(chromium, site):  # noqa: F811
    base_url, _ = site
    page, _, errors = _offline_page(chromium, base_url)
    page.set_viewport_size(PHONE)
    _sign_in(page, base_url, "analyst1", "zh-CN")
    page.goto(f"{base_url}/analyst/")
    page.select_option("#gk-report-name", "incidents")
    page.click("#gk-report-preview")
    page.wait_for_selector("#gk-report-out table.report")
    page.screenshot(path=str(SHOTS / "report-preview-390.png"), full_page=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert not errors, errors
