"""A search of the case lists of one or two characters (井盖) finds the cases from the index of their characters
(migration 20261207_perf9c, gridkit.incidents.queries.CASE_TEXT_CHARS) and gives exactly the cases whose code or
description holds the text, ignoring case, as the plain ILIKE does; longer texts are unchanged."""

from __future__ import annotations

import pytest
from factories import X0, Y0, D
from factories_incidents import SUPERVISOR, make_incident_world
from sqlalchemy import text

from gridkit.incidents import workflow as wf
from gridkit.incidents.queries import CASE_TEXT_CHARS, _filters, list_incidents

TEXTS = [
    "井盖缺失",
    "路灯不亮",
    "井边有积水",
    "盖子松动",
    "Manhole cover 井盖",
    "pothole",
    "E0 road",
    "100% 完成",
    "a_b",
]


@pytest.fixture
def cases(session):
    make_incident_world(session, users=False)
    for n, description in enumerate(TEXTS * 3):
        wf.report_incident(
            session,
            lon=X0 + (0.1 + 0.1 * (n % 9)) * D,
            lat=Y0 + 0.5 * D,
            description=description,
            category="0101",
            actor=SUPERVISOR,
        )
    session.flush()


def _expected(session, q: str) -> list[str]:
    rows = session.execute(text("SELECT code, coalesce(description, '') FROM incident")).all()
    return sorted(code for code, d in rows if q.lower() in code.lower() or q.lower() in d.lower())


@pytest.mark.parametrize(
    "q",
    [
        "井盖",
        "井",
        "盖",
        "灯",
        "水",
        "e",
        "E0",
        "MA",
        "ho",
        "%",
        "_",
        "a_",
        "0%",
        "井盖缺",
        "cover",
        "äp",
        "Ä",
        "ä",
        "e井",
    ],
)
def test_short_texts_find_the_same_cases_as_ilike(session, cases, q):
    found = list_incidents(session, q=q, limit=500)
    assert sorted(item["code"] for item in found["items"]) == _expected(session, q)
    assert found["total"] == len(_expected(session, q))


def test_a_two_character_text_is_read_from_the_characters_index(session, cases):
    where, params = _filters(q="井盖")
    assert CASE_TEXT_CHARS in where
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in session.execute(text(f"EXPLAIN SELECT i.id FROM incident i WHERE {where}"), params))
    assert "ix_incident_text_chars" in plan
    # Three characters and more: the trigram indexes, as before; digits alone (in every code): read from the cases.
    assert CASE_TEXT_CHARS not in _filters(q="井盖缺")[0]
    assert CASE_TEXT_CHARS not in _filters(q="20")[0]
