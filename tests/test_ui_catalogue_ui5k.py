"""Every string a page can show comes from the catalogue in both languages: the keys written in
templates, views and scripts, and the keys a page builds from a prefix and a value of the domain
(analyst choices, incident labels). A key missing from one language shows the raw key to a user."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gridkit.incidents.deadlines import PENDING_STEP
from gridkit.incidents.evaluate import GROUPS, STEPS
from gridkit.incidents.workflow import ACTIONS
from gridkit.io.export import LAYERS
from gridkit.messages import LANGUAGES, catalogue
from gridkit.reports import GROUPINGS
from gridkit.reports.choropleth import COUNTS, LEVELS
from gridkit.rules import SEVERITIES, IncidentState
from web import analyst
from web.incidents_api import LABELS
from web.supervisor import CASE_ORDERS

WEB = Path(__file__).resolve().parent.parent / "web"
LITERAL = re.compile(r"""\b(?:_|t|t_or)\(\s*['"]([a-z][\w]*(?:\.[\w]+)+)['"]""")
SCRIPT_KEY = re.compile(r"""\bS\[\s*['"]([a-z][\w.]+)['"]\s*\]""")
QUOTED = re.compile(r"""['"]([a-z][\w]*(?:\.[\w]+)+)['"]""")


def _written_keys() -> set[str]:
    keys: set[str] = set()
    for path in (WEB / "templates").glob("*.html"):
        keys |= set(LITERAL.findall(path.read_text(encoding="utf-8")))
    for path in WEB.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        keys |= set(LITERAL.findall(source))
        for group in re.findall(r"_STRINGS\s*=\s*\(([^)]*)\)", source, re.S):
            keys |= set(QUOTED.findall(group))
    for path in (WEB / "static" / "js").glob("gridkit-*.js"):
        keys |= set(SCRIPT_KEY.findall(path.read_text(encoding="utf-8")))
    return keys


def _built_keys() -> set[str]:
    keys = {f"analyst.layer.{v}" for v in LAYERS}
    keys |= {f"analyst.crs.{v}" for v in analyst.CRS_CHOICES}
    keys |= {f"report.by.{v}" for v in (*GROUPINGS, *LEVELS)}
    keys |= {f"report.col.{v}" for v in COUNTS}
    keys |= {f"sup.cases.order.{v}" for v in CASE_ORDERS}
    values = {
        "state": [s.value for s in IncidentState],
        "step": list(PENDING_STEP.values()),
        "action": list(ACTIONS),
        "step_name": STEPS,
        "severity": SEVERITIES,
        "by": GROUPS,
    }
    for kind, items in values.items():
        keys |= {f"{LABELS[kind]}{v}" for v in items}
    return keys


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_key_a_page_shows_is_in_the_catalogue(lang):
    written = _written_keys()
    assert len(written) > 300  # the scan found the keys (a broken pattern would find none)
    missing = sorted(k for k in written | _built_keys() if k not in catalogue(lang))
    assert not missing, f"{lang}: {missing}"


def test_both_languages_have_the_same_keys():
    zh, en = catalogue("zh-CN"), catalogue("en")
    assert sorted(set(zh) ^ set(en)) == []
