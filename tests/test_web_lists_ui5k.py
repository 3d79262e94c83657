"""Long lists as their users meet them: a coordinator with 2,000 open cases pages through them
(25 a page, the most urgent first across all pages, not only within the first rows fetched) and
finds one by its number or a word of its description, matched literally."""

from __future__ import annotations

import re

import pytest
from factories_incidents import C1, W1, make_incident_world
from factories_web import commit, sign_in
from sqlalchemy import text

from gridkit import db
from gridkit.errors import ValidationError
from web import create_app

CASES = 2000


def make_many_cases(session) -> dict:
    """The incident world, and 2,000 open cases in coordinator 1's work cell W1: every third one
    dispatched, deadlines spread over 2,000 hours, one with a '%' and one with a word of its own."""
    world = make_incident_world(session)
    session.execute(
        text("""
        INSERT INTO incident (code, category_code, description, status, severity, geom, base_cell_id, dept_code,
                              work_cell_id, coordinator_id, reported_at, step_deadline)
        SELECT 'SJ' || lpad(n::text, 8, '0'), '0101',
               CASE n WHEN 1234 THEN '井盖移位 100% 堵塞' WHEN 777 THEN '路灯不亮，红荔路口' ELSE '井盖缺失' || n END,
               CASE WHEN n % 3 = 0 THEN 'dispatched' ELSE 'accepted' END, 'normal',
               ST_Centroid(b.geom), b.id, '200001', w.id, :coordinator,
               now() - interval '3 days' + n * interval '1 minute',
               now() + ((n * 7919) % 2000) * interval '1 hour'
        FROM generate_series(1, :n) n,
             (SELECT id, geom FROM base_cell WHERE code LIKE :c1 ORDER BY code LIMIT 1) b,
             (SELECT id FROM work_cell WHERE code = :w1) w"""),
        {"n": CASES, "coordinator": world["coord1"].id, "c1": f"{C1}%", "w1": W1},
    )
    return {"coord1": world["coord1"].id}


@pytest.fixture
def many(fresh_settings):
    commit(fresh_settings, make_many_cases)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app, fresh_settings


def _codes(html: str) -> list[str]:
    return re.findall(r'<article class="case-card[^"]*" data-code="([^"]+)"', html)


def _expected_order(settings, todo: bool = True) -> list[str]:
    first = "status <> 'dispatched', " if todo else ""
    with db.session_factory(db.engine_for(settings))() as session:
        return list(session.execute(text(f"SELECT code FROM incident ORDER BY {first}step_deadline, id")).scalars())


def test_a_coordinator_pages_through_2000_cases_most_urgent_first(many):
    app, settings = many
    client = app.test_client()
    sign_in(client, "coord1")
    expected = _expected_order(settings)
    assert len(expected) == CASES

    first = client.get("/coordinator/cases").get_data(as_text=True)
    assert _codes(first) == expected[:25]
    assert "第 1–25 条，共 2,000 条" in first and "第 1/80 页" in first
    assert 'rel="next"' in first and 'rel="prev"' not in first
    next_url = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")

    second = client.get(next_url).get_data(as_text=True)
    assert _codes(second) == expected[25:50] and "第 26–50 条" in second

    last = client.get("/coordinator/cases?page=80&lang=en").get_data(as_text=True)
    assert _codes(last) == expected[-25:]
    assert "1,976–2,000 of 2,000" in last and 'rel="prev"' in last and 'rel="next"' not in last

    # Past the end: an empty page that says so and leads back, not an error.
    beyond = client.get("/coordinator/cases?page=81")
    assert beyond.status_code == 200 and _codes(beyond.get_data(as_text=True)) == []
    assert 'rel="first"' in beyond.get_data(as_text=True)
    bad = client.get("/coordinator/cases?page=abc")
    assert bad.status_code == 400 and "page" in bad.get_data(as_text=True)


def test_a_coordinator_finds_a_case_by_number_or_words(many):
    app, _ = many
    client = app.test_client()
    sign_in(client, "coord1")
    by_words = client.get("/coordinator/cases?q=红荔路口").get_data(as_text=True)
    assert _codes(by_words) == ["SJ00000777"]
    assert "第 1–1 条，共 1 条" in by_words and 'rel="next"' not in by_words
    assert _codes(client.get("/coordinator/cases?q=SJ00001234").get_data(as_text=True)) == ["SJ00001234"]
    # '%' is a character to find, not a wildcard.
    assert _codes(client.get("/coordinator/cases?q=100%").get_data(as_text=True)) == ["SJ00001234"]
    none = client.get("/coordinator/cases?q=无此事件").get_data(as_text=True)
    assert _codes(none) == [] and "没有与“无此事件”匹配的在办事件。" in none
    # The search box keeps what was typed, labelled, so a page of results can be refined.
    assert re.search(
        r'<label for="mycases-q">查找事件</label>\s*<input type="search" id="mycases-q" name="q" '
        r'value="无此事件"',
        none,
    )


