"""A search of the case lists of one or two ASCII characters (A1) finds the cases from the index of their characters
(migration 20261209_perf10e: every character of code and description, gridkit.incidents.queries.CASE_TEXT_CHARS)
and gives exactly the cases the plain query gives (code or description ILIKE the text), whether the planner reads
the index or the table; a text of a case code's characters alone (SJ, 20) is read from the cases as before."""

from __future__ import annotations

import pytest
from factories import X0, Y0, D
from factories_incidents import SUPERVISOR, make_incident_world
from sqlalchemy import text

from gridkit.incidents import workflow as wf
from gridkit.incidents.queries import CASE_TEXT_CHARS, FEW_FOUND, ORDERS, _filters, list_incidents

DESCRIPTIONS = ["A1 路灯", "井盖 a1", "Pothole on B-2", "100% done", "x_y", "ÄÖ 积水", "SJ note", "(none)", "e 9B"]
# Codes of cases imported from other systems (gridkit's own are SJ + digits).
CODES = ["BN-A17", "ext_9b", "Z-01", "a%1"]


@pytest.fixture
def cases(session):
    make_incident_world(session, users=False)
    ids = []
    for n, description in enumerate(DESCRIPTIONS * 3):
        case = wf.report_incident(
            session,
            lon=X0 + (0.1 + 0.1 * (n % 9)) * D,
            lat=Y0 + 0.5 * D,
            description=description,
            category="0101",
            actor=SUPERVISOR,
        )
        ids.append(case.incident.id)
    session.flush()
    for ident, code in zip(ids, CODES, strict=False):
        session.execute(text("UPDATE incident SET code = :c WHERE id = :i"), {"c": code, "i": ident})
    # Cases imported without a description.
    session.execute(text("UPDATE incident SET description = NULL WHERE description = '(none)'"))


def _plain(session, q: str) -> list[str]:
    """The cases the search gave before the characters' index: code or description ILIKE the text, literally."""
    literal = q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    query = "SELECT code FROM incident WHERE code ILIKE :q OR description ILIKE :q"
    return sorted(session.scalars(text(query), {"q": f"%{literal}%"}))


TEXTS = ["A1", "a1", "a", "Z", "9b", "9B", "b-", "-", "%", "_", "1%", "x_", "e ", " p", "1", "20", "sj", "S", "Ä", "ö"]


@pytest.mark.parametrize("seqscan", ["on", "off"])
def test_short_ascii_texts_find_the_cases_of_the_plain_query(session, cases, seqscan):
    session.execute(text(f"SET LOCAL enable_seqscan = {seqscan}"))  # off: the index wherever the plan may take it
    for q in TEXTS:
        found = list_incidents(session, q=q, limit=500)
        expected = _plain(session, q)
        assert sorted(item["code"] for item in found["items"]) == expected, q
        assert found["total"] == len(expected), q
    assert _plain(session, "A1") and _plain(session, "9b") and not _plain(session, "Q")


def test_a_short_ascii_text_is_read_from_the_characters_index(session, cases):
    where, params = _filters(q="A1")
    assert CASE_TEXT_CHARS in where
    session.execute(text("SET LOCAL enable_seqscan = off"))
    plan = "\n".join(r[0] for r in session.execute(text(f"EXPLAIN SELECT i.id FROM incident i WHERE {where}"), params))
    assert "ix_incident_text_chars" in plan
    # Characters every gridkit case code holds: the condition would cost more than it saves.
    assert CASE_TEXT_CHARS not in _filters(q="20")[0]
    assert CASE_TEXT_CHARS not in _filters(q="sJ")[0]
    assert CASE_TEXT_CHARS not in _filters(q="A1B")[0]


@pytest.mark.parametrize("order", ["newest", "oldest", "deadline", "todo"])
def test_a_page_of_few_cases_found_keeps_the_order_and_offset(session, cases, order):
    """The few cases holding a short text are read first and their page cut from them: the same page, in the same
    order, as the page of the plain query."""
    where, params = _filters(q="a1")
    assert "q_text" in params
    query = f"SELECT i.code FROM incident i WHERE {where} ORDER BY {ORDERS[order]} LIMIT 3 OFFSET 1"
    expected = list(session.scalars(text(query), params))
    found = list_incidents(session, q="a1", order=order, limit=3, offset=1)
    assert [item["code"] for item in found["items"]] == expected and len(expected) == 3
    assert found["total"] == len(_plain(session, "a1")) <= FEW_FOUND