def test_the_case_api_searches_and_orders_too(many):
    app, settings = many
    client = app.test_client()
    sign_in(client, "coord1")
    found = client.get("/api/incidents?q=红荔路口").get_json()
    assert found["total"] == 1 and found["items"][0]["code"] == "SJ00000777"
    urgent = client.get("/api/incidents?order=todo&limit=5").get_json()
    assert [c["code"] for c in urgent["items"]] == _expected_order(settings)[:5]
    refused = client.get("/api/incidents?order=sideways")
    assert refused.status_code == 400 and "排序" in refused.get_json()["message"]


CELLS = 10_000


def make_many_cells(session) -> dict:
    """The incident world, and 10,000 more work cells in its published version, each with a case:
    cell 4321 with five closed cases (the most), cell 17 with three open ones (the largest backlog)."""
    world = make_incident_world(session)
    session.execute(
        text("""
        INSERT INTO work_cell (version_id, code, name)
        SELECT :version, '2000019999' || lpad(n::text, 10, '0'), '测试网格' || n FROM generate_series(1, :n) n"""),
        {"version": world["version"].id, "n": CELLS},
    )
    session.execute(
        text("""
        INSERT INTO incident (code, category_code, description, status, dept_code, work_cell_id,
                              reported_at, deadline, closed_at)
        SELECT 'SJ' || lpad(w.n::text, 6, '0') || k, '0101', '测试', s.status, '200001', w.id,
               now() - interval '10 days', now() - interval '1 day', s.closed_at
        FROM (SELECT id, substr(code, 11)::int AS n FROM work_cell WHERE code LIKE '2000019999%') w
        CROSS JOIN LATERAL generate_series(1, CASE w.n WHEN 4321 THEN 5 WHEN 17 THEN 3 ELSE 1 END) k
        CROSS JOIN LATERAL (SELECT CASE WHEN w.n = 17 OR (w.n % 2 = 1 AND w.n <> 4321) THEN 'dispatched'
                                        ELSE 'closed' END AS status) s0
        CROSS JOIN LATERAL (SELECT s0.status, CASE WHEN s0.status = 'closed'
                                              THEN now() - interval '2 days' END AS closed_at) s"""),
    )
    return {}


@pytest.fixture
def many_cells(fresh_settings):
    commit(fresh_settings, make_many_cells)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    return app


def _evaluation_rows(html: str) -> list[str]:
    body = html.split('id="evaluation"')[1].split("</tbody>")[0].split("<tbody>")[1]
    return re.findall(r'<tr(?: class="total")?>\s*<th scope="row">([^<]*)', body)


def test_a_supervisor_over_10000_work_cells_gets_a_sorted_page(many_cells):
    client = many_cells.test_client()
    sign_in(client, "super1")
    html = client.get("/supervisor?by=work-cell").get_data(as_text=True)
    rows = _evaluation_rows(html)
    # 50 cells and the total, the one with the most cases first, sorted by that column.
    assert len(rows) == 51 and rows[0].startswith("测试网格4321") and rows[-1].strip() == "合计"
    assert "第 1–50 条，共 10,000 条" in html and "第 1/200 页" in html
    assert re.search(r'<th scope="col" aria-sort="descending"><a href="[^"]*sort=cases[^"]*"', html)

    backlog = client.get("/supervisor?by=work-cell&sort=backlog").get_data(as_text=True)
    assert _evaluation_rows(backlog)[0].startswith("测试网格17")
    # Lowest on-time closure first: every closed case here was late (0%), open-only cells last.
    on_time = client.get("/supervisor?by=work-cell&sort=on_time&page=200").get_data(as_text=True)
    assert "第 9,951–10,000 条" in on_time and 'rel="next"' not in on_time
    assert client.get("/supervisor?by=work-cell&sort=sideways").status_code == 400


def test_a_supervisor_lists_every_case_with_search_filters_and_pages(many):
    app, settings = many
    client = app.test_client()
    sign_in(client, "super1")
    board = client.get("/supervisor").get_data(as_text=True)
    # The dashboard shows 20 open cases and leads to all of them.
    assert re.search(r'<a href="/supervisor/cases" id="all-cases">查看全部在办事件（2000）→</a>', board)
    first = client.get("/supervisor/cases").get_data(as_text=True)
    assert "第 1–25 条，共 2,000 条" in first and len(re.findall(r'<tr data-code="', first)) == 25
    urgent = client.get("/supervisor/cases?order=deadline&page=2").get_data(as_text=True)
    assert re.findall(r'<tr data-code="([^"]+)"', urgent) == _expected_order(settings, todo=False)[25:50]
    dispatched = client.get("/supervisor/cases?state=dispatched").get_data(as_text=True)
    assert "共 666 条" in dispatched
    found = client.get("/supervisor/cases?q=红荔路口").get_data(as_text=True)
    assert re.findall(r'<tr data-code="([^"]+)"', found) == ["SJ00000777"]
    assert "SJ00000777" in found and 'href="/supervisor/incidents/' in found
    none = client.get("/supervisor/cases?q=无此事件&lang=en").get_data(as_text=True)
    assert "No case matches “无此事件”." in none and 'id="cases"' not in none
    # Closed cases too, when "open only" is unticked (the hidden field sends open=0).
    assert "共 2,000 条" in client.get("/supervisor/cases?open=0&lang=zh-CN").get_data(as_text=True)
    # An order the list does not offer falls back to the newest first.
    assert "SJ00002000" in client.get("/supervisor/cases?order=sideways").get_data(as_text=True)


def make_many_users(session) -> dict:
    """The incident world, and 2,000 coordinators' accounts (no password: they sign in by single sign-on)."""
    make_incident_world(session)
    session.execute(
        text(
            "INSERT INTO app_user (name, role) SELECT 'grid_' || lpad(n::text, 4, '0'), 'coordinator'"
            " FROM generate_series(1, 2000) n"
        )
    )
    session.execute(text("INSERT INTO app_user (name, role) VALUES ('a.b_c', 'analyst')"))
    return {}


def test_an_administrator_pages_and_finds_among_2000_accounts(fresh_settings):
    commit(fresh_settings, make_many_users)
    app = create_app(fresh_settings)
    app.config["TESTING"] = True
    client = app.test_client()
    sign_in(client, "admin1")
    users = re.compile(r'<tr data-user="([^"]+)">')
    first = client.get("/admin").get_data(as_text=True)
    # 2,000 accounts and the world's seven: 50 a page, by name.
    assert len(users.findall(first)) == 50 and "第 1–50 条，共 2,007 条" in first
    assert users.findall(first)[:2] == ["a.b_c", "admin1"]
    last = client.get("/admin?page=41").get_data(as_text=True)
    assert users.findall(last) == [f"grid_{n}" for n in range(1996, 2001)] + ["street_super", "super1"]
    assert "第 2,001–2,007 条" in last
    found = client.get("/admin?user=GRID_123").get_data(as_text=True)
    assert users.findall(found) == [f"grid_{1230 + i}" for i in range(10)]
    # '_' is a character, not LIKE's "any character": "_1" finds grid_1000…grid_1999, not admin1 or super1.
    underscore = client.get("/admin?user=_1").get_data(as_text=True)
    assert "共 1,000 条" in underscore and "admin1" not in users.findall(underscore)
    none = client.get("/admin?user=nobody").get_data(as_text=True)
    assert users.findall(none) == [] and "没有用户名含“nobody”的用户。" in none
    # Every cell of a user's row names its column, for the phone layout that drops the header.
    assert re.search(r'<td data-label="用户名">grid_1230</td>', found)


def test_the_dashboard_leads_to_every_overdue_case(many):
    app, settings = many
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        session.execute(text("UPDATE incident SET step_deadline = now() - id * interval '1 minute' WHERE id % 20 = 0"))
    client = app.test_client()
    sign_in(client, "super1")
    board = client.get("/supervisor").get_data(as_text=True)
    # The panel lists 50 of the 100 overdue cases, and links to all of them, the most overdue first.
    assert len(re.findall(r"<li>", board.split('id="overdue-list"')[1].split("</ul>")[0])) == 50
    link = re.search(r'<a href="([^"]+)" id="all-overdue">查看全部超期事件（100）→</a>', board).group(1)
    listed = client.get(link.replace("&amp;", "&")).get_data(as_text=True)
    assert "共 100 条" in listed and 'name="overdue" value="1" checked' in listed
    codes = re.findall(r'<tr data-code="([^"]+)"', listed)
    assert len(codes) == 25 and codes[0] == "SJ00002000"


def test_how_late_a_case_is_reads_in_days_past_two_days(many):
    app, settings = many
    with db.session_factory(db.engine_for(settings))() as session, session.begin():
        session.execute(text("UPDATE incident SET step_deadline = now() - interval '92 days 19 hours' WHERE id = 1"))
        session.execute(text("UPDATE incident SET step_deadline = now() - interval '5 hours' WHERE id = 2"))
    client = app.test_client()
    sign_in(client, "super1")
    board = client.get("/supervisor").get_data(as_text=True)
    # In working time (the test calendar works every hour: a working day of 24 working hours), labelled so.
    assert "SJ00000001</a> 分类 · 超期 92 个工作日 19 个工作小时" in board and "超期 5.0 个工作小时" in board
    assert "92 working days 19 working hours late" in client.get("/supervisor?lang=en").get_data(as_text=True)


def test_report_errors_on_the_web_name_the_form_not_command_line_options(many):
    app, _ = many
    client = app.test_client()
    sign_in(client, "analyst1")
    for lang, expected in (
        ("zh-CN", "按工作网格统计需要先选择部门"),
        ("en", "Grouping by work cell needs a department"),
    ):
        refused = client.get(f"/analyst/report.json?name=workload&by=work-cell&lang={lang}")
        message = refused.get_json()["message"]
        assert refused.status_code == 400 and message.startswith(expected) and "--" not in message
        page = client.get(f"/analyst/report?name=workload&by=work-cell&format=csv&lang={lang}")
        assert page.status_code == 400 and expected in page.get_data(as_text=True)
    # The CLI keeps its own sentence, which names the option.
    assert "--dept" in ValidationError("report.work_cell_needs_dept").render("zh-CN")
